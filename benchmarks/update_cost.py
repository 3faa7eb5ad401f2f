"""Milliseconds per jitted update on this machine (HalfCheetah sizes), variants timed interleaved in one process.

`--set learner` (TD3): the update without a seed axis against a vmap of size 1 (what the trainer runs); K=1
(policy delay by lax.cond) against K=2 and K=4 (groups of d updates, no cond); and seeds=4 vmapped.
`--set family`: TD3, TD3 with importance weights (prioritized replay), DDPG and D4PG (51-atom categorical
critic, importance weights), each vmapped over one seed at K=2, and the ratios D4PG / TD3 and D4PG / DDPG.

    python benchmarks/update_cost.py --rounds 15
    python benchmarks/update_cost.py --set family --rounds 15
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

from dpgkit.config import D4PGConfig, DDPGConfig, TD3Config
from dpgkit.driver import learner_spec
from dpgkit.learn import Batch, LearnerSpec, init_learner, update_block

OBS, ACT, BATCH = 17, 6, 256


TD3 = learner_spec(TD3Config(), ACT)
DDPG = learner_spec(DDPGConfig(), ACT)
D4PG = learner_spec(D4PGConfig(v_min=-100.0, v_max=1500.0), ACT)


def batches(rng: np.random.Generator, seeds: int, k: int, weighted: bool = False) -> Batch:
    """Random batches shaped (seeds, K, B, ...), with importance weights when weighted."""
    lead = (seeds, k, BATCH)
    return Batch(
        rng.normal(size=lead + (OBS,)).astype(np.float32),
        rng.uniform(-1, 1, size=lead + (ACT,)).astype(np.float32),
        rng.normal(size=lead).astype(np.float32),
        np.full(lead, 0.99, np.float32),
        rng.normal(size=lead + (OBS,)).astype(np.float32),
        rng.uniform(0.1, 1.0, size=lead).astype(np.float32) if weighted else None,
    )


def fresh_state(spec: LearnerSpec, seeds: int | None):
    """A learner state, stacked over seeds unless seeds is None."""
    state = init_learner(spec, jax.random.PRNGKey(0), jnp.zeros((1, OBS)))
    return state if seeds is None else jax.tree_util.tree_map(lambda x: jnp.stack([x] * seeds), state)


def learner_variants(rng: np.random.Generator) -> dict:
    """TD3's update with and without a seed axis, at K = 1, 2, 4 and with 4 seeds."""
    update = functools.partial(update_block, TD3)
    vmapped = jax.jit(jax.vmap(update, in_axes=(0, 0, None)))
    one = batches(rng, 1, 1)
    return {
        "no seed axis, K=1": (
            jax.jit(update),
            fresh_state(TD3, None),
            jax.tree_util.tree_map(lambda x: x[0], one),
        ),
        "seeds=1 vmap, K=1": (vmapped, fresh_state(TD3, 1), one),
        "seeds=1 vmap, K=2": (vmapped, fresh_state(TD3, 1), batches(rng, 1, 2)),
        "seeds=1 vmap, K=4": (vmapped, fresh_state(TD3, 1), batches(rng, 1, 4)),
        "seeds=4 vmap, K=1 (per agent-update)": (vmapped, fresh_state(TD3, 4), batches(rng, 4, 1)),
    }


def family_variants(rng: np.random.Generator) -> dict:
    """One update of each algorithm as the trainer runs it (one seed, K = 2)."""
    variants = {}
    for name, spec, weighted in (
        ("TD3", TD3, False),
        ("TD3+PER", TD3, True),
        ("DDPG", DDPG, False),
        ("D4PG", D4PG, True),
    ):
        fn = jax.jit(jax.vmap(functools.partial(update_block, spec), in_axes=(0, 0, None)))
        variants[name] = (fn, fresh_state(spec, 1), batches(rng, 1, 2, weighted))
    return variants


def main() -> None:
    """Time each variant and print ms per update."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--set", choices=["learner", "family"], default="learner")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    variants = (learner_variants if args.set == "learner" else family_variants)(rng)
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
    if args.set == "family":
        medians = {name: float(np.median(values)) for name, values in times.items()}
        report["ratios_of_medians"] = {
            "D4PG / TD3": medians["D4PG"] / medians["TD3"],
            "D4PG / DDPG": medians["D4PG"] / medians["DDPG"],
            "TD3+PER / TD3": medians["TD3+PER"] / medians["TD3"],
        }
        for name, ratio in report["ratios_of_medians"].items():
            print(f"{name:40s} {ratio:.2f}x")
    out = Path(__file__).parent / "results" / f"update_cost_{args.set}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
