"""Exploration: action-noise processes."""

from dpgkit.explore.noise import ActionNoise, GaussianNoise, OrnsteinUhlenbeckNoise, make_noise

__all__ = ["ActionNoise", "GaussianNoise", "OrnsteinUhlenbeckNoise", "make_noise"]
