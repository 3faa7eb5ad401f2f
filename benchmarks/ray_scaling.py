"""Ray collection on this machine: env steps and learner updates per second against the number of workers, with
the learner running at its samples-per-insert target; the driver's cost per transition of the collection path
(taking a chunk: Ray's deserialisation, the ledger, the next call; merging; the replay insert) and of a chunk's
serialisation round trip; and the memory (USS) of a worker acting with numpy, with JAX, and of a bare Ray actor.

    python benchmarks/ray_scaling.py --workers 1 2 4 8 16 32 --seconds 60
    python benchmarks/ray_scaling.py --workers 1 2 4 --seconds 10     # a short look

Past the machine's cores the workers are oversubscribed (each reserves cores / workers CPUs). Writes
benchmarks/results/ray_scaling_<env>_<time>.json with the command.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import dpgkit.collect.ray as ray_collect
from dpgkit.algos import ALGORITHMS
from dpgkit.collect.ray import import_ray
from dpgkit.train import new_stats

MIB = 2**20
SECONDS: dict = defaultdict(float)
"""Wall seconds of each part of the collection path in the current measurement."""


def timed(seconds: dict, key: str, fn):
    """fn, adding the wall time of each call to seconds[key]."""

    def call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[key] += time.perf_counter() - start

    return call


def build(args, workers: int, run_dir: Path):
    """An agent collecting on `workers` Ray workers, with its part of the collection path timed into SECONDS."""
    cpus = os.cpu_count()
    agent = ALGORITHMS[args.algo](
        args.env,
        collect="ray",
        workers=workers,
        worker_cpus=min(1.0, cpus / workers),
        chunk_steps=args.chunk,
        samples_per_insert=args.samples_per_insert,
        learning_starts=args.learning_starts,
        total_steps=10**9,
        eval_every=0,
        log_every=10**9,
        checkpoint_seconds=0,
        progress=False,
        run_dir=str(run_dir),
    )
    collector, driver = agent.trainer.env_actor, agent.trainer.driver
    collector.receive = timed(SECONDS, "receive", collector.receive)
    driver.store = timed(SECONDS, "store", driver.store)
    return agent


def run_until(agent, done) -> None:
    """Iterations of the training loop (collect, store, learn) until done() is true."""
    stats = new_stats(agent.config.seeds)
    while not done():
        agent.trainer.iteration(stats)
    agent.trainer.driver.check_losses(stats)


def until_every_worker_delivered(agent, workers: int) -> None:
    """Run past the warm-up and the first compilation, until every worker has delivered two chunks."""
    ledger = agent.trainer.env_actor.ledger
    run_until(
        agent,
        lambda: agent.trainer.updates > 0 and len([w for w, n in ledger.last.items() if n >= 2]) == workers,
    )


def measure(args, workers: int, run_dir: Path) -> dict:
    """Env steps, updates and collection-path seconds per second over args.seconds of a running learner."""
    agent = build(args, workers, run_dir)
    until_every_worker_delivered(agent, workers)
    collector = agent.trainer.env_actor
    SECONDS.clear()
    steps0, updates0, start = agent.steps, agent.trainer.updates, time.perf_counter()
    run_until(agent, lambda: time.perf_counter() - start >= args.seconds)
    wall = time.perf_counter() - start
    steps, updates = agent.steps - steps0, agent.trainer.updates - updates0
    uss = [p["uss"] for p in import_ray().get([w.process.remote() for w in collector.workers])]
    agent.close()
    point = {
        "workers": workers,
        "seconds": wall,
        "env_steps_per_s": steps / wall,
        "updates_per_s": updates / wall,
        "realised_samples_per_insert": updates * agent.config.batch_size / steps,
        "collection_us_per_transition": 1e6 * sum(SECONDS.values()) / steps,
        "collection_us_parts": {k: 1e6 * v / steps for k, v in SECONDS.items()},
        "collection_share_of_wall": sum(SECONDS.values()) / wall,
        "worker_uss_mib": {"mean": float(np.mean(uss)) / MIB, "max": float(np.max(uss)) / MIB},
    }
    print(
        f"{workers:3d} workers: {point['env_steps_per_s']:8.0f} env steps/s {point['updates_per_s']:7.1f} updates/s "
        f"(samples/insert {point['realised_samples_per_insert']:.1f}), collection "
        f"{point['collection_us_per_transition']:.1f} us/transition, worker USS {point['worker_uss_mib']['mean']:.0f} MiB",
        flush=True,
    )
    return point


def serialisation_round_trip(args, run_dir: Path, rounds: int = 200) -> float:
    """Microseconds per transition to serialise one real chunk into Ray's object store and read it back."""
    ray = import_ray()
    agent = ALGORITHMS[args.algo](
        args.env, collect="ray", workers=1, chunk_steps=args.chunk, progress=False, run_dir=str(run_dir)
    )
    collector = agent.trainer.env_actor
    chunk = ray.get(collector.workers[0].collect.remote(*collector.broadcast, True))
    start = time.perf_counter()
    for _ in range(rounds):
        ray.get(ray.put(chunk))
    cost = 1e6 * (time.perf_counter() - start) / rounds / chunk.collected.env_steps
    agent.close()
    return cost


