"""Exploration: action noise, adaptive parameter-space noise and NoisyNet behaviour policies."""

from dpgkit.explore.explorers import (
    ActionNoiseExplorer,
    Explorer,
    NoisyNetExplorer,
    ParamNoiseExplorer,
    make_explorer,
)
from dpgkit.explore.noise import ActionNoise, GaussianNoise, OrnsteinUhlenbeckNoise, actor_sigmas, make_noise

__all__ = [
    "ActionNoise",
    "ActionNoiseExplorer",
    "Explorer",
    "GaussianNoise",
    "NoisyNetExplorer",
    "OrnsteinUhlenbeckNoise",
    "ParamNoiseExplorer",
    "actor_sigmas",
    "make_explorer",
    "make_noise",
]
