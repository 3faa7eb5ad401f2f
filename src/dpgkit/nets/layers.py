"""Layers: fan-in uniform dense layers (PyTorch-style, as in the TD3 authors' code) and NoisyNet layers with
factorised Gaussian noise (Fortunato et al. 2018, section 3)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def uniform_init(bound: float):
    """Initialiser drawing from U(-bound, bound)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def dense(features: int, fan_in: int, bound: float = 0.0, name: str | None = None) -> nn.Dense:
    """Dense layer with weights and biases from U(±1/sqrt(fan_in)), or U(±bound) when bound > 0."""
    scale = bound if bound > 0 else fan_in**-0.5
    return nn.Dense(features, kernel_init=uniform_init(scale), bias_init=uniform_init(scale), name=name)


def hidden_activation(torso: str, index: int, x, layer_norm: bool = False):
    """The activation after hidden layer `index`: relu(x) (relu(LayerNorm(x)) with layer_norm), or for the
    layernorm torso Acme's LayerNormMLP: tanh(LayerNorm(x)) after the first layer, elu(x) after the others."""
    if torso == "layernorm":
        return jnp.tanh(nn.LayerNorm()(x)) if index == 0 else nn.elu(x)
    return nn.relu(nn.LayerNorm()(x) if layer_norm else x)


def scaled_noise(eps):
    """f(x) = sgn(x) sqrt(|x|), applied to the unit Gaussian factors."""
    return jnp.sign(eps) * jnp.sqrt(jnp.abs(eps))


def factorised_noise(key, sizes: Sequence[int]):
    """For each layer (fan_in -> fan_out) of the sizes chain, the factors (f(eps_in), f(eps_out))."""
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    return tuple(
        (
            scaled_noise(jax.random.normal(keys[2 * i], (fan_in,))),
            scaled_noise(jax.random.normal(keys[2 * i + 1], (fan_out,))),
        )
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes))
    )


class NoisyDense(nn.Module):
    """y = (mu_w + sigma_w * eps_w) x + mu_b + sigma_b * eps_b, eps_w = f(eps_in) f(eps_out)^T, eps_b = f(eps_out).

    mu from U(+-1/sqrt(fan_in)), sigma = sigma0 / sqrt(fan_in); without noise (None) the mean weights alone.
    """

    features: int
    sigma0: float = 0.5

    @nn.compact
    def __call__(self, x, noise=None):
        fan_in = x.shape[-1]
        bound = fan_in**-0.5
        mu_w = self.param("mu_kernel", uniform_init(bound), (fan_in, self.features))
        mu_b = self.param("mu_bias", uniform_init(bound), (self.features,))
        sigma_w = self.param(
            "sigma_kernel", nn.initializers.constant(self.sigma0 * bound), (fan_in, self.features)
        )
        sigma_b = self.param("sigma_bias", nn.initializers.constant(self.sigma0 * bound), (self.features,))
        if noise is None:
            return x @ mu_w + mu_b
        eps_in, eps_out = noise
        return x @ (mu_w + sigma_w * jnp.outer(eps_in, eps_out)) + mu_b + sigma_b * eps_out


def noisy_layer_sizes(params) -> tuple[int, ...]:
    """The chain of sizes (fan_in, out_0, out_1, ...) of a network's NoisyDense layers, from its params."""
    layers = params["params"]
    kernels = [
        layers[f"NoisyDense_{i}"]["mu_kernel"].shape
        for i in range(len(layers))
        if f"NoisyDense_{i}" in layers
    ]
    return (kernels[0][-2], *(shape[-1] for shape in kernels))
