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
from collections.abc import Callable

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from dpgkit.algos.base import Agent, register
from dpgkit.checkpoint import flatten_tree, unflatten_tree
from dpgkit.collect import FrameEncoder
from dpgkit.config import DPGConfig, validate
from dpgkit.driver import NonFiniteError, stack_trees
from dpgkit.explore import Explorer
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
    if config.n_step != 1:
        raise ValueError(
            f"config.n_step={config.n_step} is not used by DPG: it learns from each transition as it comes"
        )
    if config.collect != "local":
        raise ValueError(
            f"config.collect={config.collect!r} does not apply to DPG: COPDAC-Q learns online from each transition "
            "as its own copies collect it, with no replay for Ray workers to fill; use DDPG, TD3 or D4PG for "
            "collect 'ray'"
        )
    for name in ("augment_shift", "mirror"):
        if getattr(config, name):
            raise ValueError(
                f"config.{name}={getattr(config, name)!r} is not used by DPG: it augments batches drawn from a "
                "replay, and DPG learns from each transition as it comes"
            )
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


class OnlineExplorer(Explorer):
    """DPG's behaviour policy: mu(s) + Gaussian noise, or uniform, from each seed's own JAX key."""

    def __init__(self, explore_fn: Callable, keys: jax.Array):
        self.explore_fn, self.keys = explore_fn, keys

    def actions(self, actor_params, obs, rngs):
        """Behaviour actions of every copy under the learner state `actor_params`."""
        actions, self.keys = self.explore_fn(actor_params, obs, self.keys)
        return np.asarray(actions)

    def state(self):
        """The exploration keys."""
        return {"keys": np.asarray(self.keys)}

    def load_state(self, state):
        """Restore the exploration keys."""
        self.keys = jnp.asarray(state["keys"])


class OnlineDriver:
    """COPDAC-Q or its neural form, updated from the transitions just collected (no replay, no warm-up)."""

    newest_only = ()
    learning_from = 0
    replay_size = 0
    """Transitions stored per seed: none, it learns from each as it comes."""
    check = staticmethod(check_dpg_config)

    def __init__(self, config: DPGConfig, probe, agent_seeds, rngs, stop_message):
        self.config, self.stop_message = config, stop_message
        self.support_log: dict = {}
        space = probe.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise TypeError(
                f"the observation space is {space}: DPG's COPDAC-Q features take a flat 1-D Box observation; "
                "flatten it (gymnasium.wrappers.FlattenObservation), or use DDPG, TD3 or D4PG, which take images "
                "and Dict observations"
            )
        self.spec = online_spec(config, probe.action_space.shape[0])
        seed_keys = [jax.random.PRNGKey(s) for s in agent_seeds]
        low, high = probe.observation_space.low, probe.observation_space.high
        self.state = stack_trees(
            [init_online(self.spec, jax.random.fold_in(k, 0), low, high) for k in seed_keys]
        )
        self.explore_keys = jnp.stack([jax.random.fold_in(k, 1) for k in seed_keys])
        self.act_fn, self.explore_fn, self.update_fn = compiled(self.spec, config.average_theta)
        self.pending: list = []
        self.batch: tuple | None = None
        self.updates = 0

    def explorer(self) -> OnlineExplorer:
        """The behaviour policy around the learner state."""
        return OnlineExplorer(self.explore_fn, self.explore_keys)

    def frame_encoder(self) -> FrameEncoder:
        """No framed leaves: DPG's observations are flat vectors."""
        return FrameEncoder(self.config.actors, {}, {})

    @property
    def actor_params(self):
        """The learner state (the policy is part of it)."""
        return self.state

    def acting(self) -> tuple:
        """(learner state, version) to act with: the policy of the latest update."""
        return self.state, self.updates

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions in actor units for obs shaped (seeds, copies, obs_dim)."""
        return np.asarray(self.act_fn(self.state, np.asarray(obs, np.float32)))

    def learning(self, steps: int) -> bool:
        """Always: DPG learns from the first transition."""
        return True

    def support_known(self) -> bool:
        """False: COPDAC-Q's critic is an advantage, so the value diagnostic does not apply."""
        return False

    def calls_due(self, steps: int, collected) -> int:
        """One update after every step that brought transitions (COPDAC-Q learns from each as it comes)."""
        return int(self.batch is not None)

    def store(self, collected, steps: int) -> None:
        """Hold the step's transitions (seeds, copies) for the update; theta is averaged over the last half."""
        self.batch = (
            Transition(*(np.stack(x) for x in zip(*collected.transitions, strict=True))),
            steps >= self.config.total_steps // 2,
        )

    def dispatch(self, steps: int) -> None:
        """The online updates of every seed from its copies' transitions, one after the other."""
        transitions, average = self.batch
        self.state, delta = self.update_fn(self.state, transitions, average)
        self.pending.append((steps, delta))
        self.updates += 1
        self.batch = None

    def finish(self, steps: int) -> None:
        """Nothing to write back."""

    def check_losses(self, stats: dict) -> None:
        """Add the TD errors since the last check to stats as losses/critic = delta^2 / 2; stop on a non-finite one."""
        for steps, delta in jax.device_get(self.pending):
            if not np.isfinite(delta).all():
                self.pending.clear()
                raise NonFiniteError(self.stop_message("non-finite TD error", steps))
            stats["critic_loss"] += 0.5 * np.mean(np.square(delta), axis=-1)
            stats["critic_calls"] += 1
        self.pending.clear()

    def sample_states(self):
        """DPG's explorer never adapts."""
        raise NotImplementedError

    def checkpoint_contents(self, steps: int) -> tuple[dict, dict]:
        """The learner state and the update count (no replay)."""
        return {"learner": flatten_tree(self.state)}, {"updates": self.updates}

    def restore(self, arrays: dict, meta: dict, steps: int) -> None:
        """Load what checkpoint_contents wrote (format 1 has no update count: one per step of each copy)."""
        self.state = jax.tree_util.tree_map(jnp.asarray, unflatten_tree(self.state, arrays["learner"]))
        self.updates = meta.get("updates", steps // self.config.actors)


@register
class DPG(Agent):
    """Deterministic policy gradient: COPDAC-Q over fixed features, or the online MLP actor-critic."""

    name = "dpg"
    config_class = DPGConfig
    driver_class = OnlineDriver
    warms_up = False

    def linear_gain(self, agent: int = 0) -> np.ndarray:
        """K of the linear actor in env units, u = -K s (features linear, symmetric bounds, unbounded obs)."""
        if self.config.features != "linear":
            raise ValueError(f"linear_gain needs features='linear', this agent has {self.config.features!r}")
        state = jax.tree_util.tree_map(lambda x: x[agent], self.trainer.state)
        scaler = self.trainer.env_actor.scaler
        if not (np.allclose(scaler.low, -scaler.high) and np.allclose(state.features.center, 0.0)):
            raise ValueError("linear_gain needs symmetric action bounds and observations centred at 0")
        theta = state.theta_avg if self.config.average_theta and state.averaged > 0 else state.theta
        return linear_gain(theta, state.features.scale, scaler.high)
