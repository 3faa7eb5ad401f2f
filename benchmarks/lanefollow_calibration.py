"""Calibrate LaneFollow-v0 against the paper's baselines and time it.

On the test route (test mode): the random policy (uniform actions, 5 seeds) and the zero policy (action [0, 0]:
straight wheels, mid speed) give metres per disengagement, to compare with Kendall et al. 2018 (random 7.35 m,
zero 22.7 m; targets here 4-15 m and 15-45 m). Then env steps per second at 64x64 in train mode with random
actions, resets included, one process. The JSON goes to benchmarks/results/ with the command line.

    PYTHONPATH=src python benchmarks/lanefollow_calibration.py
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from dpgkit.drive import drive_route
from dpgkit.envs.lanefollow import TEST_ROUTE_LENGTH, TEST_ROUTE_SEED, meters_per_disengagement

RESULTS = Path(__file__).parent / "results"


def drive(env: gym.Env, policy, seed: int) -> dict:
    """One test-route drive of policy() -> action (random actions seeded by seed): distance, disengagements, steps."""
    env.action_space.seed(seed)
    run = drive_route(lambda obs: policy(), env)
    return {
        "seed": seed,
        "distance": run.distance,
        "disengagements": run.disengagements,
        "meters_per_disengagement": run.meters_per_disengagement,
        "steps": run.steps,
    }


def steps_per_second(steps: int, image_size: int) -> dict:
    """Env steps per wall-clock and per CPU second in train mode with uniform random actions, resets included
    (the CPU figure is the one-core speed on a shared machine)."""
    env = gym.make("LaneFollow-v0", image_size=image_size, mode="train")
    env.reset(seed=0)
    env.action_space.seed(0)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return {
        "wall": steps / (time.perf_counter() - wall),
        "cpu": steps / (time.process_time() - cpu),
        "load_average_1min": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--timing-steps", type=int, default=20_000)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()

    env = gym.make("LaneFollow-v0", image_size=args.image_size, mode="test")
    random_runs = [drive(env, env.action_space.sample, seed) for seed in range(args.seeds)]
    zero_run = drive(env, lambda: np.zeros(2, np.float32), 0)
    distance = sum(r["distance"] for r in random_runs)
    disengagements = sum(r["disengagements"] for r in random_runs)
    report = {
        "command": "python " + shlex.join(sys.argv),
        "test_route": {"seed": TEST_ROUTE_SEED, "length_m": TEST_ROUTE_LENGTH},
        "random": {
            "runs": random_runs,
            "meters_per_disengagement": meters_per_disengagement(distance, disengagements),
            "per_seed_mean": float(np.mean([r["meters_per_disengagement"] for r in random_runs])),
            "target": [4.0, 15.0],
        },
        "zero": {**zero_run, "target": [15.0, 45.0]},
        "paper": {"random": 7.35, "zero": 22.7},
        "steps_per_second": {
            "image_size": args.image_size,
            "steps": args.timing_steps,
            **steps_per_second(args.timing_steps, args.image_size),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    name = f"lanefollow_calibration_{time.strftime('%Y%m%d-%H%M%S')}.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2))
    print(
        f"random: {report['random']['meters_per_disengagement']:.1f} m/disengagement "
        f"({disengagements} in {distance:.0f} m over {args.seeds} seeds)\n"
        f"zero:   {zero_run['meters_per_disengagement']:.1f} m/disengagement "
        f"({zero_run['disengagements']} in {zero_run['distance']:.0f} m)\n"
        f"speed:  {report['steps_per_second']['wall']:.0f} env steps/s wall, {report['steps_per_second']['cpu']:.0f} "
        f"per CPU second at {args.image_size}x{args.image_size} (load {report['steps_per_second']['load_average_1min']:.1f})\n"
        f"written {RESULTS / name}"
    )


if __name__ == "__main__":
    main()
