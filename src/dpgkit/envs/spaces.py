"""Environment creation and the checks that reject what dpgkit cannot learn, before any work is done."""

from __future__ import annotations

import copy
import difflib
import importlib
from collections.abc import Callable

import gymnasium as gym
import jax
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


def env_factory(
    env: str | gym.Env | Callable[[], gym.Env], env_kwargs: dict | None = None
) -> Callable[[], gym.Env]:
    """A function making fresh copies of env: an id (or "module:EnvName-v0", made with env_kwargs), an instance
    (deep-copied) or a factory."""
    if isinstance(env, str):
        check_env_id(env)
        kwargs = dict(env_kwargs or {})
        return lambda: gym.make(env, **kwargs)
    if env_kwargs:
        raise ValueError(
            f"env keyword arguments {env_kwargs} go with an env id, not with {type(env).__name__} {env!r}: pass the "
            "id, or make the env with them yourself"
        )
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


def leaf_spaces(space: gym.Space, prefix: str = "") -> dict[str, gym.spaces.Box]:
    """The Box leaves of a Dict space (nested Dicts flattened to "outer/inner" names); a Box alone is {"": box}."""
    if isinstance(space, gym.spaces.Box):
        if not np.issubdtype(space.dtype, np.number) or np.issubdtype(space.dtype, np.bool_):
            raise TypeError(
                f"the observation space{f' entry {prefix!r}' if prefix else ''} is {space}, not numeric: dpgkit "
                "takes Boxes of numbers (float, or uint8 images)"
            )
        return {prefix: space}
    if isinstance(space, gym.spaces.Dict):
        if not space.spaces:
            raise TypeError(
                "the observation space is an empty Dict: there is nothing to observe; give it Box entries"
            )
        leaves: dict[str, gym.spaces.Box] = {}
        for name, sub in space.spaces.items():
            leaves.update(leaf_spaces(sub, f"{prefix}/{name}" if prefix else str(name)))
        return leaves
    where = f" entry {prefix!r}" if prefix else ""
    raise TypeError(
        f"the observation space{where} is {space}: dpgkit takes a Box of any shape (a vector, an image (H, W, C) "
        "of uint8, ...) or a gymnasium.spaces.Dict of Boxes (nested Dicts too); encode discrete, text or tuple "
        "observations as Boxes (e.g. gymnasium.wrappers.FlattenObservation, or a one-hot Box), or put a "
        "Tuple's parts in a Dict"
    )


def obs_spec(space: gym.Space):
    """The observation's structure: one jax.ShapeDtypeStruct for a Box, a dict of them (by leaf name) for a Dict.

    Floating-point leaves are float32 (what the networks take); integer ones (uint8 pixels) keep their dtype.
    """
    leaves = leaf_spaces(space)

    def leaf(box: gym.spaces.Box):
        dtype = np.float32 if np.issubdtype(box.dtype, np.floating) else box.dtype
        return jax.ShapeDtypeStruct(tuple(box.shape), np.dtype(dtype))

    if isinstance(space, gym.spaces.Box):
        return leaf(space)
    return {name: leaf(box) for name, box in leaves.items()}


def check_observation_space(space: gym.Space) -> None:
    """Require an observation space dpgkit takes: Boxes of numbers, alone or in (nested) Dicts."""
    leaf_spaces(space)


def flat_obs(obs):
    """A (nested) dict observation as a flat dict of "outer/inner" names, as obs_spec names them; arrays as they are."""
    if not isinstance(obs, dict):
        return obs
    flat = {}
    for name, value in obs.items():
        if isinstance(value, dict):
            flat.update({f"{name}/{k}": v for k, v in flat_obs(value).items()})
        else:
            flat[str(name)] = value
    return flat


def as_network_dtypes(obs):
    """Floating-point leaves as float32 (what the networks take); other dtypes (uint8 pixels) as they are."""
    return jax.tree_util.tree_map(
        lambda x: (
            np.asarray(x, np.float32) if np.issubdtype(np.asarray(x).dtype, np.floating) else np.asarray(x)
        ),
        flat_obs(obs),
    )


def check_observation(obs, spec) -> tuple[int, ...]:
    """Require one observation of the env's structure, or a batch of them (the same leading shape in every leaf),
    with finite values only; returns the batch shape (() for one observation)."""
    if isinstance(spec, dict):
        if not isinstance(obs, dict) or set(obs) != set(spec):
            names = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
            raise ValueError(f"the observation must be a dict with the entries {sorted(spec)}, got {names}")
        batches = {check_observation(obs[name], leaf) for name, leaf in spec.items()}
        if len(batches) > 1:
            raise ValueError(f"the observation's entries have different batch shapes {sorted(batches)}")
        return batches.pop()
    obs = np.asarray(obs)
    shape = spec.shape
    if obs.ndim < len(shape) or obs.shape[obs.ndim - len(shape) :] != shape:
        raise ValueError(
            f"the observation has shape {obs.shape}; the env's observations have shape {shape} "
            f"(or a batch: (..., {', '.join(map(str, shape))}))"
        )
    if not np.isfinite(obs).all():
        where = np.argwhere(~np.isfinite(obs))[0]
        raise ValueError(f"the observation holds a NaN or inf (at index {tuple(where.tolist())})")
    return obs.shape[: obs.ndim - len(shape)]


class ActionScaler:
    """Maps actor units [-1, 1] to the env's bounds (the affine map of each dimension)."""

    def __init__(self, space: gym.spaces.Box):
        self.low = space.low.astype(np.float64)
        self.high = space.high.astype(np.float64)
        self.dtype = space.dtype

    def to_env(self, action: np.ndarray) -> np.ndarray:
        """low + (a + 1) / 2 * (high - low)."""
        return (self.low + (np.asarray(action) + 1.0) * 0.5 * (self.high - self.low)).astype(self.dtype)
