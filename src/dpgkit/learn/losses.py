"""Critic and actor losses."""

import jax.numpy as jnp


def weighted_mean(losses, weight=None):
    """Batch mean of per-example losses, (1/B) sum_b w_b loss_b with importance weights w (all 1 when None)."""
    return jnp.mean(losses if weight is None else weight * losses)


def dpg_actor_loss(q_of_policy):
    """Deterministic policy gradient objective as a loss: -E[Q(s, mu(s))] (Silver et al. 2014, eq. 9)."""
    return -jnp.mean(q_of_policy)
