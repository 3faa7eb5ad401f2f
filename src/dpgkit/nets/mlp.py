"""Actor and critic heads: each input through its torso, a fused trunk that each input joins at its own layer,
and the output layer; PyTorch-style fan-in uniform initialisation, as in the TD3 authors' code.

The trunk's layer i takes [h_{i-1}, features of the inputs joining at i] (a critic's action is one more input,
joining at action_layer); a single vector observation joining at layer 0 is today's MLP."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from dpgkit.nets.layers import NoisyDense, dense, hidden_activation
from dpgkit.nets.torsos import FLAT_INPUTS, InputSpec, joined, torso_features


class Actor(nn.Module):
    """Deterministic policy mu(s) in [-1, 1]^action_dim: torsos, the fused trunk (see hidden_activation), tanh
    (left out when called with preactivation).

    layer_norm normalizes each hidden layer before its ReLU (Plappert et al. 2018, for parameter noise; relu torso
    only); noisy makes every trunk layer and the output a NoisyDense (not the torsos), evaluated with the given
    factorised noise or, when None, its mean. `encoded` holds the features of encoder torsos, computed outside.
    """

    hidden: Sequence[int]
    action_dim: int
    final_init: float = 0.0
    layer_norm: bool = False
    noisy: bool = False
    noisy_sigma0: float = 0.5
    torso: str = "relu"
    inputs: tuple[InputSpec, ...] = FLAT_INPUTS
    ndims: tuple[int, ...] = (1,)

    @nn.compact
    def __call__(self, obs, noise=None, encoded=None, preactivation: bool = False):
        features = torso_features(self.inputs, obs, encoded, self.ndims)
        joins = tuple(spec.join for spec in self.inputs)
        x = None
        for i, size in enumerate(self.hidden):
            x = joined(x, features, joins, i)
            x = hidden_activation(
                self.torso, i, self.layer(size, x.shape[-1], 0.0, x, noise, i), self.layer_norm
            )
        output = self.layer(self.action_dim, x.shape[-1], self.final_init, x, noise, len(self.hidden))
        return output if preactivation else jnp.tanh(output)

    def layer(self, size: int, fan_in: int, bound: float, x, noise, index: int):
        """Layer `index`: a dense layer, or a NoisyDense fed its share of the noise."""
        if self.noisy:
            return NoisyDense(size, self.noisy_sigma0)(x, None if noise is None else noise[index])
        return dense(size, fan_in, bound)(x)


class Critic(nn.Module):
    """Action value Q(s, a): torsos, the fused trunk (see hidden_activation) that the action joins at hidden layer
    `action_layer`, a linear output.

    With atoms > 0 it outputs the logits of a categorical return distribution over that many atoms instead.
    """

    hidden: Sequence[int]
    action_layer: int = 0
    final_init: float = 0.0
    atoms: int = 0
    torso: str = "relu"
    inputs: tuple[InputSpec, ...] = FLAT_INPUTS
    ndims: tuple[int, ...] = (1,)

    @nn.compact
    def __call__(self, obs, action, encoded=None):
        features = torso_features(self.inputs, obs, encoded, self.ndims) + [action]
        joins = tuple(spec.join for spec in self.inputs) + (self.action_layer,)
        x = None
        for i, size in enumerate(self.hidden):
            x = joined(x, features, joins, i)
            x = hidden_activation(self.torso, i, dense(size, x.shape[-1])(x))
        if self.atoms:
            return dense(self.atoms, x.shape[-1], self.final_init)(x)
        return dense(1, x.shape[-1], self.final_init)(x)[..., 0]
