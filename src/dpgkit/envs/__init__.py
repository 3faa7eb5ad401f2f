"""Environments: creation from ids, space checks and action scaling; importing registers the LQR instances."""

from dpgkit.envs.lqr import LQR, LQREnv, register_envs
from dpgkit.envs.spaces import (
    ActionScaler,
    check_action_space,
    check_observation,
    check_observation_space,
    env_factory,
)

__all__ = [
    "LQR",
    "ActionScaler",
    "LQREnv",
    "check_action_space",
    "check_observation",
    "check_observation_space",
    "env_factory",
]

register_envs()
