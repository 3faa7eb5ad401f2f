"""Measure how many seeds reach a return threshold by a step budget, to set the k-of-5 gates of the slow tests.

Trains N seeds one after another (a vmapped --seeds N run gives the same agents, but on 2 CPU cores N single
runs that stop at the threshold finish sooner), evaluates every `eval_every` steps with 10 episodes on the
fixed evaluation seeds, and records per seed the first step whose mean evaluation return reaches the
threshold; a seed stops early once it has reached it (learning in chunks continues the same run exactly). The gate k is the largest k with P(at least k of 5 pass) >= 0.9
under the measured pass rate. Results go to benchmarks/results/ as JSON with the command line.

    python benchmarks/learning_thresholds.py --algo td3 --env Pendulum-v1 --seeds 10 --steps 20000 --threshold -200
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from dpgkit.algos import ALGORITHMS
from dpgkit.logger import read_metrics

RESULTS = Path(__file__).parent / "results"


def gate(pass_rate: float, trials: int = 5, confidence: float = 0.9) -> int:
    """Largest k with P(Binomial(trials, pass_rate) >= k) >= confidence (0 if none)."""
    best = 0
    for k in range(1, trials + 1):
        tail = sum(
            math.comb(trials, j) * pass_rate**j * (1 - pass_rate) ** (trials - j)
            for j in range(k, trials + 1)
        )
        if tail >= confidence:
            best = k
    return best


def first_reaching(run_dir: Path, seeds: list[int], threshold: float) -> dict[int, int | None]:
    """Per seed, the first evaluated step whose mean return is at least threshold."""
    curves = read_metrics(run_dir).get("eval/return", {}) if (run_dir / "metrics.csv").exists() else {}
    found = {}
    for seed in seeds:
        steps, values = curves.get(seed, (np.zeros(0), np.zeros(0)))
        hits = steps[values >= threshold]
        found[seed] = int(hits[0]) if hits.size else None
    return found


def learn_until(agent, run_dir: Path, steps: int, threshold: float, chunk: int, needed: int) -> dict:
    """Learn in chunks until `needed` seeds reached the threshold or the step budget is spent."""
    while True:
        reached = first_reaching(run_dir, agent.trainer.agent_seeds, threshold)
        if agent.steps >= steps or sum(v is not None for v in reached.values()) >= needed:
            return reached
        agent.learn(min(chunk, steps - agent.steps))


def main() -> None:
    """Train, record, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="td3", choices=sorted(ALGORITHMS))
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--threshold", type=float, default=-200.0)
    parser.add_argument("--eval-every", type=int, default=1_000)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides (Python literals)"
    )
    args = parser.parse_args()
    overrides = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
    run_root = Path("runs") / f"threshold-{args.algo}-{args.env}-{time.strftime('%Y%m%d-%H%M%S')}"
    start = time.perf_counter()
    reached, stopped = {}, {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        run_dir = run_root / f"seed{seed}"
        agent = ALGORITHMS[args.algo](
            args.env,
            seed=seed,
            total_steps=args.steps,
            eval_every=args.eval_every,
            eval_episodes=10,
            run_dir=str(run_dir),
            progress=False,
            **overrides,
        )
        reached.update(learn_until(agent, run_dir, args.steps, args.threshold, args.eval_every, 1))
        stopped[seed] = agent.steps
        agent.trainer.close()
        print(f"seed {seed}: reached at {reached[seed]}", flush=True)
    wall = time.perf_counter() - start
    rate = sum(v is not None for v in reached.values()) / len(reached)
    report = {
        "command": "python " + shlex.join(sys.argv),
        "algo": args.algo,
        "env": args.env,
        "steps": args.steps,
        "threshold": args.threshold,
        "first_step_reaching": reached,
        "pass_rate": rate,
        "gate_k_of_5": gate(rate),
        "stopped_at_step": stopped,
        "wall_seconds": wall,
        "run_dir": str(run_root),
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"threshold_{args.algo}_{args.env.replace('/', '_')}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
