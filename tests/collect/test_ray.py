"""Collection on Ray, on the session's one local cluster: two workers fill the replay at the target rate, a
killed worker comes back, an env that raises is rebuilt and one that always raises stops the run, checkpoints
resume on Ray or locally with the whole replay, no token reaches the run dir, and bad input is named."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest

import dpgkit.collect.ray as ray_collect
from dpgkit import D4PG, TD3, cli
from dpgkit.collect.ray import RayUnavailableError, check_answers
from dpgkit.collect.worker import CollectWorker, ParamBoard
from dpgkit.config import TD3Config
from dpgkit.logger import read_metrics
from dpgkit.train import EnvError

CHUNK = 64
SMALL = {
    "hidden": (32, 32),
    "batch_size": 32,
    "eval_every": 0,
    "progress": False,
    "chunk_steps": CHUNK,
    "log_every": 256,
    "worker_cpus": 0.5,
}


class FlakyEnv(gym.Env):
    """Random 3-D observations, reward -a^2, episodes of 50 steps; each instance raises at its fail_at-th step."""

    metadata: ClassVar[dict] = {"render_modes": []}
    fail_at = 30

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.steps = self.t = 0

    def obs(self):
        return self.np_random.uniform(-1.0, 1.0, 3).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.obs(), {}

    def step(self, action):
        self.steps += 1
        self.t += 1
        if self.steps == self.fail_at:
            raise RuntimeError("simulated physics failure")
        return self.obs(), -float(np.square(action).sum()), False, self.t >= 50, {}


class BrokenEnv(FlakyEnv):
    """Raises at its first step, every time."""

    fail_at = 1


def stored_chunks(collector) -> int:
    """Chunks the ledger admitted, over every worker incarnation."""
    return sum(collector.ledger.last.values())


def later_chunks(collector, worker: int) -> int:
    """Chunks stored from the processes a worker was restarted in."""
    return sum(
        last for (w, incarnation), last in collector.ledger.last.items() if w == worker and incarnation
    )


def test_two_workers_fill_the_replay_at_the_target_rate(ray_session, tmp_path):
    agent = TD3(
        "Pendulum-v1",
        seed=1,
        collect="ray",
        workers=2,
        total_steps=1280,
        learning_starts=256,
        samples_per_insert=8.0,
        param_sync_every=32,
        run_dir=str(tmp_path),
        **SMALL,
    )
    agent.learn()
    collector = agent.trainer.env_actor
    assert {worker: collector.ledger.last[(worker, 0)] >= 3 for worker in (0, 1)} == {0: True, 1: True}
    assert agent.steps >= 1280
    assert agent.trainer.driver.replay.written[0] == agent.steps == stored_chunks(collector) * CHUNK
    assert (collector.stats.acted > 0).all()  # both acted with params broadcast after learning started
    realised = agent.trainer.updates * 32 / (agent.steps - 256)
    assert abs(realised / 8.0 - 1.0) < 0.1, realised
    metrics = read_metrics(tmp_path)
    for key in (
        "ray/samples_per_insert",
        "ray/updates_per_s",
        "ray/worker_0/param_lag",
        "ray/worker_1/param_lag",
    ):
        assert key in metrics
    agent.close()


def test_a_killed_worker_comes_back_and_its_later_chunks_are_stored(ray_session, tmp_path, capfd):
    agent = TD3(
        "Pendulum-v1",
        collect="ray",
        workers=2,
        total_steps=20_000,
        learning_starts=128,
        param_sync_every=16,
        run_dir=str(tmp_path),
        **SMALL,
    )
    collector = agent.trainer.env_actor
    pid = ray_session.get(collector.workers[0].process.remote())["pid"]
    agent.learn(512)
    acted_before, broadcast_before = int(collector.stats.acted[0]), collector.broadcast[0]
    killer = threading.Timer(0.2, os.kill, (pid, signal.SIGKILL))
    killer.start()
    while agent.steps < 20_000 and not later_chunks(collector, 0) >= 2:
        agent.learn(256)
    killer.join()
    assert collector.restarts(0) == 1 and collector.restarts(1) == 0
    assert later_chunks(collector, 0) >= 2  # chunks of the restarted process were stored
    assert collector.stats.acted[0] >= acted_before  # it caught up with the params by itself
    assert agent.trainer.driver.replay.written[0] == agent.steps == stored_chunks(collector) * CHUNK
    back = re.search(
        r"worker 0 is back after a restart \(1 so far\), acting with params version (\d+)",
        capfd.readouterr().err,
    )
    assert (
        back and int(back.group(1)) >= broadcast_before
    )  # its first chunk acted with the newest params or newer
    agent.close()
    assert read_metrics(tmp_path)["ray/restarts"][0][1][-1] == 1.0


def test_a_restarted_worker_pulls_the_newest_params_in_its_constructor(ray_session):
    board = ray_session.remote(ParamBoard).options(num_cpus=0).remote()
    actor = TD3("Pendulum-v1", hidden=(8,), progress=False).trainer.driver.spec.actor
    remote = ray_session.remote(CollectWorker).options(num_cpus=0.5, max_restarts=1, max_task_retries=0)
    worker = remote.remote(lambda: gym.make("Pendulum-v1"), TD3Config(), [0], 0, actor, {}, board)
    assert ray_session.get(worker.process.remote())["version"] == -1  # nothing broadcast yet
    ray_session.get(board.post.remote(7, [ray_session.put({"version": 7})]))
    os.kill(ray_session.get(worker.process.remote())["pid"], signal.SIGKILL)
    restarted, deadline = {}, time.monotonic() + 60.0
    while time.monotonic() < deadline:
        try:
            restarted = ray_session.get(worker.process.remote())
            break
        except ray_session.exceptions.RayActorError:
            time.sleep(0.2)
    assert restarted["incarnation"] != 0 and restarted["version"] == 7, restarted
    ray_session.kill(worker)
    ray_session.kill(board)


def test_an_env_that_raises_inside_a_worker_is_rebuilt_and_the_run_finishes(ray_session, tmp_path, capfd):
    agent = TD3(
        FlakyEnv,
        collect="ray",
        workers=2,
        total_steps=768,
        learning_starts=128,
        run_dir=str(tmp_path),
        **SMALL,
    )
    agent.learn()
    collector = agent.trainer.env_actor
    assert agent.steps >= 768
    assert collector.stats.env_errors.sum() >= 2 and collector.restarts(0) == collector.restarts(1) == 0
    assert (
        "the env raised RuntimeError: simulated physics failure; its envs were rebuilt"
        in capfd.readouterr().err
    )
    agent.close()


def test_a_worker_whose_env_always_raises_is_restarted_then_stops_the_run(ray_session, tmp_path, capfd):
    agent = TD3(
        BrokenEnv,
        collect="ray",
        workers=1,
        worker_env_failures=2,
        worker_restarts=1,
        total_steps=256,
        learning_starts=128,
        run_dir=str(tmp_path),
        **SMALL,
    )
    with pytest.raises(EnvError) as stop:
        agent.learn()
    err = capfd.readouterr().err
    assert "Ray worker 0 is dead for good" in str(stop.value), (str(stop.value), err)
    assert "2 env exceptions in a row" in err and "lost a call" in err, err
    agent.close()


def test_a_ray_checkpoint_resumes_on_ray_or_locally_with_its_whole_replay(ray_session, tmp_path):
    run = tmp_path / "run"
    settings = {"atoms": 11, "v_min": -850.0, "v_max": 0.0, "learning_starts": 128, "total_steps": 2048}
    agent = D4PG("Pendulum-v1", collect="ray", workers=1, run_dir=str(run), **settings, **SMALL)
    agent.learn(384)
    path = agent.save()
    replay = {k: np.array(v) for k, v in agent.trainer.driver.replay.state().items()}
    steps, updates = agent.steps, agent.trainer.updates
    agent.close()
    for collection in ({"collect": "local"}, {"collect": "ray", "workers": 2}):
        loaded = D4PG.load(path, **collection)
        assert loaded.config.collect == collection["collect"]
        assert (loaded.steps, loaded.trainer.updates) == (steps, updates)
        restored = loaded.trainer.driver.replay.state()
        assert restored.keys() == replay.keys()
        for key, value in replay.items():
            np.testing.assert_array_equal(restored[key], value, err_msg=key)
        loaded.learn(128)
        assert loaded.steps >= steps + 128
        copies = collection.get("workers", 1)  # each holds at most n - 1 steps in its n-step windows
        added = loaded.trainer.driver.replay.written[0] - replay["written"][0]
        assert added >= loaded.steps - steps - copies * (loaded.config.n_step - 1)
        loaded.close()
    with pytest.raises(ValueError, match="resumes with its own batch_size"):
        D4PG.load(path, batch_size=64)
    assert_no_token_in(tmp_path)


def assert_no_token_in(folder: pathlib.Path) -> None:
    """No file under folder holds the Ray session's token (from RAY_AUTH_TOKEN or ~/.ray/auth_token)."""
    token_file = pathlib.Path.home() / ".ray" / "auth_token"
    tokens = [os.environ["RAY_AUTH_TOKEN"]] + (
        [token_file.read_text().strip()] if token_file.is_file() else []
    )
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "metrics.csv" for p in files) and any(p.suffix == ".npz" for p in files)
    for path in files:
        data = path.read_bytes()
        for token in filter(None, tokens):
            assert token.encode() not in data, f"{path} holds the Ray token"


