"""Deterministic evaluation on separate env copies with fixed evaluation seeds, and writing videos."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import NamedTuple

import gymnasium as gym
import jax
import numpy as np

from dpgkit.envs import ActionScaler, as_network_dtypes
from dpgkit.trees import stack_leaves, write_entry

EVAL_SEED = 1_000_003
"""Episode e of every evaluation starts from reset(seed=EVAL_SEED + e), whatever the training seed."""


TAIL = 0.01
"""A state's discounted return counts as observed when the cut-off tail weighs gamma^(steps left) <= TAIL."""


class Episodes(NamedTuple):
    """The steps of one evaluation, time-major, padded after each episode's end with zeros.

    obs (T, envs, ...), action (T, envs, action_dim) in actor units, reward (T, envs); length and terminated
    (envs,); env i is episode i % episodes of agent i // episodes.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    length: np.ndarray
    terminated: np.ndarray


def discounted_returns_to_go(reward: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = sum_{k >= 0} gamma^k r_{t+k} along axis 0 (the rewards after an episode's end being 0)."""
    returns = np.zeros(reward.shape, np.float64)
    following = np.zeros(reward.shape[1:], np.float64)
    for t in reversed(range(reward.shape[0])):
        following = reward[t] + gamma * following
        returns[t] = following
    return returns


def fully_observed(length: np.ndarray, terminated: np.ndarray, steps: int, gamma: float) -> np.ndarray:
    """Mask (steps, envs) of the states s_t, t < T, whose return G_t is known: the episode terminated, or the tail
    cut off by truncation weighs gamma^(T - t) <= TAIL (T the episode's length; at gamma 0.99, T = 1000: t <= 541).
    """
    t = np.arange(steps)[:, None]
    observed = terminated[None] | (float(gamma) ** (length[None] - t) <= TAIL)
    return (t < length[None]) & observed


def value_error(q: np.ndarray, returns: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per agent (axis 0; the states on the others), over the masked states: mean Q, mean G, bias = mean Q - mean G,
    and bias / mean |G|; NaN for an agent without masked states."""
    axes = tuple(range(1, q.ndim))
    count = mask.sum(axis=axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        q_mean = np.where(mask, q, 0.0).sum(axis=axes) / count
        return_mean = np.where(mask, returns, 0.0).sum(axis=axes) / count
        scale = np.where(mask, np.abs(returns), 0.0).sum(axis=axes) / count
        bias = q_mean - return_mean
        return {
            "eval/q_estimate": q_mean,
            "eval/discounted_return": return_mean,
            "eval/value_bias": bias,
            "eval/value_bias_relative": bias / scale,
        }


class Evaluator:
    """Runs `episodes` episodes per agent in lockstep and returns their undiscounted returns; the steps of the last
    run stay in `recorded` (Episodes)."""

    def __init__(self, make_env: Callable[[], gym.Env], agents: int, episodes: int):
        self.agents, self.episodes = agents, episodes
        self.envs = [make_env() for _ in range(agents * episodes)]
        self.scaler = ActionScaler(self.envs[0].action_space)
        self.recorded: Episodes | None = None

    def run(self, policy: Callable) -> np.ndarray:
        """Returns of shape (agents, episodes); policy maps obs (a pytree, (agents, episodes, ...)) to actor-unit
        actions."""
        first = [
            as_network_dtypes(env.reset(seed=EVAL_SEED + i % self.episodes)[0])
            for i, env in enumerate(self.envs)
        ]
        obs = stack_leaves(first)
        count = len(self.envs)
        active = np.ones(count, bool)
        returns, length, ended = np.zeros(count), np.zeros(count, np.int64), np.zeros(count, bool)
        steps: dict[str, list] = {"obs": [], "action": [], "reward": []}
        while active.any():
            grouped = jax.tree_util.tree_map(
                lambda x: x.reshape((self.agents, self.episodes) + x.shape[1:]), obs
            )
            actions = np.asarray(policy(grouped))
            actions = actions.reshape((count,) + actions.shape[2:])
            env_actions = self.scaler.to_env(actions)
            rewards = np.zeros(count)
            steps["obs"].append(
                jax.tree_util.tree_map(
                    lambda x: np.where(active.reshape((-1,) + (1,) * (x.ndim - 1)), x, 0), obs
                )
            )
            steps["action"].append(np.where(active[:, None], actions, 0.0))
            for i in np.flatnonzero(active):
                next_obs, rewards[i], terminated, truncated, _ = self.envs[i].step(env_actions[i])
                write_entry(obs, i, as_network_dtypes(next_obs))
                returns[i] += rewards[i]
                length[i] += 1
                ended[i] = terminated
                active[i] = not (terminated or truncated)
            steps["reward"].append(rewards)
        self.recorded = Episodes(
            obs=stack_leaves(steps["obs"]),
            action=np.stack(steps["action"]),
            reward=np.stack(steps["reward"]),
            length=length,
            terminated=ended,
        )
        return returns.reshape(self.agents, self.episodes)

    def close(self) -> None:
        """Close the env copies."""
        for env in self.envs:
            env.close()


def write_video(frames: list, out: str | pathlib.Path, fps: int) -> pathlib.Path:
    """Write rendered frames to an mp4 at out (its folder made if needed)."""
    import imageio.v2 as imageio

    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(out, frames, fps=fps)
    return out
