"""DDPG on MountainCarContinuous-v0 with four ways to explore: how many seeds reach a return of 90, and when.

Small action noise (Gaussian sigma 0.1) rarely finds the reward; RL Zoo solves the task with large OU noise
(sigma 0.5, the control here); parameter-space noise and NoisyNet explore through the actor's weights.
Each mode trains its seeds vmapped in one process (64-64 networks, learning from step 1,000, one update per
step), evaluating every 2,500 steps on 10 fixed episodes; runs checkpoint every 10,000 steps and the command
resumes. Writes a plot of the evaluation curves and a JSON summary with the command.

    python benchmarks/mountaincar_explore.py --out benchmarks/out/mountaincar --seeds 3 --steps 50000
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from dpgkit import DDPG
from dpgkit.logger import read_metrics
from dpgkit.plot import plot_runs

MODES = {
    "gaussian-0.1": {"explore": "gaussian", "noise_sigma": 0.1},
    "ou-0.5": {"explore": "ou", "noise_sigma": 0.5, "ou_theta": 0.15},
    "param": {"explore": "param"},
    "noisy": {"explore": "noisy"},
}
SETTINGS = {
    "hidden": (64, 64),
    "learning_starts": 1_000,
    "eval_every": 2_500,
    "eval_episodes": 10,
    "checkpoint_every": 10_000,
}


def train(out: Path, mode: str, seeds: int, steps: int) -> Path:
    """Train (or resume) one mode with its seeds vmapped; returns the run dir."""
    run_dir = out / mode
    if (run_dir / "checkpoints" / "LATEST").exists():
        agent = DDPG.load(run_dir)
    else:
        agent = DDPG(
            "MountainCarContinuous-v0",
            seed=0,
            seeds=seeds,
            total_steps=steps,
            run_dir=str(run_dir),
            **SETTINGS,
            **MODES[mode],
        )
    agent.learn()
    agent.save()
    return run_dir


def first_reaching(run_dir: Path, threshold: float) -> dict[int, int | None]:
    """Per seed, the first evaluated step with a mean return of at least threshold (None: never)."""
    found = {}
    for seed, (steps, values) in read_metrics(run_dir)["eval/return"].items():
        hits = steps[values >= threshold]
        found[seed] = int(hits[0]) if hits.size else None
    return found


def main() -> None:
    """Train every mode, then plot and summarise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/mountaincar")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--threshold", type=float, default=90.0)
    parser.add_argument("--only", nargs="*", choices=list(MODES), default=list(MODES))
    args = parser.parse_args()
    out = Path(args.out)
    for mode in args.only:
        train(out, mode, args.seeds, args.steps)
    summary = {"command": "python " + shlex.join(sys.argv), "threshold": args.threshold, "modes": {}}
    runs = [out / mode for mode in MODES if (out / mode / "metrics.csv").exists()]
    for run_dir in runs:
        reached = first_reaching(run_dir, args.threshold)
        final = {
            seed: float(values[-1]) for seed, (_, values) in read_metrics(run_dir)["eval/return"].items()
        }
        summary["modes"][run_dir.name] = {
            "seeds_reaching": sum(step is not None for step in reached.values()),
            "first_step_reaching": reached,
            "final_return": final,
            "mean_final_return": float(np.mean(list(final.values()))),
        }
        print(run_dir.name, summary["modes"][run_dir.name])
    summary["plot"] = str(plot_runs([str(r) for r in runs], str(out / "curves.png"), max_step=args.steps))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
