"""The training loop: collect -> replay -> learn -> evaluate -> log -> checkpoint."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import time
import uuid
import warnings
from collections.abc import Callable

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from dpgkit import __version__
from dpgkit.checkpoint import flatten_tree, latest_checkpoint, save_checkpoint, unflatten_tree
from dpgkit.collect import Collector, LocalCollector
from dpgkit.config import Config, validate
from dpgkit.envs import check_action_space, check_observation_space
from dpgkit.evaluate import Evaluator, discounted_returns_to_go, fully_observed, value_error
from dpgkit.explore import make_explorer
from dpgkit.learn import Batch, LearnerSpec, init_learner, update_block
from dpgkit.learn.categorical import suggest_support, warmup_support
from dpgkit.learn.learner import first_q
from dpgkit.logger import RunLogger
from dpgkit.progress import TrainingProgress
from dpgkit.replay import NStepWriter, PrioritizedReplay, ReplayBuffer

VALUE_CHUNK = 1024
"""States per seed in one jitted critic evaluation of the value diagnostic (padded, so it compiles once)."""


SUPPORT_WARNING = 0.05
"""Warn when more than this share of the categorical target's mass falls outside [v_min, v_max] in an interval."""


class NonFiniteError(FloatingPointError):
    """Training met a NaN or inf (observation, reward or loss) and stopped."""


def learner_spec(config: Config, action_dim: int) -> LearnerSpec:
    """The static update settings of a config."""
    derived = {
        "action_dim": action_dim,
        "actor_hidden": tuple(config.actor_hidden or config.hidden),
        "critic_hidden": tuple(config.critic_hidden or config.hidden),
        "layer_norm": config.explore == "param" and config.torso == "relu"
        if config.layer_norm is None
        else config.layer_norm,
        "noisy": config.explore == "noisy",
    }
    names = {f.name for f in dataclasses.fields(LearnerSpec)} - set(derived)
    return LearnerSpec(**derived, **{name: getattr(config, name) for name in names})


def declared_reward_range(env: gym.Env) -> tuple[float, float] | None:
    """The env's own finite reward_range, where it declares one (Gymnasium 1 dropped it; custom envs may keep it)."""
    low, high = getattr(env.unwrapped, "reward_range", (-np.inf, np.inf))
    return (float(low), float(high)) if np.isfinite([low, high]).all() else None


def host_rng(agent_seed: int) -> np.random.Generator:
    """The host generator of one agent (warm-up actions, exploration noise, replay sampling)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([agent_seed, 0x5EED])))


def make_replay(config: Config, example) -> ReplayBuffer:
    """The configured replay: uniform or proportional prioritized."""
    if config.replay == "prioritized":
        return PrioritizedReplay(
            config.seeds, config.buffer_size, example, config.priority_alpha, config.priority_eps
        )
    return ReplayBuffer(config.seeds, config.buffer_size, example)


def annealed_beta(beta0: float, steps: int, total_steps: int) -> float:
    """beta = beta0 + (1 - beta0) min(1, steps / total_steps): linear to 1 over the run (Schaul et al. 2016)."""
    return beta0 + (1.0 - beta0) * min(1.0, steps / total_steps)


def stack_transitions(transitions: list[dict]) -> Batch:
    """The n-step writer's transitions as one Batch of float32 arrays (leading axis: count)."""
    return Batch(
        *(
            np.asarray([t[name] for t in transitions], np.float32)
            for name in ("obs", "action", "reward", "discount", "next_obs")
        )
    )


def stack_trees(trees):
    """Stack pytrees along a new leading (seed) axis."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def calls_actor_step(first_update: int, count: int, policy_delay: int) -> bool:
    """Whether updates first_update .. first_update + count - 1 include an actor step ((u + 1) % d == 0)."""
    return any((u + 1) % policy_delay == 0 for u in range(first_update, first_update + count))


def changes_acting_actor(config: Config, first_update: int, count: int) -> bool:
    """Whether updates first_update .. first_update + count - 1 change the actor that acts: the online one (an
    actor step), or with act_with_target the target one (an actor step under Polyak, a copy under hard targets)."""
    if config.act_with_target and config.target_update_every:
        return crossed(first_update, first_update + count, config.target_update_every)
    return calls_actor_step(first_update, count, config.policy_delay)


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]."""
    return every > 0 and after // every > before // every


