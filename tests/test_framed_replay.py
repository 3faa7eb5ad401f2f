"""Pixel replay storing each frame once, through the training loop: the learner sees exactly the batches of rows of
stacks, bytes per transition, checkpoints, resume, Dict observations and episodes too short for the frame stores."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import dpgkit.driver
from dpgkit import D4PG, DDPG, TD3
from dpgkit.checkpoint import load_checkpoint, save_checkpoint
from dpgkit.envs import PixelDotEnv
from dpgkit.envs.probes import dot_image
from dpgkit.replay import bytes_per_transition, frame_bytes
from dpgkit.replay.framed import MIN_EPISODE
from test_observations import PIXELS, assert_trees_equal

SMALL = {
    "learning_starts": 64,
    "batch_size": 16,
    "hidden": (16, 16),
    "cnn": "4-3-2,4-3-1",
    "buffer_size": 150,
    "eval_every": 0,
    "progress": False,
}


class DotViewsEnv(PixelDotEnv):
    """PixelDot seen by two cameras and a sensor: {"camera": (16, 16, 1) uint8, "position": (2,) float32,
    "view": {"small": (8, 8, 3) uint8}}."""

    def __init__(self):
        super().__init__()
        self.observation_space = gym.spaces.Dict(
            {
                "camera": self.observation_space,
                "position": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
                "view": gym.spaces.Dict({"small": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)}),
            }
        )

    def views(self, image):
        return {
            "camera": image,
            "position": self.position.astype(np.float32),
            "view": {"small": dot_image(self.position, 8, 3)},
        }

    def reset(self, *, seed=None, options=None):
        image, info = super().reset(seed=seed, options=options)
        return self.views(image), info

    def step(self, action):
        image, *rest = super().step(action)
        return self.views(image), *rest


def dot_views() -> gym.Env:
    return gym.wrappers.TimeLimit(DotViewsEnv(), 50)


def make(algo, env, run_dir, **extra):
    return algo(env, seed=1, run_dir=str(run_dir), total_steps=400, **{**SMALL, **extra})


RUNS = {  # every pair of frame_stack 1 / 3, n_step 1 / 3 and actors 1 / 2; sample_states through param noise
    "image-n1-a1": (TD3, PIXELS, {"frame_stack": 1, "n_step": 1, "actors": 1}, {""}),
    "image-n3-a2-d4pg-2seeds": (D4PG, PIXELS, {"frame_stack": 1, "n_step": 3, "actors": 2, "seeds": 2}, {""}),
    "stack-n1-a2-param": (
        TD3,
        PIXELS,
        {"frame_stack": 3, "n_step": 1, "actors": 2, "explore": "param", "param_adapt_every": 20},
        {""},
    ),
    "stack-n3-a1": (DDPG, PIXELS, {"frame_stack": 3, "n_step": 3, "actors": 1}, {""}),
    "dict-stack-n3-a2": (
        TD3,
        dot_views,
        {"frame_stack": 3, "n_step": 3, "actors": 2},
        {"camera", "view/small"},
    ),
}


@pytest.mark.parametrize("run", list(RUNS))
def test_the_learner_gets_exactly_the_batches_of_rows_of_stacks(tmp_path, monkeypatch, run):
    algo, env, extra, framed_names = RUNS[run]
    framed = make(algo, env, tmp_path / "framed", **extra).learn(300)
    monkeypatch.setattr(dpgkit.driver, "framed_leaves", lambda spec, frame_stack: {})
    rows = make(algo, env, tmp_path / "rows", **extra).learn(300)
    f, r = framed.trainer.driver, rows.trainer.driver
    assert set(f.framed) == framed_names and not r.framed
    for store in f.frames.stores.values():  # both rings wrapped: frames overwritten, rows released
        assert store.frames.dtype == np.uint8 and (store.written > store.capacity).all()
    assert (f.replay.written > f.replay.capacity).all() and f.updates == r.updates > 0
    every_row = np.tile(np.arange(f.replay.capacity), (f.config.seeds, 1))
    assert_trees_equal(f.gather(every_row), r.replay.gather(every_row))
    assert_trees_equal(framed.trainer.state, rows.trainer.state)


def test_bytes_per_transition_at_64x64x3_with_a_stack_of_3(tmp_path):
    def env():
        return gym.wrappers.TimeLimit(PixelDotEnv(size=64, channels=3), 50)

    agent = make(TD3, env, tmp_path / "run", frame_stack=3, buffer_size=4000).learn(100)
    driver, frame = agent.trainer.driver, 64 * 64 * 3
    (store,) = driver.frames.stores.values()
    ids = [driver.replay.storage.obs, driver.replay.storage.next_obs]
    assert store.frames.shape[2:] == (64, 64, 3) and ids[0].shape == (1, 4000, 3) and ids[0].dtype == np.int32
    per_transition = bytes_per_transition(store, ids)
    assert frame < per_transition <= 1.25 * frame  # rows of stacks: 6 frames (2 stacks of 3)
    assert frame_bytes(driver.framed, 1, 4000, 1, 1) == store.frames.nbytes + store.held.nbytes


@pytest.mark.parametrize(
    ("env", "extra"),
    [(PIXELS, {"frame_stack": 3, "n_step": 3, "actors": 2}), (dot_views, {"frame_stack": 1})],
)
def test_resume_with_frame_storage_is_bitwise_exact(tmp_path, env, extra):
    straight = make(TD3, env, tmp_path / "a", **extra).learn(400)
    first_half = make(TD3, env, tmp_path / "b", **extra).learn(200)
    path = first_half.save(tmp_path / "ckpt")
    arrays, _ = load_checkpoint(path)
    frames = [v for k, v in arrays["replay"].items() if k.startswith("frames_") and k.endswith("_frames")]
    assert len(frames) == len(first_half.trainer.driver.framed) > 0
    assert all(v.dtype == np.uint8 and v.ndim == 5 for v in frames)
    resumed = TD3.load(path, env=None if isinstance(env, str) else env)
    resumed.learn(200)
    assert_trees_equal(resumed.trainer.state, straight.trainer.state)
    r, s = resumed.trainer.driver, straight.trainer.driver
    saved, expected = r.replay.state() | r.frames.state(), s.replay.state() | s.frames.state()
    assert saved.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(saved[key], value, err_msg=key)


def test_a_checkpoint_without_its_replay_starts_the_frame_stores_empty(tmp_path):
    agent = make(TD3, PIXELS, tmp_path / "run", frame_stack=3, keep_checkpoints=2).learn(100)
    older = agent.save()
    agent.learn(100).save()
    with pytest.warns(UserWarning, match="holds no replay"):
        loaded = TD3.load(older)
    driver = loaded.trainer.driver
    (store,) = driver.frames.stores.values()
    assert driver.replay.size[0] == 0 and store.written[0] == 0 and not store.held.any()
    loaded.learn(150)
    assert loaded.trainer.updates > 0 and driver.replay.storage.obs[0, 0, 0] == 0


def test_a_pixel_checkpoint_saved_before_frame_stores_loads_its_agent_and_refills_the_replay(tmp_path):
    agent = make(TD3, PIXELS, tmp_path / "run", frame_stack=3).learn(100)
    arrays, meta = load_checkpoint(agent.save())
    stacks = np.zeros((1, 100, 16, 16, 3), np.uint8)  # rows of whole stacks, as pixel replay stored them before
    arrays["replay"] = {k: v for k, v in arrays["replay"].items() if not k.startswith("frames_")}
    arrays["replay"] |= {"leaf_0": stacks, "leaf_1": stacks}
    old = save_checkpoint(tmp_path / "old", meta["steps"], arrays, meta, run_id=meta["run_id"])
    with pytest.warns(UserWarning, match="holds whole observations.*refills the replay"):
        loaded = TD3.load(old)
    assert_trees_equal(loaded.trainer.state, agent.trainer.state)
    driver = loaded.trainer.driver
    (store,) = driver.frames.stores.values()
    assert driver.replay.size[0] == 0 and store.written[0] == 0
    loaded.learn(150)
    assert loaded.trainer.updates > agent.trainer.updates


def test_episodes_too_short_for_pixel_replay_are_refused_naming_the_problem(tmp_path):
    def env():
        return gym.make(PIXELS, max_episode_steps=1)

    agent = make(TD3, env, tmp_path / "run", buffer_size=64, learning_starts=1000)
    shorter = rf"episodes shorter than {MIN_EPISODE} steps on average are not supported for pixel replay"
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match=rf"{shorter}.*buffer_size.*actors"):
        agent.learn(300)
