"""Evaluation returns of D4PG, TD3 and TD3+PER on HalfCheetah-v5 to 100k steps, against the TD3 paper's curves.

Settings as in returns_vs_sb3.py (learning from step 10,000, evaluation every 5,000 steps on 10 fixed episodes,
K=1); each algorithm trains its seeds vmapped in one process and checkpoints every 10,000 steps, so rerunning
the command resumes. D4PG runs with its HalfCheetah-v5 preset's support and the paper's settings (51 atoms, n=5,
prioritized replay; the preset takes n = 1 since benchmarks/d4pg_settled.py). Writes a plot, a JSON summary with the command, and the mean env steps per second.

    python benchmarks/returns_family.py --out benchmarks/out/family --seeds 3 --steps 100000

Each variant is one benchmark of about 20-40 minutes on 2 quiet cores (`--only td3`, `--only td3-per`,
`--only d4pg`); the plain command runs the three one after another, then summarises.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
from returns_vs_sb3 import LEARNING_STARTS, final_returns, reference_path, run_dpgkit

from dpgkit.logger import read_metrics
from dpgkit.plot import plot_runs
from dpgkit.presets import load_preset

VARIANTS = {
    "td3": ("td3", {}),
    "td3-per": ("td3", {"replay": "prioritized"}),
    "d4pg": ("d4pg", {"n_step": 5}),
}


def mean_sps(run_dir: Path) -> float:
    """Mean of the logged env steps per second (per seed) over the log intervals after warm-up (NaN if none)."""
    steps, values = next(iter(read_metrics(run_dir)["charts/SPS"].values()))
    learning = values[steps > LEARNING_STARTS + 1_000]
    return float(np.mean(learning)) if learning.size else float("nan")


def main() -> None:
    """Train (or resume) each variant, plot, summarise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/family")
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    out = Path(args.out)
    for name in args.only:
        algo, overrides = VARIANTS[name]
        support = {k: v for k, v in load_preset(algo, args.env).items() if k in ("v_min", "v_max")}
        run_dpgkit(out, args.env, args.seeds, args.steps, 1, 0, algo=algo, name=name, **support, **overrides)
    runs = {name: out / name for name in VARIANTS if (out / name / "metrics.csv").exists()}
    summary = {"command": "python " + shlex.join(sys.argv)}
    for name, run_dir in runs.items():
        returns = final_returns(run_dir, args.steps)
        summary[name] = {
            "returns": returns,
            "mean": float(np.mean(returns)) if returns else None,
            "std": float(np.std(returns)) if returns else None,
            "env_steps_per_second": mean_sps(run_dir),
        }
        print(f"{name}: {summary[name]}")
    png = plot_runs(
        [str(r) for r in runs.values()],
        str(out / "curves.png"),
        reference=reference_path(),
        reference_env=args.env.split("-")[0],
        max_step=args.steps,
    )
    summary["plot"] = str(png)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
