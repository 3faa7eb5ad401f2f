"""MLP actor and critic with PyTorch-style fan-in uniform initialisation, as in the TD3 authors' code."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def uniform_init(bound: float):
    """Initialiser drawing from U(-bound, bound)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def dense(features: int, fan_in: int, bound: float = 0.0) -> nn.Dense:
    """Dense layer with weights and biases from U(±1/sqrt(fan_in)), or U(±bound) when bound > 0."""
    scale = bound if bound > 0 else fan_in**-0.5
    return nn.Dense(features, kernel_init=uniform_init(scale), bias_init=uniform_init(scale))


class Actor(nn.Module):
    """Deterministic policy mu(s) in [-1, 1]^action_dim: MLP with ReLU, tanh output."""

    hidden: Sequence[int]
    action_dim: int
    final_init: float = 0.0

    @nn.compact
    def __call__(self, obs):
        x = obs
        for size in self.hidden:
            x = nn.relu(dense(size, x.shape[-1])(x))
        return jnp.tanh(dense(self.action_dim, x.shape[-1], self.final_init)(x))


class Critic(nn.Module):
    """Action value Q(s, a): MLP with ReLU; the action joins the input of hidden layer `action_layer`.

    With atoms > 0 it outputs the logits of a categorical return distribution over that many atoms instead.
    """

    hidden: Sequence[int]
    action_layer: int = 0
    final_init: float = 0.0
    atoms: int = 0

    @nn.compact
    def __call__(self, obs, action):
        x = obs
        for i, size in enumerate(self.hidden):
            if i == self.action_layer:
                x = jnp.concatenate([x, action], axis=-1)
            x = nn.relu(dense(size, x.shape[-1])(x))
        if self.atoms:
            return dense(self.atoms, x.shape[-1], self.final_init)(x)
        return dense(1, x.shape[-1], self.final_init)(x)[..., 0]
