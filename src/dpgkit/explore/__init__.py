"""Exploration: action-noise processes."""

from dpgkit.explore.noise import ActionNoise, GaussianNoise, OrnsteinUhlenbeckNoise, actor_sigmas, make_noise

__all__ = ["ActionNoise", "GaussianNoise", "OrnsteinUhlenbeckNoise", "actor_sigmas", "make_noise"]
