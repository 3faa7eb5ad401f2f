"""Per-seed metric logging to a long-format CSV (and TensorBoard), plus reading it back."""

from __future__ import annotations

import csv
import os
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Self

import numpy as np

METRICS_FILE = "metrics.csv"
HEADER = ["step", "seed", "key", "value", "run"]
FORMAT1_HEADER = HEADER[:4]
"""The header of files written before rows named their run: read as one run, appended to without run ids."""


def _complete_lines(text: str) -> list[str]:
    """Split CSV text into lines, dropping a trailing line cut short by a crash mid-write."""
    lines = text.split("\n")
    return lines[:-1]  # the last piece is "" after a final newline, or a partial line otherwise


class RunLogger:
    """Log metrics for several seeds to run_dir/metrics.csv, each row with the run's id, and one TensorBoard
    writer per seed."""

    def __init__(
        self, run_dir: str | os.PathLike, seeds: Sequence[int], tensorboard: bool = True, run_id: str = ""
    ):
        self.run_dir = pathlib.Path(run_dir)
        self.seeds = [int(s) for s in seeds]
        self.run_id = run_id
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / METRICS_FILE
        existing = path.read_text() if path.exists() else ""
        if existing and not existing.endswith("\n"):  # resume after a crash mid-write
            path.write_text("".join(line + "\n" for line in _complete_lines(existing)))
        self._file = path.open("a", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        if not path.stat().st_size:
            self._csv.writerow(HEADER)
            self._file.flush()
        self.names_runs = existing.split("\n", 1)[0] != ",".join(FORMAT1_HEADER)
        self._writers = {}
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._writers = {s: SummaryWriter(str(self.run_dir / "tb" / f"seed_{s}")) for s in self.seeds}

    def log(self, step: int, metrics: Mapping[str, np.ndarray | float]) -> None:
        """Write each metric (a scalar for all seeds or one value per seed) at `step`, skipping NaNs."""
        step = int(step)
        rows = []
        for key, value in metrics.items():
            values = np.asarray(value, dtype=np.float64)
            if values.ndim == 0:
                values = np.full(len(self.seeds), values)
            elif values.shape != (len(self.seeds),):
                raise ValueError(
                    f"metric {key!r} has shape {values.shape}; expected a scalar or ({len(self.seeds)},)"
                )
            for seed, v in zip(self.seeds, values.tolist()):
                if np.isnan(v):
                    continue
                rows.append((step, seed, key, v, self.run_id) if self.names_runs else (step, seed, key, v))
                if self._writers:
                    self._writers[seed].add_scalar(key, v, step)
        self._csv.writerows(rows)
        self._file.flush()

    def close(self) -> None:
        """Flush and close the CSV file and the TensorBoard writers."""
        self._file.close()
        for writer in self._writers.values():
            writer.close()

    def __enter__(self) -> Self:
        """Return self for use in a `with` block."""
        return self

    def __exit__(self, *exc_info) -> None:
        """Close the logger on leaving a `with` block."""
        self.close()


def metric_rows(run: str | os.PathLike) -> Iterator[tuple[int, int, str, float, str]]:
    """(step, seed, key, value, run id) of each complete row of run/metrics.csv or a CSV in its format ("" as
    the run id of rows that name none)."""
    path = pathlib.Path(run)
    path = path if path.is_file() else path / METRICS_FILE
    reader = csv.reader(_complete_lines(path.read_text()))
    header = next(reader, None)
    if header not in (HEADER, FORMAT1_HEADER):
        raise ValueError(
            f"{path}: expected header {','.join(HEADER)} or {','.join(FORMAT1_HEADER)}, got {header}"
        )
    for step, seed, key, value, *run_id in reader:
        yield int(step), int(seed), key, float(value), run_id[0] if run_id else ""


def run_ids(run: str | os.PathLike) -> list[str]:
    """The ids of the runs that logged to run/metrics.csv (or a CSV in its format), in order of appearance."""
    return list(dict.fromkeys(row[4] for row in metric_rows(run)))


def read_metrics(
    run: str | os.PathLike, run_id: str | None = None
) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Parse run/metrics.csv, or a CSV in its format, into {key: {seed: (steps, values)}}; last duplicate wins.

    run_id keeps only that run's rows (None: every row, as if the file held one run).
    """
    latest: dict[str, dict[int, dict[int, float]]] = {}
    for step, seed, key, value, row_run in metric_rows(run):
        if run_id is None or row_run == run_id:
            latest.setdefault(key, {}).setdefault(seed, {})[step] = value
    result = {}
    for key, per_seed in latest.items():
        result[key] = {}
        for seed, by_step in sorted(per_seed.items()):
            steps = np.array(sorted(by_step), dtype=np.int64)
            result[key][seed] = (steps, np.array([by_step[s] for s in steps.tolist()], dtype=np.float64))
    return result
