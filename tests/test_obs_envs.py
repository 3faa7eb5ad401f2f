"""Observation wrappers (Dict splits, pixels, frame stacks) and the probes for pixel, Dict and 2-D Box observations.

Measured over seeds 0-99 on dpgkit/PixelDot-v0: a uniformly random policy returns -39.0 ± 14.0, the scripted
policy a = clip(-10 p, -1, 1) with p decoded from the image -4.5 ± 1.4 (-2.3 ± 1.5 with the true p; the
16-pixel grid makes it dither near the centre). On dpgkit/DictProbe-v0 the best action from a alone or from b
alone loses about 0.18 per episode; the target itself loses nothing.
"""

import ctypes.util
import os
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

from dpgkit.cli import RenderError, first_frame
from dpgkit.envs.probes import PROBES, dict_target, dot_pixel, matrix_target
from dpgkit.envs.wrappers import (
    BIPEDAL_PARTS,
    SPLITS,
    PixelObservation,
    SplitObservation,
    ensure_headless_rendering,
    make_pixel_env,
    renders_at_size,
    resize_image,
    split_env,
)


class FlatEnv(gym.Env):
    """Observation arange(6) in a Box with bounds -(i + 1) and i + 1; renders a fixed (32, 48, 3) pattern."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"]}
    FRAME = np.kron(np.arange(6, dtype=np.uint8).reshape(2, 3, 1) * 40, np.ones((16, 16, 3), np.uint8))

    def __init__(self, render_mode=None, shape=(6,)):
        self.render_mode = render_mode
        bound = np.arange(1, int(np.prod(shape)) + 1, dtype=np.float64).reshape(shape)
        self.observation_space = gym.spaces.Box(-bound, bound, dtype=np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.arange(self.observation_space.shape[0], dtype=np.float64), {}

    def step(self, action):
        return self.reset()[0], 0.0, True, False, {}

    def render(self):
        return self.FRAME.copy()


def rollout(env, policy, seed):
    """The return of one episode of policy (its actions cast to float32 arrays) from reset(seed)."""
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(np.atleast_1d(policy(obs)).astype(np.float32))
        total, done = total + reward, terminated or truncated
    return total


def decode_dot(image):
    """The position in [-1, 1]^2 of PixelDot's bright pixel."""
    row, col = np.unravel_index(np.argmax(image[..., 0]), image.shape[:2])
    return np.array([col, row]) / (image.shape[0] - 1) * 2.0 - 1.0


def mujoco_render_error():
    """None if InvertedPendulum-v5 renders offscreen here, else why not."""
    ensure_headless_rendering()
    env = gym.make("InvertedPendulum-v5", render_mode="rgb_array", width=64, height=64)
    env.reset(seed=0)
    try:
        first_frame(env)
    except RenderError as error:
        return str(error)
    finally:
        env.close()
    return None


def test_split_gives_named_slices_with_their_bounds_and_dtype():
    env = SplitObservation(FlatEnv(), {"head": (0, 2), "tail": (3, 6)})
    space = env.observation_space
    assert isinstance(space, gym.spaces.Dict) and set(space) == {"head", "tail"}
    assert space["head"].dtype == np.float64 and space["tail"].shape == (3,)
    np.testing.assert_array_equal(space["head"].low, [-1, -2])
    np.testing.assert_array_equal(space["tail"].high, [4, 5, 6])
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["head"], [0, 1])
    np.testing.assert_array_equal(obs["tail"], [3, 4, 5])
    assert obs in space


@pytest.mark.parametrize(
    ("parts", "shape", "message"),
    [
        ({"x": (0, 3), "y": (2, 5)}, (6,), "overlap"),
        ({"x": (4, 7)}, (6,), "outside"),
        ({"x": (-1, 2)}, (6,), "outside"),
        ({"x": (3, 3)}, (6,), "empty"),
        ({}, (6,), "empty"),
        ({"x": (0, 2)}, (2, 3), "1-D"),
    ],
)
def test_split_rejects_bad_ranges_and_non_flat_boxes(parts, shape, message):
    with pytest.raises(ValueError, match=message):
        SplitObservation(FlatEnv(shape=shape), parts)


