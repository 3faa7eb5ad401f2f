"""Flax modules: torsos (identity, MLP streams, CNN encoders), the fused trunk's actor and critic heads, and the
networks joining them."""

from dpgkit.nets.mlp import Actor, Critic
from dpgkit.nets.networks import ActorNet, CriticNet, has_convolutions, make_encoders
from dpgkit.nets.torsos import FLAT_INPUTS, InputSpec, TorsoSpec, parse_torso

__all__ = [
    "FLAT_INPUTS",
    "Actor",
    "ActorNet",
    "Critic",
    "CriticNet",
    "InputSpec",
    "TorsoSpec",
    "has_convolutions",
    "make_encoders",
    "parse_torso",
]
