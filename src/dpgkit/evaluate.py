"""Deterministic evaluation on separate env copies with fixed evaluation seeds."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from dpgkit.envs import ActionScaler

EVAL_SEED = 1_000_003
"""Episode e of every evaluation starts from reset(seed=EVAL_SEED + e), whatever the training seed."""


class Evaluator:
    """Runs `episodes` episodes per agent in lockstep and returns their undiscounted returns."""

    def __init__(self, make_env: Callable[[], gym.Env], agents: int, episodes: int):
        self.agents, self.episodes = agents, episodes
        self.envs = [make_env() for _ in range(agents * episodes)]
        self.scaler = ActionScaler(self.envs[0].action_space)

    def run(self, policy: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Returns of shape (agents, episodes); policy maps obs (agents, episodes, ...) to actor-unit actions."""
        obs = np.stack([env.reset(seed=EVAL_SEED + i % self.episodes)[0] for i, env in enumerate(self.envs)])
        returns = np.zeros(len(self.envs))
        active = np.ones(len(self.envs), bool)
        while active.any():
            actions = np.asarray(policy(obs.reshape((self.agents, self.episodes) + obs.shape[1:])))
            actions = self.scaler.to_env(actions.reshape((len(self.envs),) + actions.shape[2:]))
            for i in np.flatnonzero(active):
                obs[i], reward, terminated, truncated, _ = self.envs[i].step(actions[i])
                returns[i] += reward
                active[i] = not (terminated or truncated)
        return returns.reshape(self.agents, self.episodes)

    def close(self) -> None:
        """Close the env copies."""
        for env in self.envs:
            env.close()
