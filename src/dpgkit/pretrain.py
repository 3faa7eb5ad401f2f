"""`dpgkit pretrain-vae`: frames of random-policy episodes, a convolutional VAE trained on them, its encoder file
and a PNG of frames over their reconstructions (Kendall et al. 2018's pretrained encoder for DDPG)."""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass
from typing import TextIO

import gymnasium as gym
import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dpgkit.config import VAEConfig, validate_vae
from dpgkit.envs.spaces import env_factory, flat_obs, leaf_spaces
from dpgkit.nets.spec import check_cnn_fits, is_image_leaf
from dpgkit.nets.torsos import parse_cnn
from dpgkit.nets.vae import VAE, init_vae, save_vae, vae_evaluation, vae_train_step
from dpgkit.progress import UpdateProgress

EVAL_CHUNK = 256
"""Frames per jitted evaluation of the final losses."""
GRID_FRAMES = 8
"""Frames (spread over the collected ones) shown in the PNG, each above its reconstruction."""
GRID_MIN_SIDE = 64
"""The PNG's frames are scaled up (nearest neighbour, by a whole factor) to at least this height."""


def is_single_image(box: gym.spaces.Box) -> bool:
    """Whether a Box is one uint8 image (H, W, C), C in 1..4 (not a stack of them)."""
    return is_image_leaf(box) and len(box.shape) == 3


def image_entry(space: gym.Space, image_key: str) -> str:
    """The (flattened) name of the observation's image entry ("" for an image Box), or a ValueError naming the
    space and what works."""
    leaves = leaf_spaces(space)
    images = [name for name, box in leaves.items() if is_single_image(box)]
    what = (
        "the VAE learns from a uint8 image (H, W, C): a Box observation, or a Dict with one such entry (--image-key "
        "picks one of several); render pixels with dpgkit.envs.make_pixel_env or PixelObservation"
    )
    if image_key:
        if image_key not in images:
            raise ValueError(
                f"config.image_key {image_key!r} is not an image entry of the observation space {space}; the image "
                f"entries are {images}"
            )
        return image_key
    if len(images) == 1:
        return images[0]
    if not images:
        raise ValueError(f"the observation space {space} holds no image: {what}")
    raise ValueError(
        f"the observation space {space} holds {len(images)} images {images}: choose one with --image-key"
    )


def frame_of(obs, entry: str) -> np.ndarray:
    """The image of an observation: itself (entry "") or its flattened Dict entry."""
    return np.asarray(obs if not entry else flat_obs(obs)[entry], np.uint8)


def collect_frames(env: gym.Env, entry: str, episodes: int, episode_steps: int, seed: int) -> np.ndarray:
    """The frames (N, H, W, C) of `episodes` episodes of uniformly random actions (reset frame and every step's),
    each episode cut at episode_steps steps."""
    env.action_space.seed(seed)
    frames = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        frames.append(frame_of(obs, entry))
        for _ in range(episode_steps):
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            frames.append(frame_of(obs, entry))
            if terminated or truncated:
                break
    return np.stack(frames)


def default_vae_path(env_id: str) -> pathlib.Path:
    """runs/vae-<env id, / and : as ->.npz."""
    return pathlib.Path("runs") / f"vae-{env_id.replace('/', '-').replace(':', '-')}.npz"


def grid_path(path: pathlib.Path) -> pathlib.Path:
    """The PNG next to a VAE file: <name without suffix>-reconstructions.png."""
    return path.with_name(f"{path.stem}-reconstructions.png")


def as_rgb(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, C) as RGB: 3 channels as they are, 4 without alpha, else the first channel as grey."""
    if images.shape[-1] in (3, 4):
        return images[..., :3]
    return np.repeat(images[..., :1], 3, axis=-1)


def reconstruction_grid(frames: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """One RGB uint8 image: the frames in a row above their reconstructions (in [0, 1]), scaled up, 2 px apart."""
    scale = math.ceil(GRID_MIN_SIDE / frames.shape[1])
    rows = [as_rgb(frames), as_rgb(np.clip(np.rint(reconstructions * 255.0), 0, 255).astype(np.uint8))]
    n, height, width = frames.shape[:3]
    side = (height * scale, width * scale)
    grid = np.full((2 * side[0] + 6, n * (side[1] + 2) + 2, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for i, image in enumerate(row):
            top, left = 2 + r * (side[0] + 2), 2 + i * (side[1] + 2)
            grid[top : top + side[0], left : left + side[1]] = image.repeat(scale, 0).repeat(scale, 1)
    return grid


def evaluate_frames(vae: VAE, params, frames: np.ndarray) -> tuple[float, float]:
    """Mean reconstruction loss and KL over all frames, z the posterior mean (in chunks of EVAL_CHUNK)."""
    totals = np.zeros(2)
    for start in range(0, len(frames), EVAL_CHUNK):
        chunk = frames[start : start + EVAL_CHUNK]
        totals += len(chunk) * np.asarray(vae_evaluation(vae)(params, jnp.asarray(chunk))[:2])
    recon, kl = totals / len(frames)
    return float(recon), float(kl)


def train_vae(config: VAEConfig, vae: VAE, frames: np.ndarray, stream: TextIO | None = None):
    """VAE params after config.updates Adam updates on the frames, with a progress bar."""
    key, init_key = jax.random.split(jax.random.PRNGKey(config.seed))
    params = init_vae(vae, init_key)
    optimizer = optax.adam(config.lr)
    opt_state = optimizer.init(params)
    step = vae_train_step(vae, optimizer, config.batch_size, config.beta)
    device_frames = jnp.asarray(frames)
    with UpdateProgress("vae", config.updates, config.progress, stream) as progress:
        for update in range(config.updates):
            params, opt_state, (recon, kl) = step(
                params, opt_state, device_frames, jax.random.fold_in(key, update)
            )
            progress.update(update + 1, {"reconstruction": recon, "KL": kl})
    return params


@dataclass(frozen=True)
class PretrainedVAE:
    """What pretrain_vae wrote and measured: the VAE file, its PNG, the frames learnt from and the final losses."""

    path: pathlib.Path
    png: pathlib.Path
    frames: int
    reconstruction: float
    kl: float


def pretrain_vae(config: VAEConfig, stream: TextIO | None = None) -> PretrainedVAE:
    """Collect random-policy frames of config.env, train a VAE on them, write its file and PNG."""
    validate_vae(config)
    conv, features = parse_cnn(config.cnn)
    env = env_factory(config.env, config.env_kwargs)()
    try:
        entry = image_entry(env.observation_space, config.image_key)
        shape = tuple(leaf_spaces(env.observation_space)[entry].shape)
        check_cnn_fits(entry or "obs", shape, conv, "config.cnn")
        frames = collect_frames(env, entry, config.episodes, config.episode_steps, config.seed)
    finally:
        env.close()
    vae = VAE(conv, features, config.latent, shape)
    params = train_vae(config, vae, frames, stream)
    recon, kl = evaluate_frames(vae, params, frames)
    path = pathlib.Path(config.out) if config.out else default_vae_path(config.env)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_vae(path, vae, params)
    shown = frames[np.linspace(0, len(frames) - 1, min(GRID_FRAMES, len(frames))).astype(int)]
    reconstructions = np.asarray(vae_evaluation(vae)(params, jnp.asarray(shown))[2])
    png = grid_path(path)
    imageio.imwrite(png, reconstruction_grid(shown, reconstructions))
    return PretrainedVAE(path, png, len(frames), recon, kl)
