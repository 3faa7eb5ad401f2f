"""Flax modules: actor and critic networks."""

from dpgkit.nets.mlp import Actor, Critic

__all__ = ["Actor", "Critic"]
