"""In-process collection from a Gymnasium vector env of seeds x actors copies, with lazy per-copy resets."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import gymnasium as gym
import jax
import numpy as np
from gymnasium.vector import AutoresetMode

from dpgkit.envs import ActionScaler, as_network_dtypes


class StepResult(NamedTuple):
    """One vector step, arrays shaped (seeds, actors, ...); next_obs is the true last obs at episode ends."""

    next_obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_returns: list[list[float]]
    episode_lengths: list[list[int]]


def copy_seed(agent_seed: int, actor: int) -> int:
    """The reset seed of one env copy, derived from its agent's seed alone."""
    return int(np.random.SeedSequence([agent_seed, actor]).generate_state(1)[0])


class LocalCollector:
    """Steps seeds x actors env copies in lockstep; a finished copy is reset at the start of the next step.

    Autoreset is disabled in the vector env: every step of every copy is a real transition (the terminal
    observation is the step's own observation), so seeds and actors stay in lockstep and no reset step is
    ever stored. A copy that ended is reset lazily, just before the next step, from its own RNG; a
    checkpoint taken between the two holds the RNG state before that reset, so resume is exact.
    """

    def __init__(self, make_env: Callable[[], gym.Env], agent_seeds: list[int], actors: int):
        self.agent_seeds, self.actors = list(agent_seeds), actors
        copies = len(agent_seeds) * actors
        self.envs = gym.vector.SyncVectorEnv([make_env] * copies, autoreset_mode=AutoresetMode.DISABLED)
        self.scaler = ActionScaler(self.envs.single_action_space)
        self.shape = (len(agent_seeds), actors)
        seeds = [copy_seed(s, a) for s in agent_seeds for a in range(actors)]
        obs, _ = self.envs.reset(seed=seeds)
        self.obs = as_network_dtypes(obs)
        self.needs_reset = np.zeros(copies, bool)
        self.running_return = np.zeros(copies)
        self.running_length = np.zeros(copies, np.int64)

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """Reset the copies that ended; return obs (seeds, actors, ...) and which copies were just reset."""
        reset = self.needs_reset.copy()
        if reset.any():
            obs, _ = self.envs.reset(options={"reset_mask": reset})
            self.obs = jax.tree_util.tree_map(
                lambda new, old: np.where(reset.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
                as_network_dtypes(obs),
                self.obs,
            )
            self.needs_reset[:] = False
        return self.reshape(self.obs), self.reshape(reset)

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every copy with actions in actor units [-1, 1], shaped (seeds, actors, action_dim)."""
        flat = actions.reshape((-1,) + actions.shape[2:])
        obs, reward, terminated, truncated, _ = self.envs.step(self.scaler.to_env(flat))
        self.obs = obs = as_network_dtypes(obs)
        done = terminated | truncated
        self.running_return += reward
        self.running_length += 1
        returns = [[] for _ in self.agent_seeds]
        lengths = [[] for _ in self.agent_seeds]
        for i in np.flatnonzero(done):
            returns[i // self.actors].append(float(self.running_return[i]))
            lengths[i // self.actors].append(int(self.running_length[i]))
        self.running_return[done] = 0.0
        self.running_length[done] = 0
        self.needs_reset |= done
        return StepResult(
            self.reshape(obs),
            self.reshape(reward),
            self.reshape(terminated),
            self.reshape(truncated),
            returns,
            lengths,
        )

    def reshape(self, x):
        """(copies, ...) -> (seeds, actors, ...), for every leaf of a pytree."""
        return jax.tree_util.tree_map(lambda leaf: leaf.reshape(self.shape + leaf.shape[1:]), x)

    def state(self) -> dict:
        """Each copy's RNG state (JSON-serializable), to checkpoint."""
        return {"env_rng": [env.unwrapped.np_random.bit_generator.state for env in self.envs.envs]}

    def load_state(self, state: dict) -> None:
        """Restore each copy's RNG and restart every episode from it (an interrupted episode starts over); a Ray
        run's state holds no RNGs, and the copies keep their own seeds."""
        if "env_rng" in state:
            for env, rng_state in zip(self.envs.envs, state["env_rng"], strict=True):
                env.unwrapped.np_random.bit_generator.state = rng_state
        self.needs_reset[:] = True
        self.running_return[:] = 0.0
        self.running_length[:] = 0

    def close(self) -> None:
        """Close the env copies."""
        self.envs.close()
