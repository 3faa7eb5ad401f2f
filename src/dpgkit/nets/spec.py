"""Network specs from settings: each observation input's torso and join layer, and encoder files."""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from dpgkit.nets.torsos import FLAT_INPUTS, InputSpec, TorsoSpec, parse_cnn, parse_torso

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


def network_inputs(
    obs_spec, network: str, torsos: tuple[str, ...], cnn: str, layers: int
) -> tuple[tuple[InputSpec, ...], tuple[int, ...]]:
    """Each observation input (by name, sorted as pytrees order dict keys) with its torso and join layer, and its
    number of axes; a single vector observation with no overrides gives the plain MLP's FLAT_INPUTS."""
    leaves = obs_spec if isinstance(obs_spec, dict) else {"obs": obs_spec}
    names = sorted(leaves)
    chosen = {name: (default_torso(leaves[name], cnn), 0) for name in names}
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
    for text in torsos:
        name, torso, layer = parse_override(text)
        if name not in chosen:
            raise ValueError(f"the torso entry {text!r} names no observation input; the inputs are {names}")
        spec = resolve_torso(parse_torso(torso))
        chosen[name] = (spec, chosen[name][1] if layer is None else layer)
    for name, (spec, layer) in chosen.items():
        if not 0 <= layer < layers:
            raise ValueError(
                f"the input {name!r} joins at layer {layer}: the trunk has layers 0..{layers - 1}"
            )
        if spec.kind in ("cnn", "frozen"):
            check_cnn_fits(name, leaves[name].shape, spec.conv)
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


def check_cnn_fits(name: str, shape: tuple[int, ...], conv) -> None:
    """Require an image input (..., H, W, C) large enough for every convolution of the CNN."""
    if len(shape) < 3:
        raise ValueError(f"the input {name!r} has shape {shape}: a CNN takes images (H, W, C)")
    height, width = shape[-3], shape[-2]
    if min(conv_output_size(height, conv), conv_output_size(width, conv)) < 1:
        layers = ",".join(f"{c}-{k}-{s}" for c, k, s in conv)
        raise ValueError(
            f"the image input {name!r} of shape {shape} is too small for the CNN {layers} (channels-kernel-stride): "
            "its convolutions leave no pixel; choose config.cnn for this size (small suits 64x64; e.g. "
            "'16-3-1,16-3-1' for 8x8), or render larger images"
        )


ENCODER_FORMAT = 1


def save_encoder(path: str | pathlib.Path, conv, features: int, params) -> pathlib.Path:
    """Write a CNN encoder (its layers and the params of one dpgkit.nets.torsos.CNN) to an .npz file."""
    path = pathlib.Path(path)
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    arrays = {jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves}
    header = json.dumps({"format": ENCODER_FORMAT, "conv": [list(c) for c in conv], "features": features})
    np.savez(path, __header__=np.array(header), **arrays)
    return path


def read_encoder(path: str | pathlib.Path) -> tuple[tuple[tuple[int, int, int], ...], int, dict]:
    """(conv layers, dense features, params) of an encoder file written by save_encoder."""
    try:
        with np.load(path) as data:
            header = json.loads(str(data["__header__"]))
            arrays = {k: data[k] for k in data.files if k != "__header__"}
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(
            f"cannot read the encoder file {path} ({error}); write one with save_encoder"
        ) from error
    if header.get("format") != ENCODER_FORMAT:
        raise ValueError(f"the encoder file {path} has format {header.get('format')}, not {ENCODER_FORMAT}")
    params: dict = {}
    for key, value in arrays.items():
        node = params
        parts = [p.strip("[]'\"") for p in key.split("][")]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    conv = tuple(tuple(int(v) for v in layer) for layer in header["conv"])
    return conv, int(header["features"]), params


def resolve_torso(spec: TorsoSpec) -> TorsoSpec:
    """A frozen torso with its file's layers filled in (the params are read at init); others as they are."""
    if spec.kind != "frozen":
        return spec
    conv, features, _ = read_encoder(spec.path)
    return TorsoSpec("frozen", conv=conv, features=features, path=spec.path)


def frozen_params(inputs: tuple[InputSpec, ...]) -> dict:
    """The params of each frozen encoder, by its module name frozen_<input index>."""
    return {
        f"frozen_{i}": read_encoder(spec.torso.path)[2]["params"]
        for i, spec in enumerate(inputs)
        if spec.torso.kind == "frozen"
    }
