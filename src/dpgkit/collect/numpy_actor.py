"""The plain MLP actor in numpy: what a Ray worker acts with when the actor needs nothing else (no XLA backend)."""

from __future__ import annotations

import numpy as np

from dpgkit.nets import ActorNet
from dpgkit.nets.torsos import FLAT_INPUTS


def numpy_fits(actor: ActorNet) -> bool:
    """Whether the actor is the plain MLP on one vector (dense layers, ReLU, tanh) that numpy_policy computes."""
    head = actor.head
    return (
        actor.encoders is None
        and head.inputs == FLAT_INPUTS
        and head.torso == "relu"
        and not head.layer_norm
        and not head.noisy
    )


def numpy_policy(params, obs: np.ndarray) -> np.ndarray:
    """mu(s) = tanh(W_L relu(... relu(W_0 s + b_0) ...) + b_L) for params stacked over seeds and obs shaped
    (seeds, copies, obs_dim): the flax Actor's numbers in float32."""
    layers = params["params"]
    x = np.asarray(obs, np.float32)
    for i in range(len(layers)):
        layer = layers[f"Dense_{i}"]
        x = np.matmul(x, layer["kernel"]) + layer["bias"][:, None, :]
        x = np.maximum(x, 0.0) if i < len(layers) - 1 else np.tanh(x)
    return x
