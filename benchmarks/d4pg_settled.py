"""D4PG on HalfCheetah-v5 to 100k steps, part by part: which of its settings costs the return (issue 12).

Every variant trains 3 seeds vmapped in one process on the schedule of returns_family.py (learning from step
10,000, K=1, evaluation every 5,000 steps on 10 fixed episodes), with the HalfCheetah-v5 presets otherwise:
  ddpg, ddpg-n5-per: "Our DDPG", then with D4PG's 5-step returns and prioritized replay (no categorical critic);
  d4pg: the preset, 51 atoms on [-100, 1500], n = 5, prioritized replay; d4pg-n1, d4pg-n3: other n;
  d4pg-uniform: uniform replay; d4pg-n1-uniform, d4pg-n3-uniform: both changes together (preset candidates);
  d4pg-replay50k: a 50,000-transition replay instead of the whole run's;
  d4pg-support1500: support [-1500, 1500]; d4pg-support-fitted: v_min/v_max unset, derived from the warm-up;
  acme, acme-k1: Acme's D4PG settings (uniform replay, Gaussian sigma 0.3, one update per 8 steps (acme) or per
    step (acme-k1), learning from step 1,000, actor 300-200 and critic 400-300 LayerNorm torsos, hard targets
    every 100 updates, dQ/da clipped to norm 1, gradients to global norm 40, Adam 1e-4); their support is
    Acme's [-150, 150] for Control Suite returns (rewards in [0, 1]) scaled by 10 for HalfCheetah's rewards
    (up to about 10 per step for a fast cheetah): [-1500, 1500].
Each variant's evaluation rows go to benchmarks/results/d4pg_settled_halfcheetah_100k_<variant>_eval.csv; a
variant whose committed rows reach --steps is not trained again, an unfinished one resumes from its checkpoint in
--out. Writes a plot and a summary JSON with the command: the return at half and full steps with its spread, and
each variant against the preset at full steps (difference, standard error, Welch's t).

    python benchmarks/d4pg_settled.py --out benchmarks/out/d4pg-settled              # every variant in turn
    python benchmarks/d4pg_settled.py --out benchmarks/out/d4pg-settled --only acme acme-k1
    python benchmarks/d4pg_settled.py --out benchmarks/out/d4pg-settled --only d4pg --first-seed 3 --seeds 2
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
from returns_vs_sb3 import EVAL_EVERY
from variant_runs import spread, train_variants, values_at

from dpgkit.logger import read_metrics
from dpgkit.plot import aggregate_seeds

ACME = {
    "replay": "uniform",
    "noise_sigma": 0.3,
    "train_freq": 8,
    "gradient_steps": 1,
    "learning_starts": 1_000,
    "actor_hidden": (300, 200),
    "critic_hidden": (400, 300),
    "torso": "layernorm",
    "target_update_every": 100,
    "dqda_clip": 1.0,
    "max_grad_norm": 40.0,
    "actor_lr": 1e-4,
    "critic_lr": 1e-4,
    "v_min": -1500.0,
    "v_max": 1500.0,
}
PAPER = {"n_step": 5, "replay": "prioritized"}
"""The D4PG paper's n and replay (D4PGConfig's defaults; the HalfCheetah-v5 preset took n = 1 from this benchmark),
from which every D4PG variant here starts: the "d4pg" rows are the preset as it was."""
VARIANTS = {
    "ddpg": ("ddpg", {}),
    "ddpg-n5-per": ("ddpg", PAPER),
    "d4pg": ("d4pg", PAPER),
    "d4pg-n1": ("d4pg", PAPER | {"n_step": 1}),
    "d4pg-n3": ("d4pg", PAPER | {"n_step": 3}),
    "d4pg-uniform": ("d4pg", PAPER | {"replay": "uniform"}),
    "d4pg-n1-uniform": ("d4pg", PAPER | {"n_step": 1, "replay": "uniform"}),
    "d4pg-n3-uniform": ("d4pg", PAPER | {"n_step": 3, "replay": "uniform"}),
    "d4pg-replay50k": ("d4pg", PAPER | {"buffer_size": 50_000}),
    "d4pg-support1500": ("d4pg", PAPER | {"v_min": -1500.0, "v_max": 1500.0}),
    "d4pg-support-fitted": ("d4pg", PAPER | {"v_min": None, "v_max": None}),
    "acme": ("d4pg", PAPER | ACME),
    "acme-k1": ("d4pg", PAPER | ACME | {"train_freq": 1}),
}


def against_preset(rows: dict[str, Path], step: int) -> dict:
    """Each variant's return at step minus the preset's (d4pg), its standard error and Welch's t; a variant
    explains the gap when |t| > 2 (the issue's two standard errors)."""
    preset = np.array(values_at(rows["d4pg"], "eval/return", step))
    comparison = {}
    for name, path in rows.items():
        values = np.array(values_at(path, "eval/return", step))
        if name == "d4pg" or len(values) < 2:
            continue
        difference, error, t = welch_t(values, preset)
        comparison[name] = {"difference": difference, "error": error, "t": t, "explains": bool(abs(t) > 2)}
    return comparison


def plot(rows: dict[str, Path], out: Path, max_step: int) -> Path:
    """Evaluation return of each variant, mean ± 1 std over seeds."""
    fig = Figure(figsize=(10, 6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, path in rows.items():
        steps, mean, std = aggregate_seeds(read_metrics(path)["eval/return"], max_step)
        (line,) = ax.plot(steps, mean, label=name)
        ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.12, linewidth=0)
    ax.set(xlabel="step", ylabel="eval/return", title="HalfCheetah-v5: D4PG part by part (mean ± 1 std)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path = out / "d4pg_settled.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def main() -> None:
    """Train (or reuse) each variant, plot, summarise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/d4pg-settled")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="3 with --seeds 2: seeds 3-4 join the committed rows of 0-2"
    )
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help="smaller for a smoke test")
    args = parser.parse_args()
    out = Path(args.out)
    prefix = f"d4pg_settled_{args.env.split('-')[0].lower()}_{args.steps // 1000}k"
    rows = train_variants(
        VARIANTS, args.only, out, Path(args.results), prefix, args.env, args.seeds, args.steps,
        first_seed=args.first_seed, eval_every=args.eval_every,
    )  # fmt: skip
    summary: dict = {
        "command": "python " + shlex.join(sys.argv),
        "rows": {n: str(p) for n, p in rows.items()},
    }
    for name, path in rows.items():
        summary[name] = {
            f"return_{step}": spread(values_at(path, "eval/return", step))
            for step in sorted({args.steps // 2, args.steps})
        } | {"value_bias_final": spread(values_at(path, "eval/value_bias", args.steps))}
    if "d4pg" in rows:
        summary[f"against_preset_{args.steps}"] = against_preset(rows, args.steps)
    summary["plot"] = str(plot(rows, out, args.steps))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
