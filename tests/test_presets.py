"""Tests for the per-environment hyperparameter presets (dpgkit/presets.toml)."""

import pytest

try:
    from dpgkit import presets
except ImportError:  # not installed: fall back to the src layout
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
    from dpgkit import presets

ALGOS = ("td3", "ddpg")
ENVS = (
    "Pendulum-v1",
    "MountainCarContinuous-v0",
    "LunarLanderContinuous-v3",
    "BipedalWalker-v3",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
)
INT_FIELDS = {
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
FLOAT_FIELDS = {
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
CHOICES = {"explore": ("gaussian", "ou"), "replay": ("uniform", "prioritized"), "cnn": ("nature", "small")}
BOOL_FIELDS = {"shared_encoder"}


def test_preset_fields_match_config_names():
    import dataclasses

    from dpgkit.config import Config

    expected = INT_FIELDS | FLOAT_FIELDS | BOOL_FIELDS | set(CHOICES) | {"hidden", "source"}
    assert presets.PRESET_FIELDS == expected
    assert expected - {"source"} <= {f.name for f in dataclasses.fields(Config)}


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("env_id", ENVS)
def test_every_env_has_a_sourced_preset(algo, env_id):
    values = presets.load_preset(algo, env_id)
    assert values, f"no {algo} preset for {env_id}"
    assert "source" not in values
    source = presets.preset_source(algo, env_id)
    assert isinstance(source, str) and source.strip()


def test_all_fields_known_and_typed():
    everything = presets.all_presets()
    assert set(ALGOS) <= set(everything)
    for algo, envs in everything.items():
        for env_id, values in envs.items():
            for field, value in values.items():
                where = f"{algo}/{env_id}/{field}"
                assert field in presets.PRESET_FIELDS and field != "source", where
                if field in INT_FIELDS:
                    assert type(value) is int, where
                elif field in FLOAT_FIELDS:
                    assert type(value) is float, where
                elif field == "hidden":
                    assert isinstance(value, tuple) and value, where
                    assert all(type(h) is int and h > 0 for h in value), where
                elif field in BOOL_FIELDS:
                    assert type(value) is bool, where
                else:
                    assert value in CHOICES[field], where


def test_lanefollow_presets_hold_the_papers_settings():
    for algo in ("ddpg", "td3", "d4pg"):
        values = presets.load_preset(algo, "LaneFollow-v0")
        assert values["gamma"] == 0.9 and values["ou_theta"] == 0.6 and values["noise_sigma"] == 0.4
        assert values["updates_per_episode"] == 250 and values["batch_size"] == 64
        assert values["max_grad_norm"] == 0.005 and values["hidden"] == (8,) and values["cnn"] == "small"
        assert values["noise_halving_episodes"] == 250 and values["shared_encoder"] is True


@pytest.mark.parametrize("algo", ALGOS)
def test_learning_starts_from_td3_paper(algo):
    for env_id in (
        "Pendulum-v1",
        "InvertedPendulum-v5",
        "InvertedDoublePendulum-v5",
        "Hopper-v5",
        "Walker2d-v5",
    ):
        assert presets.load_preset(algo, env_id)["learning_starts"] == 1000, env_id
    for env_id in ("HalfCheetah-v5", "Ant-v5"):
        assert presets.load_preset(algo, env_id)["learning_starts"] == 10000, env_id


def test_zoo_values_translated():
    pend = presets.load_preset("td3", "Pendulum-v1")
    assert pend["gamma"] == 0.98 and pend["actor_lr"] == pend["critic_lr"] == 1e-3
    assert "hidden" not in pend and pend["buffer_size"] == 200000  # 256-256 default, see the source note
    assert pend["train_freq"] == pend["gradient_steps"] == 1
    car = presets.load_preset("ddpg", "MountainCarContinuous-v0")
    assert car["explore"] == "ou" and car["noise_sigma"] == 0.5


def test_unknown_env_or_algo_gives_empty():
    assert presets.load_preset("td3", "NoSuchEnv-v0") == {}
    assert presets.load_preset("nosuchalgo", "Pendulum-v1") == {}
    assert presets.preset_source("td3", "NoSuchEnv-v0") is None


def test_returned_dicts_are_copies():
    presets.load_preset("td3", "Pendulum-v1")["gamma"] = 0.5
    assert presets.load_preset("td3", "Pendulum-v1")["gamma"] == 0.98


def test_unknown_field_is_rejected_with_names():
    with pytest.raises(ValueError, match=r"td3.*Foo-v0.*learning_rate"):
        presets._validate({"td3": {"Foo-v0": {"source": "x", "learning_rate": 1e-3}}})


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", 1.5),
        ("batch_size", True),
        ("gamma", "0.99"),
        ("hidden", [400, "300"]),
        ("explore", "pink"),
    ],
)
def test_badly_typed_field_is_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        presets._validate({"ddpg": {"Foo-v0": {field: value}}})
