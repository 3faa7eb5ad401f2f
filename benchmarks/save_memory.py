"""Peak memory and wall time of saving a full replay: TD3 on HalfCheetah-v5 with 1M transitions per seed, or
(--pixels) on a 64x64x3 pixel probe with a stack of 3 frames stored once each (100k transitions per seed).

Each measurement runs in a fresh process: build the agent, fill its replay with random transitions (what a
1M-step run holds), reset the kernel's peak-RSS mark, save, and read how far the peak rose above the RSS
just before the save. The save's wall time gives the cost of the default time-based checkpoint interval.
Run it against another checkout (say the code before this change) with --src:

    python benchmarks/save_memory.py --seeds 1 2
    python benchmarks/save_memory.py --seeds 1 --src /path/to/old/checkout/src --label before
    python benchmarks/save_memory.py --seeds 1 --pixels --buffer-size 100000
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time, tempfile
import numpy as np
import jax
from dpgkit import TD3

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
seeds, buffer_size, out, pixels = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "pixels"
if pixels:
    import gymnasium as gym
    from dpgkit.envs.probes import PixelDotEnv
    env = lambda: gym.wrappers.TimeLimit(PixelDotEnv(size=64, channels=3), 50)
    agent = TD3(env, seeds=seeds, buffer_size=buffer_size, frame_stack=3, cnn="small", progress=False,
                run_dir=out + "/run")
else:
    agent = TD3("HalfCheetah-v5", seeds=seeds, buffer_size=buffer_size, progress=False, run_dir=out + "/run")
driver = agent.trainer.driver
replay = driver.replay
stores = list(driver.frames.stores.values()) if pixels else []
rng = np.random.default_rng(0)
for leaf in jax.tree_util.tree_leaves(replay.storage):
    leaf[...] = rng.standard_normal(leaf.shape, dtype=np.float32) if leaf.dtype == np.float32 else 0
for store in stores:
    store.frames[...] = rng.integers(0, 256, store.frames.shape, dtype=np.uint8)
    store.written[:] = store.capacity
replay.written[:] = buffer_size
replay_bytes = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(replay.storage))
replay_bytes += sum(store.frames.nbytes + store.held.nbytes for store in stores)
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
start = time.perf_counter()
path = agent.save(out + "/save")
seconds = time.perf_counter() - start
peak = status("VmHWM:")
print(json.dumps({"seeds": seeds, "replay_bytes": replay_bytes, "rss_before": before, "peak_during_save": peak,
                  "extra_peak_bytes": peak - before, "save_seconds": seconds}))
"""


def measure(seeds: int, buffer_size: int, src: str | None, pixels: bool) -> dict:
    """One fresh process: fill, save, report the peak RSS above the pre-save RSS."""
    env = dict(os.environ, PYTHONPATH=src) if src else dict(os.environ)
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(seeds), str(buffer_size), out, "pixels" if pixels else "vector"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure each seed count and write the rows with the command that reproduces them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--buffer-size", type=int, default=1_000_000)
    parser.add_argument("--src", default=None, help="put this source tree first on PYTHONPATH")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--pixels", action="store_true", help="the 64x64x3 pixel probe, a stack of 3")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    rows = []
    for seeds in args.seeds:
        row = measure(seeds, args.buffer_size, args.src, args.pixels) | {"label": args.label, "pixels": args.pixels}
        rows.append(row)
        mib = 1 << 20
        print(
            f"{args.label}: seeds {seeds}: replay {row['replay_bytes'] / mib:.0f} MiB, extra peak during save "
            f"{row['extra_peak_bytes'] / mib:.0f} MiB, save {row['save_seconds']:.2f} s "
            f"({100 * row['save_seconds'] / 600:.2f}% of the default 600 s interval)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    (args.out / f"save_memory_{stamp}.json").write_text(
        json.dumps({"command": command, "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    main()
