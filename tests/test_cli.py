"""The `dpgkit` command line, run in-process: train, resume, eval, plot, help and presets."""

from __future__ import annotations

import ctypes.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

import dpgkit
from dpgkit import cli
from dpgkit.checkpoint import load_checkpoint
from dpgkit.envs.wrappers import headless_rendering
from dpgkit.logger import RunLogger, read_metrics, run_ids

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def train_args(algo: str, run_dir) -> list[str]:
    return [
        "train", algo,
        "--env", "Pendulum-v1",
        "--total-steps", "300",
        "--learning-starts", "100",
        "--hidden", "32", "32",
        "--batch-size", "32",
        "--eval-every", "200",
        "--eval-episodes", "1",
        "--run-dir", str(run_dir),
        "--no-progress",
    ]  # fmt: skip


EVAL_LINE = re.compile(r"seed 0: evaluation return (-?\d+\.\d) ± (\d+\.\d) over 1 episodes")


def test_train_resume_eval_plot(tmp_path, capsys):
    run = tmp_path / "run"
    cli.main(train_args("td3", run))
    out = capsys.readouterr().out
    assert "training td3 on Pendulum-v1" in out
    match = EVAL_LINE.search(out)
    assert match, out
    assert -2000.0 < float(match.group(1)) <= 0.0  # Pendulum returns are in [-16.3 * 200, 0]
    assert float(match.group(2)) == 0.0  # one episode: no spread

    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_000000300"
    _arrays, meta = load_checkpoint(run)
    assert meta["algo"] == "td3" and meta["steps"] == 300 and meta["updates"] == 300 - 100 + 1
    assert meta["config"]["hidden"] == [32, 32] and meta["config"]["batch_size"] == 32
    assert meta["config"]["gamma"] == 0.98  # the Pendulum preset still applies under the options
    metrics = read_metrics(run)
    steps, values = metrics["eval/return"][0]
    assert steps.tolist() == [200]
    assert values[0] <= 0.0
    assert "losses/critic" in metrics and "charts/episodic_return" in metrics

    cli.main(["resume", str(run), "--total-steps", "400"])
    out = capsys.readouterr().out
    assert "resuming td3 on Pendulum-v1 at step 300 of 400" in out
    assert EVAL_LINE.search(out), out
    _, meta = load_checkpoint(run)
    assert meta["steps"] == 400 and meta["updates"] == 400 - 100 + 1
    assert read_metrics(run)["eval/return"][0][0].tolist() == [200, 400]
    assert run_ids(run) == [meta["run_id"]]  # the resumed run logs under its own id: one run, one curve

    cli.main(["eval", str(run), "--episodes", "2"])
    out = capsys.readouterr().out
    match = re.search(r"seed 0: (-?\d+\.\d) ± (\d+\.\d) over 2 episodes", out)
    assert match, out
    assert -4000.0 < float(match.group(1)) <= 0.0

    png = tmp_path / "curves" / "eval.png"
    cli.main(["plot", str(run), "--out", str(png)])
    assert f"wrote {png}" in capsys.readouterr().out
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert png.stat().st_size > 1000


def test_resume_records_the_new_total_steps(tmp_path, capsys):
    run = tmp_path / "run"
    args = train_args("td3", run)
    args[args.index("--total-steps") + 1] = "20"
    args[args.index("--learning-starts") + 1] = "10"
    cli.main(args)
    cli.main(["resume", str(run), "--total-steps", "30"])
    assert load_checkpoint(run)[1]["steps"] == 30
    capsys.readouterr()
    # resuming again without --total-steps continues to the run's (new) total: nothing left to do
    cli.main(["resume", str(run)])
    assert "at step 30 of 30" in capsys.readouterr().out
    assert load_checkpoint(run)[1]["config"]["total_steps"] == 30


def test_train_ddpg_paper(tmp_path, capsys):
    run = tmp_path / "paper"
    cli.main(train_args("ddpg-paper", run))
    out = capsys.readouterr().out
    assert "training ddpg-paper on Pendulum-v1" in out
    assert EVAL_LINE.search(out), out
    _, meta = load_checkpoint(run)
    assert meta["algo"] == "ddpg" and meta["steps"] == 300
    config = meta["config"]
    # Lillicrap et al.'s settings, except what the command line changed
    assert config["explore"] == "ou" and config["tau"] == 1e-3 and config["critic_l2"] == 1e-2
    assert config["critic_action_layer"] == 1 and config["num_critics"] == 1
    assert config["hidden"] == [32, 32] and config["batch_size"] == 32
    assert "eval/return" in read_metrics(run)


def test_train_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["train", "td3", "--help"])
    assert excinfo.value.code in (0, None)
    out = capsys.readouterr().out
    assert "learning-starts" in out
    assert "total-steps" in out


def test_train_unknown_algorithm_names_it_and_the_close_match(capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["train", "tdd3"])
    assert excinfo.value.code == (
        "dpgkit train: error: unknown algorithm 'tdd3'; choose one of d4pg, ddpg, ddpg-paper, dpg, td3 "
        "(did you mean td3?)"
    )


