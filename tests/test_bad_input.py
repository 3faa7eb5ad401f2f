"""Clear errors for what dpgkit cannot learn, before any training; clean stops on NaN and inf."""

from __future__ import annotations

import copy
import functools
import os
import pathlib
import re
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest

import dpgkit
from dpgkit import DDPG, TD3
from dpgkit.train import NonFiniteError
from envs_for_tests import ProbeFaulty, ProbeImageObs, ProbeInfiniteActions

TINY = {"hidden": (32, 32), "batch_size": 32, "eval_every": 0, "progress": False}


# --------------------------------------------------------------------------------------------------
# environments dpgkit cannot learn
# --------------------------------------------------------------------------------------------------


def test_discrete_actions_are_refused(tmp_path):
    with pytest.raises(TypeError, match="Box") as excinfo:
        TD3("CartPole-v1", run_dir=str(tmp_path), **TINY)
    assert "Discrete" in str(excinfo.value)
    assert not (tmp_path / "metrics.csv").exists()  # nothing started


def test_infinite_action_bounds_are_refused(tmp_path):
    with pytest.raises(ValueError, match="infinite"):
        TD3(ProbeInfiniteActions, run_dir=str(tmp_path), **TINY)


def test_an_image_too_small_for_the_cnn_is_refused_naming_both(tmp_path):
    with pytest.raises(ValueError, match="too small for the CNN 32-8-4") as excinfo:
        TD3(ProbeImageObs, run_dir=str(tmp_path), **TINY)
    assert "(8, 8, 3)" in str(excinfo.value) and "config.cnn" in str(excinfo.value)
    assert TD3(ProbeImageObs, run_dir=str(tmp_path), cnn="4-3-1", **TINY).observation_spec.shape == (8, 8, 3)


def test_misspelt_env_id_suggests_the_right_one(tmp_path):
    with pytest.raises(ValueError, match="Pendulm-v1") as excinfo:
        TD3("Pendulm-v1", run_dir=str(tmp_path), **TINY)
    assert "Pendulum-v1" in str(excinfo.value)


def test_env_instance_is_accepted_and_checked(tmp_path):
    with pytest.raises(ValueError, match="infinite"):
        TD3(ProbeInfiniteActions(), run_dir=str(tmp_path), **TINY)


# --------------------------------------------------------------------------------------------------
# config values that make no sense
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"actor_lr": -1.0}, "actor_lr"),
        ({"critic_lr": 0.0}, "critic_lr"),
        ({"batch_size": 512, "buffer_size": 100}, "batch_size"),
        ({"tau": 0.0}, "tau"),
        ({"tau": 1.5}, "tau"),
        ({"gamma": 1.5}, "gamma"),
        ({"learning_starts": -1}, "learning_starts"),
        ({"seed": -1}, "seed"),
        ({"hidden": ()}, "hidden"),
        ({"explore": "pink"}, "explore"),
        ({"atoms": 1}, "atoms"),
        ({"atoms": 51, "v_min": 10.0, "v_max": -10.0}, "v_min"),
        ({"n_step": 0}, "n_step"),
        ({"replay": "ranked"}, "replay"),
        ({"priority_beta": 1.5}, "priority_beta"),
        ({"priority_alpha": -0.1}, "priority_alpha"),
        ({"priority_eps": 0.0}, "priority_eps"),
        ({"noise_sigma": 0.0, "noise_sigma_max": 0.3}, "noise_sigma"),
        ({"target_update_every": -1}, "target_update_every"),
        ({"dqda_clip": -1.0}, "dqda_clip"),
        ({"max_grad_norm": -1.0}, "max_grad_norm"),
        ({"max_grad_norm": None}, "max_grad_norm"),
        ({"preactivation_l2": -0.5}, "preactivation_l2"),
        ({"torso": "gelu"}, "torso"),
        ({"torso": "layernorm", "layer_norm": True}, "layer_norm"),
        ({"actor_hidden": (0,)}, "actor_hidden"),
        ({"critic_hidden": (64,), "critic_action_layer": 1}, "critic_action_layer"),
        ({"atoms": 51, "v_min": -10.0}, "v_min"),
    ],
    ids=[
        "actor_lr",
        "critic_lr",
        "batch_gt_buffer",
        "tau_0",
        "tau_1.5",
        "gamma",
        "learning_starts",
        "seed",
        "hidden",
        "explore",
        "atoms",
        "support",
        "n_step",
        "replay",
        "priority_beta",
        "priority_alpha",
        "priority_eps",
        "sigma_spread",
        "target_update_every",
        "dqda_clip",
        "max_grad_norm",
        "max_grad_norm_none",
        "preactivation_l2",
        "torso",
        "layernorm_torso_and_layer_norm",
        "actor_hidden",
        "critic_action_layer_of_critic_hidden",
        "v_min_without_v_max",
    ],
)
def test_bad_config_value_is_named(tmp_path, overrides, field):
    with pytest.raises(ValueError, match=rf"config\.{field}\b"):
        TD3("Pendulum-v1", run_dir=str(tmp_path), **{**TINY, **overrides})
    assert not tmp_path.joinpath("metrics.csv").exists()


