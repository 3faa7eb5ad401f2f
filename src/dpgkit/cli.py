"""`dpgkit train | resume | eval | plot`: the command line."""

from __future__ import annotations

import argparse
import difflib
import functools
import os
import pathlib
import sys

import numpy as np
import tyro

from dpgkit.algos import ALGORITHMS, DDPG
from dpgkit.checkpoint import CheckpointSpaceError
from dpgkit.collect.ray import RayUnavailableError, WorkerLostError
from dpgkit.config import Config, ddpg_paper_config
from dpgkit.envs.spaces import split_env_id
from dpgkit.envs.wrappers import ensure_headless_rendering
from dpgkit.presets import load_preset, preset_source
from dpgkit.train import EnvError, TrainingInterrupted

USAGE = """dpgkit <command> [options]

commands:
  train {d4pg,ddpg,ddpg-paper,dpg,td3} --env ENV_ID [options]   train (options: dpgkit train dpg --help)
  resume RUN_DIR [--total-steps N]                     continue a saved run to its total steps
  eval RUN_DIR [--episodes N] [--video]                deterministic evaluation of a saved run
  plot RUN_DIR... [--out PNG] [--key KEY]              learning curves: mean and spread over seeds
  pretrain-vae --env ENV_ID [--episodes N] [--out NPZ] a VAE encoder from random frames (--encoder vae:NPZ)
  drive RUN_DIR [--out drive.mp4] [--max-steps N]      drive LaneFollow-v0's test route: meters per disengagement
"""


def train_config(algo: str, args: list[str]) -> Config:
    """Parse train options with tyro over the algorithm's defaults and the preset of the (default) env."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env", default=None)
    known, _ = pre.parse_known_args(args)
    env = known.env or algorithm_class(algo).config_class.env
    if algo == "ddpg-paper":
        default = ddpg_paper_config().replace(env=env)
    else:
        default = ALGORITHMS[algo].default_config(env)
    description = f"{algorithm_summary(algo)}\n\n{preset_note(algo, env)}"
    return tyro.cli(
        type(default), default=default, args=args, prog=f"dpgkit train {algo}", description=description
    )


def preset_note(algo: str, env: str) -> str:
    """Which preset the defaults shown by `dpgkit train ALGO --help` include, for env."""
    if algo == "ddpg-paper":
        return f"Defaults: Lillicrap et al.'s settings on {env}; no env preset applies."
    if preset_source(algo, env) is None and not load_preset(algo, env):
        return f"Defaults: {algo}'s own on {env} (no preset for it); --env X gives X's preset, if any."
    return (
        f'Defaults: {algo}\'s with the preset [{algo}."{split_env_id(env)[1]}"] '
        "(values and sources in dpgkit/presets.toml); --env X gives X's preset instead."
    )


def unknown_choice(what: str, name: str, choices: list[str]) -> str:
    """The message for a name not among choices: all the choices, and the close matches if any."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"unknown {what} {name!r}; choose one of {', '.join(choices)}{hint}"


def train_usage() -> str:
    """The usage of `dpgkit train`, listing each algorithm with its first docstring line."""
    lines = [f"  {name:<11} {algorithm_summary(name)}" for name in train_choices()]
    return "\n".join(
        [
            "usage: dpgkit train ALGO --env ENV_ID [options]\n\nalgorithms:",
            *lines,
            "\nevery option of one algorithm, with its meaning: dpgkit train ALGO --help",
        ]
    )


def train_choices() -> list[str]:
    """The algorithm names `dpgkit train` takes."""
    return sorted([*ALGORITHMS, "ddpg-paper"])


def algorithm_summary(algo: str) -> str:
    """The first docstring line of a `dpgkit train` algorithm (DDPG.paper's for ddpg-paper)."""
    documented = DDPG.paper if algo == "ddpg-paper" else ALGORITHMS[algo]
    return documented.__doc__.splitlines()[0]


def algorithm_class(algo: str) -> type:
    """The agent class of a `dpgkit train` algorithm name."""
    return DDPG if algo == "ddpg-paper" else ALGORITHMS[algo]


def train(argv: list[str]) -> None:
    """dpgkit train ALGO [options]."""
    if argv and argv[0] in ("-h", "--help"):
        print(train_usage())
        raise SystemExit(0)
    if not argv:
        print(train_usage(), file=sys.stderr)
        raise SystemExit(2)
    if argv[0] not in train_choices():
        raise SystemExit(f"dpgkit train: error: {unknown_choice('algorithm', argv[0], train_choices())}")
    algo, args = argv[0], argv[1:]
    config = train_config(algo, args)
    agent = algorithm_class(algo)(config.env, config=config)
    print(f"training {algo} on {config.env}, {config.seeds} seed(s), logs in {agent.run_dir}")
    agent.learn()
    finish(agent)


