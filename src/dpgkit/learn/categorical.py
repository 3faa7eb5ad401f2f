"""Categorical return distributions on a fixed support, for the D4PG critic (Barth-Maron et al. 2018)."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy


def support(v_min: float, v_max: float, atoms: int):
    """The atoms z_i = v_min + i (v_max - v_min) / (atoms - 1), i = 0 .. atoms - 1."""
    return jnp.linspace(v_min, v_max, atoms)


def project_categorical(next_probs, reward, discount, atoms_z):
    """Projection of r + discount * Z onto the support (Bellemare et al. 2017, Algorithm 1), shape (B, N).

    Each atom's mass goes to the two atoms around clip(r + discount * z_j, v_min, v_max), split linearly by
    distance; a value exactly on an atom keeps all its mass there, and discount 0 gives a point mass at r.
    """
    atoms = atoms_z.shape[0]
    v_min, v_max = atoms_z[0], atoms_z[-1]
    tz = reward[:, None] + discount[:, None] * atoms_z[None]
    b = jnp.clip((tz - v_min) / ((v_max - v_min) / (atoms - 1)), 0.0, atoms - 1.0)  # clip(Tz) in atom units
    low = jnp.minimum(jnp.floor(b), atoms - 2.0)  # b = N - 1 goes to the top atom as frac = 1
    frac = (b - low)[..., None]
    low = low.astype(jnp.int32)
    to_atoms = (1.0 - frac) * jax.nn.one_hot(low, atoms) + frac * jax.nn.one_hot(low + 1, atoms)
    return jnp.einsum("bj,bjn->bn", next_probs, to_atoms)


def categorical_cross_entropy(target_probs, logits):
    """Per-example -sum_i p_i log softmax(logits)_i, the D4PG critic loss (Barth-Maron et al. 2018)."""
    return -jnp.sum(target_probs * jax.nn.log_softmax(logits), axis=-1)


def categorical_kl(target_probs, logits):
    """Per-example KL(p || softmax(logits)) = sum_i p_i (log p_i - log q_i), with 0 log 0 = 0."""
    return jnp.sum(xlogy(target_probs, target_probs) - target_probs * jax.nn.log_softmax(logits), axis=-1)


def expected_value(logits, atoms_z):
    """Q(s, a) = sum_i softmax(logits)_i z_i, the mean of the distribution (what the actor ascends)."""
    return jnp.sum(jax.nn.softmax(logits) * atoms_z, axis=-1)


def suggest_support(reward_min: float, reward_max: float, gamma: float, horizon: int | None = None):
    """A suggested (v_min, v_max): the discounted returns of 1 to H rewards in [reward_min, reward_max].

    A sum of h rewards weighted by 1, gamma, ..., gamma^(h-1) reaches at most (1 - gamma^H) / (1 - gamma)
    times a reward (H = horizon, infinite when None; H itself when gamma = 1); episodes may end after one
    step, so a positive reward_min (negative reward_max) only bounds one reward. A starting point to adjust.
    """
    if gamma >= 1.0 and horizon is None:
        raise ValueError("gamma = 1 needs a finite horizon to bound the returns")
    if gamma >= 1.0:
        factor = float(horizon)
    else:
        factor = 1.0 / (1.0 - gamma) if horizon is None else (1.0 - gamma**horizon) / (1.0 - gamma)
    v_min = reward_min * factor if reward_min < 0 else reward_min
    v_max = reward_max * factor if reward_max > 0 else reward_max
    return float(v_min), float(v_max)


def mass_outside(next_probs, reward, discount, atoms_z):
    """Per example, sum_j p_j [r + discount z_j < v_min or > v_max]: the target mass the projection clips."""
    tz = reward[:, None] + discount[:, None] * atoms_z[None]
    return jnp.sum(next_probs * ((tz < atoms_z[0]) | (tz > atoms_z[-1])), axis=-1)


def widened(v_min: float, v_max: float, margin: float):
    """[v_min - margin w, v_max + margin w], w = v_max - v_min."""
    width = v_max - v_min
    return v_min - margin * width, v_max + margin * width


def warmup_support(rewards, gamma: float, n_step: int, horizon: int | None, margin: float = 0.5):
    """A support from the n-step rewards R of the random warm-up: suggest_support(min R, max R, gamma^n, H / n),
    widened by margin times its width on each side (a learning agent's returns leave the random policy's)."""
    blocks = None if horizon is None else -(-horizon // n_step)
    low, high = suggest_support(float(np.min(rewards)), float(np.max(rewards)), gamma**n_step, blocks)
    if low == high:
        low, high = low - 1.0, high + 1.0
    return tuple(float(v) for v in widened(low, high, margin))
