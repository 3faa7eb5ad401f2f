"""Critic and actor losses."""

import jax.numpy as jnp


def critic_mse_loss(q, target):
    """Sum over critics of the mean squared TD error, sum_i E[(Q_i(s, a) - y)^2] (TD3 authors' code)."""
    return jnp.sum(jnp.mean(jnp.square(q - target[None]), axis=-1))


def dpg_actor_loss(q_of_policy):
    """Deterministic policy gradient objective as a loss: -E[Q(s, mu(s))] (Silver et al. 2014, eq. 9)."""
    return -jnp.mean(q_of_policy)
