"""Probe environments for non-flat observations: pixels, (nested) Dicts and a 2-D Box; pure numpy and fast.

PixelDot: a hidden position p in [-1, 1]^2, uniform at reset, shown only as one bright pixel; an action a in
[-1, 1]^2 moves it, p <- clip(p + 0.1 a, -1, 1), and the reward is -||p|| after the move; truncated at 50 steps.
The optimal policy is a = clip(-10 p, -1, 1) (straight to the centre, stopping on it).
DictProbe and MatrixProbe: one-step episodes, reward -(u - target(obs))^2, so the best action is the target.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import gymnasium as gym
import numpy as np


def dot_pixel(position: np.ndarray, size: int) -> tuple[int, int]:
    """(row, column) of position in [-1, 1]^2 on a size x size grid: column from p[0], row from p[1]."""
    col, row = np.rint((np.asarray(position) + 1.0) * 0.5 * (size - 1)).astype(int)
    return int(row), int(col)


def dot_image(position: np.ndarray, size: int, channels: int) -> np.ndarray:
    """A black (size, size, channels) uint8 image with the pixel of position at 255."""
    image = np.zeros((size, size, channels), np.uint8)
    image[dot_pixel(position, size)] = 255
    return image


class PixelDotEnv(gym.Env):
    """A dot to steer to the centre of a uint8 image (size, size, channels); the image is all the agent sees."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, size: int = 16, channels: int = 1, step_size: float = 0.1):
        if size < 2 or channels not in (1, 3) or not step_size > 0:
            raise ValueError(
                f"PixelDotEnv: need size >= 2, channels 1 or 3 and step_size > 0, got {size}, {channels}, "
                f"{step_size}"
            )
        self.size, self.channels, self.step_size = size, channels, step_size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, channels), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.position = np.zeros(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1.0, 1.0, 2)
        return dot_image(self.position, self.size, self.channels), {}

    def step(self, action):
        move = self.step_size * np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        self.position = np.clip(self.position + move, -1.0, 1.0)
        reward = -float(np.linalg.norm(self.position))
        return dot_image(self.position, self.size, self.channels), reward, False, False, {}


def dict_target(a: np.ndarray, b: np.ndarray) -> float:
    """clip(a[0] b[0] + (a[1] + b[1]) / 2, -1, 1): the product term needs both inputs."""
    return float(np.clip(a[0] * b[0] + 0.5 * (a[1] + b[1]), -1.0, 1.0))


def matrix_target(matrix: np.ndarray) -> float:
    """(M[0, 0] + M[2, 3]) / 2, two opposite corners of the (3, 4) observation."""
    return float(0.5 * (matrix[0, 0] + matrix[2, 3]))


class _OneStepProbe(gym.Env):
    """One step: a uniform observation, action u in Box(-1, 1, (1,)), reward -(u - target)^2, terminated."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self):
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.obs = None
        self.target = 0.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.obs, self.target = self._draw()
        return self.obs, {}

    def step(self, action):
        u = float(np.clip(np.asarray(action, np.float64), -1.0, 1.0)[0])
        return copy.deepcopy(self.obs), -((u - self.target) ** 2), True, False, {}

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 sample of U[-1, 1]^shape from the env's generator."""
        return self.np_random.uniform(-1.0, 1.0, shape).astype(np.float32)


class DictProbeEnv(_OneStepProbe):
    """Dict observation {"a": Box(-1, 1, (2,)), "b": Box(-1, 1, (3,))}; target dict_target(a, b).

    nested=True puts b one level down: {"a": ..., "outer": {"b": ...}}.
    """

    def __init__(self, nested: bool = False):
        super().__init__()
        self.nested = nested
        a, b = gym.spaces.Box(-1.0, 1.0, (2,), np.float32), gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {"a": a, "outer": gym.spaces.Dict({"b": b})} if nested else {"a": a, "b": b}
        )

    def _draw(self):
        """A fresh (observation, target)."""
        a, b = self.uniform((2,)), self.uniform((3,))
        obs = {"a": a, "outer": {"b": b}} if self.nested else {"a": a, "b": b}
        return obs, dict_target(a, b)


class MatrixProbeEnv(_OneStepProbe):
    """A (3, 4) float32 Box observation M, neither an image nor flat; target matrix_target(M)."""

    def __init__(self):
        super().__init__()
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3, 4), np.float32)

    def _draw(self):
        """A fresh (observation, target)."""
        matrix = self.uniform((3, 4))
        return matrix, matrix_target(matrix)


PROBES = {
    "dpgkit/PixelDot-v0": ("PixelDotEnv", {}, 50),
    "dpgkit/DictProbe-v0": ("DictProbeEnv", {}, None),
    "dpgkit/DictProbeNested-v0": ("DictProbeEnv", {"nested": True}, None),
    "dpgkit/MatrixProbe-v0": ("MatrixProbeEnv", {}, None),
}
"""The registered probes: id -> (class in this module, kwargs, max_episode_steps)."""


def register_probes() -> None:
    """Register the probes with Gymnasium (idempotent)."""
    for env_id, (name, kwargs, max_steps) in PROBES.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=f"dpgkit.envs.probes:{name}",
                kwargs=kwargs,
                max_episode_steps=max_steps,
            )