def test_workers_that_cannot_start_stop_the_run_with_the_cpus_they_wait_for(
    ray_session, tmp_path, monkeypatch
):
    monkeypatch.setattr(ray_collect, "WAIT_SECONDS", 3.0)
    agent = TD3(
        "Pendulum-v1", collect="ray", workers=1, run_dir=str(tmp_path), **(SMALL | {"worker_cpus": 64.0})
    )
    with pytest.raises(EnvError, match="each needs 64.0 CPU"):
        agent.learn(256)
    agent.close()


def test_zero_workers_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "td3", "--collect", "ray", "--workers", "0", "--run-dir", str(tmp_path)])
    assert stop.value.code == 1
    assert "config.workers must be > 0, got 0" in capsys.readouterr().err


def test_dpg_and_param_noise_refuse_ray(tmp_path):
    from dpgkit import DPG

    with pytest.raises(ValueError, match="does not apply to DPG"):
        DPG("dpgkit/LQR1D-v0", collect="ray", run_dir=str(tmp_path))
    with pytest.raises(ValueError, match="explore 'param'"):
        TD3("Pendulum-v1", collect="ray", explore="param", run_dir=str(tmp_path))


def test_missing_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayUnavailableError, match=r'pip install "dpgkit\[ray\]"'):
        TD3("Pendulum-v1", collect="ray", run_dir=str(tmp_path), **SMALL)


