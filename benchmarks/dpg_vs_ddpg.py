"""Neural DPG against DDPG on Pendulum-v1: what replay and target networks add.

Both use DDPG's networks, learning rates, discount and exploration noise; DPG (features mlp) learns online
from each transition with no replay memory and no target networks. Each seed trains for --steps env steps
with an evaluation of 10 deterministic episodes every --eval-every steps. Results (curves and final returns)
go to benchmarks/results/ as JSON with the command line.

    python benchmarks/dpg_vs_ddpg.py --seeds 3 --steps 20000
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dpgkit import DDPG, DPG
from dpgkit.logger import read_metrics

RESULTS = Path(__file__).parent / "results"


def train(algo: str, env: str, seed: int, steps: int, eval_every: int, run_dir: Path) -> dict:
    """Train one seed; return its evaluation curve, final mean return and wall time."""
    ddpg = DDPG.default_config(env)
    shared = {
        "seed": seed,
        "total_steps": steps,
        "eval_every": eval_every,
        "eval_episodes": 10,
        "progress": False,
        "run_dir": str(run_dir),
    }
    start = time.perf_counter()
    if algo == "ddpg":
        agent = DDPG(env, **shared)
    else:
        same = ("hidden", "actor_lr", "critic_lr", "gamma", "noise_sigma")
        agent = DPG(env, features="mlp", **shared, **{name: getattr(ddpg, name) for name in same})
    agent.learn()
    steps_done, returns = read_metrics(run_dir)["eval/return"][seed]
    return {
        "eval_steps": steps_done.tolist(),
        "eval_return": [round(float(r), 1) for r in returns],
        "final_return": round(float(agent.evaluate(10).mean()), 1),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    """Parse the options, train both algorithms on every seed, print and save the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--eval-every", type=int, default=2_000)
    args = parser.parse_args()
    runs = {"dpg": {}, "ddpg": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for algo, per_seed in runs.items():
                per_seed[seed] = train(
                    algo, args.env, seed, args.steps, args.eval_every, Path(tmp) / f"{algo}{seed}"
                )
                print(algo, seed, per_seed[seed]["final_return"], f"{per_seed[seed]['seconds']}s", flush=True)
    report = {
        "command": "python " + shlex.join(sys.argv),
        "env": args.env,
        "steps": args.steps,
        "runs": runs,
        "final_mean": {
            a: round(float(np.mean([r["final_return"] for r in runs[a].values()])), 1) for a in runs
        },
    }
    print(json.dumps(report["final_mean"]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"dpg_vs_ddpg_{args.env}_{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        json.dumps(report, indent=2)
    )


if __name__ == "__main__":
    main()
