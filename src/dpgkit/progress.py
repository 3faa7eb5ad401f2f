"""A rich progress bar showing env steps, steps per second and the last evaluation."""

from __future__ import annotations

import time
from typing import Self

import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainingProgress:
    """Context manager around a rich Progress; updates are throttled to a few per second."""

    def __init__(self, total: int, completed: int, enabled: bool = True, interval: float = 0.25):
        self.enabled, self.interval = enabled, interval
        self.next_refresh = 0.0
        self.start_steps, self.start_time = completed, time.perf_counter()
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[sps]} steps/s"),
            TextColumn("eval {task.fields[eval]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not enabled,
        )
        self.task = self.progress.add_task("train", total=total, completed=completed, sps="-", eval="-")

    def __enter__(self) -> Self:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, steps: int, last_eval: np.ndarray) -> None:
        """Show the step count, the mean SPS since the start, and the last evaluation's mean return."""
        now = time.perf_counter()
        if not self.enabled or now < self.next_refresh:
            return
        self.next_refresh = now + self.interval
        sps = (steps - self.start_steps) / max(now - self.start_time, 1e-9)
        shown = "-" if np.all(np.isnan(last_eval)) else f"{np.nanmean(last_eval):.1f}"
        self.progress.update(self.task, completed=steps, sps=f"{sps:.0f}", eval=shown)
