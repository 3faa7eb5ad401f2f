"""Pixel TD3, dpgkit against Stable-Baselines3's CnnPolicy with the same network, side by side in one run.

Both: 64x64x3 uint8 images of a numpy probe env (dpgkit/PixelDot-v0 at size 64, 3 channels: no rendering cost),
a stack of 3 frames (SB3: VecFrameStack, 9 channels; dpgkit: frame_stack 3, the frames in the channels), the
Nature CNN encoder with its 512-unit layer (SB3's NatureCNN), one encoder for the actor and one shared by the two
critics (SB3's TD3 CnnPolicy default, share_features_extractor False), 256-256 heads, batch 256, Adam 3e-4, K=1.

- update: updates per second of the learner alone, sampling included (dpgkit: ReplayDriver.dispatch, one
  update per call; SB3: model.train(gradient_steps=N)), after a warm-up call (compilation).
- loop: env steps per second of a full training loop, one update per step (learn(measure) after warm-up).
- small: the same two measures for dpgkit with the small 64x64 encoder (four 16-channel 3x3 stride-2
  convolutions, Kendall et al. 2018), for its cost.

Every measure runs in a fresh process, dpgkit and SB3 alternating. Writes JSON to benchmarks/results/ with the
command line.

    python benchmarks/pixel_speed.py --updates 20 --steps 30 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from speed_vs_sb3 import versions

RESULTS = Path(__file__).parent / "results"
ENV = "dpgkit/PixelDot-v0"
ENV_KWARGS = {"size": 64, "channels": 3}
STACK, BATCH, FILL = 3, 256, 1_000


def dpgkit_agent(cnn: str, steps: int):
    """dpgkit TD3 on the stacked 64x64x3 probe, Nature CNN (or `cnn`), learning after FILL random steps."""
    import gymnasium as gym

    import dpgkit.envs  # noqa: F401  (registers the probe)
    from dpgkit import TD3

    return TD3(
        lambda: gym.make(ENV, **ENV_KWARGS),
        seed=0,
        cnn=cnn,
        frame_stack=STACK,
        learning_starts=FILL,
        batch_size=BATCH,
        buffer_size=FILL + steps + 100,
        eval_every=0,
        progress=False,
        log_every=10**9,
        checkpoint_seconds=0,
        run_dir=tempfile.mkdtemp(prefix="dpgkit-pixel-"),
    )


def dpgkit_measure(kind: str, cnn: str, count: int) -> float:
    """Updates per second (kind update) or loop steps per second (kind loop) of dpgkit."""
    import jax

    agent = dpgkit_agent(cnn, count + 10)
    agent.learn(FILL + 2)
    driver = agent.trainer.driver
    jax.block_until_ready(driver.state)
    start = time.perf_counter()
    if kind == "update":
        for _ in range(count):
            driver.dispatch(agent.steps)
        jax.block_until_ready(driver.state)
    else:
        agent.learn(count)
        jax.block_until_ready(driver.state)
    return count / (time.perf_counter() - start)


def sb3_model(steps: int):
    """SB3 TD3 CnnPolicy defaults (NatureCNN, net_arch 256-256, separate actor and critic extractors) on the same
    stacked probe, batch 256, Adam 3e-4, Gaussian noise 0.1, on the CPU."""
    import gymnasium as gym
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    import dpgkit.envs  # noqa: F401  (registers the probe)

    env = VecFrameStack(DummyVecEnv([lambda: gym.make(ENV, **ENV_KWARGS)]), STACK)
    return TD3(
        "CnnPolicy",
        env,
        learning_starts=FILL,
        batch_size=BATCH,
        learning_rate=3e-4,
        train_freq=1,
        gradient_steps=1,
        buffer_size=FILL + steps + 100,
        action_noise=NormalActionNoise(np.zeros(2), 0.1 * np.ones(2)),
        optimize_memory_usage=False,
        seed=0,
        device="cpu",
        verbose=0,
    )


def sb3_measure(kind: str, count: int) -> float:
    """Updates per second (kind update) or loop steps per second (kind loop) of SB3."""
    model = sb3_model(count + 10)
    model.learn(FILL + 2)
    start = time.perf_counter()
    if kind == "update":
        model.train(gradient_steps=count, batch_size=BATCH)
    else:
        model.learn(count, reset_num_timesteps=False)
    return count / (time.perf_counter() - start)


def fresh(library: str, kind: str, count: int, cnn: str = "nature") -> float:
    """One measure in a new Python process."""
    command = [sys.executable, __file__, "--one", library, kind, cnn, str(count)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(output.strip().splitlines()[-1])


def main() -> None:
    """Alternate dpgkit and SB3 measures; print and save the ratios of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=20, help="timed updates per measure")
    parser.add_argument("--steps", type=int, default=30, help="timed loop steps per measure")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        library, kind, cnn, count = args.one
        value = sb3_measure(kind, int(count)) if library == "sb3" else dpgkit_measure(kind, cnn, int(count))
        print(value)
        return
    report = {"command": "python " + shlex.join(sys.argv), "versions": versions(), "measures": {}}
    for kind, count in (("update", args.updates), ("loop", args.steps)):
        ours, theirs, small = [], [], []
        for r in range(args.repeats):
            ours.append(fresh("dpgkit", kind, count))
            theirs.append(fresh("sb3", kind, count))
            small.append(fresh("dpgkit", kind, count, "small"))
            print(
                f"{kind} {r}: dpgkit {ours[-1]:.2f}/s, SB3 {theirs[-1]:.2f}/s, dpgkit small {small[-1]:.2f}/s"
            )
        ratio = float(np.median(ours) / np.median(theirs))
        report["measures"][kind] = {
            "dpgkit_per_s": ours,
            "sb3_per_s": theirs,
            "dpgkit_small_encoder_per_s": small,
            "ratio_of_medians": ratio,
        }
        print(
            f"{kind}: dpgkit {np.median(ours):.2f} / SB3 {np.median(theirs):.2f} = {ratio:.2f}x", flush=True
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pixel_speed_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
