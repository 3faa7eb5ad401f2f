"""Nothing lost: run ownership of checkpoints, pruning, clean stops on signals, saves before env errors,
time-based checkpoints, and checkpoints of the previous format."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dpgkit.checkpoint
import dpgkit.train
from dpgkit import D4PG, DPG, TD3
from dpgkit.checkpoint import RunDirInUseError, latest_checkpoint, load_checkpoint
from dpgkit.train import CheckpointClock, EnvError, StopSignals, TrainingInterrupted
from envs_for_tests import ProbeFaulty

TINY = {"hidden": (8, 8), "batch_size": 8, "learning_starts": 10, "eval_every": 0, "progress": False}
FIXTURES = Path(__file__).parent / "fixtures"


def step_dirs(run) -> list[str]:
    """The step folders of a run, oldest first."""
    return sorted(p.name for p in (Path(run) / "checkpoints").iterdir() if p.name.startswith("step_"))


def test_saving_into_another_runs_directory_is_refused(tmp_path):
    """The issue's reproduction: a second agent saving into a trained run's directory loses nothing."""
    first = TD3("Pendulum-v1", run_dir=str(tmp_path / "a"), checkpoint_every=400, **TINY).learn(1600)
    first.save()
    before = step_dirs(tmp_path / "a")
    assert before == ["step_000000800", "step_000001200", "step_000001600-1"]
    second = TD3("Pendulum-v1", run_dir=str(tmp_path / "b"), **TINY).learn(20)
    with pytest.raises(RunDirInUseError, match=f"another run .*{first.trainer.run_id}"):
        second.save(tmp_path / "a")
    (tmp_path / "a" / "checkpoints" / "LATEST").unlink()
    with pytest.raises(RunDirInUseError):
        TD3("Pendulum-v1", run_dir=str(tmp_path / "a"), **TINY).learn(20)
    assert step_dirs(tmp_path / "a") == before


def test_a_run_keeps_its_newest_checkpoints_and_only_the_newest_replay(tmp_path):
    """keep_checkpoints (default 3) prunes this run's older checkpoints; older ones hold no replay and,
    loaded, act as saved and warm up again before learning."""
    agent = TD3("Pendulum-v1", run_dir=str(tmp_path), checkpoint_every=100, **TINY).learn(500)
    assert agent.config.keep_checkpoints == 3
    assert step_dirs(tmp_path) == ["step_000000300", "step_000000400", "step_000000500"]
    root = tmp_path / "checkpoints"
    assert [(root / d / "replay.npz").exists() for d in step_dirs(tmp_path)] == [False, False, True]
    with pytest.warns(UserWarning, match="holds no replay"):
        older = TD3.load(root / "step_000000400")
    assert older.steps == 400 and older.trainer.driver.replay.size[0] == 0
    assert older.trainer.driver.learning_from == 410
    updates = older.trainer.updates
    older.learn(5)
    assert older.trainer.updates == updates  # still refilling its replay with random steps


def test_an_older_checkpoint_loaded_and_trained_forks_into_its_own_directory(tmp_path):
    """Training on from a checkpoint that is not its run's newest starts a new run in a directory of its own;
    the run's checkpoints, the newest with its replay, stay as they are."""
    run = tmp_path / "run"
    agent = TD3("Pendulum-v1", run_dir=str(run), checkpoint_every=100, **TINY).learn(300)
    before = step_dirs(run)
    with pytest.warns(UserWarning, match="is not the newest checkpoint of its run"):
        fork = TD3.load(run / "checkpoints" / "step_000000200")
    assert fork.trainer.run_id != agent.trainer.run_id
    assert fork.run_dir == tmp_path / "run-from-step_000000200"
    fork.learn(20)
    fork.save()
    assert step_dirs(run) == before and (run / "checkpoints" / before[-1] / "replay.npz").exists()
    assert step_dirs(fork.run_dir) == ["step_000000220"]


def test_a_step_folder_loads_into_its_run_directory(tmp_path):
    """Loaded from a step folder inside a run, the agent's run directory is that run's."""
    run = tmp_path / "run"
    TD3("Pendulum-v1", run_dir=str(run), **TINY).learn(30).save()
    assert TD3.load(run / "checkpoints" / "step_000000030").run_dir == run


