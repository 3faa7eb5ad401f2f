"""DPG (Silver, Lever, Heess, Degris, Wierstra and Riedmiller 2014): the online deterministic actor-critic.

From each transition as it comes, no replay memory and no target networks (dpgkit.learn.copdac):
  COPDAC-Q (features linear | rff | rbf): mu_theta(s) = theta^T phi(s), compatible critic
    Q_w(s, a) = (a - mu(s))^T grad mu(s)^T w + v^T psi(s); delta = r + gamma v^T psi(s') - Q_w(s, a);
    w <- w + alpha_w delta grad mu(s) (a - mu(s)); v <- v + alpha_v delta psi(s);
    theta <- theta + alpha_theta grad mu(s) grad mu(s)^T w.
  neural (features mlp): the same online step with an MLP actor and critic (Adam), what DDPG adds replay
    and targets to.
Behaviour: mu(s) + Gaussian noise, or uniform on the action box (off-policy, no importance weights).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import time
import uuid
from collections.abc import Callable

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from dpgkit import __version__
from dpgkit.algos.base import Agent, register
from dpgkit.checkpoint import flatten_tree, latest_checkpoint, save_checkpoint, unflatten_tree
from dpgkit.collect import LocalCollector
from dpgkit.config import DPGConfig, validate
from dpgkit.envs import check_action_space, check_observation_space
from dpgkit.evaluate import Evaluator
from dpgkit.learn.copdac import (
    OnlineSpec,
    Transition,
    act,
    check_spec,
    explore,
    init_online,
    linear_gain,
    update,
)
from dpgkit.logger import RunLogger
from dpgkit.progress import TrainingProgress
from dpgkit.train import NonFiniteError, crossed, new_stats, stack_trees, summarize


def online_spec(config: DPGConfig, action_dim: int) -> OnlineSpec:
    """The static settings of the online update of a DPG config."""
    names = {f.name for f in dataclasses.fields(OnlineSpec)} - {"action_dim"}
    return OnlineSpec(action_dim=action_dim, **{name: getattr(config, name) for name in names})


def check_dpg_config(config: DPGConfig) -> None:
    """Raise ValueError naming the first DPG setting that makes no sense."""
    validate(config)
    for name in ("alpha_theta", "alpha_w", "alpha_v", "feature_width"):
        if not getattr(config, name) > 0:
            raise ValueError(f"config.{name} must be > 0, got {getattr(config, name)!r}")
    if config.explore != "gaussian":
        raise ValueError(
            f"config.explore={config.explore!r} is not used by DPG: its exploration is config.behaviour "
            "(gaussian, with config.noise_sigma, or uniform)"
        )
    check_spec(online_spec(config, 1))


def explore_block(spec: OnlineSpec, state, obs: jax.Array, key: jax.Array):
    """Behaviour actions of one seed's env copies (copies, action_dim) and the seed's next key."""
    key, *keys = jax.random.split(key, obs.shape[0] + 1)
    return jax.vmap(functools.partial(explore, spec, state))(obs, jnp.stack(keys)), key


def update_block(spec: OnlineSpec, state, transitions: Transition, average):
    """One seed's online updates from its copies' transitions, one after the other; returns the TD errors."""
    return jax.lax.scan(lambda s, t: update(spec, s, t, average), state, transitions)


@functools.cache
def compiled(spec: OnlineSpec, average_theta: bool) -> tuple[Callable, Callable, Callable]:
    """Jitted (act, explore, update) over (seeds, copies), compiled once per spec and shared by every agent."""
    act_copies = jax.vmap(functools.partial(act, spec, averaged=average_theta), in_axes=(None, 0))
    return (
        jax.jit(jax.vmap(act_copies)),
        jax.jit(jax.vmap(functools.partial(explore_block, spec))),
        jax.jit(jax.vmap(functools.partial(update_block, spec), in_axes=(0, 0, None))),
    )


class OnlineTrainer:
    """The online loop of DPG: act, step, update from the transition; with logs, evaluations and checkpoints.

    It offers what Agent uses of Trainer (policy, collector, evaluate, learn, save, restore), without replay.
    """

    def __init__(self, algo: str, config: DPGConfig, make_env: Callable[[], gym.Env]):
        check_dpg_config(config)
        self.algo, self.config, self.make_env = algo, config, make_env
        probe = make_env()
        check_action_space(probe.action_space)
        check_observation_space(probe.observation_space)
        low, high = probe.observation_space.low, probe.observation_space.high
        action_dim = probe.action_space.shape[0]
        probe.close()
        self.agent_seeds = [config.seed + i for i in range(config.seeds)]
        self.spec = online_spec(config, action_dim)
        seed_keys = [jax.random.PRNGKey(s) for s in self.agent_seeds]
        self.state = stack_trees(
            [init_online(self.spec, jax.random.fold_in(k, 0), low, high) for k in seed_keys]
        )
        self.keys = jnp.stack([jax.random.fold_in(k, 1) for k in seed_keys])
        self.collector = LocalCollector(make_env, self.agent_seeds, config.actors)
        self.act_fn, self.explore_fn, self.update_fn = compiled(self.spec, config.average_theta)
        self.pending: list = []
        self.steps = 0
        self.run_dir = pathlib.Path(
            config.run_dir or f"runs/{algo}-{config.env}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        self.evaluator: Evaluator | None = None
        self.last_eval = np.full(config.seeds, np.nan)
        self.last_checkpoint: pathlib.Path | None = None
        self.run_id = uuid.uuid4().hex

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions in actor units for obs shaped (seeds, copies, obs_dim)."""
        return np.asarray(self.act_fn(self.state, np.asarray(obs, np.float32)))

    def online_step(self, stats: dict) -> None:
        """Act by the behaviour policy in every env copy and update each seed from its new transitions."""
        obs, _ = self.collector.observe()
        actions, self.keys = self.explore_fn(self.state, obs, self.keys)
        actions = np.asarray(actions)
        result = self.collector.step(actions)
        for name, value in (("observation", result.next_obs), ("reward", result.reward)):
            if not np.isfinite(value).all():
                raise NonFiniteError(self.stop_message(f"non-finite {name}", self.steps + 1))
        discount = (self.config.gamma * (1.0 - result.terminated)).astype(np.float32)
        transitions = Transition(obs, actions, result.reward.astype(np.float32), discount, result.next_obs)
        average = self.steps >= self.config.total_steps // 2
        self.state, delta = self.update_fn(self.state, transitions, average)
        self.pending.append((self.steps + self.config.actors, delta))
        for i, returns in enumerate(result.episode_returns):
            stats["returns"][i].extend(returns)
        self.steps += self.config.actors

    def check_losses(self, stats: dict) -> None:
        """Add the TD errors since the last check to stats as losses/critic = delta^2 / 2; stop on a non-finite one."""
        for steps, delta in jax.device_get(self.pending):
            if not np.isfinite(delta).all():
                self.pending.clear()
                raise NonFiniteError(self.stop_message("non-finite TD error", steps))
            stats["critic_loss"] += 0.5 * np.mean(np.square(delta), axis=-1)
            stats["critic_calls"] += 1
        self.pending.clear()

    def stop_message(self, what: str, steps: int) -> str:
        """Why training stopped, at which step, and where the last good checkpoint is."""
        kept = f"; the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else ""
        return f"{what} at env step {steps}: training stopped{kept}"

    def evaluate(self, episodes: int | None = None) -> np.ndarray:
        """Deterministic returns of shape (seeds, episodes) on the fixed evaluation seeds."""
        episodes = episodes or self.config.eval_episodes
        if self.evaluator is None or self.evaluator.episodes != episodes:
            self.evaluator = Evaluator(self.make_env, self.config.seeds, episodes)
        return self.evaluator.run(self.policy)

    def learn(self, total_steps: int) -> None:
        """Train for total_steps more env steps per seed, with logs, evaluations and checkpoints."""
        if total_steps < 0:
            raise ValueError(f"total_steps must be >= 0, got {total_steps}")
        if self.steps == 0 and self.last_checkpoint is None and latest_checkpoint(self.run_dir) is not None:
            raise ValueError(
                f"{self.run_dir} already holds another run's checkpoint; continue it with `dpgkit resume "
                f"{self.run_dir}` (or Agent.load) or train into another run_dir, so that nothing is overwritten"
            )
        config, target = self.config, self.steps + total_steps
        logger = RunLogger(self.run_dir, self.agent_seeds)
        stats = new_stats(config.seeds)
        last_time, last_steps = time.perf_counter(), self.steps
        try:
            with TrainingProgress(target, self.steps, enabled=config.progress) as progress:
                while self.steps < target:
                    before = self.steps
                    self.online_step(stats)
                    evaluate = crossed(before, self.steps, config.eval_every)
                    log = crossed(before, self.steps, config.log_every) or self.steps >= target
                    checkpoint = crossed(before, self.steps, config.checkpoint_every)
                    if evaluate or log or checkpoint:
                        self.check_losses(stats)
                    if evaluate:
                        self.last_eval = self.evaluate().mean(axis=1)
                        logger.log(self.steps, {"eval/return": self.last_eval})
                    if log:
                        now = time.perf_counter()
                        sps = (self.steps - last_steps) / max(now - last_time, 1e-9)
                        logger.log(self.steps, summarize(stats, sps))
                        stats, last_time, last_steps = new_stats(config.seeds), now, self.steps
                    if checkpoint:
                        self.save(self.run_dir)
                    progress.update(self.steps, self.last_eval)
        finally:
            logger.close()

    def save(self, path) -> pathlib.Path:
        """Write an atomic, verified checkpoint of the learner state, exploration keys and env RNGs."""
        arrays = {"learner": flatten_tree(self.state), "explore": {"keys": np.asarray(self.keys)}}
        meta = {
            "algo": self.algo,
            "run_id": self.run_id,
            "version": __version__,
            "config": dataclasses.asdict(self.config),
            "steps": self.steps,
            "collector": self.collector.state(),
            "last_eval": self.last_eval.tolist(),
        }
        self.last_checkpoint = save_checkpoint(path, self.steps, arrays, meta)
        return self.last_checkpoint

    def restore(self, arrays: dict, meta: dict) -> None:
        """Load the state written by save() (an interrupted episode starts over)."""
        self.state = jax.tree_util.tree_map(jnp.asarray, unflatten_tree(self.state, arrays["learner"]))
        self.keys = jnp.asarray(arrays["explore"]["keys"])
        self.collector.load_state(meta["collector"])
        self.steps = meta["steps"]
        self.last_eval = np.asarray(meta["last_eval"], np.float64)
        self.run_id = meta.get("run_id", self.run_id)

    def refresh_acting_actor(self) -> None:
        """Nothing to refresh: DPG acts with its current parameters."""

    def close(self) -> None:
        """Close every environment."""
        self.collector.close()
        if self.evaluator is not None:
            self.evaluator.close()


@register
class DPG(Agent):
    """Deterministic policy gradient: COPDAC-Q over fixed features, or the online MLP actor-critic."""

    name = "dpg"
    config_class = DPGConfig
    trainer_class = OnlineTrainer

    def linear_gain(self, agent: int = 0) -> np.ndarray:
        """K of the linear actor in env units, u = -K s (features linear, symmetric bounds, unbounded obs)."""
        if self.config.features != "linear":
            raise ValueError(f"linear_gain needs features='linear', this agent has {self.config.features!r}")
        state = jax.tree_util.tree_map(lambda x: x[agent], self.trainer.state)
        scaler = self.trainer.collector.scaler
        if not (np.allclose(scaler.low, -scaler.high) and np.allclose(state.features.center, 0.0)):
            raise ValueError("linear_gain needs symmetric action bounds and observations centred at 0")
        theta = state.theta_avg if self.config.average_theta and state.averaged > 0 else state.theta
        return linear_gain(theta, state.features.scale, scaler.high)
