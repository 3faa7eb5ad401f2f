"""Variants of one benchmark, each trained once: its evaluation rows are committed to benchmarks/results/ as
<prefix>_<variant>_eval.csv, and a variant whose committed rows reach the final step on every seed is not trained
again. An unfinished variant resumes from its last checkpoint in the out dir (returns_vs_sb3.run_dpgkit). More
seeds of a finished variant (first_seed > 0) train in a run of their own and join the same rows file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from returns_vs_sb3 import run_dpgkit

from dpgkit.logger import HEADER, read_metrics

Variant = tuple[str, dict]
"""(algo, config overrides)."""


def eval_csv(results: Path, prefix: str, name: str) -> Path:
    """Where a variant's evaluation rows are committed."""
    return results / f"{prefix}_{name}_eval.csv"


def finished(path: Path, steps: int, seeds: range) -> bool:
    """Whether the rows at path hold eval/return at `steps` for every seed in `seeds`."""
    if not path.exists():
        return False
    curves = read_metrics(path).get("eval/return", {})
    return all(seed in curves and steps in curves[seed][0] for seed in seeds)


def eval_rows(path: Path) -> list[list[str]]:
    """The eval/ rows of a metrics file (header left out)."""
    with open(path, newline="") as source:
        return [row for row in csv.reader(source) if row[2].startswith("eval/")]


def write_eval_rows(run_dir: Path, path: Path) -> None:
    """Write the eval/ rows of a run's metrics.csv to path, keeping the rows path already has for other seeds."""
    rows = eval_rows(run_dir / "metrics.csv")
    seeds = {row[1] for row in rows}
    if path.exists():
        rows = [row for row in eval_rows(path) if row[1] not in seeds] + rows
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as target:
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)


def train_variants(
    variants: dict[str, Variant], only: list[str], out: Path, results: Path, prefix: str, env: str, seeds: int,
    steps: int, first_seed: int = 0, **common,
) -> dict[str, Path]:  # fmt: skip
    """Train (or resume, or reuse the committed rows of) each variant in `only` on seeds first_seed ..
    first_seed + seeds - 1, at K=1 with the `common` config overrides under the variant's own; the rows of every
    variant that has them, by name."""
    trained = range(first_seed, first_seed + seeds)
    for name in only:
        path = eval_csv(results, prefix, name)
        if finished(path, steps, trained):
            print(
                f"{name}: committed rows in {path} reach step {steps} on seeds {list(trained)}; not trained again"
            )
            continue
        algo, overrides = variants[name]
        run_name = name if first_seed == 0 else f"{name}-seed{first_seed}"
        run_dir = run_dpgkit(
            out, env, seeds, steps, 1, first_seed, algo=algo, name=run_name, **(common | overrides)
        )
        write_eval_rows(run_dir, path)
    return {
        name: eval_csv(results, prefix, name) for name in variants if eval_csv(results, prefix, name).exists()
    }


def values_at(path: Path, key: str, step: int) -> list[float]:
    """Each seed's value of key at step (seeds without one left out)."""
    curves = read_metrics(path).get(key, {})
    return [float(v[s == step][-1]) for s, v in curves.values() if np.any(s == step)]


def spread(values: list[float]) -> dict:
    """The values with their mean and (population) std, None where there are none."""
    return {
        "values": values,
        "mean": float(np.mean(values)) if values else None,
        "std": float(np.std(values)) if values else None,
    }
