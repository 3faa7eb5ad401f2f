"""Networks as torsos joined at chosen depths: an actor, and a critic ensemble that shares its encoders.

Without encoder torsos a network's params are its head's (a single vector observation gives the plain MLP's
params and numbers); with them, {"encoder": ..., "head": ...} (an ensemble: {"encoder": ..., "heads": ...}, the
heads stacked on a leading axis, the encoders once, as Stable-Baselines3 shares one features extractor between
its critics)."""

from __future__ import annotations

from dataclasses import dataclass

import jax

from dpgkit.nets.mlp import Actor, Critic
from dpgkit.nets.torsos import Encoders, encoded_inputs


@dataclass(frozen=True)
class ActorNet:
    """mu(s) = head(s, encoders(s)); detach stops the actor's gradient at the encoders (a shared encoder, as
    DrQ-v2 and SAC-AE train theirs with the critic's loss alone)."""

    head: Actor
    encoders: Encoders | None
    detach: bool

    def init(self, key, obs):
        """Fresh params for a batch of example observations."""
        if self.encoders is None:
            return self.head.init(key, obs)
        encoder_key, head_key = jax.random.split(key)
        encoder = self.encoders.init(encoder_key, obs)
        return {
            "encoder": encoder,
            "head": self.head.init(head_key, obs, None, self.encoders.apply(encoder, obs)),
        }

    def apply(self, params, obs, noise=None, preactivation: bool = False):
        """Actions in [-1, 1] for a batch of observations (a NoisyNet head under the given noise); with
        preactivation, the outputs before the tanh."""
        if self.encoders is None:
            return self.head.apply(params, obs, noise, None, preactivation)
        encoded = self.encoders.apply(params["encoder"], obs)
        if self.detach:
            encoded = jax.lax.stop_gradient(encoded)
        return self.head.apply(params["head"], obs, noise, encoded, preactivation)

    def head_params(self, params):
        """The params of the trunk and output layers (and MLP torsos): what parameter noise and NoisyNet act on."""
        return params if self.encoders is None else params["head"]


@dataclass(frozen=True)
class CriticNet:
    """Q_i(s, a) = head_i(s, a, encoders(s)) for an ensemble of heads over shared encoders."""

    head: Critic
    encoders: Encoders | None

    def init(self, key, obs, action):
        """Fresh params of one critic."""
        if self.encoders is None:
            return self.head.init(key, obs, action)
        encoder_key, head_key = jax.random.split(key)
        encoder = self.encoders.init(encoder_key, obs)
        return {
            "encoder": encoder,
            "head": self.head.init(head_key, obs, action, self.encoders.apply(encoder, obs)),
        }

    def apply(self, params, obs, action):
        """Q(s, a) (or a categorical critic's logits) of one critic."""
        if self.encoders is None:
            return self.head.apply(params, obs, action)
        return self.head.apply(params["head"], obs, action, self.encoders.apply(params["encoder"], obs))

    def init_ensemble(self, key, count: int, obs, action):
        """Fresh params of `count` critics: heads from split keys (vmapped), encoders once."""
        if self.encoders is None:
            return jax.vmap(self.head.init, in_axes=(0, None, None))(
                jax.random.split(key, count), obs, action
            )
        encoder_key, heads_key = jax.random.split(key)
        encoder = self.encoders.init(encoder_key, obs)
        encoded = self.encoders.apply(encoder, obs)
        heads = jax.vmap(self.head.init, in_axes=(0, None, None, None))(
            jax.random.split(heads_key, count), obs, action, encoded
        )
        return {"encoder": encoder, "heads": heads}

    def apply_ensemble(self, params, obs, action):
        """Every critic's output, stacked on a leading axis; the encoders run once."""
        if self.encoders is None:
            return jax.vmap(self.head.apply, in_axes=(0, None, None))(params, obs, action)
        encoded = self.encoders.apply(params["encoder"], obs)
        return jax.vmap(self.head.apply, in_axes=(0, None, None, None))(params["heads"], obs, action, encoded)

    def member(self, params, index: int):
        """One critic's params out of the ensemble's."""
        if self.encoders is None:
            return jax.tree_util.tree_map(lambda p: p[index], params)
        return {
            "encoder": params["encoder"],
            "head": jax.tree_util.tree_map(lambda p: p[index], params["heads"]),
        }


def has_convolutions(*nets: ActorNet | CriticNet) -> bool:
    """Whether any of these networks runs an encoder torso (all are CNNs), for xla.jit."""
    return any(net.encoders is not None for net in nets)


def make_encoders(inputs, ndims) -> Encoders | None:
    """The encoder torsos of these inputs, None when there are none."""
    return Encoders(inputs, ndims) if encoded_inputs(inputs) else None
