"""Probe environments with known values: the critic must learn Q exactly, the actor the best action.

Each probe isolates one part of the learner (Andy Jones' "debugging RL" probes):
  one-step: the regression of Q on a terminal reward (no bootstrapping);
  two-step: the discounted bootstrap through the target networks;
  identity-action: the deterministic policy gradient through the critic.
Many gradient steps per env step (gradient_steps) keep each probe to a few seconds on a CPU.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from dpgkit import DDPG, TD3
from envs_for_tests import ProbeIdentityAction, ProbeOneStep, ProbeTwoStep

SMALL = {
    "hidden": (32, 32),
    "batch_size": 64,
    "learning_starts": 100,
    "train_freq": 1,
    "gradient_steps": 8,
    "critic_lr": 1e-3,
    "eval_every": 0,
    "log_every": 100_000,
    "progress": False,
}


def critic_zero(agent):
    """Parameters of critic 0 of seed 0."""
    return jax.tree_util.tree_map(lambda p: p[0, 0], agent.trainer.state.critic)


def q_values(agent, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Q(s, a) of critic 0 of seed 0 for a batch of observations and actions (actor units)."""
    return np.asarray(agent.trainer.driver.spec.critic.apply(critic_zero(agent), obs, actions))


def random_actions(count: int, seed: int = 123) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (count, 1)).astype(np.float32)


def test_one_step_probe_learns_q_equal_to_reward(tmp_path):
    agent = TD3(ProbeOneStep, seed=0, run_dir=str(tmp_path), **SMALL)
    obs = np.random.default_rng(7).uniform(-1.0, 1.0, (64, 1)).astype(np.float32)
    actions = random_actions(64)
    before = q_values(agent, obs, actions)
    assert np.abs(before - 1.0).max() > 0.2  # the untrained critic is not already right

    agent.learn(400)

    assert agent.trainer.updates == (400 - 100 + 1) * 8
    q = q_values(agent, obs, actions)
    assert q.shape == (64,)
    np.testing.assert_allclose(q, 1.0, atol=0.05)
    # every critic of the ensemble, not only the first, learns the value
    both = jax.vmap(agent.trainer.driver.spec.critic.apply, in_axes=(0, None, None))(
        jax.tree_util.tree_map(lambda p: p[0], agent.trainer.state.critic), obs, actions
    )
    np.testing.assert_allclose(np.asarray(both), 1.0, atol=0.05)


@pytest.mark.parametrize("gamma", [0.9])
def test_two_step_probe_learns_discounted_bootstrap(tmp_path, gamma):
    agent = TD3(ProbeTwoStep, seed=0, run_dir=str(tmp_path), gamma=gamma, tau=0.02, **SMALL)
    agent.learn(500)

    actions = random_actions(32)
    first = np.repeat(ProbeTwoStep.FIRST[None], 32, axis=0)
    second = np.repeat(ProbeTwoStep.SECOND[None], 32, axis=0)
    q_first, q_second = q_values(agent, first, actions), q_values(agent, second, actions)
    np.testing.assert_allclose(q_second, 1.0, atol=0.05)
    np.testing.assert_allclose(q_first, gamma * 1.0, atol=0.05)
    # the discount really is applied: gamma and 1 are 0.1 apart, more than the tolerance twice over
    assert q_second.mean() - q_first.mean() > 0.05


@pytest.mark.parametrize("algo", [TD3, DDPG], ids=["td3", "ddpg"])
def test_identity_action_probe_actor_follows_critic_gradient(tmp_path, algo):
    agent = algo(
        ProbeIdentityAction,
        seed=0,
        run_dir=str(tmp_path),
        **{**SMALL, "hidden": (64, 64), "learning_starts": 200, "actor_lr": 1e-3},
    )
    targets = np.linspace(-0.8, 0.8, 9, dtype=np.float32)[:, None]
    assert np.abs(agent.act(targets) - targets).max() > 0.1  # the untrained actor is not already right

    agent.learn(500)

    actions = agent.act(targets)
    assert actions.shape == (9, 1)
    np.testing.assert_array_less(np.abs(actions - targets), 0.1)
    # single observations go through act() the same way as a batch
    np.testing.assert_allclose(agent.act(targets[3]), actions[3], atol=1e-6)
