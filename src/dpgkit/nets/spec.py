"""Network specs from settings: each observation input's torso and join layer, and encoder files."""

from __future__ import annotations

import json
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dpgkit.checkpoint import flatten_tree
from dpgkit.config import vae_encoder_path
from dpgkit.nets.torsos import (
    CNN,
    ENCODER_KINDS,
    FILE_KINDS,
    FLAT_INPUTS,
    InputSpec,
    TorsoSpec,
    parse_cnn,
    parse_torso,
)

PARKOUR_TERRAIN = (32, 32)
"""The parkour network's terrain stream: two ReLU layers of 32 (with a 256-256 trunk, about the parameter count of
early fusion on BipedalWalker: +10% at most), its features joining the trunk's second layer."""

PARKOUR_INPUTS = ("proprioception", "terrain")


def is_image_leaf(leaf) -> bool:
    """A uint8 leaf of shape (..., H, W, C), C in 1..4: the CNN torso's by default (a frame stack adds an axis)."""
    return np.dtype(leaf.dtype) == np.uint8 and len(leaf.shape) >= 3 and leaf.shape[-1] <= 4


def default_torso(leaf, cnn: str) -> TorsoSpec:
    """An image's CNN (the named or described one), identity for anything else."""
    if is_image_leaf(leaf):
        conv, features = parse_cnn(cnn)
        return TorsoSpec("cnn", conv=conv, features=features)
    return TorsoSpec("identity")


def parse_override(text: str) -> tuple[str, str, int | None]:
    """(input name, torso, join layer or None) of a "name=torso[@layer]" entry."""
    name, eq, rest = text.partition("=")
    torso, at, layer = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not eq or not name or not torso:
        raise ValueError(f"the torso entry {text!r} must read name=torso[@layer], e.g. terrain=mlp:64,64@1")
    if at and not layer.isdigit():
        raise ValueError(f"the torso entry {text!r} joins at {layer!r}: a layer index (0, 1, ...) is needed")
    return name, torso, int(layer) if at else None


def image_input(leaves: dict) -> str:
    """The name of the only image input, for config.encoder; ValueError naming the field otherwise."""
    images = [name for name in sorted(leaves) if is_image_leaf(leaves[name])]
    if len(images) == 1:
        return images[0]
    shapes = {name: f"{leaf.dtype} {tuple(leaf.shape)}" for name, leaf in leaves.items()}
    if not images:
        raise ValueError(
            f"config.encoder needs a uint8 image input (H, W, C); the observation has none: {shapes}"
        )
    raise ValueError(
        f"config.encoder gives one image input its encoder, and the observation has {len(images)}: {images}; "
        "use config.torsos instead, name=frozen:PATH (or name=pretrained:PATH to fine-tune) for each"
    )


def vae_torso(encoder: str, trainable: bool) -> TorsoSpec:
    """The torso of config.encoder "vae:PATH": the file's encoder ending in its latent mean, frozen or pretrained."""
    path = vae_encoder_path(encoder)
    file = read_encoder(path)
    if not file.latent:
        raise ValueError(
            f"config.encoder: {path} has no latent layer (not a VAE of `dpgkit pretrain-vae`); give a plain encoder "
            "file as config.torsos name=frozen:PATH"
        )
    kind = "pretrained" if trainable else "frozen"
    return TorsoSpec(kind, conv=file.conv, features=file.features, path=str(path), latent=file.latent)


