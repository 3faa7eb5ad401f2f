"""Save, load and resume: a resumed run is bitwise the run that never stopped; checkpoints fail safely."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import dpgkit.checkpoint
from dpgkit import D4PG, DDPG, TD3
from dpgkit.checkpoint import CheckpointCorruptError, CheckpointSpaceError

BASE = {"learning_starts": 200, "hidden": (32, 32), "batch_size": 32, "eval_every": 0, "progress": False}
VARIANTS = {
    "td3-gaussian": (TD3, {"explore": "gaussian"}),
    "ddpg-ou": (DDPG, {"explore": "ou", "noise_sigma": 0.2}),
    "td3-param": (TD3, {"explore": "param", "param_adapt_every": 50}),
    "ddpg-noisy": (DDPG, {"explore": "noisy"}),
    "d4pg-nstep-per": (D4PG, {"explore": "gaussian", "atoms": 11, "v_min": -850.0, "v_max": 0.0}),
}


def make(algo, run_dir, **extra):
    return algo("Pendulum-v1", seed=3, run_dir=str(run_dir), total_steps=800, **BASE, **extra)


def state_leaves(agent) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(agent.trainer.state)]


def assert_states_equal(x, y) -> None:
    a, b = state_leaves(x), state_leaves(y)
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b, strict=True)):
        assert u.dtype == v.dtype and u.shape == v.shape, i
        assert np.array_equal(u, v), f"leaf {i} differs: max |diff| {np.abs(u.astype(float) - v).max()}"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_resume_is_bitwise_exact(tmp_path, variant):
    algo, extra = VARIANTS[variant]
    straight = make(algo, tmp_path / "a", **extra).learn(800)

    first_half = make(algo, tmp_path / "b", **extra).learn(400)
    saved = first_half.save(tmp_path / "ckpt")
    assert saved.name == "step_000000400"
    resumed = algo.load(tmp_path / "ckpt")
    assert type(resumed) is algo
    assert resumed.steps == 400 and resumed.trainer.updates == 400 - 200 + 1
    assert_states_equal(resumed, first_half)
    resumed.learn(400)

    assert resumed.steps == straight.steps == 800
    assert resumed.trainer.updates == straight.trainer.updates == 800 - 200 + 1
    assert_states_equal(resumed, straight)
    # the replay holds the same transitions (and priorities), and the half-way state really was different
    resumed_replay, straight_replay = resumed.trainer.driver.replay.state(), straight.trainer.driver.replay.state()
    assert resumed_replay.keys() == straight_replay.keys()
    for key, value in straight_replay.items():
        np.testing.assert_array_equal(resumed_replay[key], value, err_msg=key)
    assert not all(np.array_equal(u, v) for u, v in zip(state_leaves(first_half), state_leaves(straight)))
    if extra["explore"] == "ou":
        np.testing.assert_array_equal(
            resumed.trainer.env_actor.explorer.noises[0].x, straight.trainer.env_actor.explorer.noises[0].x
        )
    # a resumed run compiles its update once, like the straight one
    assert resumed.trainer.driver.update_fn._cache_size() == 1


def test_load_gives_identical_actions(tmp_path):
    agent = make(TD3, tmp_path / "run").learn(300)
    agent.save()  # to the run dir
    loaded = TD3.load(tmp_path / "run")
    obs = np.random.default_rng(0).uniform(-1.0, 1.0, (32, 3)).astype(np.float32)
    actions = agent.act(obs)
    assert actions.shape == (32, 1) and actions.dtype == np.float32
    assert np.all(np.abs(actions) <= 2.0)  # Pendulum's torque bounds
    assert np.array_equal(loaded.act(obs), actions)
    assert np.array_equal(loaded.act(obs[5]), actions[5])
    assert loaded.config == agent.config
    assert np.array_equal(loaded.evaluate(1), agent.evaluate(1))


def test_load_with_the_wrong_algorithm_is_refused(tmp_path):
    make(TD3, tmp_path).learn(10).save()
    with pytest.raises(ValueError, match="td3"):
        DDPG.load(tmp_path)


def test_truncated_checkpoint_file_is_reported_corrupt(tmp_path):
    agent = make(TD3, tmp_path).learn(250)
    step_dir = agent.save()
    learner = step_dir / "learner.npz"
    data = learner.read_bytes()
    learner.write_bytes(data[: len(data) // 2])

    with pytest.raises(CheckpointCorruptError) as excinfo:
        TD3.load(tmp_path)
    message = str(excinfo.value)
    assert "corrupt" in message
    assert str(learner) in message
    assert isinstance(excinfo.value, ValueError)


def test_failed_save_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    agent = make(TD3, tmp_path).learn(250)
    good = agent.save()
    expected = state_leaves(agent)
    agent.learn(50)

    def failing_writer(f, group):
        f.write(b"PK\x03\x04 partial")  # a few bytes reach the disk, then the device fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dpgkit.checkpoint, "_write_npz", failing_writer)
    with pytest.raises(CheckpointSpaceError, match="not enough disk space") as excinfo:
        agent.save()
    monkeypatch.undo()
    assert excinfo.value.errno == 28 and isinstance(excinfo.value.__cause__, OSError)
    assert str(tmp_path / "checkpoints") in str(excinfo.value) and "bytes" in str(excinfo.value)

    assert agent.trainer.last_checkpoint == good
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [".lock", "LATEST", good.name]  # no temp dir left
    assert (checkpoints / "LATEST").read_text().strip() == good.name
    loaded = TD3.load(tmp_path)
    assert loaded.steps == 250
    for u, v in zip(state_leaves(loaded), expected, strict=True):
        assert np.array_equal(u, v)
    # and the next successful save replaces it
    agent.save()
    assert TD3.load(tmp_path).steps == 300
