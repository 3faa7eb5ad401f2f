"""Learning-curve plots (mean ± 1 std over seeds) for runs written by RunLogger."""

from __future__ import annotations

import csv
import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dpgkit.logger import METRICS_FILE, read_metrics, run_ids

REFERENCE_COLUMNS = ("env", "seed", "step", "eval_return")


def aggregate_seeds(
    curves: Mapping[int, tuple[np.ndarray, np.ndarray]], max_step: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate seeds onto their union of steps in the range all cover (up to max_step); return (steps, mean, std)."""
    if not curves:
        raise ValueError("no curves to aggregate")
    lo = max(s[0] for s, _ in curves.values())
    hi = min(s[-1] for s, _ in curves.values())
    if lo > hi:
        raise ValueError(f"seeds share no common step range (latest start {lo} > earliest end {hi})")
    grid = np.unique(np.concatenate([s for s, _ in curves.values()]))
    if max_step is not None:
        hi = min(hi, max_step)
    grid = grid[(grid >= lo) & (grid <= hi)]
    values = np.stack([np.interp(grid, s, v) for s, v in curves.values()])
    return grid, values.mean(axis=0), values.std(axis=0)


def _read_reference(path: str | os.PathLike, env: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Read one env's per-seed curves from a CSV with columns env,seed,step,eval_return."""
    per_seed: dict[int, list[tuple[int, float]]] = {}
    envs = set()
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not set(REFERENCE_COLUMNS) <= set(reader.fieldnames or ()):
            raise ValueError(
                f"{path}: expected columns {','.join(REFERENCE_COLUMNS)}, got {reader.fieldnames}"
            )
        for row in reader:
            envs.add(row["env"])
            if row["env"] == env:
                per_seed.setdefault(int(row["seed"]), []).append(
                    (int(row["step"]), float(row["eval_return"]))
                )
    if not per_seed:
        raise ValueError(f"{path}: no rows for env {env!r}; envs present: {sorted(envs)}")
    curves = {}
    for seed, rows in per_seed.items():
        rows.sort()
        curves[seed] = (np.array([s for s, _ in rows], dtype=np.int64), np.array([v for _, v in rows]))
    return curves


def _plot_band(ax, curves, max_step, label, **line_kw) -> None:
    """Draw the mean over seeds as a line and ±1 std as a shaded band of the same colour."""
    steps, mean, std = aggregate_seeds(curves, max_step)
    (line,) = ax.plot(steps, mean, label=label, **line_kw)
    ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)


def run_curves(run_dir: str | os.PathLike, key: str) -> list[tuple[str, dict]]:
    """(label, {seed: (steps, values)}) of `key` for each run that logged to run_dir, apart when several did."""
    if not (pathlib.Path(run_dir) / METRICS_FILE).is_file():
        raise ValueError(f"{run_dir}: no {METRICS_FILE} found")
    name = pathlib.Path(os.path.abspath(run_dir)).name
    ids = run_ids(run_dir)
    if len(ids) < 2:
        metrics = read_metrics(run_dir)
        if key not in metrics:
            raise ValueError(f"{run_dir}: key {key!r} not logged; keys present: {sorted(metrics)}")
        return [(name, metrics[key])]
    per_run = {run_id: read_metrics(run_dir, run_id) for run_id in ids}
    curves = [
        (f"{name}, run {run_id[:8] or '(unnamed)'}", m[key]) for run_id, m in per_run.items() if key in m
    ]
    if not curves:
        keys = sorted({k for m in per_run.values() for k in m})
        raise ValueError(
            f"{run_dir}: key {key!r} not logged by any of its {len(ids)} runs; keys present: {keys}"
        )
    return curves


def plot_runs(
    run_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    key: str = "eval/return",
    reference: str | os.PathLike | None = None,
    reference_env: str | None = None,
    max_step: int | None = None,
) -> pathlib.Path:
    """Plot `key` per run (mean ± 1 std over seeds), optionally vs. the TD3 paper; save a PNG, return its path."""
    if not run_dirs:
        raise ValueError("plot_runs needs at least one run dir")
    if reference is not None and reference_env is None:
        raise ValueError("reference_env (e.g. 'HalfCheetah') is required when reference is given")
    runs = [curve for run_dir in run_dirs for curve in run_curves(run_dir, key)]

    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, curves in runs:
        _plot_band(ax, curves, max_step, f"{name} ({len(curves)} seeds)")
    if reference is not None:
        ref_curves = _read_reference(reference, reference_env)
        _plot_band(
            ax, ref_curves, max_step, f"TD3 paper ({reference_env}, MuJoCo v1)", linestyle="--", color="black"
        )
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(f"{key}: mean ± 1 std over seeds (shaded)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()

    path = pathlib.Path(out) if out is not None else pathlib.Path(run_dirs[0]) / "curves.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
