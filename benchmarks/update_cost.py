"""Milliseconds per jitted TD3 update on this machine, for the choices the learner makes (HalfCheetah sizes).

Compares, in one process and interleaved (min and median over rounds): the update without a seed axis against
a vmap of size 1 (what the trainer runs); K=1 (policy delay by lax.cond) against K=2 and K=4 (groups of d
updates, no cond); and seeds=4 vmapped.

    python benchmarks/update_cost.py --rounds 15
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dpgkit.learn import Batch, LearnerSpec, init_learner, update_block

OBS, ACT, BATCH = 17, 6, 256


def batches(rng: np.random.Generator, seeds: int, k: int) -> Batch:
    """Random batches shaped (seeds, K, B, ...)."""
    lead = (seeds, k, BATCH)
    return Batch(
        rng.normal(size=lead + (OBS,)).astype(np.float32),
        rng.uniform(-1, 1, size=lead + (ACT,)).astype(np.float32),
        rng.normal(size=lead).astype(np.float32),
        np.full(lead, 0.99, np.float32),
        rng.normal(size=lead + (OBS,)).astype(np.float32),
    )


def main() -> None:
    """Time each variant and print ms per update."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=8)
    args = parser.parse_args()
    spec = LearnerSpec(action_dim=ACT)
    rng = np.random.default_rng(0)
    state = init_learner(spec, jax.random.PRNGKey(0), jnp.zeros((1, OBS)))
    update = functools.partial(update_block, spec)

    def stacked(seeds):
        return jax.tree_util.tree_map(lambda x: jnp.stack([x] * seeds), state)

    vmapped = jax.jit(jax.vmap(update, in_axes=(0, 0, None)))
    one = batches(rng, 1, 1)
    variants = {
        "no seed axis, K=1": (jax.jit(update), state, jax.tree_util.tree_map(lambda x: x[0], one)),
        "seeds=1 vmap, K=1": (vmapped, stacked(1), one),
        "seeds=1 vmap, K=2": (vmapped, stacked(1), batches(rng, 1, 2)),
        "seeds=1 vmap, K=4": (vmapped, stacked(1), batches(rng, 1, 4)),
        "seeds=4 vmap, K=1 (per agent-update)": (vmapped, stacked(4), batches(rng, 4, 1)),
    }
    times = {name: [] for name in variants}
    for name, (fn, st, b) in variants.items():
        jax.block_until_ready(fn(st, b, np.int32(0)))
    for _ in range(args.rounds):
        for name, (fn, st, b) in variants.items():
            per_call = b.reward.size // BATCH
            start = time.perf_counter()
            for i in range(args.calls):
                out = fn(st, b, np.int32(i * b.reward.shape[-2]))
            jax.block_until_ready(out)
            times[name].append((time.perf_counter() - start) / args.calls / per_call * 1e3)
    report = {"command": "python " + shlex.join(sys.argv), "jax": jax.__version__, "ms_per_update": {}}
    for name, values in times.items():
        report["ms_per_update"][name] = {"min": min(values), "median": float(np.median(values))}
        print(f"{name:40s} min {min(values):.3f}  median {np.median(values):.3f} ms")
    out = Path(__file__).parent / "results" / f"update_cost_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
