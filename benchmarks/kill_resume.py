"""SIGKILL a training run at random moments, again and again, and check after each kill that nothing is lost.

A TD3 run on Pendulum-v1 (256-256 networks: a checkpoint of several MB) checkpoints every 10 steps, so that
many kills land inside a save (`dpgkit train`, then `dpgkit resume`). After each kill:
the run loads (if it has saved at all), its newest complete checkpoint is the one `dpgkit resume` continues
from, and the leftovers the kill left (a half-written checkpoint, say) are gone once resume has loaded.
Finally the run is resumed to its end and must load at its last step. Writes a JSON with the counts.

    python benchmarks/kill_resume.py --kills 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dpgkit.checkpoint import CHECKPOINTS_DIR, latest_checkpoint, load_checkpoint

TRAIN = [
    "train", "td3", "--env", "Pendulum-v1", "--total-steps", "100000", "--checkpoint-every", "10",
    "--learning-starts", "100", "--eval-every", "0",
    "--no-progress",
]  # fmt: skip
RESUMING = re.compile(r"resuming \S+ on \S+ at step (\d+)")


def dpgkit(*args: str) -> subprocess.Popen:
    """Start the dpgkit command line in its own process group, its output on a pipe."""
    command = [sys.executable, "-c", "from dpgkit.cli import main; main()", *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def hidden_entries(run: Path) -> set[str]:
    """Leftovers of interrupted saves: the hidden temporary and aside entries under checkpoints/."""
    root = run / CHECKPOINTS_DIR
    return (
        {p.name for p in root.iterdir() if p.name.startswith(".") and p.name != ".lock"}
        if root.is_dir()
        else set()
    )


def newest_step(run: Path) -> int | None:
    """The step of the checkpoint LATEST names, verified by loading it; None before the first save."""
    if latest_checkpoint(run) is None:
        return None
    return load_checkpoint(run)[1]["steps"]


def wait_for_start(process: subprocess.Popen) -> int | None:
    """Read until the command says it has started: the step `dpgkit resume` continues from, or None for
    `dpgkit train`."""
    seen = []
    for line in process.stdout:
        if match := RESUMING.search(line):
            return int(match.group(1))
        if line.startswith("training "):
            return None
        seen.append(line)
    raise RuntimeError(f"dpgkit exited with {process.wait()} before it started training:\n{''.join(seen)}")


def main() -> None:
    """Kill, check, resume; repeat; report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--min-seconds", type=float, default=0.5, help="earliest kill after the start message")
    parser.add_argument("--max-seconds", type=float, default=8.0, help="latest kill after the start message")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        for kill in range(args.kills):
            step = newest_step(run)
            left = hidden_entries(run)
            process = dpgkit(*TRAIN, "--run-dir", str(run)) if step is None else dpgkit("resume", str(run))
            resumed_from = wait_for_start(process)
            assert resumed_from == step, f"resume continued from {resumed_from}, the newest checkpoint is {step}"
            remaining = left & hidden_entries(run)
            assert not remaining, f"leftovers survived the resume: {sorted(remaining)}"
            time.sleep(rng.uniform(args.min_seconds, args.max_seconds))
            process.send_signal(signal.SIGKILL)
            process.wait()
            after = newest_step(run)
            assert after is None or step is None or after >= step, (
                f"the newest checkpoint went back: {step} -> {after}"
            )
            rows.append(
                {
                    "kill": kill,
                    "resumed_from": step,
                    "newest_after_kill": after,
                    "leftovers": len(hidden_entries(run)),
                }
            )
            print(
                f"kill {kill + 1}: resumed from {step}, newest after the kill {after}, leftovers {rows[-1]['leftovers']}"
            )
        final = newest_step(run)
        process = dpgkit("resume", str(run), "--total-steps", str((final or 0) + 100))
        output = process.communicate()[0]
        assert process.returncode == 0, output
        end = newest_step(run)
        assert end == (final or 0) + 100 and not hidden_entries(run), (end, hidden_entries(run))
    summary = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "kills": len(rows),
        "kills_that_left_leftovers": sum(r["leftovers"] > 0 for r in rows),
        "resumes_checked": sum(r["resumed_from"] is not None for r in rows),
        "final_step": end,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"kill_resume_{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        json.dumps(summary, indent=1)
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))


if __name__ == "__main__":
    main()
