"""Observation wrappers: a flat Box split into a Dict of named parts, and rendered pixels as the observation.

Headless MuJoCo rendering needs an OpenGL backend chosen before mujoco (and PyOpenGL) is imported: call
ensure_headless_rendering() first, as make_pixel_env does.
"""

from __future__ import annotations

import ctypes.util
import itertools
import os
from collections.abc import MutableMapping

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from gymnasium.wrappers import FrameStackObservation

from dpgkit.envs.spaces import check_env_id, split_env_id

BIPEDAL_PARTS = {"proprioception": (0, 14), "terrain": (14, 24)}
"""BipedalWalker-v3 observation: 0-13 hull angle, angular velocity, x/y velocity, hip and knee angles and speeds
and the two leg contacts; 14-23 the 10 lidar range fractions. The 10 lidar rays are a weak stand-in for the
terrain height field the parkour agents of Heess et al. (2017) saw."""

SPLITS = {"BipedalWalker-v3": BIPEDAL_PARTS, "BipedalWalkerHardcore-v3": BIPEDAL_PARTS}
"""The ready splits: env id -> {part name: (start, stop)}."""

PIXELS_KEY = "pixels"


def check_parts(parts: dict[str, tuple[int, int]], size: int) -> None:
    """Raise ValueError unless parts are non-empty, disjoint [start, stop) ranges within range(size)."""
    if not parts:
        raise ValueError("SplitObservation: parts is empty; give at least one name: (start, stop)")
    for name, (start, stop) in parts.items():
        if not 0 <= start < stop <= size:
            raise ValueError(
                f"SplitObservation: part {name!r} = [{start}, {stop}) is empty or outside the Box's "
                f"indices [0, {size})"
            )
    ranges = sorted((start, stop, name) for name, (start, stop) in parts.items())
    for (_, stop, name), (start, _, next_name) in itertools.pairwise(ranges):
        if start < stop:
            raise ValueError(f"SplitObservation: parts {name!r} and {next_name!r} overlap (at index {start})")


class SplitObservation(gym.ObservationWrapper):
    """A flat 1-D Box observation as a Dict of named parts [start, stop), bounds and dtype sliced from the Box.

    Indices in no part are dropped.
    """

    def __init__(self, env: gym.Env, parts: dict[str, tuple[int, int]]):
        super().__init__(env)
        box = env.observation_space
        if not isinstance(box, gym.spaces.Box) or len(box.shape) != 1:
            raise ValueError(f"SplitObservation needs a flat 1-D Box observation space, got {box}")
        check_parts(parts, box.shape[0])
        self.parts = {name: (int(start), int(stop)) for name, (start, stop) in parts.items()}
        self.observation_space = gym.spaces.Dict(
            {
                name: gym.spaces.Box(box.low[start:stop], box.high[start:stop], dtype=box.dtype)
                for name, (start, stop) in self.parts.items()
            }
        )

    def observation(self, observation):
        """{name: observation[start:stop]} (copies)."""
        return {name: observation[start:stop].copy() for name, (start, stop) in self.parts.items()}


def split_env(env_id: str, **kwargs) -> gym.Env:
    """gym.make(env_id, **kwargs) with its ready split from SPLITS, so it has a Dict observation."""
    if env_id not in SPLITS:
        raise ValueError(f"no ready observation split for {env_id!r}; the ready ones: {', '.join(SPLITS)}")
    return SplitObservation(gym.make(env_id, **kwargs), SPLITS[env_id])


def headless_rendering(environ: MutableMapping[str, str], has_egl: bool) -> None:
    """Choose MuJoCo's EGL backend when there is no display, MUJOCO_GL is not set and libEGL is installed."""
    no_display = not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY")
    if no_display and "MUJOCO_GL" not in environ and has_egl:
        environ["MUJOCO_GL"] = "egl"


def ensure_headless_rendering() -> None:
    """Set MUJOCO_GL=egl when there is no display, MUJOCO_GL is unset and libEGL is installed; call it first."""
    headless_rendering(os.environ, ctypes.util.find_library("EGL") is not None)