def network_inputs(
    obs_spec,
    network: str,
    torsos: tuple[str, ...],
    cnn: str,
    layers: int,
    encoder: str,
    encoder_trainable: bool,
) -> tuple[tuple[InputSpec, ...], tuple[int, ...]]:
    """Each observation input (by name, sorted as pytrees order dict keys) with its torso and join layer, and its
    number of axes; a single vector observation with no overrides gives the plain MLP's FLAT_INPUTS."""
    leaves = obs_spec if isinstance(obs_spec, dict) else {"obs": obs_spec}
    names = sorted(leaves)
    chosen = {name: (default_torso(leaves[name], cnn), 0) for name in names}
    fields = dict.fromkeys(names, "config.cnn")
    if network == "parkour":
        if set(PARKOUR_INPUTS) - set(names):
            raise ValueError(
                f"the parkour network needs the observation inputs {list(PARKOUR_INPUTS)}, the env has {names}: "
                "split a flat observation with dpgkit.envs.SplitObservation (ready for BipedalWalker-v3 and "
                "BipedalWalkerHardcore-v3)"
            )
        chosen["terrain"] = (TorsoSpec("mlp", sizes=PARKOUR_TERRAIN), 1)
    elif network != "early":
        raise ValueError(f"config.network must be 'early' or 'parkour', got {network!r}")
    if encoder:
        name = image_input(leaves)
        chosen[name], fields[name] = (vae_torso(encoder, encoder_trainable), 0), "config.encoder"
    for text in torsos:
        name, torso, layer = parse_override(text)
        if name not in chosen:
            raise ValueError(f"the torso entry {text!r} names no observation input; the inputs are {names}")
        if fields[name] == "config.encoder":
            raise ValueError(
                f"the torso entry {text!r} names the input {name!r}, whose encoder config.encoder already gives"
            )
        spec = resolve_torso(parse_torso(torso))
        chosen[name], fields[name] = (spec, chosen[name][1] if layer is None else layer), "config.torsos"
    for name, (spec, layer) in chosen.items():
        if not 0 <= layer < layers:
            raise ValueError(
                f"the input {name!r} joins at layer {layer}: the trunk has layers 0..{layers - 1}"
            )
        if spec.kind in ENCODER_KINDS:
            check_cnn_fits(name, leaves[name].shape, spec.conv, fields[name])
        if spec.kind in FILE_KINDS:
            check_file_fits(name, leaves[name].shape, spec, fields[name])
    inputs = tuple(InputSpec(name, *chosen[name]) for name in names)
    ndims = tuple(len(leaves[name].shape) for name in names)
    if inputs == FLAT_INPUTS and ndims == (1,):
        return FLAT_INPUTS, ndims
    return inputs, ndims


def conv_output_size(size: int, conv) -> int:
    """The side of a VALID convolution stack's output for an input side `size`: s <- (s - kernel) // stride + 1."""
    for _, kernel, stride in conv:
        size = (size - kernel) // stride + 1 if size >= kernel else 0
    return size


FIT_HINTS = {
    "config.cnn": "choose config.cnn for this size (small suits 64x64; e.g. '16-3-1,16-3-1' for 8x8)",
    "config.torsos": "choose a torso of config.torsos for this size",
    "config.encoder": "pretrain the VAE with a --cnn for this size",
}
"""What to change when an image is too small for the CNN, by the field that chose it."""


def check_cnn_fits(name: str, shape: tuple[int, ...], conv, field: str) -> None:
    """Require an image input (..., H, W, C) large enough for every convolution of the CNN that `field` chose."""
    if len(shape) < 3:
        raise ValueError(f"{field}: the input {name!r} has shape {shape}: a CNN takes images (H, W, C)")
    height, width = shape[-3], shape[-2]
    if min(conv_output_size(height, conv), conv_output_size(width, conv)) < 1:
        layers = ",".join(f"{c}-{k}-{s}" for c, k, s in conv)
        raise ValueError(
            f"{field}: the image input {name!r} of shape {shape} is too small for the CNN {layers} "
            f"(channels-kernel-stride): its convolutions leave no pixel; {FIT_HINTS[field]}, or render larger images"
        )