def test_a_full_disk_at_a_periodic_checkpoint_warns_and_training_goes_on(tmp_path, monkeypatch):
    """A periodic save that finds too little space warns; training continues and saves at the next one."""
    real_check = dpgkit.checkpoint._check_space
    calls = {"n": 0}

    def full_once(root, needed):
        calls["n"] += 1
        if calls["n"] == 1:
            raise dpgkit.checkpoint.CheckpointSpaceError(root, needed, 100)
        return real_check(root, needed)

    monkeypatch.setattr(dpgkit.checkpoint, "_check_space", full_once)
    agent = TD3("Pendulum-v1", run_dir=str(tmp_path), checkpoint_every=20, **TINY)
    with pytest.warns(UserWarning, match="not enough disk space .*training goes on"):
        agent.learn(60)
    assert agent.steps == 60 and step_dirs(tmp_path) == ["step_000000040", "step_000000060"]


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_saves_at_the_next_boundary_and_stops(tmp_path, name):
    """SIGINT/SIGTERM during a step: the iteration completes, a checkpoint is written, training stops with
    where it is and how to continue, the handlers are restored, and the run resumes from there."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    agent = TD3(functools.partial(ProbeFaulty, fault=name, fault_step=37), run_dir=str(tmp_path), **TINY)
    with pytest.raises(
        TrainingInterrupted, match=rf"{name} at env step 37: saved .*step_000000037"
    ) as excinfo:
        agent.learn(100)
    assert f"dpgkit resume {tmp_path}" in str(excinfo.value)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert latest_checkpoint(tmp_path).name == "step_000000037"
    resumed = TD3.load(tmp_path, env=functools.partial(ProbeFaulty, fault="none"))
    assert resumed.steps == 37
    resumed.learn(13)
    assert resumed.steps == 50


def test_a_second_sigint_aborts_at_once():
    """The first SIGINT only asks for a stop; the second raises KeyboardInterrupt in the handler."""
    stop = StopSignals()
    stop.handle(signal.SIGINT, None)
    assert stop.received == signal.SIGINT
    with pytest.raises(KeyboardInterrupt):
        stop.handle(signal.SIGINT, None)


def test_an_env_exception_is_reported_with_the_step_and_a_checkpoint(tmp_path):
    """An exception inside env.step: the state of the last completed step is saved and the error names the
    step, the env's message and the checkpoint to resume from."""
    agent = TD3(functools.partial(ProbeFaulty, fault="raise", fault_step=25), run_dir=str(tmp_path), **TINY)
    with pytest.raises(EnvError, match="RuntimeError: simulated physics failure at env step 25") as excinfo:
        agent.learn(100)
    message = str(excinfo.value)
    assert "step_000000024" in message and f"dpgkit resume {tmp_path}" in message
    assert isinstance(excinfo.value.__cause__, RuntimeError)
    resumed = TD3.load(tmp_path, env=functools.partial(ProbeFaulty, fault="none"))
    assert resumed.steps == 24 and resumed.trainer.driver.replay.size[0] == 24


def test_checkpoint_clock_spaces_saves_to_at_most_two_percent(monkeypatch):
    """Due every `seconds`, but never sooner than 50 times the last save's cost."""
    now = {"t": 100.0}
    monkeypatch.setattr(dpgkit.train.time, "monotonic", lambda: now["t"])
    clock = CheckpointClock(10.0)
    now["t"] = 109.9
    assert not clock.due()
    now["t"] = 110.0
    assert clock.due()
    clock.saved(started=109.0)  # that save took 1 s: the next one waits 50 s
    now["t"] = 159.9
    assert not clock.due()
    now["t"] = 160.0
    assert clock.due()
    assert not CheckpointClock(0.0).due()


def test_time_based_checkpoints_happen_during_training(tmp_path):
    """With checkpoint_seconds set, a run saves by itself without checkpoint_every or an explicit save."""
    agent = TD3("Pendulum-v1", run_dir=str(tmp_path), checkpoint_seconds=1e-9, **TINY).learn(30)
    assert agent.trainer.last_checkpoint is not None and step_dirs(tmp_path)


