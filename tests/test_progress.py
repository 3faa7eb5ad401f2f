"""Training progress: plain lines on a stream that is not a terminal, the rich bar on one."""

from __future__ import annotations

import io
import re

import numpy as np

from dpgkit.progress import TrainingProgress, UpdateProgress, format_elapsed, plain_line_due

LINE = re.compile(
    r"^train (\d+)/100 \((\d+)%\) \d+ steps/s (\d+\.\d) updates/s replay (\d+) eval (\S+) elapsed \d+:\d\d:\d\d$"
)


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def run_progress(stream, enabled=True) -> None:
    """Report 100 steps one by one, two updates per step from step 20 on and a replay of every step, with an
    evaluation from step 50 on."""
    with TrainingProgress(100, 0, enabled=enabled, stream=stream) as progress:
        for step in range(1, 101):
            progress.update(step, np.array([-150.0 if step >= 50 else np.nan]), 2 * max(step - 20, 0), step)


def test_not_a_terminal_gets_a_plain_line_every_tenth_of_the_run():
    stream = io.StringIO()
    run_progress(stream)
    lines = stream.getvalue().splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [int(m.group(1)) for m in matches] == list(range(10, 101, 10))
    assert [int(m.group(2)) for m in matches] == list(range(10, 101, 10))
    assert [int(m.group(4)) for m in matches] == list(range(10, 101, 10))
    assert [m.group(5) for m in matches] == ["-"] * 4 + ["-150.0"] * 6


def test_a_stopped_run_ends_with_a_line_at_its_last_step():
    stream = io.StringIO()
    with TrainingProgress(100, 0, stream=stream) as progress:
        for step in range(1, 16):
            progress.update(step, np.array([np.nan]), 0, step)
    assert [LINE.match(line).group(1) for line in stream.getvalue().splitlines()] == ["10", "15"]


def test_a_terminal_gets_the_bar_and_no_plain_lines(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # rich shortens every column to fit a narrower one
    stream = FakeTerminal()
    run_progress(stream)
    assert not any(LINE.match(line) for line in stream.getvalue().splitlines())
    assert "100/100" in stream.getvalue()
    assert "upd/s replay 100 eval -150.0" in stream.getvalue()


def test_updates_per_second_count_from_the_learners_count_at_the_start():
    stream = io.StringIO()
    with TrainingProgress(100, 50, updates=400, stream=stream) as progress:
        progress.start_time -= 10.0  # ten seconds in
        progress.update(100, np.array([np.nan]), 450, 5000)
    match = LINE.match(stream.getvalue().splitlines()[0])
    assert match and (match.group(3), match.group(4)) == ("5.0", "5000")


def test_disabled_progress_prints_nothing():
    stream = io.StringIO()
    run_progress(stream, enabled=False)
    assert stream.getvalue() == ""


def test_a_line_is_due_after_a_tenth_of_the_steps_or_thirty_seconds():
    assert not plain_line_due(109, 100, 100, now=29.0, line_time=0.0)
    assert plain_line_due(110, 100, 100, now=1.0, line_time=0.0)
    assert plain_line_due(101, 100, 100, now=30.0, line_time=0.0)
    assert not plain_line_due(100, 100, 100, now=100.0, line_time=0.0)  # no new step, no new line


def test_elapsed_is_hours_minutes_seconds():
    assert format_elapsed(3 * 3600 + 4 * 60 + 5.9) == "3:04:05"


def test_pretraining_lines_show_the_latest_losses_every_tenth_and_at_the_end():
    stream = io.StringIO()
    with UpdateProgress("vae", 20, stream=stream) as progress:
        for update in range(1, 16):
            progress.update(update, {"reconstruction": np.float32(100.0 / update), "KL": np.float32(update)})
    lines = [line.rsplit(" elapsed", 1)[0] for line in stream.getvalue().splitlines()]
    assert lines == [
        "vae 2/20 (10%) reconstruction 50.00 KL 2.00",
        *[f"vae {u}/20 ({5 * u}%) reconstruction {100.0 / u:.2f} KL {u:.2f}" for u in range(4, 15, 2)],
        "vae 15/20 (75%) reconstruction 6.67 KL 15.00",
    ]