def test_bipedal_split_holds_the_flat_observation_slices():
    assert SPLITS["BipedalWalkerHardcore-v3"] == BIPEDAL_PARTS
    flat, split = gym.make("BipedalWalker-v3"), split_env("BipedalWalker-v3")
    assert split.observation_space["proprioception"].shape == (14,)
    assert split.observation_space["terrain"].shape == (10,)
    np.testing.assert_array_equal(split.observation_space["terrain"].high, np.ones(10))
    flat_obs, _ = flat.reset(seed=3)
    split_obs, _ = split.reset(seed=3)
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 4)).astype(np.float32)
    for action in actions:
        np.testing.assert_array_equal(split_obs["proprioception"], flat_obs[:14])
        np.testing.assert_array_equal(split_obs["terrain"], flat_obs[14:])
        flat_obs, *_ = flat.step(action)
        split_obs, *_ = split.step(action)


def test_split_env_names_the_ready_splits_for_an_unknown_id():
    with pytest.raises(ValueError, match="BipedalWalker-v3"):
        split_env("Pendulum-v1")


def test_resize_averages_blocks_when_shrinking_by_integer_factors():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 10
    np.testing.assert_array_equal(resize_image(image, (2, 2))[..., 0], [[25, 45], [105, 125]])
    np.testing.assert_array_equal(resize_image(image, (1, 4))[..., 0], [[60, 70, 80, 90]])
    assert resize_image(image, (4, 4)) is image


def test_resize_interpolates_bilinearly_otherwise():
    image = np.array([[0, 100]], np.uint8).reshape(1, 2, 1).repeat(3, axis=2)
    resized = resize_image(image, (2, 4))
    assert resized.shape == (2, 4, 3) and resized.dtype == np.uint8
    np.testing.assert_array_equal(resized[..., 1], [[0, 25, 75, 100], [0, 25, 75, 100]])
    flat = np.full((5, 7, 3), 200, np.uint8)
    np.testing.assert_array_equal(resize_image(flat, (3, 4)), np.full((3, 4, 3), 200))


def test_pixel_observation_is_the_resized_render_and_can_keep_the_state():
    env = PixelObservation(FlatEnv(render_mode="rgb_array"), size=(2, 3))
    assert env.observation_space == gym.spaces.Box(0, 255, (2, 3, 3), np.uint8)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs in env.observation_space
    np.testing.assert_array_equal(obs[..., 0], [[0, 40, 80], [120, 160, 200]])
    kept = PixelObservation(FlatEnv(render_mode="rgb_array"), size=(8, 12), keep_state="state")
    obs, *_ = kept.step(np.zeros(1, np.float32))
    assert obs["pixels"].shape == (8, 12, 3) and obs in kept.observation_space
    np.testing.assert_array_equal(obs["state"], np.arange(6))


@pytest.mark.parametrize(
    ("render_mode", "keep_state", "message"),
    [(None, None, "rgb_array"), ("rgb_array", "pixels", "keep_state")],
)
def test_pixel_observation_rejects_no_rgb_render_and_a_clashing_key(render_mode, keep_state, message):
    with pytest.raises(ValueError, match=message):
        PixelObservation(FlatEnv(render_mode=render_mode), keep_state=keep_state)


def test_only_mujoco_envs_are_made_at_the_pixel_size():
    assert renders_at_size("InvertedPendulum-v5")
    assert not renders_at_size("Pendulum-v1")
    assert not renders_at_size("dpgkit/PixelDot-v0")


def test_frame_stack_pads_with_the_first_frame():
    env = make_pixel_env("Pendulum-v1", size=(50, 50), stack=4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 50, 50, 3) and obs.dtype == np.uint8 and obs in env.observation_space
    assert all(np.array_equal(frame, obs[0]) for frame in obs)
    obs, *_ = env.step(np.ones(1, np.float32))
    assert obs.shape == (4, 50, 50, 3) and not np.array_equal(obs[-1], obs[0])
    with pytest.raises(ValueError, match="stack"):
        make_pixel_env("Pendulum-v1", stack=0)