def free_port() -> int:
    """A loopback port nothing listens on (just released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_that_does_not_answer_is_an_error_within_bounded_time(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(RayUnavailableError, match="does not answer"):
        check_answers(address, 2.0)
    with pytest.raises(RayUnavailableError, match="not host:port"):
        check_answers("head-without-port", 2.0)
    command = [
        sys.executable,
        "-m",
        "dpgkit.cli",
        "train",
        "td3",
        "--collect",
        "ray",
        "--ray-address",
        address,
    ]
    done = subprocess.run(
        [*command, "--run-dir", str(tmp_path), "--total-steps", "100"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert f"the Ray cluster at '{address}' does not answer" in done.stderr
    assert time.monotonic() - started < 120


def test_pixel_frames_from_two_workers_are_stored_once_and_rebuild_their_stacks(ray_session, tmp_path):
    agent = TD3(
        "dpgkit/PixelDot-v0",
        collect="ray",
        workers=2,
        frame_stack=2,
        cnn="8-3-2,8-3-2",
        learning_starts=10_000,
        buffer_size=4096,
        run_dir=str(tmp_path),
        **SMALL,
    )
    with pytest.warns(UserWarning, match="no gradient update"):
        agent.learn(640)
    driver = agent.trainer.driver
    (store,) = driver.frames.stores.values()
    assert agent.steps <= store.written[0] <= agent.steps * 51 / 50 + 2 * 2  # one frame a step, one per reset
    rows = driver.replay.size[0]
    batch = driver.gather(np.arange(rows)[None])
    assert batch.obs.shape == (1, rows, 2, 16, 16, 1)
    shifted = batch.next_obs[0, :, 0]  # each stack shifts by one frame
    np.testing.assert_array_equal(shifted, batch.obs[0, :, 1])
    assert (batch.next_obs.reshape(rows * 2, -1).max(axis=1) > 0).all()  # every frame shows the dot
    path = agent.save()
    agent.close()
    with pytest.raises(ValueError, match="frame stores .* are sized for collect 'ray' with 2 worker"):
        TD3.load(path, collect="local")
    resumed = TD3.load(path)
    np.testing.assert_array_equal(resumed.trainer.driver.gather(np.arange(rows)[None]).obs, batch.obs)
    resumed.close()
