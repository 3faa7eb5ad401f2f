"""LocalCollector (terminal observations, lazy per-copy resets, episode stats, RNG checkpoints) and the
environment checks and action scaling of dpgkit.envs."""

from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest

from dpgkit.collect import LocalCollector
from dpgkit.collect.local import copy_seed
from dpgkit.envs import ActionScaler, check_action_space, check_observation_space, env_factory, obs_spec


class UnitCounterEnv(gym.Env):
    """obs = [steps taken, offset drawn from the env RNG at reset]; constant reward; terminates after `length`."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, length: int = 3, reward: float = 1.0, terminates: bool = True):
        self.length, self.reward, self.terminates = length, reward, terminates
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.t, self.offset, self.actions = 0, 0.0, []

    def _obs(self):
        return np.array([self.t, self.offset], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.offset = float(self.np_random.uniform())
        return self._obs(), {}

    def step(self, action):
        self.actions.append(np.array(action))
        self.t += 1
        return self._obs(), self.reward, self.terminates and self.t >= self.length, False, {}


def lengths_factory(lengths, reward=1.0):
    """Each call makes the next copy: copy i terminates after lengths[i] steps."""
    it = iter(lengths)
    return lambda: UnitCounterEnv(next(it), reward)


def zeros(collector):
    return np.zeros(collector.shape + (1,), np.float32)


def expected_offset(rng_state) -> float:
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = rng_state
    return float(np.float32(rng.uniform()))


# ---------------------------------------------------------------- collector


def test_terminal_step_holds_terminal_obs_then_reset():
    col = LocalCollector(lambda: UnitCounterEnv(3), [0], 1)
    obs, reset = col.observe()
    assert obs.shape == (1, 1, 2) and reset.shape == (1, 1)
    assert obs[0, 0, 0] == 0 and not reset.any()
    first_offset = obs[0, 0, 1]
    for t in (1, 2):
        result = col.step(zeros(col))
        assert result.next_obs[0, 0, 0] == t
        assert not result.terminated.any() and not result.truncated.any()
        assert result.episode_returns == [[]] and result.episode_lengths == [[]]
        obs, reset = col.observe()
        assert not reset.any() and obs[0, 0, 0] == t
    result = col.step(zeros(col))
    assert result.next_obs.shape == (1, 1, 2)
    assert result.next_obs[0, 0, 0] == 3  # the terminal observation, not a reset one
    assert result.next_obs[0, 0, 1] == first_offset
    np.testing.assert_array_equal(result.reward, [[1.0]])
    np.testing.assert_array_equal(result.terminated, [[True]])
    np.testing.assert_array_equal(result.truncated, [[False]])
    assert result.episode_returns == [[3.0]] and result.episode_lengths == [[3]]

    obs, reset = col.observe()
    np.testing.assert_array_equal(reset, [[True]])
    assert obs[0, 0, 0] == 0
    assert obs[0, 0, 1] != first_offset  # a new episode from the env's RNG
    obs2, reset2 = col.observe()  # observing again resets nothing
    assert not reset2.any()
    np.testing.assert_array_equal(obs2, obs)
    col.close()


def test_truncation_by_time_limit():
    col = LocalCollector(lambda: gym.wrappers.TimeLimit(UnitCounterEnv(100, terminates=False), 2), [0], 2)
    col.observe()
    r1 = col.step(zeros(col))
    assert not r1.truncated.any() and not r1.terminated.any()
    r2 = col.step(zeros(col))
    np.testing.assert_array_equal(r2.truncated, [[True, True]])
    np.testing.assert_array_equal(r2.terminated, [[False, False]])
    np.testing.assert_array_equal(r2.next_obs[..., 0], [[2, 2]])  # the last obs, not a reset one
    assert r2.episode_returns == [[2.0, 2.0]] and r2.episode_lengths == [[2, 2]]
    obs, reset = col.observe()
    np.testing.assert_array_equal(reset, [[True, True]])
    np.testing.assert_array_equal(obs[..., 0], [[0, 0]])
    col.close()


def test_copies_ending_at_different_steps_are_independent():
    # copies in order (seed 0, actor 0), (0, 1), (1, 0), (1, 1)
    col = LocalCollector(lengths_factory([2, 3, 3, 5], reward=0.5), [10, 20], 2)
    obs0, _ = col.observe()
    offsets = obs0[..., 1].copy()

    col.step(zeros(col))
    r = col.step(zeros(col))
    np.testing.assert_array_equal(r.terminated, [[True, False], [False, False]])
    np.testing.assert_array_equal(r.next_obs[..., 0], [[2, 2], [2, 2]])
    assert r.episode_returns == [[1.0], []] and r.episode_lengths == [[2], []]
    obs, reset = col.observe()
    np.testing.assert_array_equal(reset, [[True, False], [False, False]])
    np.testing.assert_array_equal(obs[..., 0], [[0, 2], [2, 2]])
    np.testing.assert_array_equal(obs[..., 1].ravel()[1:], offsets.ravel()[1:])  # the others untouched
    assert obs[0, 0, 1] != offsets[0, 0]

    r = col.step(zeros(col))
    np.testing.assert_array_equal(r.next_obs[..., 0], [[1, 3], [3, 3]])
    np.testing.assert_array_equal(r.terminated, [[False, True], [True, False]])
    assert r.episode_returns == [[1.5], [1.5]] and r.episode_lengths == [[3], [3]]
    obs, reset = col.observe()
    np.testing.assert_array_equal(reset, [[False, True], [True, False]])
    np.testing.assert_array_equal(obs[..., 0], [[1, 0], [0, 3]])

    r = col.step(zeros(col))  # copy 0's second episode ends
    np.testing.assert_array_equal(r.next_obs[..., 0], [[2, 1], [1, 4]])
    assert r.episode_returns == [[1.0], []] and r.episode_lengths == [[2], []]
    col.observe()
    r = col.step(zeros(col))  # copy 3 ends after 5 steps
    np.testing.assert_array_equal(r.next_obs[..., 0], [[1, 2], [2, 5]])
    np.testing.assert_array_equal(r.terminated, [[False, False], [False, True]])
    assert r.episode_returns == [[], [2.5]] and r.episode_lengths == [[], [5]]
    col.close()


def test_actions_are_scaled_to_env_bounds():
    col = LocalCollector(lambda: UnitCounterEnv(10), [0], 3)
    col.observe()
    col.step(np.array([[[-1.0], [0.5], [1.0]]], np.float32))
    got = [env.unwrapped.actions[-1][0] for env in col.envs.envs]
    np.testing.assert_allclose(got, [-2.0, 1.0, 2.0])
    col.close()


def test_copy_reset_seed_depends_on_its_agent_only():
    a = LocalCollector(lambda: UnitCounterEnv(3), [5], 2)
    b = LocalCollector(lambda: UnitCounterEnv(3), [3, 5], 2)
    obs_a, _ = a.observe()
    obs_b, _ = b.observe()
    np.testing.assert_array_equal(obs_a[0], obs_b[1])
    assert not np.array_equal(obs_b[0], obs_b[1])
    assert obs_a[0, 0, 1] != obs_a[0, 1, 1]  # actors of one agent differ
    assert copy_seed(5, 0) == copy_seed(5, 0) != copy_seed(5, 1)
    a.close()
    b.close()


def test_state_restores_env_rng_for_exact_resets():
    col = LocalCollector(lambda: UnitCounterEnv(3), [0, 1], 1)
    col.observe()
    for _ in range(3):
        result = col.step(zeros(col))
    assert result.terminated.all()
    saved = col.state()
    expected = [expected_offset(s) for s in saved["env_rng"]]

    obs_a, reset_a = col.observe()  # the reset that follows the saved point
    assert reset_a.all()
    np.testing.assert_array_equal(obs_a[..., 1].ravel(), expected)

    for _ in range(3):  # move on: another episode, another reset from the RNG
        col.step(zeros(col))
    obs_later, _ = col.observe()
    assert not np.array_equal(obs_later, obs_a)

    col.load_state(saved)
    obs_b, reset_b = col.observe()
    assert reset_b.all()
    np.testing.assert_array_equal(obs_b, obs_a)
    # episode statistics restart with the restored episodes
    col.step(zeros(col))
    col.step(zeros(col))
    r = col.step(zeros(col))
    assert r.episode_lengths == [[3], [3]] and r.episode_returns == [[3.0], [3.0]]
    col.close()


def test_load_state_mid_episode_restarts_every_episode():
    col = LocalCollector(lambda: UnitCounterEnv(5), [0], 2)
    col.observe()
    col.step(zeros(col))
    saved = col.state()
    col.step(zeros(col))
    col.load_state(saved)
    obs, reset = col.observe()
    np.testing.assert_array_equal(reset, [[True, True]])
    np.testing.assert_array_equal(obs[..., 0], [[0, 0]])
    np.testing.assert_array_equal(obs[0, :, 1], [expected_offset(s) for s in saved["env_rng"]])
    for _ in range(4):
        assert col.step(zeros(col)).episode_lengths == [[]]
    r = col.step(zeros(col))
    assert r.episode_lengths == [[5, 5]]  # counted from the restart, not from before the save
    col.close()


def test_state_is_json_like_and_a_snapshot():
    import json

    col = LocalCollector(lambda: UnitCounterEnv(3), [0], 1)
    saved = col.state()
    text = json.dumps(saved)
    col.observe()
    for _ in range(3):
        col.step(zeros(col))
    col.observe()  # consumes the RNG
    assert json.dumps(col.state()) != text
    assert json.dumps(saved) == text
    col.close()


# ---------------------------------------------------------------- action scaling and space checks


def test_action_scaler_maps_bounds():
    space = gym.spaces.Box(np.array([-2.0, 0.0, 5.0], np.float32), np.array([2.0, 10.0, 6.0], np.float32))
    scaler = ActionScaler(space)
    np.testing.assert_allclose(scaler.to_env(-np.ones(3)), [-2.0, 0.0, 5.0])
    np.testing.assert_allclose(scaler.to_env(np.ones(3)), [2.0, 10.0, 6.0])
    np.testing.assert_allclose(scaler.to_env(np.zeros(3)), [0.0, 5.0, 5.5])
    np.testing.assert_allclose(scaler.to_env(np.array([0.5, -0.5, 0.0])), [1.0, 2.5, 5.5])
    assert scaler.to_env(np.zeros(3)).dtype == np.float32


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3), gym.spaces.MultiDiscrete([2, 3])])
def test_check_action_space_rejects_discrete(space):
    with pytest.raises(TypeError, match="Box"):
        check_action_space(space)


def test_check_action_space_rejects_infinite_bounds():
    with pytest.raises(ValueError, match="infinite"):
        check_action_space(gym.spaces.Box(-np.inf, np.inf, (2,), np.float32))
    with pytest.raises(ValueError, match="infinite"):
        check_action_space(
            gym.spaces.Box(np.array([-1.0, -1.0], np.float32), np.array([1.0, np.inf], np.float32))
        )


def test_check_action_space_accepts_bounded_box():
    assert check_action_space(gym.spaces.Box(-2.0, 2.0, (1,), np.float32)) is None


UNSUPPORTED_SPACES = {
    "Discrete": (gym.spaces.Discrete(3), "Discrete"),
    "Text": (gym.spaces.Text(5), "Text"),
    "Tuple": (gym.spaces.Tuple([gym.spaces.Box(-1.0, 1.0, (2,))]), "Tuple"),
    "Dict holding a Discrete": (gym.spaces.Dict({"a": gym.spaces.Discrete(2)}), "entry 'a'"),
    "empty Dict": (gym.spaces.Dict({}), "empty Dict"),
    "bool Box": (gym.spaces.Box(0, 1, (3,), np.bool_), "not numeric"),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED_SPACES))
def test_unsupported_observation_spaces_are_named(name):
    space, fragment = UNSUPPORTED_SPACES[name]
    with pytest.raises(TypeError, match=fragment) as error:
        check_observation_space(space)
    assert "Box" in str(error.value)


def test_boxes_of_any_shape_and_nested_dicts_are_taken():
    image = gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
    nested = gym.spaces.Dict(
        {"pixels": image, "state": gym.spaces.Dict({"joints": gym.spaces.Box(-1.0, 1.0, (2,), np.float64)})}
    )
    for space in (image, gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), nested):
        assert check_observation_space(space) is None
    spec = obs_spec(nested)
    assert sorted(spec) == ["pixels", "state/joints"]
    assert spec["pixels"].dtype == np.uint8 and spec["pixels"].shape == (84, 84, 3)
    assert spec["state/joints"].dtype == np.float32


def test_env_factory_unknown_id_suggests_close_match():
    with pytest.raises(ValueError, match="Pendulum-v1"):
        env_factory("Pendulum-v9")
    make = env_factory("Pendulum-v1")
    env = make()
    assert env.spec.id == "Pendulum-v1"
    env.close()


def test_env_factory_passes_keyword_arguments_to_an_id_only():
    env = env_factory("Pendulum-v1", {"g": 3.5})()
    assert env.unwrapped.g == 3.5
    env.close()
    with pytest.raises(ValueError, match=r"env keyword arguments \{'g': 3.5\} go with an env id"):
        env_factory(lambda: gym.make("Pendulum-v1"), {"g": 3.5})
