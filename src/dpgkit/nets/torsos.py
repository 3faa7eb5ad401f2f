"""Torsos, one per named input: identity, an MLP stream, or a CNN encoder (trained or frozen), and the specs
that name them (hashable, so they can sit in the learner's static spec)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

from dpgkit.nets.layers import dense, uniform_init

CNNS = {
    "nature": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512),
    "small": (((16, 3, 2), (16, 3, 2), (16, 3, 2), (16, 3, 2)), 0),
}
"""Ready CNN encoders: (conv layers (channels, kernel, stride), features of the dense layer after them, 0: none).
nature: Mnih et al. 2015's encoder with a 512-unit ReLU layer, as Stable-Baselines3's NatureCNN; small: Kendall
et al. 2018's four 3x3 stride-2 convolutions of 16 channels (64x64 -> 3x3x16 = 144 features)."""

ENCODER_KINDS = ("cnn", "frozen", "pretrained")
"""Torsos applied once per network outside its trunk (shared by an ensemble of critics, or by actor and critic)."""

FILE_KINDS = ("frozen", "pretrained")
"""Encoder torsos whose params start from an encoder file: frozen ones stay so, pretrained ones are trained."""


@dataclass(frozen=True)
class TorsoSpec:
    """One input's torso: identity, mlp (hidden sizes), cnn (conv layers, dense features, linear latent size), or
    a cnn whose params come from the encoder file `path`: frozen (never trained) or pretrained (trained from
    there)."""

    kind: str
    sizes: tuple[int, ...] = ()
    conv: tuple[tuple[int, int, int], ...] = ()
    features: int = 0
    path: str = ""
    latent: int = 0


@dataclass(frozen=True)
class InputSpec:
    """A named observation input, its torso and the trunk layer its features join."""

    name: str
    torso: TorsoSpec
    join: int


def parse_cnn(text: str) -> tuple[tuple[tuple[int, int, int], ...], int]:
    """A CNN by name (nature, small) or as "C-K-S,C-K-S,...[+F]": channels-kernel-stride per layer, F dense units."""
    if text in CNNS:
        return CNNS[text]
    layers_text, _, features = text.partition("+")
    try:
        layers = tuple(tuple(int(v) for v in layer.split("-")) for layer in layers_text.split(","))
        units = int(features) if features else 0
    except ValueError:
        layers, units = (), -1
    if not layers or any(len(layer) != 3 or min(layer) <= 0 for layer in layers) or units < 0:
        raise ValueError(
            f"the CNN {text!r} is not one of {sorted(CNNS)} nor channels-kernel-stride layers such as "
            "'32-8-4,64-4-2,64-3-1+512' (+F: a dense layer of F units after the convolutions)"
        )
    return layers, units


def parse_torso(text: str) -> TorsoSpec:
    """A torso from its CLI form: identity, mlp:64,64, cnn:nature (or cnn:C-K-S,...+F), frozen:PATH or
    pretrained:PATH."""
    kind, _, arg = text.partition(":")
    if kind == "identity" and not arg:
        return TorsoSpec("identity")
    if kind == "mlp":
        try:
            sizes = tuple(int(v) for v in arg.split(","))
        except ValueError:
            sizes = ()
        if sizes and min(sizes) > 0:
            return TorsoSpec("mlp", sizes=sizes)
        raise ValueError(f"the torso {text!r} needs positive layer sizes, as in mlp:64,64")
    if kind == "cnn":
        conv, features = parse_cnn(arg or "nature")
        return TorsoSpec("cnn", conv=conv, features=features)
    if kind in FILE_KINDS and arg:
        return TorsoSpec(kind, path=arg)
    raise ValueError(
        f"unknown torso {text!r}: use identity, mlp:SIZES (mlp:64,64), cnn:NAME ({', '.join(CNNS)}) or "
        "cnn:C-K-S,...+F, frozen:PATH (an encoder file of dpgkit.nets.spec.save_encoder or dpgkit pretrain-vae, "
        "never trained) or pretrained:PATH (one trained from there)"
    )


