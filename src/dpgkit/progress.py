"""Training progress: a rich progress bar on a terminal, plain progress lines anywhere else (pipes, logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import Self, TextIO

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY_SECONDS = 30.0
"""A plain line at least this often, so that a long run in a log shows it is alive."""
PLAIN_EVERY_FRACTION = 0.1
"""A plain line at least every tenth of the steps of the call, so that a short run logs about ten lines."""


def shown_eval(last_eval: np.ndarray) -> str:
    """The mean of the last evaluation over seeds, or "-" before the first."""
    return "-" if np.all(np.isnan(last_eval)) else f"{np.nanmean(last_eval):.1f}"


def format_elapsed(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def plain_line(
    steps: int, total: int, sps: float, ups: float, replay: int, last_eval: np.ndarray, elapsed: float
) -> str:
    """One progress line: steps/total, env steps and learner updates per second, the replay's size, the last
    evaluation and the time elapsed."""
    percent = 100 * steps // max(total, 1)
    return (
        f"train {steps}/{total} ({percent}%) {sps:.0f} steps/s {ups:.1f} updates/s replay {replay} "
        f"eval {shown_eval(last_eval)} elapsed {format_elapsed(elapsed)}"
    )


def plain_line_due(steps: int, line_steps: int, span: int, now: float, line_time: float) -> bool:
    """Whether a tenth of the call's span of steps, or PLAIN_EVERY_SECONDS, passed since the last line."""
    return steps > line_steps and (
        steps - line_steps >= max(1.0, PLAIN_EVERY_FRACTION * span) or now - line_time >= PLAIN_EVERY_SECONDS
    )


class TrainingProgress:
    """Context manager showing env steps, env steps and learner updates per second, the replay's size (transitions
    per seed) and the last evaluation while training; `updates` is the learner's count at the start.

    On a terminal it is a rich progress bar, refreshed a few times per second; on any other stream it prints a
    plain line every tenth of the call's steps or every 30 s, whichever comes first, and one at the end.
    """

    def __init__(
        self,
        total: int,
        completed: int,
        updates: int = 0,
        enabled: bool = True,
        interval: float = 0.25,
        stream: TextIO | None = None,
    ):
        self.stream = sys.stdout if stream is None else stream
        self.plain = enabled and not self.stream.isatty()
        self.enabled, self.interval, self.total = enabled, interval, total
        self.next_refresh = 0.0
        self.start_steps, self.start_time = completed, time.perf_counter()
        self.line_steps, self.line_time = completed, self.start_time
        self.steps, self.last_eval = completed, np.full(1, np.nan)
        self.start_updates, self.updates, self.replay = updates, updates, 0
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(bar_width=None),
            MofNCompleteColumn(),
            TextColumn("{task.fields[sps]} steps/s {task.fields[ups]} upd/s replay {task.fields[replay]}"),
            TextColumn("eval {task.fields[eval]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            disable=not enabled or self.plain,
        )
        self.task = self.progress.add_task(
            "train", total=total, completed=completed, sps="-", ups="-", replay="-", eval="-"
        )

    def __enter__(self) -> Self:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled and not self.plain:
            self.refresh_bar(time.perf_counter())
        self.progress.__exit__(*exc)
        if self.plain and self.steps > self.line_steps:
            self.write_line(time.perf_counter())

    def sps(self, now: float) -> float:
        """Mean env steps per second since the start."""
        return (self.steps - self.start_steps) / max(now - self.start_time, 1e-9)

    def ups(self, now: float) -> float:
        """Mean learner updates per second since the start."""
        return (self.updates - self.start_updates) / max(now - self.start_time, 1e-9)

    def write_line(self, now: float) -> None:
        """Print one plain progress line and remember when."""
        line = plain_line(
            self.steps,
            self.total,
            self.sps(now),
            self.ups(now),
            self.replay,
            self.last_eval,
            now - self.start_time,
        )
        print(line, file=self.stream, flush=True)
        self.line_steps, self.line_time = self.steps, now

    def refresh_bar(self, now: float) -> None:
        """Show the latest steps, steps and updates per second, replay size and evaluation on the bar."""
        self.progress.update(
            self.task,
            completed=self.steps,
            sps=f"{self.sps(now):.0f}",
            ups=f"{self.ups(now):.0f}",
            replay=self.replay,
            eval=shown_eval(self.last_eval),
        )

    def update(self, steps: int, last_eval: np.ndarray, updates: int, replay: int) -> None:
        """Show the step count, the mean env steps and learner updates per second since the start, the replay's
        size and the last evaluation's mean return."""
        if not self.enabled:
            return
        now = time.perf_counter()
        self.steps, self.last_eval, self.updates, self.replay = steps, last_eval, updates, replay
        if self.plain:
            if plain_line_due(steps, self.line_steps, self.total - self.start_steps, now, self.line_time):
                self.write_line(now)
            return
        if now < self.next_refresh:
            return
        self.next_refresh = now + self.interval
        self.refresh_bar(now)


class UpdateProgress:
    """Context manager showing updates done and the latest losses (pretraining): a rich progress bar on a terminal,
    elsewhere a plain line every tenth of the updates or every 30 s, and one at the end."""

    def __init__(self, label: str, total: int, enabled: bool = True, stream: TextIO | None = None):
        self.stream = sys.stdout if stream is None else stream
        self.plain = enabled and not self.stream.isatty()
        self.label, self.total, self.enabled = label, total, enabled
        self.done, self.losses = 0, "-"
        self.start_time = self.line_time = time.perf_counter()
        self.line_done = 0
        self.progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[losses]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            disable=not enabled or self.plain,
        )
        self.task = self.progress.add_task(label, total=total, losses="-")

    def __enter__(self) -> Self:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)
        if self.plain and self.done > self.line_done:
            self.write_line(time.perf_counter())

    def write_line(self, now: float) -> None:
        """Print one plain line: updates done of the total, the losses and the time elapsed."""
        percent = 100 * self.done // max(self.total, 1)
        elapsed = format_elapsed(now - self.start_time)
        print(
            f"{self.label} {self.done}/{self.total} ({percent}%) {self.losses} elapsed {elapsed}",
            file=self.stream,
            flush=True,
        )
        self.line_done, self.line_time = self.done, now

    def update(self, done: int, losses: str) -> None:
        """Show the updates done and the latest losses (already formatted)."""
        if not self.enabled:
            return
        self.done, self.losses = done, losses
        now = time.perf_counter()
        if self.plain:
            if plain_line_due(done, self.line_done, self.total, now, self.line_time):
                self.write_line(now)
            return
        self.progress.update(self.task, completed=done, losses=losses)