def test_batch_larger_than_replay_names_both(tmp_path):
    with pytest.raises(ValueError) as excinfo:
        TD3("Pendulum-v1", run_dir=str(tmp_path), **{**TINY, "batch_size": 512, "buffer_size": 100})
    assert "512" in str(excinfo.value) and "100" in str(excinfo.value)


def test_unknown_config_field_is_refused(tmp_path):
    with pytest.raises(ValueError, match="learning_start"):
        TD3("Pendulum-v1", run_dir=str(tmp_path), learning_start=5)


def test_valid_edge_values_are_accepted(tmp_path):
    agent = TD3(
        "Pendulum-v1", run_dir=str(tmp_path), **{**TINY, "tau": 1.0, "batch_size": 100, "buffer_size": 100}
    )
    assert agent.config.tau == 1.0


# --------------------------------------------------------------------------------------------------
# NaN and inf during training
# --------------------------------------------------------------------------------------------------


def faulty(fault: str, fault_step: int = 5):
    return functools.partial(ProbeFaulty, fault=fault, fault_step=fault_step)


@pytest.mark.parametrize(("fault", "what"), [("nan_obs", "observation"), ("nan_reward", "reward")])
def test_non_finite_transition_stops_training(tmp_path, fault, what):
    agent = DDPG(faulty(fault), run_dir=str(tmp_path), learning_starts=100, **TINY)
    with pytest.raises(NonFiniteError, match=what) as excinfo:
        agent.learn(50)
    assert isinstance(excinfo.value, FloatingPointError)
    message = str(excinfo.value)
    assert "non-finite" in message
    assert re.search(r"\bstep \d+\b", message), message
    # the bad transition was not stored: the four good steps were
    assert agent.steps == 4
    assert agent.trainer.driver.replay.size[0] == 4
    assert np.isfinite(agent.trainer.driver.replay.storage.next_obs[0, :4]).all()
    assert np.isfinite(agent.trainer.driver.replay.storage.reward[0, :4]).all()


def test_non_finite_observation_message_names_the_failing_step(tmp_path):
    """Steps count from 1 as everywhere else (agent.steps, step_N checkpoints, logs): the 5th step is step 5."""
    agent = DDPG(faulty("nan_obs", fault_step=5), run_dir=str(tmp_path), learning_starts=100, **TINY)
    with pytest.raises(NonFiniteError) as excinfo:
        agent.learn(50)
    assert re.search(r"\bstep 5\b", str(excinfo.value)), str(excinfo.value)


@pytest.mark.parametrize("replay", ["uniform", "prioritized"])
def test_non_finite_loss_stops_training(tmp_path, replay):
    # a finite reward of 1e38 makes (Q - y)^2 overflow float32 to inf in the first update, at env step 32;
    agent = DDPG(
        faulty("huge_reward", fault_step=1),
        run_dir=str(tmp_path),
        learning_starts=32,
        checkpoint_every=40,
        replay=replay,
        **TINY,
    )
    with pytest.raises(NonFiniteError, match="loss") as excinfo:
        agent.learn(100)
    message = str(excinfo.value)
    assert "non-finite loss" in message
    assert re.search(r"\bstep 32\b", message), message  # the step of the learner call that overflowed
    assert agent.steps >= 32 and agent.trainer.updates >= 1
    # no checkpoint of the broken parameters was written (the first one was due at step 40)
    assert not list((tmp_path / "checkpoints").glob("step_*"))
    assert "checkpoint" not in message
    if (
        replay == "prioritized"
    ):  # |Q - y| = 1e38 is still finite: the priorities went in, the loss check stopped it
        assert np.isfinite(agent.trainer.driver.replay.trees[0].total())