def worker_memory(args, run_dir: Path) -> dict:
    """USS (MiB) of a worker acting with numpy (the plain MLP), one acting with jitted JAX (a LayerNorm actor of the
    same sizes), after a few chunks each, and of a bare Ray actor that imported numpy and gymnasium."""
    ray = import_ray()

    @ray.remote(num_cpus=0)
    class Bare:
        def uss(self) -> int:
            import gymnasium  # noqa: F401
            import psutil

            return psutil.Process().memory_full_info().uss

    memory = {"bare ray actor (numpy, gymnasium)": ray.get(Bare.remote().uss.remote()) / MIB}
    for name, change in (("numpy policy", {}), ("jax policy (jitted, LayerNorm)", {"layer_norm": True})):
        agent = ALGORITHMS[args.algo](
            args.env, collect="ray", workers=1, progress=False, run_dir=str(run_dir / name[:5]), **change
        )
        collector = agent.trainer.env_actor
        for _ in range(3):
            ray.get(collector.workers[0].collect.remote(*collector.broadcast, False))
        info = ray.get(collector.workers[0].process.remote())
        memory[name] = info["uss"] / MIB
        assert info["numpy_policy"] == (not change)
        agent.close()
    return memory


def main() -> None:
    """Sweep the workers, measure the serialisation and the memory, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="d4pg", choices=["ddpg", "td3", "d4pg"])
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured wall time per point")
    parser.add_argument("--chunk", type=int, default=256, help="env steps per chunk")
    parser.add_argument(
        "--samples-per-insert", type=float, default=32.0, help="the learner's rate (Acme's D4PG: 32)"
    )
    parser.add_argument("--learning-starts", type=int, default=1000)
    args = parser.parse_args()
    ray = import_ray()
    ray.init(num_cpus=os.cpu_count(), log_to_driver=False, logging_level="WARNING")
    ray_collect.merge_collected = timed(SECONDS, "merge", ray_collect.merge_collected)
    run_root = Path("runs") / f"ray-scaling-{time.strftime('%Y%m%d-%H%M%S')}"
    points = [measure(args, w, run_root / f"w{w}") for w in args.workers]
    round_trip = serialisation_round_trip(args, run_root / "serialisation")
    print(f"serialisation round trip of a chunk: {round_trip:.2f} us/transition")
    memory = worker_memory(args, run_root / "memory")
    for name, mib in memory.items():
        print(f"USS {name}: {mib:.0f} MiB")
    report = {
        "command": "python " + shlex.join(sys.argv),
        "ray": ray.__version__,
        "cpus": os.cpu_count(),
        "algo": args.algo,
        "env": args.env,
        "chunk_steps": args.chunk,
        "samples_per_insert": args.samples_per_insert,
        "points": points,
        "serialisation_round_trip_us_per_transition": round_trip,
        "uss_mib": memory,
    }
    out = Path(__file__).parent / "results" / f"ray_scaling_{args.env}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
