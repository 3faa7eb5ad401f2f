"""Steps per second of dpgkit TD3 against Stable-Baselines3 TD3 on the same task and settings, side by side.

Both use 256-256 networks, batch 256, Gaussian exploration 0.1, learning from step `learning_starts`; runs
alternate (dpgkit, SB3, dpgkit, SB3, ...) so that machine noise hits both alike, each in a fresh process (so
neither library's thread pools or imports touch the other). Only the learning phase is timed: each run first
trains through the warm-up and the first updates (which include JIT compilation), then `measure` further
steps are timed. Writes JSON to benchmarks/results/ with the command line.

    python benchmarks/speed_vs_sb3.py --env HalfCheetah-v5 --measure 3000 --repeats 3 --k 1 4 --seeds-check 4
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def dpgkit_sps(env_id: str, learning_starts: int, measure: int, k: int, seeds: int, seed: int) -> float:
    """Agent-steps per second of dpgkit TD3 over `measure` learning steps (seeds x steps / time)."""
    from dpgkit import TD3

    agent = TD3(
        env_id,
        seed=seed,
        seeds=seeds,
        learning_starts=learning_starts,
        train_freq=k,
        gradient_steps=k,
        eval_every=0,
        progress=False,
        log_every=10**9,
        buffer_size=learning_starts + measure + 1000,
        run_dir=tempfile.mkdtemp(prefix="dpgkit-bench-"),
    )
    agent.learn(learning_starts + 10 * k)
    start = time.perf_counter()
    agent.learn(measure)
    elapsed = time.perf_counter() - start
    agent.trainer.close()
    return seeds * measure / elapsed


def sb3_td3(
    env_id: str,
    learning_starts: int,
    k: int,
    seed: int,
    buffer_size: int = 1_000_000,
    learning_rate: float = 3e-4,
    device: str = "cpu",
):
    """Stable-Baselines3 TD3 with dpgkit's settings: 256-256, batch 256, Adam 3e-4 (SB3's own default is 1e-3),
    Gaussian exploration 0.1; torch on `device`."""
    import gymnasium as gym
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make(env_id)
    n = env.action_space.shape[0]
    return TD3(
        "MlpPolicy",
        env,
        learning_starts=learning_starts,
        batch_size=256,
        learning_rate=learning_rate,
        train_freq=k,
        gradient_steps=k,
        buffer_size=buffer_size,
        action_noise=NormalActionNoise(np.zeros(n), 0.1 * np.ones(n)),
        policy_kwargs={"net_arch": [256, 256]},
        seed=seed,
        device=device,
        verbose=0,
    )


def sb3_sps(env_id: str, learning_starts: int, measure: int, k: int, seed: int) -> float:
    """Steps per second of Stable-Baselines3 TD3 over `measure` learning steps."""
    model = sb3_td3(env_id, learning_starts, k, seed, buffer_size=learning_starts + measure + 1000)
    model.learn(learning_starts + 10 * k)
    start = time.perf_counter()
    model.learn(measure, reset_num_timesteps=False)
    return measure / (time.perf_counter() - start)


def in_fresh_process(
    library: str, env: str, learning_starts: int, measure: int, k: int, seeds: int, seed: int
) -> float:
    """Run one timing in a new Python process and return its steps per second."""
    command = [
        sys.executable,
        __file__,
        "--one",
        library,
        "--env",
        env,
        "--learning-starts",
        str(learning_starts),
        "--measure",
        str(measure),
        "--k",
        str(k),
        "--seeds",
        str(seeds),
        "--seed",
        str(seed),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(output.strip().splitlines()[-1])


def versions() -> dict:
    """Library versions and the machine."""
    import jax
    import torch

    import dpgkit

    return {
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "torch": torch.__version__,
        "dpgkit": dpgkit.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
    }


def main() -> None:
    """Alternate dpgkit and SB3 runs and print the steps-per-second ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--learning-starts", type=int, default=5000)
    parser.add_argument("--measure", type=int, default=3000, help="timed learning steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating run pairs per K")
    parser.add_argument(
        "--k", type=int, nargs="+", default=[1, 4], help="updates per learner call (and steps)"
    )
    parser.add_argument(
        "--seeds-check", type=int, default=0, help="also time --seeds N against N single runs"
    )
    parser.add_argument("--one", choices=["dpgkit", "sb3"], help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one == "dpgkit":
        print(dpgkit_sps(args.env, args.learning_starts, args.measure, args.k[0], args.seeds, args.seed))
        return
    if args.one == "sb3":
        print(sb3_sps(args.env, args.learning_starts, args.measure, args.k[0], args.seed))
        return
    run = functools.partial(
        in_fresh_process, env=args.env, learning_starts=args.learning_starts, measure=args.measure
    )
    report = {"command": "python " + shlex.join(sys.argv), "versions": versions(), "k": {}}
    for k in args.k:
        ours, theirs = [], []
        for r in range(args.repeats):
            ours.append(run("dpgkit", k=k, seeds=1, seed=r))
            theirs.append(run("sb3", k=k, seeds=1, seed=r))
            print(f"K={k} run {r}: dpgkit {ours[-1]:.1f} steps/s, SB3 {theirs[-1]:.1f} steps/s", flush=True)
        ratio = np.median(ours) / np.median(theirs)
        report["k"][k] = {"dpgkit_sps": ours, "sb3_sps": theirs, "ratio_of_medians": ratio}
        print(f"K={k}: dpgkit {np.median(ours):.1f} / SB3 {np.median(theirs):.1f} = {ratio:.2f}x", flush=True)
    if args.seeds_check:
        n = args.seeds_check
        together = run("dpgkit", k=1, seeds=n, seed=0)
        alone = run("dpgkit", k=1, seeds=1, seed=0)
        report["seeds"] = {
            "seeds": n,
            "vmapped_agent_sps": together,
            "single_sps": alone,
            "speedup_vs_separate_runs": together / alone,
        }
        print(
            f"--seeds {n}: {together:.1f} agent-steps/s vs one run {alone:.1f} steps/s: "
            f"{together / alone:.2f}x the throughput of {n} runs one after another",
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"speed_vs_sb3_{args.env}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
