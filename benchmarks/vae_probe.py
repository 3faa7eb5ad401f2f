"""How much of the lane geometry a pretrained VAE's latent keeps: a linear probe on LaneFollow-v0.

For each pretraining source, trains one VAE per seed (drive_in_a_day.pretrained_encoder: random-policy episodes
of the source) and fits ridge regressions from its latent mean to the car's lateral offset (over half
the lane width) and heading error, on frames at random poses of training roads; reports R^2 on the frames of
held-out roads, and on frames of the test route (drive_in_a_day's, never a training road). The same probe on the
64 principal components of the raw pixels is the reference for what a linear read-out of the image can give.

Sources: `train` (train mode: an episode ends when the car leaves the lane, so the frames come from the first
metres of five roads), `safety` (the same random policy with the safety driver of test mode on training roads:
each episode drives on to max_distance or --episode-steps, so the frames cover curves and poses of the whole road)
and `roads` (the same 5,000 frames from fifty roads of 100 steps: ten times the road and verge colours).

    python benchmarks/vae_probe.py --seeds 3
    python benchmarks/vae_probe.py --sources roads --seeds 5 --out benchmarks/out/drive   # drive_in_a_day's VAEs
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import jax.numpy as jnp
import numpy as np
from drive_in_a_day import VAE_SOURCES, Pretraining, pretrained_encoder

from dpgkit.config import VAEConfig
from dpgkit.envs.lanefollow import (
    ENV_ID,
    TEST_ROUTE_LENGTH,
    build_test_route,
    generate_road,
    pose_on_road,
    train_road_seed,
)
from dpgkit.nets.vae import VAE, read_vae

PROBE_ROAD_SEED = 1_000_000
"""Probe roads are seeds PROBE_ROAD_SEED, PROBE_ROAD_SEED + 1, ... (far from the seeds pretraining draws)."""
RIDGE = 1e-2
"""Ridge penalty of the probe, on standardised features."""


def probe_frames(
    roads: int, per_road: int, route_poses: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, H, W, 3), targets (N, 2: lateral offset over half the width, heading error) and road ids of
    per_road random in-lane poses on each of `roads` training roads, then route_poses on the test route (id -1)."""
    env = gym.make(ENV_ID).unwrapped
    rng = np.random.default_rng(seed)
    images, targets, road_ids = [], [], []
    sampled = [
        (generate_road(train_road_seed(PROBE_ROAD_SEED + r), 200.0), per_road, 150.0) for r in range(roads)
    ]
    sampled.append((build_test_route(), route_poses, TEST_ROUTE_LENGTH))
    for r, (road, poses, length) in enumerate(sampled):
        env.reset(options={"road": road})
        half = 0.5 * env.road.width
        for _ in range(poses):
            s = rng.uniform(0.0, length)
            pose = pose_on_road(env.road, s, rng.uniform(-0.9, 0.9) * half, rng.uniform(-0.3, 0.3))
            images.append(env.set_pose(*pose)["image"])
            targets.append((env.lateral / half, env.heading_error))
            road_ids.append(r if r < roads else -1)
    env.close()
    return np.stack(images), np.array(targets), np.array(road_ids)


def held_out_scores(features_of, targets: np.ndarray, road_ids: np.ndarray, roads: int) -> dict:
    """R^2 on the last quarter of the training roads (fit on the first three quarters), and on the test route
    (fit on all the training roads); features_of(fit rows) gives the features of every row."""
    splits = {
        "held_out_roads": (road_ids >= 0, road_ids >= int(0.75 * roads)),
        "test_route": (np.ones(len(road_ids), bool), road_ids < 0),
    }
    scores = {}
    for name, (rows, test) in splits.items():
        features = features_of(rows & ~test)
        scores[name] = held_out_r2(features[rows], targets[rows], test[rows])
    return scores


def held_out_r2(features: np.ndarray, targets: np.ndarray, test: np.ndarray) -> list[float]:
    """R^2 on the test rows of ridge regressions fit on the others, one per target column."""
    mean, std = features[~test].mean(0), features[~test].std(0) + 1e-8
    x = np.c_[(features - mean) / std, np.ones(len(features))]
    a, b = x[~test], targets[~test]
    weights = np.linalg.solve(a.T @ a + RIDGE * len(a) * np.eye(a.shape[1]), a.T @ b)
    residual = targets[test] - x[test] @ weights
    return [float(v) for v in 1.0 - residual.var(0) / targets[test].var(0)]


def latent_means(path: Path, images: np.ndarray) -> np.ndarray:
    """The VAE's latent mean of each image."""
    vae, params = read_vae(path)
    return np.concatenate(
        [
            np.asarray(vae.apply(params, jnp.asarray(images[i : i + 256]), method=VAE.encode)[0])
            for i in range(0, len(images), 256)
        ]
    )


def pixel_components(images: np.ndarray, fit: np.ndarray, k: int = 64) -> np.ndarray:
    """The first k principal components of the raw pixels (fit on the fit rows)."""
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    centre = flat[fit].mean(0)
    _, _, vt = np.linalg.svd(flat[fit] - centre, full_matrices=False)
    return (flat - centre) @ vt[:k].T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/vae_probe")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sources", nargs="*", choices=list(VAE_SOURCES), default=list(VAE_SOURCES))
    parser.add_argument("--updates", type=int, default=VAEConfig.updates, help="VAE updates")
    parser.add_argument("--beta", type=float, default=VAEConfig.beta)
    parser.add_argument("--roads", type=int, default=60)
    parser.add_argument("--per-road", type=int, default=40)
    parser.add_argument(
        "--route-poses", type=int, default=600, help="frames at random poses of the test route"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images, targets, road_ids = probe_frames(args.roads, args.per_road, args.route_poses, seed=0)
    summary: dict = {
        "command": "python " + shlex.join(sys.argv),
        "targets": ["lateral offset / half width", "heading error"],
    }
    summary["pixels_pca64"] = held_out_scores(
        lambda fit: pixel_components(images, fit), targets, road_ids, args.roads
    )
    print(f"64 principal components of the pixels: R^2 {summary['pixels_pca64']}", flush=True)
    for source in args.sources:
        for seed in range(args.seeds):
            pretraining = Pretraining(source, args.updates, args.beta)
            path, seconds = pretrained_encoder(out, seed, pretraining)
            latents = latent_means(path, images)
            scores = held_out_scores(lambda fit, latents=latents: latents, targets, road_ids, args.roads)
            summary[path.stem] = scores
            print(f"{path.stem}: R^2 {scores} ({seconds:.0f} s)", flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    Path(args.results).mkdir(parents=True, exist_ok=True)
    path = Path(args.results) / f"vae_probe_{stamp}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
