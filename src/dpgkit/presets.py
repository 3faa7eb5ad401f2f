"""Per-environment hyperparameter presets shipped with dpgkit (``presets.toml``).

The file holds one table per ``[algo."EnvId"]`` whose keys are config field names plus a
``source`` string saying where each value comes from. It is validated when first loaded.
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any

from dpgkit.envs.spaces import split_env_id

_INT_FIELDS = frozenset(
    {
        "total_steps",
        "batch_size",
        "buffer_size",
        "learning_starts",
        "train_freq",
        "gradient_steps",
        "policy_delay",
        "eval_every",
        "atoms",
        "n_step",
        "updates_per_episode",
        "noise_halving_episodes",
    }
)
_FLOAT_FIELDS = frozenset(
    {
        "gamma",
        "tau",
        "actor_lr",
        "critic_lr",
        "critic_l2",
        "noise_sigma",
        "ou_theta",
        "target_noise",
        "target_noise_clip",
        "v_min",
        "v_max",
        "ou_dt",
        "max_grad_norm",
        "preactivation_l2",
    }
)
_CHOICE_FIELDS = {
    "explore": ("gaussian", "ou", "param", "noisy"),
    "replay": ("uniform", "prioritized"),
    "cnn": ("nature", "small"),
}
_BOOL_FIELDS = frozenset({"shared_encoder"})

PRESET_FIELDS: frozenset[str] = (
    _INT_FIELDS | _FLOAT_FIELDS | _BOOL_FIELDS | set(_CHOICE_FIELDS) | {"hidden", "source"}
)

_PRESETS_FILE = "presets.toml"


class PresetError(ValueError):
    """Raised when presets.toml holds an unknown field, a badly typed value or a malformed table."""


def _is_int(value: Any) -> bool:
    """Whether value is a TOML integer (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_field(algo: str, env_id: str, field: str, value: Any) -> Any:
    """Validate one preset entry and return it in the form the config expects."""
    where = f"preset [{algo}.{env_id!r}] field {field!r}"
    if field not in PRESET_FIELDS:
        allowed = ", ".join(sorted(PRESET_FIELDS))
        raise PresetError(f"{where}: unknown field (allowed: {allowed})")
    if field in _INT_FIELDS:
        if not _is_int(value):
            raise PresetError(f"{where}: expected an int, got {value!r}")
        return value
    if field in _FLOAT_FIELDS:
        if not (_is_int(value) or isinstance(value, float)):
            raise PresetError(f"{where}: expected a float, got {value!r}")
        return float(value)
    if field == "hidden":
        if not isinstance(value, list) or not value or not all(_is_int(h) and h > 0 for h in value):
            raise PresetError(f"{where}: expected a non-empty list of positive ints, got {value!r}")
        return tuple(value)
    if field in _BOOL_FIELDS:
        if not isinstance(value, bool):
            raise PresetError(f"{where}: expected true or false, got {value!r}")
        return value
    if field in _CHOICE_FIELDS:
        if value not in _CHOICE_FIELDS[field]:
            raise PresetError(f"{where}: expected one of {_CHOICE_FIELDS[field]}, got {value!r}")
        return value
    # field == "source"
    if not isinstance(value, str):
        raise PresetError(f"{where}: expected a string, got {value!r}")
    return value


def _validate(raw: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Check the parsed TOML document and convert values (lists to tuples, ints to floats)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for algo, envs in raw.items():
        if not isinstance(envs, dict):
            raise PresetError(f"presets: top-level entry {algo!r} must be a table of environments")
        out[algo] = {}
        for env_id, table in envs.items():
            if not isinstance(table, dict):
                raise PresetError(f"presets: [{algo}.{env_id!r}] must be a table, got {table!r}")
            out[algo][env_id] = {k: _check_field(algo, env_id, k, v) for k, v in table.items()}
    return out


@functools.lru_cache(maxsize=1)
def _load() -> dict[str, dict[str, dict[str, Any]]]:
    """Read, parse and validate the presets file shipped inside the package (cached)."""
    text = resources.files(__package__ or "dpgkit").joinpath(_PRESETS_FILE).read_text(encoding="utf-8")
    return _validate(tomllib.loads(text))


def load_preset(algo: str, env_id: str) -> dict:
    """Return the preset config values for algo on env_id (no "source"); {} if there is none.

    A "module:EnvName-v0" id takes the preset of EnvName-v0, the env Gymnasium makes from it.
    """
    table = _load().get(algo, {}).get(split_env_id(env_id)[1], {})
    return {k: v for k, v in table.items() if k != "source"}


def preset_source(algo: str, env_id: str) -> str | None:
    """Return the provenance note of the preset for algo on env_id, or None if there is none."""
    return _load().get(algo, {}).get(split_env_id(env_id)[1], {}).get("source")


def all_presets() -> dict[str, dict[str, dict]]:
    """Return every preset as {algo: {env_id: values}}, values as from load_preset."""
    return {algo: {env_id: load_preset(algo, env_id) for env_id in envs} for algo, envs in _load().items()}
