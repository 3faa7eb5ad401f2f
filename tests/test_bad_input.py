"""Clear errors for what dpgkit cannot learn, before any training; clean stops on NaN and inf."""

from __future__ import annotations

import functools
import re

import jax
import numpy as np
import pytest

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


def test_image_observations_are_refused(tmp_path):
    with pytest.raises(TypeError, match="1-D") as excinfo:
        TD3(ProbeImageObs, run_dir=str(tmp_path), **TINY)
    assert "(8, 8, 3)" in str(excinfo.value)


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
    assert agent.trainer.replay.size[0] == 4
    assert np.isfinite(agent.trainer.replay.storage.next_obs[0, :4]).all()
    assert np.isfinite(agent.trainer.replay.storage.reward[0, :4]).all()


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
        assert np.isfinite(agent.trainer.replay.trees[0].total())


def test_non_finite_priority_stops_before_the_sum_tree(tmp_path):
    agent = DDPG("Pendulum-v1", run_dir=str(tmp_path), learning_starts=32, replay="prioritized", **TINY)
    agent.learn(40)
    trainer = agent.trainer
    before = trainer.replay.trees[0].state()
    indices = np.array([[3, 5]])
    trainer.pending_priorities = (indices, np.array([[[0.5, np.inf]]], np.float32))
    with pytest.raises(NonFiniteError, match=r"TD error .*step 40\b"):
        trainer.collect_step({"returns": [[]]})
    np.testing.assert_array_equal(trainer.replay.trees[0].state()["sums"], before["sums"])


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
    for leaf in jax.tree_util.tree_leaves(loaded.trainer.replay.storage):
        assert np.isfinite(leaf[0, : loaded.trainer.replay.size[0]]).all()


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
    with pytest.raises(ValueError, match="already holds another run's checkpoint"):
        second.learn(20)
    assert latest_checkpoint(tmp_path) == saved and second.steps == 0
    TD3.load(tmp_path).learn(20)  # resuming the run itself is fine
