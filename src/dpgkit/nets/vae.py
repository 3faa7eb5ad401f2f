"""A convolutional VAE whose encoder is the agent's CNN torso ending in a linear latent mean (Kendall et al. 2018
pretrain one on a few episodes' frames for DDPG): loss, jitted Adam step, and its encoder file."""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dpgkit import xla
from dpgkit.nets.layers import dense
from dpgkit.nets.spec import EncoderFile, conv_output_size, read_encoder, save_encoder
from dpgkit.nets.torsos import CNN, NHWC, as_float, conv_params


class ConvTranspose(nn.Module):
    """The transposed VALID convolution mirroring a valid_conv (output side (side - 1) * stride + kernel; lax's, whose
    gradient is fast where it is not inside a scan, as in the VAE's step); kernel (k, k, C_in, C_out), bias, fan-in
    (k * k * C_in) uniform init."""

    channels: int
    kernel: int
    stride: int

    @nn.compact
    def __call__(self, x):
        kernel, bias = conv_params(self, self.kernel, x.shape[-1], self.channels)
        strides = (self.stride, self.stride)
        return jax.lax.conv_transpose(x, kernel, strides, "VALID", dimension_numbers=NHWC) + bias


def conv_sides(side: int, conv) -> tuple[int, ...]:
    """The side of the image before each convolution and after the last."""
    return tuple(conv_output_size(side, conv[:i]) for i in range(len(conv) + 1))


def pad_to(x, height: int, width: int):
    """(N, h, w, C) edge-padded at the bottom and right to (N, height, width, C)."""
    return jnp.pad(x, [(0, 0), (0, height - x.shape[1]), (0, width - x.shape[2]), (0, 0)], mode="edge")


class Decoder(nn.Module):
    """The encoder mirrored: dense ReLU layers back to the convolutions' output, then a transposed convolution per
    convolution in reverse (same kernel and stride, channels reversed, the last to the image's), each padded to
    the side its convolution saw; sigmoid pixels in [0, 1]."""

    conv: tuple[tuple[int, int, int], ...]
    features: int
    image_shape: tuple[int, int, int]

    @nn.compact
    def __call__(self, z):
        heights = conv_sides(self.image_shape[0], self.conv)
        widths = conv_sides(self.image_shape[1], self.conv)
        shape = (heights[-1], widths[-1], self.conv[-1][0])
        x = z
        if self.features:
            x = nn.relu(dense(self.features, x.shape[-1])(x))
        x = nn.relu(dense(shape[0] * shape[1] * shape[2], x.shape[-1])(x)).reshape((-1, *shape))
        outputs = (self.image_shape[2], *(channels for channels, _, _ in self.conv[:-1]))
        for layer in reversed(range(len(self.conv))):
            _, kernel, stride = self.conv[layer]
            x = ConvTranspose(outputs[layer], kernel, stride)(x)
            x = pad_to(x, heights[layer], widths[layer])
            x = nn.relu(x) if layer else nn.sigmoid(x)
        return x


class VAE(nn.Module):
    """q(z|x) = N(mean, exp(log_var)) from the agent's CNN (its "encoder" params are a CNN torso's, latent mean
    included) and a linear log-variance layer on the same features (starting at 0: unit variance); the Decoder
    maps z back to pixels."""

    conv: tuple[tuple[int, int, int], ...]
    features: int
    latent: int
    image_shape: tuple[int, int, int]

    def setup(self):
        self.encoder = CNN(self.conv, self.features, self.latent)
        self.log_var = nn.Dense(self.latent, kernel_init=nn.initializers.zeros)
        self.decoder = Decoder(self.conv, self.features, self.image_shape)

    def encode(self, images):
        """(mean, log-variance) of q(z|x) for a batch of images (N, H, W, C)."""
        hidden, mean = self.encoder.encode(images, 3)
        return mean, self.log_var(hidden)

    def decode(self, z):
        """Pixels in [0, 1] (N, H, W, C) of latents (N, latent)."""
        return self.decoder(z)

    def __call__(self, images, noise):
        """(reconstruction, mean, log-variance) with z = mean + exp(log_var / 2) * noise."""
        mean, log_var = self.encode(images)
        return self.decode(mean + jnp.exp(0.5 * log_var) * noise), mean, log_var


def reconstruction_loss(images, reconstruction):
    """||x_hat - x||^2 summed over pixels, averaged over the batch (x: images scaled to [0, 1])."""
    return jnp.mean(jnp.sum(jnp.square(reconstruction - as_float(images)), axis=(1, 2, 3)))


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) summed over latents, averaged over the batch."""
    return jnp.mean(0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1))


def vae_losses(vae: VAE, params, images, key, beta: float):
    """(reconstruction + beta * KL, (reconstruction, KL)) of a batch, z drawn by the reparameterisation."""
    noise = jax.random.normal(key, (images.shape[0], vae.latent))
    reconstruction, mean, log_var = vae.apply(params, images, noise)
    recon, kl = reconstruction_loss(images, reconstruction), gaussian_kl(mean, log_var)
    return recon + beta * kl, (recon, kl)


def init_vae(vae: VAE, key):
    """Fresh VAE params."""
    images = jnp.zeros((1, *vae.image_shape), jnp.uint8)
    return vae.init(key, images, jnp.zeros((1, vae.latent)))


def vae_train_step(
    vae: VAE, optimizer: optax.GradientTransformation, batch_size: int, beta: float
) -> Callable:
    """A jitted step (params, opt_state, frames, key) -> (params, opt_state, (reconstruction, KL)): one Adam
    update on batch_size frames drawn uniformly (with replacement) from the uint8 frames (N, H, W, C)."""

    def step(params, opt_state, frames, key):
        draw_key, noise_key = jax.random.split(key)
        batch = frames[jax.random.randint(draw_key, (batch_size,), 0, frames.shape[0])]
        grads, losses = jax.grad(lambda p: vae_losses(vae, p, batch, noise_key, beta), has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, losses

    return xla.jit(step, convolutions=True)


@functools.cache
def vae_evaluation(vae: VAE) -> Callable:
    """A jitted (params, images) -> (reconstruction loss, KL, reconstructions), z the posterior mean (no
    sampling)."""

    def evaluate(params, images):
        mean, log_var = vae.apply(params, images, method=VAE.encode)
        reconstruction = vae.apply(params, mean, method=VAE.decode)
        return reconstruction_loss(images, reconstruction), gaussian_kl(mean, log_var), reconstruction

    return xla.jit(evaluate, convolutions=True)


def save_vae(path: str | pathlib.Path, vae: VAE, params) -> pathlib.Path:
    """Write the VAE as an encoder file: its encoder (a CNN torso's params, latent mean included) under "params",
    the log-variance layer and the decoder under "vae"."""
    inner = params["params"]
    rest = {name: value for name, value in inner.items() if name != "encoder"}
    return save_encoder(
        path, vae.conv, vae.features, {"params": inner["encoder"], "vae": rest}, vae.latent, vae.image_shape
    )


def read_vae(path: str | pathlib.Path) -> tuple[VAE, dict]:
    """The VAE and its params from a file of save_vae."""
    file: EncoderFile = read_encoder(path)
    if not file.latent or "vae" not in file.params or len(file.image_shape) != 3:
        raise ValueError(f"the encoder file {path} holds no VAE (write one with dpgkit pretrain-vae)")
    vae = VAE(file.conv, file.features, file.latent, file.image_shape)
    return vae, {"params": {"encoder": file.params["params"], **file.params["vae"]}}