def param_shapes(params) -> dict[str, tuple[int, ...]]:
    """Each leaf's shape by its key path."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(path): tuple(leaf.shape) for path, leaf in leaves}


def check_file_fits(name: str, shape: tuple[int, ...], torso: TorsoSpec, field: str) -> None:
    """Require an encoder file's params to have the shapes its CNN takes for this input (channels, frames and,
    with a dense or latent layer, image size)."""
    cnn = CNN(torso.conv, torso.features, torso.latent)
    images = jnp.zeros((1, *shape), jnp.uint8)
    wanted = param_shapes(
        jax.eval_shape(lambda: cnn.init(jax.random.PRNGKey(0), images, len(shape)))["params"]
    )
    saved = param_shapes(read_encoder(torso.path).params["params"])
    differ = sorted(k for k in wanted.keys() | saved.keys() if wanted.get(k) != saved.get(k))
    if differ:
        key = differ[0]
        raise ValueError(
            f"{field}: the encoder file {torso.path} does not fit the input {name!r} of shape {shape}: its param "
            f"{key} has shape {saved.get(key)}, this input needs {wanted.get(key)}; pretrain it on images of this "
            "shape (channels, frame stack and size)"
        )


ENCODER_FORMAT = 2
"""Encoder files are written in format 2 (format 1 and a latent layer and the image shape); 1 and 2 are read."""
READ_FORMATS = (1, 2)


class EncoderFile(NamedTuple):
    """An encoder file's contents: the CNN's layers, dense features and latent size (0: none), the image shape it
    was trained on (() when not recorded) and its params ({"params": the CNN's, maybe more collections})."""

    conv: tuple[tuple[int, int, int], ...]
    features: int
    latent: int
    image_shape: tuple[int, ...]
    params: dict


def save_encoder(
    path: str | pathlib.Path,
    conv,
    features: int,
    params,
    latent: int = 0,
    image_shape: tuple[int, ...] = (),
) -> pathlib.Path:
    """Write a CNN encoder (its layers, latent size, image shape and the params of one dpgkit.nets.torsos.CNN under
    "params", and any other collections of params) to an .npz file."""
    path = pathlib.Path(path)
    arrays = flatten_tree(params)
    header = {
        "format": ENCODER_FORMAT,
        "conv": [list(c) for c in conv],
        "features": features,
        "latent": latent,
        "image_shape": list(image_shape),
    }
    with open(path, "wb") as file:
        np.savez(file, __header__=np.array(json.dumps(header)), **arrays)
    return path


def nested(arrays: dict[str, np.ndarray]) -> dict:
    """Arrays keyed by key paths ("['params']['PatchConv_0']['kernel']") as the nested dict they came from."""
    tree: dict = {}
    for key, value in arrays.items():
        node = tree
        parts = [p.strip("[]'\"") for p in key.split("][")]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def read_encoder(path: str | pathlib.Path) -> EncoderFile:
    """The contents of an encoder file written by save_encoder (format 1 or 2)."""
    try:
        with np.load(path) as data:
            header = json.loads(str(data["__header__"]))
            arrays = {k: data[k] for k in data.files if k != "__header__"}
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(
            f"cannot read the encoder file {path} ({error}); write one with save_encoder"
        ) from error
    if header.get("format") not in READ_FORMATS:
        raise ValueError(
            f"the encoder file {path} has format {header.get('format')}, not one of {list(READ_FORMATS)}"
        )
    return EncoderFile(
        conv=tuple(tuple(int(v) for v in layer) for layer in header["conv"]),
        features=int(header["features"]),
        latent=int(header.get("latent", 0)),
        image_shape=tuple(int(v) for v in header.get("image_shape", ())),
        params=nested(arrays),
    )


def resolve_torso(spec: TorsoSpec) -> TorsoSpec:
    """A torso from an encoder file (frozen or pretrained) with the file's layers filled in (the params are read
    at init); others as they are."""
    if spec.kind not in FILE_KINDS:
        return spec
    file = read_encoder(spec.path)
    return TorsoSpec(spec.kind, conv=file.conv, features=file.features, path=spec.path, latent=file.latent)


def loaded_params(inputs: tuple[InputSpec, ...]) -> dict:
    """The params of each encoder read from a file, by its module name (frozen_<input> or pretrained_<input>)."""
    return {
        f"{spec.torso.kind}_{i}": read_encoder(spec.torso.path).params["params"]
        for i, spec in enumerate(inputs)
        if spec.torso.kind in FILE_KINDS
    }
