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


class ProgressDisplay:
    """Context manager showing a count towards a total with fields of its own: on a terminal a rich progress bar,
    refreshed every `interval` seconds; on any other stream a plain line every tenth of the call's span or every
    PLAIN_EVERY_SECONDS, whichever comes first, and one at the end. Subclasses name their FIELDS, the bar's text
    TEMPLATE over them, and give their values (fields) and the plain line (line)."""

    FIELDS: tuple[str, ...] = ()
    TEMPLATE = ""

    def __init__(
        self,
        label: str,
        total: int,
        completed: int,
        enabled: bool = True,
        interval: float = 0.25,
        stream: TextIO | None = None,
    ):
        self.stream = sys.stdout if stream is None else stream
        self.plain = enabled and not self.stream.isatty()
        self.label, self.enabled, self.interval, self.total = label, enabled, interval, total
        self.next_refresh = 0.0
        self.start_done, self.start_time = completed, time.perf_counter()
        self.line_done, self.line_time = completed, self.start_time
        self.done = completed
        self.progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(bar_width=None),
            MofNCompleteColumn(),
            TextColumn(self.TEMPLATE),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            disable=not enabled or self.plain,
        )
        self.task = self.progress.add_task(
            label, total=total, completed=completed, **dict.fromkeys(self.FIELDS, "-")
        )

    def __enter__(self) -> Self:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled and not self.plain:
            self.refresh_bar(time.perf_counter())
        self.progress.__exit__(*exc)
        if self.plain and self.done > self.line_done:
            self.write_line(time.perf_counter())

    def fields(self, now: float) -> dict[str, str]:
        """The bar's field values now."""
        raise NotImplementedError

    def line(self, now: float) -> str:
        """The plain line now."""
        raise NotImplementedError

    def write_line(self, now: float) -> None:
        """Print one plain progress line and remember when."""
        print(self.line(now), file=self.stream, flush=True)
        self.line_done, self.line_time = self.done, now

    def refresh_bar(self, now: float) -> None:
        """Show the latest count and fields on the bar."""
        self.progress.update(self.task, completed=self.done, **self.fields(now))

    def show(self, done: int) -> None:
        """Show the count `done` (and the fields as they are now): a plain line when one is due, else the bar."""
        if not self.enabled:
            return
        now = time.perf_counter()
        self.done = done
        if self.plain:
            if plain_line_due(done, self.line_done, self.total - self.start_done, now, self.line_time):
                self.write_line(now)
            return
        if now < self.next_refresh:
            return
        self.next_refresh = now + self.interval
        self.refresh_bar(now)


class TrainingProgress(ProgressDisplay):
    """Env steps while training, env steps and learner updates per second, the replay's size (transitions per
    seed) and the last evaluation; `updates` is the learner's count at the start."""

    FIELDS = ("sps", "ups", "replay", "eval")
    TEMPLATE = "{task.fields[sps]} steps/s {task.fields[ups]} upd/s replay {task.fields[replay]} eval {task.fields[eval]}"

    def __init__(
        self,
        total: int,
        completed: int,
        updates: int = 0,
        enabled: bool = True,
        interval: float = 0.25,
        stream: TextIO | None = None,
    ):
        super().__init__("train", total, completed, enabled, interval, stream)
        self.last_eval = np.full(1, np.nan)
        self.start_updates, self.updates, self.replay = updates, updates, 0

    def sps(self, now: float) -> float:
        """Mean env steps per second since the start."""
        return (self.done - self.start_done) / max(now - self.start_time, 1e-9)

    def ups(self, now: float) -> float:
        """Mean learner updates per second since the start."""
        return (self.updates - self.start_updates) / max(now - self.start_time, 1e-9)

    def line(self, now: float) -> str:
        """The plain training line."""
        return plain_line(
            self.done,
            self.total,
            self.sps(now),
            self.ups(now),
            self.replay,
            self.last_eval,
            now - self.start_time,
        )

    def fields(self, now: float) -> dict[str, str]:
        """Steps and updates per second, replay size and evaluation for the bar."""
        return {
            "sps": f"{self.sps(now):.0f}",
            "ups": f"{self.ups(now):.0f}",
            "replay": str(self.replay),
            "eval": shown_eval(self.last_eval),
        }

    def update(self, steps: int, last_eval: np.ndarray, updates: int, replay: int) -> None:
        """Show the step count, the mean env steps and learner updates per second since the start, the replay's
        size and the last evaluation's mean return."""
        self.last_eval, self.updates, self.replay = last_eval, updates, replay
        self.show(steps)


class UpdateProgress(ProgressDisplay):
    """Updates done (pretraining) and the latest losses, read from the device only when shown."""

    FIELDS = ("losses",)
    TEMPLATE = "{task.fields[losses]}"

    def __init__(self, label: str, total: int, enabled: bool = True, stream: TextIO | None = None):
        super().__init__(label, total, 0, enabled, stream=stream)
        self.losses: dict = {}

    def shown_losses(self) -> str:
        """The latest losses as "name value" pairs (2 decimals), or "-" before the first."""
        return " ".join(f"{name} {float(value):.2f}" for name, value in self.losses.items()) or "-"

    def line(self, now: float) -> str:
        """The plain line: updates done of the total, the losses and the time elapsed."""
        percent = 100 * self.done // max(self.total, 1)
        elapsed = format_elapsed(now - self.start_time)
        return f"{self.label} {self.done}/{self.total} ({percent}%) {self.shown_losses()} elapsed {elapsed}"

    def fields(self, now: float) -> dict[str, str]:
        """The losses for the bar."""
        return {"losses": self.shown_losses()}

    def update(self, done: int, losses: dict) -> None:
        """Show the updates done and the latest losses (name -> scalar, device arrays allowed)."""
        self.losses = losses
        self.show(done)
