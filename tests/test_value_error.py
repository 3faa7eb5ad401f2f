"""The value-error diagnostic: discounted returns to go, which states count, and the logged estimate and bias."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from dpgkit import D4PG, TD3
from dpgkit.evaluate import discounted_returns_to_go, fully_observed, value_error
from dpgkit.logger import read_metrics
from dpgkit.plot import plot_runs
from envs_for_tests import ProbeTwoStep

KEYS = ("eval/q_estimate", "eval/discounted_return", "eval/value_bias", "eval/value_bias_relative")
SMALL = {"hidden": (16, 16), "batch_size": 16, "learning_starts": 50, "eval_episodes": 2, "progress": False}


def test_discounted_returns_to_go_by_hand():
    reward = np.array(
        [[1.0, 2.0], [0.0, 4.0], [3.0, 0.0]]
    )  # time-major: two envs, the second ends after 2 steps
    g = discounted_returns_to_go(reward, 0.5)
    np.testing.assert_allclose(g[:, 0], [1.0 + 0.0 + 0.25 * 3.0, 0.0 + 0.5 * 3.0, 3.0])
    np.testing.assert_allclose(g[:, 1], [2.0 + 0.5 * 4.0, 4.0, 0.0])


def test_truncated_1000_step_episode_at_gamma_099_keeps_states_0_to_541():
    mask = fully_observed(np.array([1000]), np.array([False]), 1000, 0.99)[:, 0]
    assert mask.sum() == 542 and mask[541] and not mask[542]  # 0.99^459 = 0.00992, 0.99^458 = 0.01002
    assert fully_observed(np.array([1000]), np.array([True]), 1000, 0.99).all()  # terminated: every state
    assert not fully_observed(
        np.array([200]), np.array([False]), 200, 0.98
    ).any()  # Pendulum: 0.98^200 = 0.018


def test_mask_stops_at_each_episodes_end():
    mask = fully_observed(np.array([2, 4]), np.array([True, True]), 4, 0.9)
    np.testing.assert_array_equal(mask, [[True, True], [True, True], [False, True], [False, True]])


def test_value_error_per_agent_over_the_masked_states():
    q = np.array([[1.0, 3.0, 100.0], [5.0, 5.0, 5.0]])
    returns = np.array([[2.0, -4.0, 7.0], [1.0, 1.0, 1.0]])
    mask = np.array([[True, True, False], [False, False, False]])
    values = value_error(q, returns, mask)
    np.testing.assert_allclose(values["eval/q_estimate"], [2.0, np.nan])
    np.testing.assert_allclose(values["eval/discounted_return"], [-1.0, np.nan])
    np.testing.assert_allclose(values["eval/value_bias"], [3.0, np.nan])
    np.testing.assert_allclose(
        values["eval/value_bias_relative"], [3.0 / 3.0, np.nan]
    )  # mean |G| = (2 + 4) / 2


def test_two_step_probe_logs_critic_one_against_the_observed_return(tmp_path):
    """ProbeTwoStep terminates after 2 steps: G_0 = gamma, G_1 = 1 on every episode, all states count."""
    gamma = 0.9
    agent = TD3(ProbeTwoStep, seed=0, seeds=2, gamma=gamma, eval_every=100, run_dir=str(tmp_path), **SMALL)
    agent.learn(100)
    trainer = agent.trainer
    episodes = trainer.evaluator.recorded
    metrics = read_metrics(tmp_path)
    for seed in range(2):
        critic = jax.tree_util.tree_map(lambda p, s=seed: p[s, 0], trainer.state.critic)
        obs = np.concatenate([episodes.obs[:2, 2 * seed + e] for e in range(2)])
        action = np.concatenate([episodes.action[:2, 2 * seed + e] for e in range(2)])
        q = np.asarray(trainer.driver.spec.critic.apply(critic, obs, action))
        expected = {
            "eval/q_estimate": q.mean(),
            "eval/discounted_return": (gamma + 1.0) / 2,
            "eval/value_bias": q.mean() - (gamma + 1.0) / 2,
            "eval/value_bias_relative": (q.mean() - (gamma + 1.0) / 2) / ((gamma + 1.0) / 2),
        }
        for key in KEYS:
            steps, values = metrics[key][seed]
            assert steps.tolist() == [100]
            np.testing.assert_allclose(values[0], expected[key], rtol=1e-5, err_msg=key)
    assert abs(expected["eval/value_bias"]) > 1e-3  # an untrained critic: the check compares real numbers
    assert plot_runs([str(tmp_path)], tmp_path / "bias.png", key="eval/value_bias").stat().st_size > 0


def test_categorical_critic_logs_its_mean(tmp_path):
    agent = D4PG(ProbeTwoStep, seed=0, gamma=0.9, atoms=11, v_min=-2.0, v_max=2.0, eval_every=100,
                 run_dir=str(tmp_path), **SMALL)  # fmt: skip
    agent.learn(100)
    values = agent.trainer.value_error()
    episodes = agent.trainer.evaluator.recorded
    critic = jax.tree_util.tree_map(lambda p: p[0, 0], agent.trainer.state.critic)
    logits = agent.trainer.driver.spec.critic.apply(critic, episodes.obs[:, :2].reshape(-1, 2),
                                             episodes.action[:, :2].reshape(-1, 1))  # fmt: skip
    mean = (np.asarray(jax.nn.softmax(logits)) @ np.linspace(-2.0, 2.0, 11)).mean()
    np.testing.assert_allclose(values["eval/q_estimate"], [mean], rtol=1e-5)


def test_pendulum_warns_once_and_logs_nothing(tmp_path):
    agent = TD3("Pendulum-v1", seed=0, eval_every=200, run_dir=str(tmp_path), **SMALL)
    with pytest.warns(UserWarning, match="no evaluation state") as caught:
        agent.learn(400)
    assert sum("no evaluation state" in str(w.message) for w in caught) == 1
    metrics = read_metrics(tmp_path)
    assert "eval/return" in metrics and not set(KEYS) & set(metrics)