def test_train_help_lists_the_algorithms(capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["train", "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    for algo in ("d4pg", "ddpg", "ddpg-paper", "dpg", "td3"):
        assert re.search(rf"^  {re.escape(algo)} +\S", out, re.MULTILINE), out
    assert "Lillicrap" in out  # ddpg-paper is described by its own line


def test_unknown_command_is_named_with_the_close_match(capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["trian"])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    commands = ", ".join(cli.COMMANDS)
    assert commands.startswith("train, resume, eval, plot, pretrain-vae")
    assert f"dpgkit: error: unknown command 'trian'; choose one of {commands} (did you mean train?)" in err


def test_no_command_prints_usage(capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main([])
    assert excinfo.value.code == 0
    assert "dpgkit <command>" in capsys.readouterr().out


def test_preset_applies_and_options_override_it():
    assert cli.train_config("td3", ["--env", "HalfCheetah-v5"]).learning_starts == 10_000
    config = cli.train_config("td3", ["--env", "HalfCheetah-v5", "--learning-starts", "5"])
    assert config.learning_starts == 5
    assert config.total_steps == 1_000_000  # the rest of the preset still applies
    assert config.env == "HalfCheetah-v5"
    ddpg = cli.train_config("ddpg", ["--env", "Pendulum-v1", "--seeds", "2"])
    assert (ddpg.seeds, ddpg.learning_starts, ddpg.gamma, ddpg.num_critics) == (2, 1000, 0.98, 1)


def test_no_env_trains_the_default_env_with_its_preset():
    assert cli.train_config("td3", []) == cli.train_config("td3", ["--env", "Pendulum-v1"])
    config = cli.train_config("td3", [])
    assert (config.env, config.total_steps, config.learning_starts, config.gamma) == (
        "Pendulum-v1",
        20_000,
        1_000,
        0.98,
    )
    assert cli.train_config("ddpg-paper", []).tau == 1e-3  # Lillicrap et al.'s settings take no preset


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ([], 'preset [td3."Pendulum-v1"]'),
        (["--env", "Hopper-v5"], 'preset [td3."Hopper-v5"]'),
        (["--env", "dpgkit/LQR1D-v0"], "no preset"),
    ],
)
def test_train_help_says_which_preset_applies(capsys, args, shown):
    with pytest.raises(SystemExit):
        cli.main(["train", "td3", *args, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert shown in out


def test_bad_input_is_one_clear_line_not_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["train", "td3", "--env", "CartPole-v1", "--run-dir", str(tmp_path / "r")])
    assert excinfo.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("dpgkit train: error: the action space is Discrete(2)") and "Traceback" not in err
    with pytest.raises(SystemExit):
        cli.main(["eval", str(tmp_path / "missing")])
    assert "dpgkit eval: error:" in capsys.readouterr().err


def test_negative_seed_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main([*train_args("td3", tmp_path / "r"), "--seed", "-1"])
    assert excinfo.value.code == 1
    assert "dpgkit train: error: config.seed must be a number >= 0, got -1" in capsys.readouterr().err


def test_train_that_would_never_update_is_refused_before_any_work(tmp_path, capsys):
    run = tmp_path / "r"
    args = train_args("td3", run)
    args[args.index("--learning-starts") + 1] = "500"
    with pytest.raises(SystemExit) as excinfo:
        cli.main(args)
    assert excinfo.value.code == 1
    err = capsys.readouterr().err
    assert "dpgkit train: error: no gradient update would happen: training ends at env step 300" in err
    assert not (run / "checkpoints").exists()


def test_resume_to_a_total_below_the_run_says_what_to_pass(tmp_path, capsys):
    run = tmp_path / "run"
    args = train_args("td3", run)
    args[args.index("--total-steps") + 1] = "20"
    args[args.index("--learning-starts") + 1] = "10"
    cli.main(args)
    capsys.readouterr()
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["resume", str(run), "--total-steps", "15"])
    assert excinfo.value.code == 1
    err = capsys.readouterr().err
    assert f"{run} is already at step 20: --total-steps is the run's new total, not the steps to add" in err
    assert "--total-steps 35 to train 15 more" in err
    assert load_checkpoint(run)[1]["steps"] == 20


@pytest.mark.parametrize("episodes", ["0", "-2", "two"])
def test_eval_episodes_must_be_positive(tmp_path, capsys, episodes):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["eval", str(tmp_path), "--episodes", episodes])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --episodes: expected a positive integer, got '{episodes}'" in err


