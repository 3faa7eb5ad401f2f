"""Measure linear COPDAC-Q on the LQR envs: ||K_hat - K*|| / ||K*|| per seed after a step budget.

K* is the discounted Riccati gain; K_hat the learned linear actor's gain (final theta, and theta averaged over
the last half). All seeds train together in one jitted, vmapped lax.scan. Sets the gates of tests/test_dpg.py;
results go to benchmarks/results/ as JSON with the command line.

    python benchmarks/copdac_lqr.py --env dpgkit/LQR2D-v0 --behaviour gaussian --steps 500000 --seeds 10
    python benchmarks/copdac_lqr.py --env dpgkit/LQR1D-v0 --behaviour uniform --alpha-w 5e-3 --alpha-v 1e-4 --curvature
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

import dpgkit
from dpgkit.algos.dpg import online_spec
from dpgkit.envs.lqr import functional_lqr, optimal_gain
from dpgkit.learn.copdac import init_online, linear_gain, run_online

RESULTS = Path(__file__).parent / "results"


def gain_errors(env_id: str, steps: int, seeds: list[int], **settings) -> dict[str, np.ndarray]:
    """Relative gain errors of the final and of the averaged theta, one per seed."""
    env = gym.make(env_id).unwrapped
    reset, step = functional_lqr(env)
    config = dpgkit.DPGConfig(gamma=env.lqr.gamma, **settings)
    spec = online_spec(config, env.lqr.action_dim)
    low, high = env.observation_space.low, env.observation_space.high

    def train(key):
        return run_online(
            spec, init_online(spec, key, low, high), reset, step, jax.random.fold_in(key, 1), steps
        )[0]

    states = jax.jit(jax.vmap(train))(jnp.stack([jax.random.key(s) for s in seeds]))
    best = optimal_gain(env.lqr)

    def error(theta):
        return np.linalg.norm(linear_gain(theta, 1.0, env.action_bound) - best) / np.linalg.norm(best)

    return {
        "final": np.array([error(t) for t in states.theta]),
        "averaged": np.array([error(t) for t in states.theta_avg]),
    }


def main() -> None:
    """Parse the options, measure, print and save the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="dpgkit/LQR1D-v0")
    parser.add_argument("--behaviour", default="gaussian", choices=["gaussian", "uniform"])
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--alpha-theta", type=float, default=dpgkit.DPGConfig.alpha_theta)
    parser.add_argument("--alpha-w", type=float, default=dpgkit.DPGConfig.alpha_w)
    parser.add_argument("--alpha-v", type=float, default=dpgkit.DPGConfig.alpha_v)
    parser.add_argument("--noise-sigma", type=float, default=dpgkit.DPGConfig.noise_sigma)
    parser.add_argument("--curvature", action="store_true")
    args = parser.parse_args()
    settings = {
        "behaviour": args.behaviour,
        "alpha_theta": args.alpha_theta,
        "alpha_w": args.alpha_w,
        "alpha_v": args.alpha_v,
        "noise_sigma": args.noise_sigma,
        "curvature": args.curvature,
    }
    start = time.perf_counter()
    errors = gain_errors(args.env, args.steps, list(range(args.seeds)), **settings)
    report = {
        "command": "python " + shlex.join(sys.argv),
        "env": args.env,
        "steps": args.steps,
        "settings": settings,
        "seconds": round(time.perf_counter() - start, 1),
        "errors_final": [round(float(e), 4) for e in errors["final"]],
        "errors_averaged": [round(float(e), 4) for e in errors["averaged"]],
        "max_final": round(float(errors["final"].max()), 4),
        "max_averaged": round(float(errors["averaged"].max()), 4),
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    name = f"copdac_{args.env.split('/')[-1]}_{args.behaviour}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