def area_downscale(image: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """The mean of each factors[0] x factors[1] block of an (H, W, C) uint8 image, rounded."""
    rows, cols = image.shape[0] // factors[0], image.shape[1] // factors[1]
    blocks = image.reshape(rows, factors[0], cols, factors[1], image.shape[2]).mean(axis=(1, 3))
    return np.rint(blocks).astype(np.uint8)


def bilinear_weights(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower index, upper index, upper weight) sampling source pixels at target pixel centres, edges clamped."""
    centres = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0.0, source - 1)
    lower = np.floor(centres).astype(int)
    return lower, np.minimum(lower + 1, source - 1), centres - lower


def bilinear_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W, C) uint8 image resized to size = (height, width) by bilinear interpolation, rounded."""
    top, bottom, row_weight = bilinear_weights(image.shape[0], size[0])
    left, right, col_weight = bilinear_weights(image.shape[1], size[1])
    pixels = image.astype(np.float64)
    rows = pixels[top] * (1.0 - row_weight[:, None, None]) + pixels[bottom] * row_weight[:, None, None]
    resized = rows[:, left] * (1.0 - col_weight[None, :, None]) + rows[:, right] * col_weight[None, :, None]
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """image (H, W, C) at size = (height, width): area average when shrinking by integer factors, else bilinear."""
    height, width = image.shape[:2]
    if (height, width) == tuple(size):
        return image
    if height % size[0] == 0 and width % size[1] == 0:
        return area_downscale(image, (height // size[0], width // size[1]))
    return bilinear_resize(image, size)


def rgb_frame(frame) -> np.ndarray:
    """frame as an (H, W, 3) uint8 array; ValueError for anything else render() returned."""
    if not (
        isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    ):
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else repr(frame)
        raise ValueError(f"PixelObservation: render() must return an (H, W, 3) uint8 image, got {got}")
    return frame


class PixelObservation(gym.ObservationWrapper):
    """env.render() (render_mode "rgb_array") resized to size = (height, width) as a uint8 Box (H, W, 3).

    With keep_state a name, the observation is the Dict {"pixels": image, keep_state: the env's observation}.
    """

    def __init__(self, env: gym.Env, size: tuple[int, int] = (64, 64), keep_state: str | None = None):
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"PixelObservation needs an env made with render_mode='rgb_array', got {env.render_mode!r}"
            )
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"PixelObservation: size must be (height, width) >= 1, got {size}")
        if keep_state == PIXELS_KEY:
            raise ValueError(f"PixelObservation: keep_state must not be {PIXELS_KEY!r}, the image's key")
        self.size = (int(size[0]), int(size[1]))
        self.keep_state = keep_state
        pixels = gym.spaces.Box(0, 255, (*self.size, 3), np.uint8)
        self.observation_space = (
            pixels
            if keep_state is None
            else gym.spaces.Dict({PIXELS_KEY: pixels, keep_state: env.observation_space})
        )

    def observation(self, observation):
        """The resized render, with the env's observation under keep_state if set."""
        image = resize_image(rgb_frame(self.env.render()), self.size)
        return image if self.keep_state is None else {PIXELS_KEY: image, self.keep_state: observation}


def renders_at_size(env_id: str) -> bool:
    """Whether env_id's class is a Gymnasium MujocoEnv, which renders at the width and height given to make."""
    entry_point = gym.spec(split_env_id(env_id)[1]).entry_point
    try:
        from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

        creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    except (ImportError, gym.error.DependencyNotInstalled):
        return False
    return isinstance(creator, type) and issubclass(creator, MujocoEnv)


def make_pixel_env(
    env_id: str, size: tuple[int, int] = (64, 64), keep_state: str | None = None, stack: int = 1, **kwargs
) -> gym.Env:
    """env_id with PixelObservation (MuJoCo renders at size, no resize); stack > 1 stacks that many frames.

    Stacked observations gain a leading axis, (stack, H, W, 3) (per key for a Dict), padded at reset with the
    first frame (FrameStackObservation, padding_type "reset"). Calls ensure_headless_rendering first.
    """
    if stack < 1:
        raise ValueError(f"make_pixel_env: stack must be >= 1, got {stack}")
    ensure_headless_rendering()
    check_env_id(env_id)
    if renders_at_size(env_id):
        kwargs = {"height": size[0], "width": size[1], **kwargs}
    env = PixelObservation(gym.make(env_id, render_mode="rgb_array", **kwargs), size, keep_state)
    return env if stack == 1 else FrameStackObservation(env, stack, padding_type="reset")


def ready_split(env: gym.Env) -> gym.Env:
    """The env with its ready split from SPLITS when it has one and a flat Box observation; else as it is."""
    env_id = env.spec.id if env.spec is not None else None
    if env_id in SPLITS and isinstance(env.observation_space, gym.spaces.Box):
        return SplitObservation(env, SPLITS[env_id])
    return env


def observation_wrappers(make_env, split: bool, frame_stack: int):
    """make_env with the observation wrappers of a config: the ready split (for split networks such as parkour),
    then a stack of the last frame_stack observations; make_env itself when neither applies."""
    if not split and frame_stack == 1:
        return make_env

    def make():
        env = make_env()
        if split:
            env = ready_split(env)
        if frame_stack > 1:
            env = FrameStackObservation(env, frame_stack, padding_type="reset")
        return env

    return make