def test_custom_env_as_module_colon_id(tmp_path, capsys):
    run = tmp_path / "custom"
    env_id = "custom_env_module:CustomProbe-v0"
    args = train_args("td3", run)
    args[args.index("--env") + 1] = env_id
    args[args.index("--total-steps") + 1] = "40"
    args[args.index("--learning-starts") + 1] = "20"
    cli.main(args)
    assert f"training td3 on {env_id}" in capsys.readouterr().out
    assert load_checkpoint(run)[1]["config"]["env"] == env_id
    cli.main(["eval", str(run), "--episodes", "2"])
    # ProbeOneStep: reward 1 whatever the action, one step per episode
    assert "seed 0: 1.0 ± 0.0 over 2 episodes" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("env_id", "message"),
    [
        ("no_such_module_here:Foo-v0", "cannot import the module 'no_such_module_here' of the env id"),
        (
            "custom_env_module:CustomProbe-v9",
            "unknown Gymnasium environment id 'CustomProbe-v9' (importing 'custom_env_module' did not",
        ),
    ],
)
def test_custom_env_id_errors_name_the_module_or_the_id(tmp_path, capsys, env_id, message):
    with pytest.raises(SystemExit):
        cli.main(["train", "td3", "--env", env_id, "--run-dir", str(tmp_path / "r")])
    assert message in capsys.readouterr().err


def test_module_colon_id_takes_the_preset_of_the_registered_id():
    from dpgkit.presets import load_preset

    assert load_preset("td3", "some_module:Pendulum-v1") == load_preset("td3", "Pendulum-v1") != {}


def test_plot_says_when_a_metrics_file_holds_several_runs(tmp_path, capsys):
    for run_id in ("aaaaaaaa1111", "bbbbbbbb2222"):
        with RunLogger(tmp_path, [0], tensorboard=False, run_id=run_id) as logger:
            for step in (0, 1000, 2000):
                logger.log(step, {"eval/return": float(step)})
    cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")])
    out = capsys.readouterr().out
    assert f"{tmp_path}/metrics.csv holds 2 runs (aaaaaaaa, bbbbbbbb): plotted apart" in out


def test_train_piped_prints_plain_progress_lines(tmp_path, capsys):
    args = [a for a in train_args("td3", tmp_path / "run") if a != "--no-progress"]
    cli.main(args)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("train ")]
    shown = [line.split()[1] for line in lines]
    assert {f"{s}/300" for s in range(30, 301, 30)} <= set(shown)  # every tenth (and every 30 s, if slow)
    assert shown == sorted(set(shown), key=lambda x: int(x.split("/")[0]))
    assert re.fullmatch(
        r"train 300/300 \(100%\) \d+ steps/s \d+\.\d updates/s replay 300 eval -?\d+\.\d elapsed \d:\d\d:\d\d",
        lines[-1],
    )


@pytest.mark.parametrize(
    ("environ", "has_egl", "backend"),
    [
        ({}, True, "egl"),
        ({"DISPLAY": ""}, True, "egl"),
        ({"DISPLAY": ":0"}, True, None),
        ({"WAYLAND_DISPLAY": "wayland-0"}, True, None),
        ({"MUJOCO_GL": "osmesa"}, True, "osmesa"),
        ({}, False, None),
    ],
)
def test_headless_rendering_chooses_egl_only_without_a_display_or_a_choice(environ, has_egl, backend):
    headless_rendering(environ, has_egl)
    assert environ.get("MUJOCO_GL") == backend


def test_a_failed_render_says_what_to_set():
    import gymnasium as gym

    class NoGL(gym.Env):
        def render(self):
            raise RuntimeError("no OpenGL context")

    with pytest.raises(cli.RenderError, match="no OpenGL context") as excinfo:
        cli.first_frame(NoGL())
    assert "set MUJOCO_GL=egl" in str(excinfo.value) and "MUJOCO_GL=osmesa" in str(excinfo.value)


@pytest.mark.skipif(ctypes.util.find_library("EGL") is None, reason="needs libEGL (Mesa or a GPU driver)")
def test_eval_video_of_a_mujoco_env_without_a_display(tmp_path, capsys):
    run = tmp_path / "run"
    args = train_args("td3", run)
    args[args.index("--env") + 1] = "InvertedPendulum-v5"
    args[args.index("--total-steps") + 1] = "30"
    args[args.index("--learning-starts") + 1] = "20"
    cli.main(args)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(pathlib.Path(dpgkit.__file__).parents[1]), env.get("PYTHONPATH", "")]
    )
    command = [sys.executable, "-m", "dpgkit.cli", "eval", str(run), "--episodes", "1", "--video"]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    video = run / "videos" / "eval.mp4"
    assert f"video: {video}" in done.stdout
    assert video.stat().st_size > 1000


def test_train_on_a_dict_observation_with_a_torso_spec_then_resume(tmp_path, capsys):
    run = tmp_path / "run"
    options = ["--network", "parkour", "--torsos", "terrain=mlp:8@1", "--hidden", "16", "16"]
    cli.main(["train", "td3", "--env", "BipedalWalker-v3", "--total-steps", "150", "--learning-starts", "100",
              "--batch-size", "16", "--eval-every", "0", "--run-dir", str(run), "--no-progress", *options])  # fmt: skip
    _arrays, meta = load_checkpoint(run)
    assert meta["config"]["network"] == "parkour" and meta["config"]["torsos"] == ["terrain=mlp:8@1"]
    cli.main(["resume", str(run), "--total-steps", "200"])
    _arrays, meta = load_checkpoint(run)
    assert meta["steps"] == 200 and meta["config"]["torsos"] == ["terrain=mlp:8@1"]