def as_float(x):
    """An input as float32: uint8 (pixels) scaled to [0, 1], other dtypes cast."""
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) / 255.0
    return x.astype(jnp.float32)


def flat_features(x, ndim: int):
    """The input's last `ndim` axes flattened into one feature axis (the leading ones are batch axes)."""
    return x.reshape(x.shape[: x.ndim - ndim] + (-1,))


def stack_in_channels(x, image_ndim: int):
    """A batch of images (N, [k,] H, W, C) as (N, H, W, k * C): a frame stack's frames side by side in the
    channels (image_ndim 4), a batch of plain images (image_ndim 3) as it is."""
    if image_ndim == 3:
        return x
    return jnp.moveaxis(x, 1, -2).reshape(x.shape[:1] + x.shape[2:4] + (-1,))


def conv_params(module: nn.Module, kernel: int, channels_in: int, channels_out: int):
    """A convolution's kernel (k, k, C_in, C_out) and bias, as flax's Conv, fan-in (k * k * C_in) uniform init."""
    bound = (kernel * kernel * channels_in) ** -0.5
    weights = module.param("kernel", uniform_init(bound), (kernel, kernel, channels_in, channels_out))
    return weights, module.param("bias", uniform_init(bound), (channels_out,))


NHWC = ("NHWC", "HWIO", "NHWC")
"""Convolution dimension numbers: images (batch, rows, columns, channels), kernels (rows, columns, in, out)."""


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def valid_conv(x, kernel, stride: int):
    """A VALID convolution (N, H, W, C) * (k, k, C, C_out) -> (N, H', W', C_out), whose gradients are convolutions
    in the same canonical layout (lax's own gradients, inside a scan, fall to XLA's slow generic convolution on
    CPU)."""
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "VALID", dimension_numbers=NHWC)


def valid_conv_forward(x, kernel, stride: int):
    """valid_conv, keeping its inputs for the gradient."""
    return valid_conv(x, kernel, stride), (x, kernel)


def valid_conv_backward(stride: int, inputs, cotangent):
    """(dL/dx, dL/dkernel) of valid_conv (square kernels), each one NHWC convolution: dx convolves the
    stride-dilated cotangent with the flipped kernel; dkernel convolves the rows and columns the windows cover
    (channels as batch) with the cotangent (batch as features) dilated by the stride."""
    x, kernel = inputs
    size = kernel.shape[0]
    covered = [(outputs - 1) * stride + size for outputs in cotangent.shape[1:3]]
    uncovered = [side - cover for side, cover in zip(x.shape[1:3], covered, strict=True)]
    flipped = jnp.flip(kernel, (0, 1)).swapaxes(2, 3)
    padding = [(size - 1, size - 1 + extra) for extra in uncovered]
    dx = jax.lax.conv_general_dilated(
        cotangent, flipped, (1, 1), padding, lhs_dilation=(stride, stride), dimension_numbers=NHWC
    )
    dkernel = jax.lax.conv_general_dilated(
        x[:, : covered[0], : covered[1]].transpose(3, 1, 2, 0),
        cotangent.transpose(1, 2, 0, 3),
        (1, 1),
        "VALID",
        rhs_dilation=(stride, stride),
        dimension_numbers=NHWC,
    )
    return dx, dkernel.transpose(1, 2, 0, 3)


valid_conv.defvjp(valid_conv_forward, valid_conv_backward)


class ValidConv(nn.Module):
    """A VALID convolution (valid_conv); params as flax's Conv: kernel (k, k, C_in, C_out), bias, fan-in uniform
    init."""

    channels: int
    kernel: int
    stride: int

    @nn.compact
    def __call__(self, x):
        kernel, bias = conv_params(self, self.kernel, x.shape[-1], self.channels)
        return valid_conv(x, kernel, self.stride) + bias


