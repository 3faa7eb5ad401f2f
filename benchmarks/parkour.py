"""Parkour networks on BipedalWalker: early fusion against the parkour network (proprioception at layer 0, the
lidar terrain through its own (32, 32) stream joining layer 1; parameter counts within 10%), TD3 from the
BipedalWalker presets with a 256-256 trunk.

BipedalWalker-v3: 3 seeds per network (vmapped in one process) to 300,000 steps, curves and Welch's t of the
returns at 300k. BipedalWalkerHardcore-v3: one seed per network to 200,000 steps, curves only (for scale: RL
Zoo reports TD3 at -98 after 10M steps on Hardcore, TQC at 235 after 2M). Each variant's evaluation rows go to
benchmarks/results/parkour_<env>_<steps>k_<variant>_eval.csv; a variant whose committed rows reach --steps is
not trained again, an unfinished one resumes from its checkpoint in --out. With --seeds 1 --first-seed S each seed
trains in a run of its own and joins the same rows (more CPU than the vmapped three, but a seed's rows land as
it ends, so a machine that does not come back loses at most one seed's run). Writes the plot and a summary JSON
with the command next to the rows (parkour_<env>_<steps>k.png, parkour_<env>_<steps>k_summary.json).

    python benchmarks/parkour.py --out benchmarks/out/parkour
    python benchmarks/parkour.py --out benchmarks/out/parkour-hardcore --env BipedalWalkerHardcore-v3 \\
        --seeds 1 --steps 200000
    python benchmarks/parkour.py --out benchmarks/out/parkour --only early --seeds 1 --first-seed 2
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
from compare_returns import welch_t
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from variant_runs import spread, train_variants, values_at

from dpgkit.logger import read_metrics
from dpgkit.plot import aggregate_seeds

TRUNK = {"hidden": (256, 256)}
"""Both networks' trunk: the 256-256 the parkour stream is sized against (the preset's 400-300 costs 1.8x the
FLOPs per update)."""
VARIANTS = {
    "early": ("td3", {"network": "early"} | TRUNK),
    "parkour": ("td3", {"network": "parkour"} | TRUNK),
}


def plot(rows: dict[str, Path], path: Path, env: str, max_step: int) -> Path:
    """Evaluation return (mean and std over seeds) of each network, drawn to path."""
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, csv in rows.items():
        steps, mean, std = aggregate_seeds(read_metrics(csv)["eval/return"], max_step)
        (line,) = ax.plot(steps, mean, label=name)
        ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set(xlabel="step", ylabel="eval/return", title=f"{env}: TD3, early fusion against parkour")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def main() -> None:
    """Train (or reuse) each network, plot, summarise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/parkour")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--env", default="BipedalWalker-v3")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="with --seeds 1: one seed per run, its rows committed as it ends",
    )
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    out = Path(args.out)
    prefix = f"parkour_{args.env.split('-')[0].lower()}_{args.steps // 1000}k"
    rows = train_variants(
        VARIANTS,
        args.only,
        out,
        Path(args.results),
        prefix,
        args.env,
        args.seeds,
        args.steps,
        args.first_seed,
    )
    summary: dict = {
        "command": "python " + shlex.join(sys.argv),
        "rows": {n: str(p) for n, p in rows.items()},
    }
    for name, path in rows.items():
        summary[name] = {
            str(step): spread(values_at(path, "eval/return", step)) for step in (args.steps // 2, args.steps)
        }
    if set(VARIANTS) <= set(rows):
        early, parkour = (
            np.array(values_at(rows[n], "eval/return", args.steps)) for n in ("early", "parkour")
        )
        if len(early) > 1 and len(parkour) > 1:
            difference, error, t = welch_t(parkour, early)
            summary[f"return_parkour_minus_early_{args.steps}"] = {
                "difference": difference,
                "error": error,
                "t": t,
            }
    if rows:
        summary["plot"] = str(plot(rows, Path(args.results) / f"{prefix}.png", args.env, args.steps))
    (Path(args.results) / f"{prefix}_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