class Trainer:
    """Owns the env copies, replay, noise, learner state and counters of one run of one or several seeds."""

    def __init__(self, algo: str, config: Config, make_env: Callable[[], gym.Env]):
        validate(config)
        self.algo, self.config, self.make_env = algo, config, make_env
        probe = make_env()
        check_action_space(probe.action_space)
        check_observation_space(probe.observation_space)
        self.obs_dim = probe.observation_space.shape[0]
        self.action_dim = probe.action_space.shape[0]
        self.horizon = probe.spec.max_episode_steps if probe.spec is not None else None
        reward_range = declared_reward_range(probe)
        probe.close()
        self.agent_seeds = [config.seed + i for i in range(config.seeds)]
        self.support_log: dict[str, float] = {}
        if config.atoms and config.v_min is None:
            if reward_range is not None:
                support = suggest_support(*reward_range, config.gamma, self.horizon)
                config = self.config = config.replace(v_min=support[0], v_max=support[1])
                self.note_support(f"from the env's reward_range {reward_range}")
            elif config.learning_starts == 0:
                raise ValueError(
                    "config.v_min and config.v_max are needed: the env declares no finite reward_range and "
                    "learning_starts 0 leaves no warm-up to derive the categorical support from"
                )
        self.spec = learner_spec(config, self.action_dim)
        obs_example = jnp.zeros((1, self.obs_dim), jnp.float32)
        self.state = stack_trees(
            [init_learner(self.spec, jax.random.PRNGKey(s), obs_example) for s in self.agent_seeds]
        )
        self.compile_learner()
        self.act_fn = jax.jit(jax.vmap(self.spec.actor.apply))
        self.warned_unobserved = False
        self.collector: Collector = LocalCollector(make_env, self.agent_seeds, config.actors)
        example = Batch(
            obs=np.zeros(self.obs_dim, np.float32),
            action=np.zeros(self.action_dim, np.float32),
            reward=np.float32(0),
            discount=np.float32(0),
            next_obs=np.zeros(self.obs_dim, np.float32),
        )
        self.replay = make_replay(config, example)
        self.writers = [NStepWriter(config.n_step, config.gamma, config.actors) for _ in self.agent_seeds]
        self.rngs = [host_rng(s) for s in self.agent_seeds]
        self.explorer = make_explorer(
            config, self.spec.actor, self.act_fn, config.seeds, self.action_dim, self.obs_dim
        )
        self.pending_priorities: tuple | None = None
        self.host = jax.devices("cpu")[0]
        self.refresh_acting_actor()
        self.pending: list = []
        self.steps = 0
        self.updates = 0
        self.run_dir = pathlib.Path(
            config.run_dir or f"runs/{algo}-{config.env}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        self.evaluator: Evaluator | None = None
        self.last_eval = np.full(config.seeds, np.nan)
        self.last_checkpoint: pathlib.Path | None = None
        self.run_id = uuid.uuid4().hex

    def compile_learner(self) -> None:
        """The jitted update and critic evaluation of the current spec (compiled at their first call)."""
        self.update_fn = jax.jit(jax.vmap(functools.partial(update_block, self.spec), in_axes=(0, 0, None)))
        self.q_fn = jax.jit(jax.vmap(functools.partial(first_q, self.spec)))

    def note_support(self, source: str) -> None:
        """Print a derived categorical support once and keep it for the next log line."""
        v_min, v_max = self.config.v_min, self.config.v_max
        print(f"dpgkit: categorical support [{v_min:.6g}, {v_max:.6g}] {source} (saved with the config)")
        self.support_log = {"critic/v_min": v_min, "critic/v_max": v_max}

    def derive_support(self) -> None:
        """Fix [v_min, v_max] from the warm-up's rewards in the replay (categorical.warmup_support), before the
        first update compiles; the values go into the config, so checkpoints keep them."""
        rewards = np.concatenate(
            [self.replay.storage.reward[s, :size] for s, size in enumerate(self.replay.size)]
        )
        if not rewards.size or (self.config.gamma >= 1.0 and self.horizon is None):
            raise ValueError(
                "config.v_min and config.v_max are needed: no warm-up transition, or gamma 1 without a time limit, "
                "to derive the categorical support from"
            )
        v_min, v_max = warmup_support(rewards, self.config.gamma, self.config.n_step, self.horizon)
        self.config = self.config.replace(v_min=v_min, v_max=v_max)
        self.spec = learner_spec(self.config, self.action_dim)
        self.compile_learner()
        self.note_support(
            f"from the rewards of {rewards.size} warm-up transitions (widened by half its width)"
        )

    def refresh_acting_actor(self) -> None:
        """Copy the actor that acts (the online one, or the target one with act_with_target) to the host."""
        actor = self.state.target_actor if self.config.act_with_target else self.state.actor
        self.acting_actor = jax.device_put(actor, self.host)

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions in actor units for obs shaped (seeds, copies, obs_dim)."""
        return np.asarray(self.act_fn(self.acting_actor, np.asarray(obs, np.float32)))

    def behaviour_actions(self, obs: np.ndarray) -> np.ndarray:
        """Uniform random actions during warm-up, then the explorer's (action noise, parameter noise, NoisyNet)."""
        shape = (self.config.actors, self.action_dim)
        if self.steps < self.config.learning_starts:
            return np.stack([rng.uniform(-1.0, 1.0, shape) for rng in self.rngs]).astype(np.float32)
        return self.explorer.actions(self.acting_actor, np.asarray(obs, np.float32), self.rngs).astype(
            np.float32
        )

    def collect_step(self, stats: dict) -> None:
        """One step of every env copy; the n-step writers turn the steps into transitions for the replay.

        The last learner call's priorities are written back first, so that sampling, write-back and new
        transitions come in the same order whether or not a checkpoint was saved in between.
        """
        obs, reset = self.collector.observe()
        self.explorer.begin_episodes(reset)
        actions = self.behaviour_actions(obs)
        result = self.collector.step(actions)
        for name, value in (("observation", result.next_obs), ("reward", result.reward)):
            if not np.isfinite(value).all():
                self.check_losses(stats)
                raise NonFiniteError(self.stop_message(f"non-finite {name}", self.steps + 1))
        self.write_priorities()
        for seed, writer in enumerate(self.writers):
            transitions = writer.push(
                obs[seed],
                actions[seed],
                result.reward[seed],
                result.terminated[seed],
                result.truncated[seed],
                result.next_obs[seed],
            )
            if transitions:
                self.replay.add(seed, stack_transitions(transitions))
        for i, returns in enumerate(result.episode_returns):
            stats["returns"][i].extend(returns)
        self.steps += self.config.actors

    def learner_call(self) -> None:
        """Sample K batches per seed at once and dispatch K updates in one jitted call (not waited for).

        The acting policy is a host (CPU) copy of the actor, refreshed only by calls that change it (the values
        are otherwise the same), so after a call that does not the next env steps run while it computes.
        """
        if self.spec.atoms and self.spec.v_min is None:
            self.derive_support()
        k, b = self.config.gradient_steps, self.config.batch_size
        indices = self.replay.sample_indices(self.rngs, k * b)
        batch = self.replay.gather(indices)
        if isinstance(self.replay, PrioritizedReplay):
            beta = annealed_beta(self.config.priority_beta, self.steps, self.config.total_steps)
            batch = batch._replace(weight=self.replay.weights(indices, beta))
        batch = jax.tree_util.tree_map(lambda x: x.reshape((x.shape[0], k, b) + x.shape[2:]), batch)
        self.state, summary, priorities = self.update_fn(self.state, batch, np.int32(self.updates))
        if isinstance(self.replay, PrioritizedReplay):
            self.pending_priorities = (indices, priorities)
        if changes_acting_actor(self.config, self.updates, k):
            self.refresh_acting_actor()
        self.updates += k
        self.pending.append((self.steps, summary))

    def adapt_exploration(self) -> None:
        """Let the explorer adapt to the current actor on a uniform batch of replay states per seed."""
        indices = ReplayBuffer.sample_indices(self.replay, self.rngs, self.config.batch_size)
        states = self.replay.gather(indices).obs
        self.explorer.adapt(self.acting_actor, states, self.rngs)

    def write_priorities(self) -> None:
        """Give the transitions of the last learner call their new priorities (waits for that call); a non-finite
        one stops training before it reaches the sum tree."""
        if self.pending_priorities is not None:
            indices, priorities = self.pending_priorities
            priorities = np.asarray(priorities).reshape(indices.shape)
            if not np.isfinite(priorities).all():
                raise NonFiniteError(
                    self.stop_message("non-finite loss (TD error of a priority)", self.steps)
                )
            self.replay.update_priorities(indices, priorities)
            self.pending_priorities = None

    def check_losses(self, stats: dict) -> None:
        """Fetch the losses of the calls since the last check; stop at the first non-finite one."""
        for steps, summary in jax.device_get(self.pending):
            if not (
                np.isfinite(summary["critic_loss"]).all() and np.isfinite(summary["actor_loss_sum"]).all()
            ):
                self.pending.clear()
                raise NonFiniteError(self.stop_message("non-finite loss", steps))
            stats["critic_loss"] += summary["critic_loss"]
            stats["critic_calls"] += 1
            stats["actor_loss"] += summary["actor_loss_sum"]
            stats["actor_steps"] += summary["actor_steps"]
            if "support_outside" in summary:
                stats["support_outside"] += summary["support_outside"]
                stats["support_calls"] += 1
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

    def critic_estimates(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Q_1(s, a) of each seed's critic 1 (a categorical critic's mean) for obs, action shaped (seeds, N, ...)."""
        count = obs.shape[1]
        padded = [
            np.pad(np.asarray(x, np.float32), [(0, 0), (0, -count % VALUE_CHUNK)] + [(0, 0)] * (x.ndim - 2))
            for x in (obs, action)
        ]
        chunks = [
            np.asarray(self.q_fn(self.state.critic, *(x[:, i : i + VALUE_CHUNK] for x in padded)))
            for i in range(0, padded[0].shape[1], VALUE_CHUNK)
        ]
        return np.concatenate(chunks, axis=1)[:, :count]

    def value_error(self) -> dict[str, np.ndarray]:
        """Critic 1's Q(s_t, a_t) against the discounted return G_t that followed, per seed, on the last evaluation's
        states whose G_t is observed (evaluate.fully_observed); NaN, with one warning per run, where none is."""
        episodes = self.evaluator.recorded
        if self.spec.atoms and self.spec.v_min is None:
            return {}

        def per_seed(x):
            return np.swapaxes(x, 0, 1).reshape((self.config.seeds, -1) + x.shape[2:])

        steps = episodes.reward.shape[0]
        mask = per_seed(fully_observed(episodes.length, episodes.terminated, steps, self.config.gamma))
        returns = per_seed(discounted_returns_to_go(episodes.reward, self.config.gamma))
        if mask.any():
            return value_error(
                self.critic_estimates(per_seed(episodes.obs), per_seed(episodes.action)), returns, mask
            )
        if not self.warned_unobserved:
            self.warned_unobserved = True
            warnings.warn(
                "no evaluation state has an observed discounted return (episodes truncated with gamma^(steps "
                "left) > 0.01 everywhere): eval/q_estimate, eval/value_bias and the rest are NaN",
                stacklevel=2,
            )
        return value_error(np.zeros(mask.shape), returns, mask)

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
                    self.collect_step(stats)
                    vector_step = self.steps // config.actors
                    if self.steps >= config.learning_starts and vector_step % config.train_freq == 0:
                        self.learner_call()
                    if self.steps >= config.learning_starts and crossed(
                        before, self.steps, self.explorer.adapt_every
                    ):
                        self.adapt_exploration()
                    evaluate = crossed(before, self.steps, config.eval_every)
                    log = crossed(before, self.steps, config.log_every) or self.steps >= target
                    checkpoint = crossed(before, self.steps, config.checkpoint_every)
                    if evaluate or log or checkpoint:
                        self.check_losses(stats)
                    if evaluate:
                        self.last_eval = self.evaluate().mean(axis=1)
                        logger.log(self.steps, {"eval/return": self.last_eval} | self.value_error())
                    if log:
                        now = time.perf_counter()
                        sps = (self.steps - last_steps) / max(now - last_time, 1e-9)
                        values = summarize(stats, sps) | self.explorer.log_values(self.state.actor)
                        warn_outside_support(values)
                        logger.log(self.steps, values | self.support_log)
                        self.support_log = {}
                        stats, last_time, last_steps = new_stats(config.seeds), now, self.steps
                    if checkpoint:
                        self.save(self.run_dir)
                    progress.update(self.steps, self.last_eval)
        finally:
            logger.close()

    def save(self, path) -> pathlib.Path:
        """Write an atomic, verified checkpoint of everything needed to resume exactly."""
        self.write_priorities()
        arrays = {
            "learner": flatten_tree(self.state),
            "replay": self.replay.state(),
            "explore": self.explorer.state(),
        }
        meta = {
            "algo": self.algo,
            "run_id": self.run_id,
            "version": __version__,
            "config": dataclasses.asdict(self.config),
            "steps": self.steps,
            "updates": self.updates,
            "host_rng": [rng.bit_generator.state for rng in self.rngs],
            "collector": self.collector.state(),
            "last_eval": self.last_eval.tolist(),
        }
        self.last_checkpoint = save_checkpoint(path, self.steps, arrays, meta)
        return self.last_checkpoint

    def restore(self, arrays: dict, meta: dict) -> None:
        """Load the state written by save()."""
        self.state = jax.tree_util.tree_map(jnp.asarray, unflatten_tree(self.state, arrays["learner"]))
        self.replay.load_state(arrays["replay"])
        self.explorer.load_state(arrays["explore"])
        for rng, state in zip(self.rngs, meta["host_rng"], strict=True):
            rng.bit_generator.state = state
        self.collector.load_state(meta["collector"])
        self.acting_actor = jax.device_put(self.state.actor, self.host)
        self.steps, self.updates = meta["steps"], meta["updates"]
        self.last_eval = np.asarray(meta["last_eval"], np.float64)
        self.run_id = meta.get("run_id", self.run_id)

    def close(self) -> None:
        """Close every environment."""
        self.collector.close()
        if self.evaluator is not None:
            self.evaluator.close()


def new_stats(seeds: int) -> dict:
    """Empty accumulators for one log interval."""
    return {
        "returns": [[] for _ in range(seeds)],
        "critic_loss": np.zeros(seeds),
        "critic_calls": 0,
        "actor_loss": np.zeros(seeds),
        "actor_steps": np.zeros(seeds),
        "support_outside": np.zeros(seeds),
        "support_calls": 0,
    }


def summarize(stats: dict, sps: float) -> dict:
    """Log values of one interval (NaN where nothing happened, which the logger skips)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "charts/episodic_return": np.array([np.mean(r) if r else np.nan for r in stats["returns"]]),
            "charts/SPS": sps,
            "losses/critic": stats["critic_loss"] / stats["critic_calls"]
            if stats["critic_calls"]
            else np.nan,
            "losses/actor": stats["actor_loss"] / stats["actor_steps"],
            "losses/support_outside": stats["support_outside"] / stats["support_calls"]
            if stats["support_calls"]
            else np.nan,
        }


def warn_outside_support(values: dict) -> None:
    """Warn when a large share of the categorical target's mass fell outside the support in the interval."""
    outside = np.nanmax(np.append(values["losses/support_outside"], 0.0))
    if outside > SUPPORT_WARNING:
        warnings.warn(
            f"{outside:.0%} of the categorical target's mass fell outside [v_min, v_max] (losses/support_outside):"
            " widen config.v_min / config.v_max",
            stacklevel=2,
        )


def config_from_meta(config_class: type[Config], meta: dict) -> Config:
    """Rebuild the config saved in a checkpoint."""
    values = dict(meta["config"])
    for name in ("hidden", "actor_hidden", "critic_hidden"):
        values[name] = None if values.get(name) is None else tuple(values[name])
    return config_class(**values)
