"""Evaluation returns of dpgkit TD3 and Stable-Baselines3 TD3 on HalfCheetah-v5 to 100k steps, and the TD3 paper.

Same settings for both (256-256, batch 256, Adam with --lr for actor and critics, default 3e-4 as in the TD3
authors' current code, which SB3 must be told: its own default is 1e-3; Gaussian exploration 0.1, learning
from step 10,000 as in the TD3 paper for HalfCheetah); every 5,000 steps, 10 deterministic episodes on the same fixed evaluation seeds.
dpgkit trains its seeds together (vmapped learner; each seed equals its single run) and checkpoints every
10,000 steps; SB3 trains one seed after another. Rerunning the same command resumes: finished runs are kept,
dpgkit continues from its last checkpoint. Writes a plot against the TD3 paper's curves and a JSON summary.

    python benchmarks/returns_vs_sb3.py --out benchmarks/out/cheetah --seeds 5 --steps 100000 --k 1
    python benchmarks/returns_vs_sb3.py --out benchmarks/out/cheetah --seeds 5 --steps 100000 --k 4 --sb3-k 4

The second runs both at K=4, as the speed benchmark compares them; without `--sb3-k` SB3 runs its published K=1.
`--only` trains one library and summarises whatever both have; `--first-seed` with `--seeds` trains a later block
of seeds into the same run dirs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from dpgkit.algos import ALGORITHMS
from dpgkit.evaluate import EVAL_SEED
from dpgkit.logger import RunLogger, read_metrics
from dpgkit.plot import plot_runs

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "td3_paper_learning_curves.csv"
EVAL_EVERY, EPISODES, LEARNING_STARTS = 5_000, 10, 10_000


def reference_path() -> str | None:
    """The TD3 paper's curves beside the checkout, or None (plot without them) where ../shared is absent."""
    if REFERENCE.exists():
        return str(REFERENCE)
    print(f"note: {REFERENCE} not found; plotting without the TD3 paper's curves")
    return None


def run_dpgkit(
    out: Path,
    env: str,
    seeds: int,
    steps: int,
    k: int,
    first_seed: int,
    algo: str = "td3",
    name: str = "",
    **overrides,
) -> Path:
    """Train (or resume) a dpgkit algorithm with all seeds vmapped; returns the run dir (default name dpgkit-k<K>).

    The overrides are config fields; they take precedence over this benchmark's schedule (learning_starts,
    train_freq = gradient_steps = k, evaluation and checkpoint intervals)."""
    run_dir = out / (name or f"dpgkit-k{k}")
    agent_class = ALGORITHMS[algo]
    if (run_dir / "checkpoints" / "LATEST").exists():
        agent = agent_class.load(run_dir)
    else:
        schedule = {
            "seed": first_seed,
            "seeds": seeds,
            "total_steps": steps,
            "learning_starts": LEARNING_STARTS,
            "train_freq": k,
            "gradient_steps": k,
            "eval_every": EVAL_EVERY,
            "eval_episodes": EPISODES,
            "checkpoint_every": 10_000,
            "run_dir": str(run_dir),
        }
        agent = agent_class(env, **(schedule | overrides))
    agent.learn()
    agent.save()
    return run_dir


def sb3_evaluate(model, env_id: str) -> float:
    """Mean return of deterministic episodes on dpgkit's fixed evaluation seeds."""
    import gymnasium as gym

    env, total = gym.make(env_id), 0.0
    for episode in range(EPISODES):
        obs, _ = env.reset(seed=EVAL_SEED + episode)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(model.predict(obs, deterministic=True)[0])
            total += reward
            done = terminated or truncated
    env.close()
    return total / EPISODES


def run_sb3(
    out: Path, env_id: str, seeds: int, steps: int, k: int, first_seed: int, lr: float, device: str = "cpu"
) -> Path:
    """Train SB3 TD3 one seed after another, logging evaluations in dpgkit's metrics format."""
    from speed_vs_sb3 import sb3_td3
    from stable_baselines3.common.callbacks import BaseCallback

    run_dir = out / f"sb3-k{k}"
    done = (
        {seed for seed, (s, _) in read_metrics(run_dir).get("eval/return", {}).items() if s.max() >= steps}
        if (run_dir / "metrics.csv").exists()
        else set()
    )
    for seed in range(first_seed, first_seed + seeds):
        if seed in done:
            continue
        logger = RunLogger(run_dir, [seed], tensorboard=False)

        class Evaluate(BaseCallback):
            def __init__(self, logger: RunLogger):
                super().__init__()
                self.run_logger = logger

            def _on_step(self) -> bool:
                if self.num_timesteps % EVAL_EVERY == 0:
                    self.run_logger.log(self.num_timesteps, {"eval/return": sb3_evaluate(self.model, env_id)})
                return True

        model = sb3_td3(env_id, LEARNING_STARTS, k, seed, learning_rate=lr, device=device)
        start = time.perf_counter()
        model.learn(steps, callback=Evaluate(logger))
        logger.log(steps, {"charts/wall_seconds": time.perf_counter() - start})
        logger.close()
    return run_dir


def final_returns(run_dir: Path, step: int) -> list[float]:
    """Each seed's evaluation return at `step`."""
    curves = read_metrics(run_dir).get("eval/return", {})
    return [float(v[s == step][-1]) for s, v in curves.values() if np.any(s == step)]


def main() -> None:
    """Run both libraries, plot, summarise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/cheetah")
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sb3-seeds", type=int, default=None, help="SB3 seeds (default: --seeds)")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=1, help="env steps per learner call and updates per call")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--sb3-k", type=int, default=1, help="SB3's K (default 1: the published schedule)")
    parser.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate of both libraries")
    parser.add_argument("--sb3-device", default="cpu", help="torch device of SB3 (cpu, cuda)")
    parser.add_argument(
        "--only", choices=["dpgkit", "sb3"], help="train one library only, then summarise both"
    )
    args = parser.parse_args()
    out = Path(args.out)
    if args.only != "sb3":
        run_dpgkit(
            out,
            args.env,
            args.seeds,
            args.steps,
            args.k,
            args.first_seed,
            actor_lr=args.lr,
            critic_lr=args.lr,
        )
    if args.only != "dpgkit":
        run_sb3(
            out,
            args.env,
            args.sb3_seeds or args.seeds,
            args.steps,
            args.sb3_k,
            args.first_seed,
            args.lr,
            args.sb3_device,
        )
    runs = {
        name: out / f"{name}-k{k}"
        for name, k in (("dpgkit", args.k), ("sb3", args.sb3_k))
        if (out / f"{name}-k{k}" / "metrics.csv").exists()
    }
    summary = {"command": "python " + shlex.join(sys.argv)}
    for name, run_dir in runs.items():
        returns = final_returns(run_dir, args.steps)
        summary[name] = {"returns": returns, "mean": float(np.mean(returns)), "std": float(np.std(returns))}
        print(
            f"{name}: {np.mean(returns):.0f} ± {np.std(returns):.0f} at {args.steps} steps over {len(returns)} seeds"
        )
    png = plot_runs(
        [str(r) for r in runs.values()],
        str(out / "curves.png"),
        reference=reference_path(),
        reference_env=args.env.split("-")[0],
        max_step=args.steps,
    )
    summary["plot"] = str(png)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
