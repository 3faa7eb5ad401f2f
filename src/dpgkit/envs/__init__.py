"""Environments: creation from ids, space checks, action scaling and observation wrappers; importing registers
the LQR instances, the probes and LaneFollow-v0."""

from dpgkit.envs.lanefollow import LaneFollowEnv, meters_per_disengagement, register_lanefollow
from dpgkit.envs.lqr import LQR, LQREnv, register_envs
from dpgkit.envs.probes import DictProbeEnv, MatrixProbeEnv, PixelDotEnv, register_probes
from dpgkit.envs.spaces import (
    ActionScaler,
    as_network_dtypes,
    check_action_space,
    check_observation,
    check_observation_space,
    env_factory,
    flat_obs,
    obs_spec,
)
from dpgkit.envs.wrappers import (
    BIPEDAL_PARTS,
    PixelObservation,
    SplitObservation,
    ensure_headless_rendering,
    make_pixel_env,
    split_env,
)

__all__ = [
    "BIPEDAL_PARTS",
    "LQR",
    "ActionScaler",
    "DictProbeEnv",
    "LQREnv",
    "LaneFollowEnv",
    "MatrixProbeEnv",
    "PixelDotEnv",
    "PixelObservation",
    "SplitObservation",
    "as_network_dtypes",
    "check_action_space",
    "check_observation",
    "check_observation_space",
    "ensure_headless_rendering",
    "env_factory",
    "flat_obs",
    "make_pixel_env",
    "meters_per_disengagement",
    "obs_spec",
    "split_env",
]

register_envs()
register_probes()
register_lanefollow()
