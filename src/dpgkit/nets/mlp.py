"""MLP actor and critic with PyTorch-style fan-in uniform initialisation, as in the TD3 authors' code."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from dpgkit.nets.layers import NoisyDense, dense, hidden_activation


class Actor(nn.Module):
    """Deterministic policy mu(s) in [-1, 1]^action_dim: an MLP torso (see hidden_activation), tanh output.

    layer_norm normalizes each hidden layer before its ReLU (Plappert et al. 2018, for parameter noise; relu torso
    only); noisy makes every layer a NoisyDense, evaluated with the given factorised noise or, when None, its mean.
    """

    hidden: Sequence[int]
    action_dim: int
    final_init: float = 0.0
    layer_norm: bool = False
    noisy: bool = False
    noisy_sigma0: float = 0.5
    torso: str = "relu"

    @nn.compact
    def __call__(self, obs, noise=None):
        x = obs
        for i, size in enumerate(self.hidden):
            x = hidden_activation(
                self.torso, i, self.layer(size, x.shape[-1], 0.0, x, noise, i), self.layer_norm
            )
        return jnp.tanh(self.layer(self.action_dim, x.shape[-1], self.final_init, x, noise, len(self.hidden)))

    def layer(self, size: int, fan_in: int, bound: float, x, noise, index: int):
        """Layer `index`: a dense layer, or a NoisyDense fed its share of the noise."""
        if self.noisy:
            return NoisyDense(size, self.noisy_sigma0)(x, None if noise is None else noise[index])
        return dense(size, fan_in, bound)(x)


class Critic(nn.Module):
    """Action value Q(s, a): an MLP torso (see hidden_activation); the action joins the input of hidden layer
    `action_layer`.

    With atoms > 0 it outputs the logits of a categorical return distribution over that many atoms instead.
    """

    hidden: Sequence[int]
    action_layer: int = 0
    final_init: float = 0.0
    atoms: int = 0
    torso: str = "relu"

    @nn.compact
    def __call__(self, obs, action):
        x = obs
        for i, size in enumerate(self.hidden):
            if i == self.action_layer:
                x = jnp.concatenate([x, action], axis=-1)
            x = hidden_activation(self.torso, i, dense(size, x.shape[-1])(x))
        if self.atoms:
            return dense(self.atoms, x.shape[-1], self.final_init)(x)
        return dense(1, x.shape[-1], self.final_init)(x)[..., 0]