def finish(agent) -> None:
    """Save the run, print its final evaluation and close it."""
    path = agent.save()
    returns = np.atleast_2d(agent.evaluate(agent.config.eval_episodes))
    for seed, r in zip(agent.trainer.agent_seeds, returns, strict=True):
        print(f"seed {seed}: evaluation return {r.mean():.1f} ± {r.std():.1f} over {r.size} episodes")
    print(f"saved {path}")
    agent.close()


def resume(argv: list[str]) -> None:
    """dpgkit resume RUN_DIR."""
    parser = argparse.ArgumentParser(prog="dpgkit resume", description="Continue a saved run.")
    parser.add_argument("run_dir", help="run directory holding checkpoints/")
    parser.add_argument(
        "--total-steps", type=int, default=None, help="new total env steps (default: the run's)"
    )
    parser.add_argument(
        "--collect",
        choices=("local", "ray"),
        default=None,
        help="where to collect from now on (default: the run's)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="Ray workers from now on (default: the run's)"
    )
    parser.add_argument("--ray-address", default=None, help="Ray cluster to join (default: the run's)")
    args = parser.parse_args(argv)
    from dpgkit.algos import Agent

    collection = {"collect": args.collect, "workers": args.workers, "ray_address": args.ray_address}
    agent = Agent.load(args.run_dir, **{k: v for k, v in collection.items() if v is not None})
    if args.total_steps is not None and args.total_steps < agent.steps:
        raise ValueError(
            f"{args.run_dir} is already at step {agent.steps}: --total-steps is the run's new total, not the "
            f"steps to add; pass more than {agent.steps}, e.g. --total-steps "
            f"{agent.steps + args.total_steps} to train {args.total_steps} more"
        )
    if args.total_steps is not None:
        agent.config = agent.config.replace(total_steps=args.total_steps)
    print(f"resuming {agent.name} on {agent.config.env} at step {agent.steps} of {agent.config.total_steps}")
    agent.learn()
    finish(agent)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def evaluate(argv: list[str]) -> None:
    """dpgkit eval RUN_DIR."""
    parser = argparse.ArgumentParser(
        prog="dpgkit eval", description="Deterministic evaluation of a saved run."
    )
    parser.add_argument("run_dir", help="run directory (or checkpoint folder)")
    parser.add_argument("--episodes", type=positive_int, default=10, help="episodes per seed")
    parser.add_argument(
        "--video", action="store_true", help="also record one episode to RUN_DIR/videos/eval.mp4"
    )
    args = parser.parse_args(argv)
    if args.video:
        ensure_headless_rendering()  # before mujoco is imported
    from dpgkit.algos import Agent

    agent = Agent.load(args.run_dir)
    returns = np.atleast_2d(agent.evaluate(args.episodes))
    for seed, r in zip(agent.trainer.agent_seeds, returns, strict=True):
        print(f"seed {seed}: {r.mean():.1f} ± {r.std():.1f} over {r.size} episodes")
    if args.video:
        print(f"video: {record_video(agent, pathlib.Path(args.run_dir) / 'videos' / 'eval.mp4')}")


class RenderError(RuntimeError):
    """The environment could not render frames for a video."""


RENDER_HINT = (
    "MuJoCo envs render through an OpenGL backend chosen by MUJOCO_GL: without a display set MUJOCO_GL=egl "
    "(a GPU driver or Mesa's libEGL) or MUJOCO_GL=osmesa (software, needs libOSMesa), or run with a DISPLAY"
)


def first_frame(env) -> np.ndarray:
    """The first rendered frame of env, or a RenderError saying what to set for offscreen rendering."""
    try:
        return env.render()
    except Exception as error:
        backend = os.environ.get("MUJOCO_GL", "unset")
        raise RenderError(
            f"cannot render {env.spec.id if env.spec else env} (MUJOCO_GL={backend}; {type(error).__name__}: "
            f"{error}). {RENDER_HINT}"
        ) from error


def record_video(agent, out: pathlib.Path) -> pathlib.Path:
    """Render one deterministic episode of agent seed 0 to an mp4."""
    import gymnasium as gym

    from dpgkit.evaluate import EVAL_SEED, write_video

    env = gym.make(agent.config.env, render_mode="rgb_array")
    obs, _ = env.reset(seed=EVAL_SEED)
    frames, done = [first_frame(env)], False
    while not done:
        obs, _, terminated, truncated, _ = env.step(agent.act(obs))
        frames.append(env.render())
        done = terminated or truncated
    env.close()
    return write_video(frames, out, env.metadata.get("render_fps", 30))


def drive(argv: list[str]) -> None:
    """dpgkit drive RUN_DIR."""
    parser = argparse.ArgumentParser(
        prog="dpgkit drive",
        description="Drive the held-out test route (test mode: a safety driver re-centres the car) with a saved "
        "run's deterministic policy and print the meters per disengagement.",
    )
    parser.add_argument("run_dir", help="run directory (or checkpoint folder)")
    parser.add_argument("--out", default=None, help="also write the drive to this mp4 (driver view and map)")
    parser.add_argument("--agent", type=int, default=0, help="which seed of the run drives (index, from 0)")
    parser.add_argument(
        "--max-steps", type=positive_int, default=None, help="stop after this many steps (default: the route)"
    )
    args = parser.parse_args(argv)
    from dpgkit.algos import Agent
    from dpgkit.drive import drive_route, route_env
    from dpgkit.evaluate import write_video

    agent = Agent.load(args.run_dir)
    if not 0 <= args.agent < agent.config.seeds:
        raise ValueError(f"--agent {args.agent}: the run has seeds 0..{agent.config.seeds - 1}")
    env = route_env(agent.config.env, record=args.out is not None)
    act = functools.partial(agent.act, agent=args.agent)
    run = drive_route(act, env, record=args.out is not None, max_steps=args.max_steps)
    env.close()
    print(f"seed {agent.trainer.agent_seeds[args.agent]} on the test route: {run.summary()}")
    if args.out is not None:
        print(f"video: {write_video(run.frames, args.out, env.metadata.get('render_fps', 10))}")
    agent.close()


def plot(argv: list[str]) -> None:
    """dpgkit plot RUN_DIR..."""
    parser = argparse.ArgumentParser(prog="dpgkit plot", description="Plot learning curves of runs.")
    parser.add_argument("run_dirs", nargs="+", help="run directories")
    parser.add_argument("--out", default=None, help="PNG path (default: FIRST_RUN/curves.png)")
    parser.add_argument("--key", default="eval/return", help="logged key to plot")
    parser.add_argument(
        "--reference", default=None, help="CSV of reference curves (env,seed,step,eval_return)"
    )
    parser.add_argument(
        "--reference-env", default=None, help="env name in the reference CSV, e.g. HalfCheetah"
    )
    parser.add_argument("--max-step", type=int, default=None, help="crop the x axis")
    args = parser.parse_args(argv)
    from dpgkit.logger import run_ids
    from dpgkit.plot import plot_runs

    for run_dir in args.run_dirs:
        ids = run_ids(run_dir) if (pathlib.Path(run_dir) / "metrics.csv").is_file() else []
        if len(ids) > 1:
            print(
                f"{run_dir}/metrics.csv holds {len(ids)} runs ({', '.join(i[:8] for i in ids)}): plotted apart"
            )
    out = plot_runs(args.run_dirs, args.out, args.key, args.reference, args.reference_env, args.max_step)
    print(f"wrote {out}")


def pretrain_vae(argv: list[str]) -> None:
    """dpgkit pretrain-vae --env ENV_ID [options]."""
    from dpgkit.config import VAEConfig
    from dpgkit.pretrain import pretrain_vae as pretrain

    config = tyro.cli(VAEConfig, args=argv, prog="dpgkit pretrain-vae")
    done = pretrain(config)
    print(
        f"VAE of {config.env} learnt from {done.frames} frames: reconstruction loss {done.reconstruction:.3f} "
        f"(sum of squares per frame), KL {done.kl:.3f} (posterior means, over all frames)"
    )
    print(f"saved {done.path} (train with --encoder vae:{done.path}); reconstructions in {done.png}")


COMMANDS = {
    "train": train,
    "resume": resume,
    "eval": evaluate,
    "plot": plot,
    "pretrain-vae": pretrain_vae,
    "drive": drive,
}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `dpgkit` command."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0)
    if argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        print(f"dpgkit: error: {unknown_choice('command', argv[0], list(COMMANDS))}", file=sys.stderr)
        raise SystemExit(2)
    try:
        COMMANDS[argv[0]](argv[1:])
    except TrainingInterrupted as stop:
        print(f"dpgkit {argv[0]}: stopped by {stop}", file=sys.stderr)
        raise SystemExit(130) from stop
    except (
        ValueError,
        TypeError,
        FileNotFoundError,
        FloatingPointError,
        RenderError,
        EnvError,
        CheckpointSpaceError,
        RayUnavailableError,
        WorkerLostError,
    ) as error:
        print(f"dpgkit {argv[0]}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