def test_a_mujoco_pixel_env_renders_64_by_64_frames_that_change():
    reason = mujoco_render_error()
    if reason:
        pytest.skip(reason)
    env = make_pixel_env("InvertedPendulum-v5", size=(64, 64))
    assert env.unwrapped.width == 64 and env.unwrapped.height == 64
    first, _ = env.reset(seed=0)
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    frames = [env.step(np.ones(1, np.float32))[0] for _ in range(5)]
    assert not np.array_equal(frames[-1], first)
    stacked = make_pixel_env("InvertedPendulum-v5", size=(64, 64), keep_state="state", stack=3)
    obs, _ = stacked.reset(seed=0)
    assert obs["pixels"].shape == (3, 64, 64, 3) and obs["state"].shape == (3, 4)


def test_ensure_headless_rendering_picks_egl_only_without_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    ensure_headless_rendering()
    assert os.environ["MUJOCO_GL"] == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libEGL.so.1")
    ensure_headless_rendering()
    assert os.environ["MUJOCO_GL"] == "egl"


@pytest.mark.parametrize("env_id", list(PROBES))
def test_probes_pass_gymnasiums_env_checker(env_id):
    check_env(gym.make(env_id).unwrapped)


@pytest.mark.parametrize("env_id", list(PROBES))
def test_probes_repeat_by_seed(env_id):
    def trajectory(seed):
        env = gym.make(env_id)
        env.action_space.seed(0)
        obs, _ = env.reset(seed=seed)
        steps = [obs]
        for _ in range(3):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += [obs, reward]
            if terminated or truncated:
                obs, _ = env.reset()
                steps.append(obs)
        return steps

    assert data_equivalence(trajectory(7), trajectory(7), exact=True)
    assert not data_equivalence(trajectory(7), trajectory(8))


def test_pixel_dot_shows_only_the_dot_and_truncates_at_50_steps():
    env = gym.make("dpgkit/PixelDot-v0", channels=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (16, 16, 3) and obs.dtype == np.uint8
    assert np.count_nonzero(obs) == 3 and obs[dot_pixel(env.unwrapped.position, 16)].tolist() == [255] * 3
    for t in range(1, 51):
        obs, reward, terminated, truncated, _ = env.step(np.array([1.0, -1.0], np.float32))
        assert not terminated and truncated == (t == 50)
    np.testing.assert_array_equal(env.unwrapped.position, [1.0, -1.0])
    assert reward == pytest.approx(-np.sqrt(2.0))


def test_pixel_dot_scripted_policy_beats_a_random_one_clearly():
    env = gym.make("dpgkit/PixelDot-v0")
    env.action_space.seed(0)
    random = [rollout(env, lambda obs: env.action_space.sample(), seed) for seed in range(20)]
    scripted = [rollout(env, lambda obs: np.clip(-10.0 * decode_dot(obs), -1, 1), seed) for seed in range(20)]
    assert np.mean(random) < -25.0 and np.mean(scripted) > -8.0


@pytest.mark.parametrize("env_id", ["dpgkit/DictProbe-v0", "dpgkit/DictProbeNested-v0"])
def test_dict_probe_needs_both_inputs(env_id):
    env = gym.make(env_id)
    others = np.random.default_rng(0).uniform(-1.0, 1.0, (500, 3))

    def b_of(obs):
        return obs["outer"]["b"] if "outer" in obs else obs["b"]

    policies = {
        "both": lambda obs: dict_target(obs["a"], b_of(obs)),
        "a only": lambda obs: np.mean([dict_target(obs["a"], b) for b in others]),
        "b only": lambda obs: np.mean([dict_target(a, b_of(obs)) for a in others[:, :2]]),
    }
    losses = {
        name: -np.mean([rollout(env, policy, seed) for seed in range(200)])
        for name, policy in policies.items()
    }
    assert losses["both"] < 1e-6
    assert losses["a only"] > 0.1 and losses["b only"] > 0.1


def test_matrix_probe_rewards_the_two_corners():
    env = gym.make("dpgkit/MatrixProbe-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 4) and obs.dtype == np.float32
    _, reward, terminated, _, _ = env.step(np.array([matrix_target(obs)], np.float32))
    assert terminated and reward == pytest.approx(0.0, abs=1e-12)
    constant = -np.mean([rollout(env, lambda obs: 0.0, s) for s in range(300)])
    assert constant > 0.1  # E[((M00 + M23) / 2)^2] = 1/6
