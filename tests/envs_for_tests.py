"""Small Gymnasium environments used by the tests."""

from __future__ import annotations

import os
import signal
from typing import ClassVar

import gymnasium as gym
import numpy as np


class _ProbeBase(gym.Env):
    """A 1-D float Box observation and one action in Box(-1, 1, (1,))."""

    metadata: ClassVar[dict] = {"render_modes": []}
    obs_dim = 1

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (self.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.zeros(self.obs_dim, np.float32)


class ProbeOneStep(_ProbeBase):
    """Random observation, reward 1 whatever the action, terminates after one step: Q(s, a) = 1."""

    def _obs(self):
        self.current = self.np_random.uniform(-1.0, 1.0, (1,)).astype(np.float32)
        return self.current

    def step(self, action):
        return self.current.copy(), 1.0, True, False, {}


class ProbeTwoStep(_ProbeBase):
    """Obs [1, 0] at step 0 and [0, 1] at step 1; reward 0 then 1, terminates after two steps.

    Q(first obs, a) = gamma and Q(second obs, a) = 1 for every a.
    """

    obs_dim = 2
    FIRST = np.array([1.0, 0.0], np.float32)
    SECOND = np.array([0.0, 1.0], np.float32)

    def _obs(self):
        return self.FIRST.copy() if self.t == 0 else self.SECOND.copy()

    def step(self, action):
        self.t += 1
        if self.t == 1:
            return self._obs(), 0.0, False, False, {}
        return self.SECOND.copy(), 1.0, True, False, {}


class ProbeIdentityAction(_ProbeBase):
    """Obs is a random target in [-0.8, 0.8]; reward -(a - target)^2; one step. The best action is the target."""

    def _obs(self):
        self.target = self.np_random.uniform(-0.8, 0.8, (1,)).astype(np.float32)
        return self.target.copy()

    def step(self, action):
        reward = -float((np.asarray(action, np.float64)[0] - self.target[0]) ** 2)
        return self.target.copy(), reward, True, False, {}


class ProbeFaulty(_ProbeBase):
    """Pendulum-like dummy that misbehaves on a chosen (1-based) global step.

    fault: "nan_obs" (NaN observation), "nan_reward" (NaN reward), "huge_reward" (reward 1e38 from
    fault_step on, which makes the squared TD error overflow to inf), "raise" (the step raises
    RuntimeError), or "SIGINT" / "SIGTERM" (the step sends that signal to this process). Episodes last
    `episode_length` steps.
    """

    obs_dim = 3

    def __init__(self, fault: str = "nan_obs", fault_step: int = 5, episode_length: int = 50):
        super().__init__()
        self.fault, self.fault_step, self.episode_length = fault, fault_step, episode_length
        self.global_steps = 0

    def _obs(self):
        return self.np_random.uniform(-1.0, 1.0, (self.obs_dim,)).astype(np.float32)

    def step(self, action):
        self.t += 1
        self.global_steps += 1
        obs, reward = self._obs(), -float(np.square(action).sum())
        if self.global_steps == self.fault_step and self.fault == "nan_obs":
            obs[1] = np.nan
        if self.global_steps == self.fault_step and self.fault == "nan_reward":
            reward = float("nan")
        if self.global_steps >= self.fault_step and self.fault == "huge_reward":
            reward = 1e38
        if self.global_steps == self.fault_step and self.fault == "raise":
            raise RuntimeError("simulated physics failure")
        if self.global_steps == self.fault_step and self.fault in ("SIGINT", "SIGTERM"):
            os.kill(os.getpid(), getattr(signal, self.fault))
        return obs, reward, False, self.t >= self.episode_length, {}


class ProbeInfiniteActions(_ProbeBase):
    """Unbounded Box actions."""

    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)

    def step(self, action):
        return self._obs(), 0.0, True, False, {}


class ProbeImageObs(_ProbeBase):
    """(8, 8, 3) uint8 image observations."""

    def __init__(self):
        super().__init__()
        self.observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)

    def _obs(self):
        return np.zeros((8, 8, 3), np.uint8)

    def step(self, action):
        return self._obs(), 0.0, True, False, {}