@pytest.mark.parametrize(
    ("name", "algo"), [("td3", TD3), ("d4pg", D4PG), ("dpg", DPG)], ids=["td3", "d4pg-prioritized", "dpg"]
)
def test_format1_checkpoints_still_load_and_resume(tmp_path, name, algo):
    """Checkpoints written by format 1 (before run ids) act exactly as they did, resume, and save on."""
    expected = json.loads((FIXTURES / "format1_expected.json").read_text())[name]
    run = tmp_path / name
    shutil.copytree(FIXTURES / f"format1_{name}", run)
    agent = algo.load(run)
    assert agent.steps == expected["steps"]
    np.testing.assert_array_equal(agent.act(np.array(expected["obs"], np.float32)), expected["action"])
    agent.learn(40)
    agent.save()
    assert step_dirs(run) == ["step_000000400", "step_000000440"]
    again = algo.load(run)
    assert again.steps == 440 and again.trainer.run_id == agent.trainer.run_id
    assert load_checkpoint(run)[1]["run_id"].startswith("format1-")


def test_ctrl_c_on_the_command_line_saves_and_exits_130(tmp_path):
    """`dpgkit train` under SIGINT: exit status 130, the message names the step, checkpoint and resume."""
    command = [
        sys.executable,
        "-c",
        "from dpgkit.cli import main; main()",
        "train",
        "td3",
        "--env",
        "Pendulum-v1",
    ]
    command += ["--hidden", "8", "8", "--learning-starts", "50", "--checkpoint-every", "50", "--no-progress"]
    command += ["--run-dir", str(tmp_path)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert "training td3 on Pendulum-v1" in process.stdout.readline()
    deadline = time.monotonic() + 300
    while not (tmp_path / "checkpoints" / "LATEST").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert re.search(r"stopped by SIGINT at env step \d+: saved .*step_\d+", stderr), stderr
    assert f"dpgkit resume {tmp_path}" in stderr
    assert load_checkpoint(tmp_path)[1]["steps"] > 0


def test_an_env_exception_during_evaluation_is_reported_and_saved(tmp_path):
    """The evaluation's own env copies raising: the same report, naming the evaluation, and a checkpoint."""
    settings = dict(TINY, eval_every=3, eval_episodes=1)
    agent = TD3(
        functools.partial(ProbeFaulty, fault="raise", fault_step=5), run_dir=str(tmp_path), **settings
    )
    with pytest.raises(
        EnvError, match="simulated physics failure in the evaluation at env step 3"
    ) as excinfo:
        agent.learn(10)
    assert "step_000000003" in str(excinfo.value)
    assert load_checkpoint(tmp_path)[1]["steps"] == 3


def test_a_non_finite_loss_pending_at_an_env_error_is_reported_and_not_saved(tmp_path):
    """The save after an env exception checks the losses first: a NaN loss not yet fetched stops training as a
    NaN does, with nothing saved over the last good checkpoint."""
    agent = TD3(functools.partial(ProbeFaulty, fault="raise", fault_step=25), run_dir=str(tmp_path), **TINY)
    agent.learn(20)
    good = agent.save()
    nan = np.full(1, np.nan, np.float32)
    agent.trainer.driver.pending.append((21, {"critic_loss": nan, "actor_loss_sum": nan, "actor_steps": nan}))
    with pytest.raises(dpgkit.train.NonFiniteError, match="non-finite loss at env step 21"):
        agent.learn(10)
    assert latest_checkpoint(tmp_path) == good


def test_only_run_fields_of_a_built_agents_config_can_change(tmp_path):
    """Agent.config = ... may change the run's length, logging and checkpoints, not what built its learner."""
    agent = TD3("Pendulum-v1", run_dir=str(tmp_path), **TINY)
    agent.config = agent.config.replace(total_steps=1234, eval_every=7)
    assert agent.trainer.driver.config.total_steps == 1234
    with pytest.raises(ValueError, match=r"config field\(s\) batch_size, gamma cannot change"):
        agent.config = agent.config.replace(gamma=0.5, batch_size=4)
    assert agent.config.gamma == 0.98  # the Pendulum-v1 preset
