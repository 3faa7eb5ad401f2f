"""Compare evaluation returns of runs against a reference run: per-seed table, ratio, Welch's t, bootstrap interval.

Each argument is a run dir or an evaluation CSV (step,seed,key,value), such as the rows committed in
benchmarks/results/; the last one is the reference. The numbers in RESULTS.md come from, for example:

    python benchmarks/compare_returns.py benchmarks/results/halfcheetah_100k_k4_lr1e-3_dpgkit_h200_eval.csv \
        benchmarks/results/halfcheetah_100k_k4_lr1e-3_sb3_eval.csv --seeds 0-4

The interval is the 5th to 95th percentile of the ratio of means over resampled seeds (fixed seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dpgkit.logger import read_metrics

Curves = dict[int, tuple[np.ndarray, np.ndarray]]


def seed_range(text: str) -> list[int]:
    """Seeds from "0-4" or "0,2,5"."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-"))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def returns_at(curves: Curves, step: int, seeds: list[int]) -> np.ndarray:
    """Each seed's value at `step`; names the seed and step that are missing."""
    values = []
    for seed in seeds:
        if seed not in curves or not np.any(curves[seed][0] == step):
            raise ValueError(f"seed {seed} has no value at step {step}")
        steps, seed_values = curves[seed]
        values.append(seed_values[steps == step][-1])
    return np.array(values)


def welch_t(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Difference of means, its standard error sqrt(s_a²/n_a + s_b²/n_b), and Welch's t = difference / error."""
    error = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    difference = float(a.mean() - b.mean())
    return difference, error, difference / error


def bootstrap_ratio_interval(
    a: np.ndarray, b: np.ndarray, level: float = 0.9, draws: int = 20_000, seed: int = 0
) -> tuple[float, float]:
    """Central `level` interval of mean(a*)/mean(b*), each resampled with replacement over its seeds."""
    rng = np.random.default_rng(seed)
    ratios = rng.choice(a, (draws, len(a))).mean(1) / rng.choice(b, (draws, len(b))).mean(1)
    tail = 50 * (1 - level)
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def table_rows(label: str, curves: Curves, steps: list[int], seeds: list[int]) -> list[str]:
    """Markdown rows: one per seed at `steps`, then the mean at each step and mean ± std at the last."""
    columns = np.stack([returns_at(curves, step, seeds) for step in steps], axis=1)
    rows = [
        f"| {label} seed {s} | " + " | ".join(f"{v:.0f}" for v in row) + " |"
        for s, row in zip(seeds, columns)
    ]
    means = " | ".join(f"{v:.0f}" for v in columns[:, :-1].mean(0))
    last = columns[:, -1]
    rows.append(f"| {label}, mean of {len(seeds)} | {means} | {last.mean():.0f} ± {last.std():.0f} |")
    return rows


def main() -> None:
    """Print the table of every run and each run's comparison with the reference (the last run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run dirs or evaluation CSVs; the last is the reference")
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0-4"), help='"0-4" or "0,2,5"')
    parser.add_argument("--steps", type=int, nargs="+", default=[25_000, 50_000, 75_000, 100_000])
    parser.add_argument("--key", default="eval/return")
    args = parser.parse_args()
    curves = {
        Path(run).stem if Path(run).is_file() else Path(run).name: read_metrics(run)[args.key]
        for run in args.runs
    }
    for label, run_curves in curves.items():
        print("\n".join(table_rows(label, run_curves, args.steps, args.seeds)))
    *others, reference = curves
    ref = returns_at(curves[reference], args.steps[-1], args.seeds)
    for label in others:
        values = returns_at(curves[label], args.steps[-1], args.seeds)
        difference, error, t = welch_t(values, ref)
        low, high = bootstrap_ratio_interval(values, ref)
        print(
            f"{label} / {reference} at {args.steps[-1]}: ratio {values.mean() / ref.mean():.3f}, difference "
            f"{difference:.0f} ± {error:.0f}, Welch's t {t:.2f}, bootstrap 90% interval {low:.2f}-{high:.2f}"
        )


if __name__ == "__main__":
    main()
