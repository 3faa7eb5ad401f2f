"""Adaptive parameter-space noise (Plappert et al. 2018): perturbation, action distance and the sigma rule."""

from __future__ import annotations

import jax
import numpy as np


def is_perturbed(path) -> bool:
    """Whether a parameter is perturbed: every weight and bias of the trunk, head and MLP torsos, not layer
    normalization's gain and bias, and not the encoders (CNN or frozen: a network's "encoder" params)."""
    names = [str(getattr(entry, "key", entry)) for entry in path]
    return not (names and names[0] == "encoder") and not any("LayerNorm" in name for name in names)


def perturb(params, sigma: float, rng: np.random.Generator):
    """theta~ = theta + sigma * eps, eps ~ N(0, I) drawn from rng for every perturbed parameter."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: (
            np.asarray(x) + sigma * rng.standard_normal(np.shape(x)).astype(np.float32)
            if is_perturbed(path)
            else np.asarray(x)
        ),
        params,
    )


def action_distance(actions, perturbed_actions) -> np.ndarray:
    """d = sqrt(mean((mu~(s) - mu(s))^2)) over the states and action dimensions (the last two axes)."""
    diff = np.asarray(perturbed_actions, np.float64) - np.asarray(actions, np.float64)
    return np.sqrt(np.mean(np.square(diff), axis=(-2, -1)))


def adapted_sigma(sigma, distance, delta: float, alpha: float):
    """sigma / alpha if d > delta else sigma * alpha (Plappert et al. 2018, section 3)."""
    return np.where(np.asarray(distance) > delta, np.asarray(sigma) / alpha, np.asarray(sigma) * alpha)
