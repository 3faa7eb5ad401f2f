"""Overestimation on Hopper-v5 (Fujimoto et al. 2018, Fig. 1): the critic's estimate against the true value over
training for DDPG, DDPG with clipped double-Q (CDQ) and TD3.

The estimate and the true value are dpgkit's value-error diagnostic (README, "Value error"): at every evaluation
(every 5,000 steps, 10 deterministic episodes) critic 1's mean Q(s_t, a_t) and the mean discounted return that
followed, over the evaluation states whose return is observed; Fujimoto et al. average 1,000 rollouts from replay
states instead. Variants: "Our DDPG" (`ddpg`), CDQ (`ddpg` with num_critics 2, policy_delay 1, target_noise 0: the
clipped double-Q target alone) and TD3; `td3-paper` is TD3 with the settings of the code behind the TD3 paper's
published curves (Adam 1e-3, 400-300 networks, batch 100) instead of the authors' later defaults that dpgkit takes
(3e-4, 256-256, batch 256), to tell settings from task versions. Learning from step 1,000 (the TD3 paper's Hopper
setting and the Hopper-v5 presets), K=1, 3 seeds vmapped in one process per variant. Each variant's evaluation
rows go to benchmarks/results/overestimation_hopper_200k_<variant>_eval.csv; a variant whose committed rows reach
--steps is not trained again, an unfinished one resumes from its checkpoint in --out. Writes the plot and a
summary JSON with the command: returns, per-seed value_bias at 100k and 200k, and Welch's t of DDPG against CDQ.

    python benchmarks/overestimation.py --out benchmarks/out/overestimation

`--only ddpg` (cdq, td3) trains one variant, then summarises whatever has rows.
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

VARIANTS = {
    "ddpg": ("ddpg", {"learning_starts": 1_000}),
    "cdq": ("ddpg", {"learning_starts": 1_000, "num_critics": 2, "policy_delay": 1, "target_noise": 0.0}),
    "td3": ("td3", {"learning_starts": 1_000}),
    "td3-paper": (
        "td3",
        {
            "learning_starts": 1_000,
            "actor_lr": 1e-3,
            "critic_lr": 1e-3,
            "hidden": (400, 300),
            "batch_size": 100,
        },
    ),
}
LABELS = {
    "ddpg": "Our DDPG",
    "cdq": "CDQ (DDPG + clipped double Q)",
    "td3": "TD3",
    "td3-paper": "TD3, the paper's settings",
}


def plot(rows: dict[str, Path], out: Path, max_step: int) -> Path:
    """Left: estimate (solid) and true value (dashed) per variant, mean over seeds; right: evaluation return."""
    fig = Figure(figsize=(12, 4.5))
    FigureCanvasAgg(fig)
    values_ax, returns_ax = fig.subplots(1, 2)
    for name, path in rows.items():
        metrics = read_metrics(path)
        if "eval/q_estimate" not in metrics:
            continue
        steps, estimate, _ = aggregate_seeds(metrics["eval/q_estimate"], max_step)
        (line,) = values_ax.plot(steps, estimate, label=f"{LABELS[name]}: estimate")
        steps, truth, _ = aggregate_seeds(metrics["eval/discounted_return"], max_step)
        values_ax.plot(
            steps, truth, linestyle="--", color=line.get_color(), label=f"{LABELS[name]}: true value"
        )
        steps, mean, std = aggregate_seeds(metrics["eval/return"], max_step)
        returns_ax.plot(steps, mean, color=line.get_color(), label=LABELS[name])
        returns_ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    values_ax.set(xlabel="step", ylabel="value", title="Hopper-v5: critic 1's estimate and the true value")
    returns_ax.set(xlabel="step", ylabel="eval/return", title="evaluation return (mean ± 1 std over seeds)")
    for ax in (values_ax, returns_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "overestimation.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def main() -> None:
    """Train (or reuse) each variant, plot, summarise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/overestimation")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help="smaller for a smoke test")
    args = parser.parse_args()
    out, prefix = Path(args.out), f"overestimation_{args.env.split('-')[0].lower()}_{args.steps // 1000}k"
    rows = train_variants(
        VARIANTS, args.only, out, Path(args.results), prefix, args.env, args.seeds, args.steps,
        eval_every=args.eval_every,
    )  # fmt: skip
    checkpoints = sorted({args.steps // 2, args.steps})
    summary: dict = {
        "command": "python " + shlex.join(sys.argv),
        "rows": {n: str(p) for n, p in rows.items()},
    }
    for name, path in rows.items():
        summary[name] = {
            f"{step}": {
                "return": spread(values_at(path, "eval/return", step)),
                "q_estimate": spread(values_at(path, "eval/q_estimate", step)),
                "discounted_return": spread(values_at(path, "eval/discounted_return", step)),
                "value_bias": spread(values_at(path, "eval/value_bias", step)),
                "value_bias_relative": spread(values_at(path, "eval/value_bias_relative", step)),
            }
            for step in checkpoints
        }
    if {"ddpg", "cdq"} <= set(rows):
        for step in checkpoints:
            ddpg, cdq = (np.array(values_at(rows[n], "eval/value_bias", step)) for n in ("ddpg", "cdq"))
            if len(ddpg) > 1 and len(cdq) > 1:
                difference, error, t = welch_t(ddpg, cdq)
                summary[f"value_bias_ddpg_minus_cdq_{step}"] = {
                    "difference": difference,
                    "error": error,
                    "t": t,
                }
    summary["plot"] = str(plot(rows, out, args.steps))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