def test_non_finite_priority_stops_before_the_sum_tree(tmp_path):
    agent = DDPG("Pendulum-v1", run_dir=str(tmp_path), learning_starts=32, replay="prioritized", **TINY)
    agent.learn(40)
    trainer = agent.trainer
    before = {name: value.copy() for name, value in trainer.driver.replay.trees[0].state().items()}
    indices = np.array([[3, 5]])
    trainer.driver.pending_priorities = (indices, np.array([[[0.5, np.inf]]], np.float32))
    with pytest.raises(NonFiniteError, match=r"TD error .*step 40\b"):
        trainer.iteration({"returns": [[]]})
    np.testing.assert_array_equal(trainer.driver.replay.trees[0].state()["sums"], before["sums"])


def test_non_finite_error_names_the_last_good_checkpoint(tmp_path):
    make_env = faulty("nan_obs", fault_step=8)
    agent = DDPG(make_env, run_dir=str(tmp_path), learning_starts=2, checkpoint_every=3, **TINY)
    with pytest.raises(NonFiniteError) as excinfo:
        agent.learn(50)
    message = str(excinfo.value)
    checkpoint = tmp_path / "checkpoints" / "step_000000006"
    assert agent.trainer.last_checkpoint == checkpoint
    assert str(checkpoint) in message
    assert "last good checkpoint" in message

    loaded = DDPG.load(tmp_path, env=make_env)
    assert loaded.steps == 6
    assert loaded.trainer.updates == 6 - 2 + 1
    for leaf in jax.tree_util.tree_leaves(loaded.trainer.driver.replay.storage):
        assert np.isfinite(leaf[0, : loaded.trainer.driver.replay.size[0]]).all()


def test_error_without_checkpoint_does_not_mention_one(tmp_path):
    agent = DDPG(faulty("nan_reward", fault_step=2), run_dir=str(tmp_path), learning_starts=100, **TINY)
    with pytest.raises(NonFiniteError) as excinfo:
        agent.learn(10)
    assert "checkpoint" not in str(excinfo.value)


def test_fresh_run_refuses_a_run_dir_holding_a_checkpoint(tmp_path):
    from dpgkit import TD3
    from dpgkit.checkpoint import latest_checkpoint

    def fresh():
        return TD3(
            "Pendulum-v1",
            learning_starts=10,
            batch_size=8,
            hidden=(8, 8),
            eval_every=0,
            progress=False,
            run_dir=str(tmp_path),
        )

    first = fresh()
    first.learn(20)
    saved = first.save()
    second = fresh()
    with pytest.raises(ValueError, match="holds the checkpoints of another run"):
        second.learn(20)
    assert latest_checkpoint(tmp_path) == saved and second.steps == 0
    TD3.load(tmp_path).learn(20)  # resuming the run itself is fine


# --------------------------------------------------------------------------------------------------
# runs that would take no gradient step
# --------------------------------------------------------------------------------------------------


def test_training_to_the_total_without_reaching_learning_starts_is_refused(tmp_path):
    agent = TD3("Pendulum-v1", run_dir=str(tmp_path), total_steps=50, learning_starts=100, **TINY)
    with pytest.raises(ValueError, match="no gradient update would happen") as excinfo:
        agent.learn()
    assert "env step 50" in str(excinfo.value) and "step 100" in str(excinfo.value)
    assert agent.steps == 0 and not (tmp_path / "metrics.csv").exists()


def test_a_learn_call_ending_before_learning_starts_warns(tmp_path):
    agent = TD3("Pendulum-v1", run_dir=str(tmp_path), learning_starts=30, **TINY)
    with pytest.warns(UserWarning, match="ends at env step 20, before learning starts at step 30"):
        agent.learn(20)
    assert agent.trainer.updates == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agent.learn(10)  # this call reaches learning_starts: one update, no warning
    assert agent.trainer.updates == 1


def test_learn_past_the_total_steps_says_where_the_run_is(tmp_path):
    agent = TD3("Pendulum-v1", run_dir=str(tmp_path), learning_starts=10, **TINY)
    agent.learn(20)
    agent.config = agent.config.replace(total_steps=12)
    with pytest.raises(ValueError, match=r"already at env step 20, past config.total_steps \(12\)"):
        agent.learn()
    assert agent.steps == 20


# --------------------------------------------------------------------------------------------------
# acting and evaluating on bad input
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_td3():
    from dpgkit.algos import Agent

    return Agent.load(FIXTURE_TD3)


