"""Environment creation and the checks that reject what dpgkit cannot learn, before any work is done."""

from __future__ import annotations

import copy
import difflib
import importlib
from collections.abc import Callable

import gymnasium as gym
import numpy as np

CONTINUOUS_ALGOS = "DDPG, TD3, D4PG and DPG"


def split_env_id(env_id: str) -> tuple[str, str]:
    """(module, registered id) of Gymnasium's "module:EnvName-v0" form; module is "" for a plain id."""
    module, colon, name = env_id.partition(":")
    return (module, name) if colon else ("", env_id)


def check_env_id(env_id: str) -> None:
    """Import the module of a "module:EnvName-v0" id (it registers the env); require the id registered."""
    module, name = split_env_id(env_id)
    if module:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(
                f"cannot import the module {module!r} of the env id {env_id!r} ({error}); it must be "
                "importable (on sys.path, e.g. installed or in the current directory) and register the env"
            ) from error
    if name not in gym.registry:
        close = difflib.get_close_matches(name, list(gym.registry), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        registered_by = f" (importing {module!r} did not register it)" if module else ""
        raise ValueError(f"unknown Gymnasium environment id {name!r}{registered_by}{hint}")


def env_factory(env: str | gym.Env | Callable[[], gym.Env]) -> Callable[[], gym.Env]:
    """A function making fresh copies of env: an id (or "module:EnvName-v0"), an instance (deep-copied) or a
    factory."""
    if isinstance(env, str):
        check_env_id(env)
        return lambda: gym.make(env)
    if isinstance(env, gym.Env):
        template = env

        def copy_env():
            try:
                return copy.deepcopy(template)
            except Exception as error:
                raise TypeError(
                    f"cannot copy the environment instance {template} ({error}); "
                    "pass an env id or a function that makes the environment instead"
                ) from error

        return copy_env
    if callable(env):
        return env
    raise TypeError(
        f"env must be a Gymnasium env id, a gymnasium.Env or a function making one, got {type(env)}"
    )


def check_action_space(space: gym.Space) -> None:
    """Require a bounded, finite Box action space."""
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
        raise TypeError(
            f"the action space is {space}: dpgkit needs continuous Box actions, since {CONTINUOUS_ALGOS} "
            "differentiate the critic with respect to the action; for discrete actions use DQN, PPO or SAC-discrete"
        )
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"the action space is {space}: dpgkit needs a Box action space")
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(
            f"the action space {space} has infinite bounds: dpgkit's actor outputs tanh in [-1, 1] and rescales "
            "it to the bounds, so every bound must be finite (wrap the env with gymnasium.wrappers.ClipAction "
            "and a finite Box, or RescaleAction)"
        )
    if np.any(space.high <= space.low):
        raise ValueError(f"the action space {space} has an empty range (high <= low)")


def check_observation_space(space: gym.Space) -> None:
    """Require what the MLP networks take: a flat (1-D) numeric Box."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise TypeError(
            f"the observation space is {space}: the MLP networks take a flat 1-D Box observation; flatten it "
            "(gymnasium.wrappers.FlattenObservation) or use a network for images or dict observations"
        )
    if not np.issubdtype(space.dtype, np.number):
        raise TypeError(f"the observation space {space} is not numeric")


def check_observation(obs: np.ndarray, shape: tuple[int, ...]) -> None:
    """Require one observation of the env's shape, or a batch of them, with finite values only."""
    if obs.ndim < len(shape) or obs.shape[obs.ndim - len(shape) :] != shape:
        raise ValueError(
            f"the observation has shape {obs.shape}; the env's observations have shape {shape} "
            f"(or a batch: (..., {', '.join(map(str, shape))}))"
        )
    if not np.isfinite(obs).all():
        where = np.argwhere(~np.isfinite(obs))[0]
        raise ValueError(f"the observation holds a NaN or inf (at index {tuple(where.tolist())})")


class ActionScaler:
    """Maps actor units [-1, 1] to the env's bounds (the affine map of each dimension)."""

    def __init__(self, space: gym.spaces.Box):
        self.low = space.low.astype(np.float64)
        self.high = space.high.astype(np.float64)
        self.dtype = space.dtype

    def to_env(self, action: np.ndarray) -> np.ndarray:
        """low + (a + 1) / 2 * (high - low)."""
        return (self.low + (np.asarray(action) + 1.0) * 0.5 * (self.high - self.low)).astype(self.dtype)
