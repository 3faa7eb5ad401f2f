"""Environments: creation from ids, space checks and action scaling."""

from dpgkit.envs.spaces import ActionScaler, check_action_space, check_observation_space, env_factory

__all__ = ["ActionScaler", "check_action_space", "check_observation_space", "env_factory"]