class CNN(nn.Module):
    """Convolutions (VALID padding, ReLU) over images (..., [k,] H, W, C), flattened, then an optional dense ReLU
    layer and an optional linear latent layer (a VAE's latent mean, named "latent"); uint8 pixels are scaled to
    [0, 1] inside (fan-in uniform init, as PyTorch's default). The convolutions' params are named PatchConv_i, as
    in the checkpoints and encoder files written when they were computed by im2col."""

    conv: tuple[tuple[int, int, int], ...]
    features: int
    latent: int = 0

    def __call__(self, images, image_ndim: int):
        return self.encode(images, image_ndim)[1]

    @nn.compact
    def encode(self, images, image_ndim: int):
        """(the features before the latent layer, the output: the latent mean, or those features without one)."""
        batch = images.shape[: images.ndim - image_ndim]
        x = stack_in_channels(as_float(images).reshape((-1,) + images.shape[len(batch) :]), image_ndim)
        for i, (channels, kernel, stride) in enumerate(self.conv):
            x = nn.relu(ValidConv(channels, kernel, stride, name=f"PatchConv_{i}")(x))
        x = x.reshape(batch + (-1,))
        if self.features:
            x = nn.relu(dense(self.features, x.shape[-1])(x))
        if not self.latent:
            return x, x
        return x, dense(self.latent, x.shape[-1], name="latent")(x)


class MLPTorso(nn.Module):
    """An input's own stream: dense ReLU layers of the given sizes over its flattened features."""

    sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, x):
        for size in self.sizes:
            x = nn.relu(dense(size, x.shape[-1])(x))
        return x


def encoded_inputs(inputs: tuple[InputSpec, ...]) -> tuple[int, ...]:
    """Indices of the inputs whose torso is an encoder (cnn, frozen or pretrained)."""
    return tuple(i for i, spec in enumerate(inputs) if spec.torso.kind in ENCODER_KINDS)


def input_values(obs, inputs: tuple[InputSpec, ...]) -> list:
    """Each input's array: a dict observation's entry by name, or the observation itself for one input."""
    if isinstance(obs, dict):
        return [obs[spec.name] for spec in inputs]
    return [obs]


class Encoders(nn.Module):
    """The encoder torsos of a network's inputs: a dict input index -> features (batch, f); frozen ones behind
    stop_gradient. image_ndims: each input's number of non-batch axes."""

    inputs: tuple[InputSpec, ...]
    image_ndims: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        values = input_values(obs, self.inputs)
        features = {}
        for i in encoded_inputs(self.inputs):
            torso = self.inputs[i].torso
            cnn = CNN(torso.conv, torso.features, torso.latent, name=f"{torso.kind}_{i}")
            out = cnn(values[i], self.image_ndims[i])
            features[str(i)] = jax.lax.stop_gradient(out) if torso.kind == "frozen" else out
        return features


def torso_features(inputs: tuple[InputSpec, ...], obs, encoded, ndims: tuple[int, ...]) -> list:
    """Each input's features (batch, f), called inside a head's compact call: the encoder's output, or the input
    through its own identity or MLP torso (a submodule of that head)."""
    values = input_values(obs, inputs)
    features = []
    for i, spec in enumerate(inputs):
        if spec.torso.kind in ENCODER_KINDS:
            features.append(encoded[str(i)])
            continue
        x = flat_features(as_float(values[i]), ndims[i])
        if spec.torso.kind == "mlp":
            x = MLPTorso(spec.torso.sizes, name=f"mlp_{i}")(x)
        features.append(x)
    return features


FLAT_INPUTS = (InputSpec("obs", TorsoSpec("identity"), 0),)
"""A single vector observation joining the trunk's first layer as it is (early fusion of one input)."""


def joined(x, features: list, joins: tuple[int, ...], layer: int):
    """The input of trunk layer `layer`: the previous layer's output, then the features joining at it, concatenated."""
    parts = ([] if x is None else [x]) + [f for f, j in zip(features, joins, strict=True) if j == layer]
    return jnp.concatenate(parts, axis=-1)