FIXTURE_TD3 = pathlib.Path(__file__).parent / "fixtures" / "format1_td3"


@pytest.mark.parametrize("shape", [(4,), (2, 2), ()])
def test_act_on_an_observation_of_the_wrong_shape_names_the_expected_one(loaded_td3, shape):
    with pytest.raises(ValueError, match=rf"shape {re.escape(str(shape))}; .*shape \(3,\)"):
        loaded_td3.act(np.zeros(shape))


def test_act_on_a_batch_of_observations_is_accepted(loaded_td3):
    assert loaded_td3.act(np.zeros((5, 3))).shape == (5, 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_act_on_a_non_finite_observation_is_refused(loaded_td3, bad):
    with pytest.raises(ValueError, match=r"NaN or inf \(at index \(1, 2\)\)"):
        loaded_td3.act(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, bad]]))


@pytest.mark.parametrize("episodes", [0, -2, 1.5])
def test_evaluate_needs_a_positive_number_of_episodes(loaded_td3, episodes):
    with pytest.raises(ValueError, match=rf"episodes must be a positive integer, got {episodes}"):
        loaded_td3.evaluate(episodes)


# --------------------------------------------------------------------------------------------------
# edited checkpoints
# --------------------------------------------------------------------------------------------------


def edited_meta(edit) -> tuple[dict, dict]:
    """The TD3 fixture checkpoint's arrays and meta, with edit applied to a copy of the meta."""
    from dpgkit.checkpoint import load_checkpoint

    arrays, meta = load_checkpoint(FIXTURE_TD3)
    meta = copy.deepcopy(meta)
    edit(meta)
    return arrays, meta


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("algo"), r"meta.json has no 'algo' entry \(it holds collector, config, "),
        (lambda m: m.pop("config"), "meta.json has no 'config' entry"),
        (lambda m: m.pop("steps"), r"no 'steps' entry in meta.json or its arrays \(meta.json holds algo, "),
        (lambda m: m["config"].pop("gamma"), "the config in meta.json has no field.s. gamma"),
        (lambda m: m["config"].pop("hidden"), "the config in meta.json has no field.s. hidden"),
        (
            lambda m: m.update(algo="td4"),
            "unknown algorithm 'td4' in meta.json; known: d4pg, ddpg, dpg, td3",
        ),
        (
            lambda m: m["config"].update(warp_drive=True),
            r"config field.s. warp_drive unknown to TD3Config of dpgkit \S+ \(the checkpoint was written by",
        ),
    ],
    ids=["no_algo", "no_config", "no_steps", "no_gamma", "no_hidden", "unknown_algo", "newer_field"],
)
def test_an_edited_checkpoint_is_named_with_the_entry(edit, message):
    from dpgkit.algos import Agent

    arrays, meta = edited_meta(edit)
    with pytest.raises(ValueError, match=message) as excinfo:
        Agent.from_checkpoint(arrays, meta, FIXTURE_TD3)
    assert str(excinfo.value).startswith(f"checkpoint {FIXTURE_TD3}: ")


PYTHON_O_CHECKS = """
import sys

import jax
import numpy as np

from dpgkit.config import Config, validate, warmup_only
from dpgkit.envs import check_observation, env_factory
from dpgkit.train import config_from_meta

checks = {
    "tau": lambda: validate(Config(tau=0.0)),
    "seed": lambda: validate(Config(seed=-1)),
    "batch_size": lambda: validate(Config(batch_size=512, buffer_size=100)),
    "observation": lambda: check_observation(np.zeros(4, np.float32), jax.ShapeDtypeStruct((3,), np.float32)),
    "nan": lambda: check_observation(np.full(3, np.nan, np.float32), jax.ShapeDtypeStruct((3,), np.float32)),
    "env_id": lambda: env_factory("Pendulm-v1"),
    "meta": lambda: config_from_meta(Config, {"config": {"warp_drive": 1}}),
}
caught = []
for name, check in checks.items():
    try:
        check()
    except ValueError:
        caught.append(name)
print(sys.flags.optimize, ",".join(caught), warmup_only(Config(total_steps=10), 10) is not None)
"""


def test_validation_survives_python_dash_o():
    src = pathlib.Path(dpgkit.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-O", "-c", PYTHON_O_CHECKS]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "tau,seed,batch_size,observation,nan,env_id,meta", "True"]
