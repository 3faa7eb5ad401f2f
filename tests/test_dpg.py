"""DPG: the compatible critic's structure, COPDAC-Q on LQR against the Riccati gain, and the DPG agent.

COPDAC-Q gates (the issue's 10% within 500,000 steps, on seeds 0-4) from seeds 0-9 measured with
benchmarks/copdac_lqr.py: the largest final ||K_hat - K|| / ||K|| was, Gaussian behaviour, 0.041 (1-D, 100,000
steps), 0.050 (1-D, 500,000) and 0.041 (2-D, 500,000; 0.48 at 100,000); uniform behaviour with curvature, 0.008
(1-D) and 0.018 (2-D) at 100,000 steps. Without curvature, the uniform behaviour diverges (NaN) on both.
"""

import sys
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpgkit import DPG, cli
from dpgkit.algos import ALGORITHMS
from dpgkit.algos.dpg import online_spec
from dpgkit.config import DPGConfig
from dpgkit.envs.lqr import functional_lqr, optimal_gain
from dpgkit.learn.copdac import (
    compatible_critic,
    compatible_features,
    curvature_features,
    fourier_features,
    init_online,
    linear_policy,
    natural_actor_direction,
    quadratic_features,
    rbf_features,
    run_online,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from copdac_lqr import gain_errors

RNG = np.random.default_rng(0)
PHI, PSI = jnp.asarray(RNG.standard_normal(4)), jnp.asarray(RNG.standard_normal(3))
THETA, W, V = (jnp.asarray(RNG.standard_normal(s)) for s in [(4, 2), (4, 2), 3])
ACTION = jnp.asarray(RNG.standard_normal(2))


def test_critic_gradient_in_the_action_is_grad_mu_transpose_w_for_every_action():
    mu = linear_policy(THETA, PHI)
    expected = W.T @ PHI  # grad_theta mu(s)^T w
    for action in (ACTION, mu, 3.0 * ACTION):
        grad_a = jax.grad(lambda a: compatible_critic(W, V, PHI, PSI, a, mu))(action)
        np.testing.assert_allclose(grad_a, expected, rtol=1e-6)


def test_critic_gradient_in_w_is_the_compatible_feature_grad_mu_times_a_minus_mu():
    mu = linear_policy(THETA, PHI)
    grad_w = jax.grad(lambda w: compatible_critic(w, V, PHI, PSI, ACTION, mu))(W)
    jacobian = jax.jacobian(linear_policy)(THETA, PHI)  # d mu_j / d theta_ik, shape (2, 4, 2)
    np.testing.assert_allclose(grad_w, jnp.einsum("jik,j->ik", jacobian, ACTION - mu), rtol=1e-6)
    np.testing.assert_allclose(compatible_features(PHI, ACTION, mu), grad_w, rtol=1e-6)


def test_actor_direction_is_the_deterministic_policy_gradient_of_the_critic():
    mu = linear_policy(THETA, PHI)
    dpg = jax.grad(lambda th: compatible_critic(W, V, PHI, PSI, linear_policy(th, PHI), mu))(THETA)
    np.testing.assert_allclose(natural_actor_direction(PHI, W), dpg, rtol=1e-6)


def test_baseline_and_curvature_do_not_change_the_gradient_at_mu():
    mu = linear_policy(THETA, PHI)
    curvature = jax.grad(lambda a: curvature_features(a, mu) @ jnp.arange(3.0))(mu)
    np.testing.assert_allclose(curvature, 0.0, atol=1e-7)
    np.testing.assert_allclose(
        curvature_features(jnp.array([3.0, 1.0]), jnp.array([1.0, 0.0])), [4.0, 2.0, 1.0]
    )
    advantage_at_mu = compatible_critic(W, V, PHI, PSI, mu, mu)
    assert float(advantage_at_mu) == pytest.approx(float(PSI @ V), rel=1e-6)


def test_feature_maps_by_hand():
    np.testing.assert_allclose(quadratic_features(jnp.array([2.0, 3.0])), [1.0, 4.0, 6.0, 9.0])
    omega, phase = jnp.array([[1.0, 0.0], [0.0, 2.0]]), jnp.array([0.0, 0.5])
    np.testing.assert_allclose(
        fourier_features(jnp.array([0.3, 0.1]), omega, phase), np.cos([0.3, 0.7]), rtol=1e-6
    )
    centers = jnp.array([[0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(
        rbf_features(jnp.array([1.0, 0.0]), centers, 0.5), np.exp([-2.0, -2.0]), rtol=1e-6
    )


@pytest.mark.parametrize(("env_id", "steps"), [("dpgkit/LQR1D-v0", 100_000), ("dpgkit/LQR2D-v0", 500_000)])
def test_copdac_q_finds_the_riccati_gain(env_id, steps):
    errors = gain_errors(env_id, steps, list(range(5)), behaviour="gaussian")["final"]
    assert np.all(errors <= 0.10), errors


@pytest.mark.parametrize("env_id", ["dpgkit/LQR1D-v0", "dpgkit/LQR2D-v0"])
def test_copdac_q_finds_the_riccati_gain_from_a_uniform_behaviour(env_id):
    settings = {"behaviour": "uniform", "alpha_w": 5e-3, "alpha_v": 1e-4, "curvature": True}
    errors = gain_errors(env_id, 100_000, list(range(5)), **settings)["final"]
    assert np.all(errors <= 0.10), errors


def test_theta_average_covers_the_last_half():
    env = gym.make("dpgkit/LQR1D-v0").unwrapped
    reset, step = functional_lqr(env)
    config = DPGConfig(gamma=0.9, alpha_theta=1e-3, alpha_w=1e-2, alpha_v=1e-2, noise_sigma=0.1)
    spec = online_spec(config, action_dim=1)
    state = init_online(spec, jax.random.key(0), env.observation_space.low, env.observation_space.high)
    state, rewards, deltas = run_online(spec, state, reset, step, jax.random.key(1), 1_000)
    assert int(state.averaged) == 500 and rewards.shape == deltas.shape == (1_000,)
    assert not np.allclose(state.theta_avg, state.theta)


def make_agent(tmp_path, env_id="dpgkit/LQR1D-v0", **overrides):
    settings = {"total_steps": 400, "eval_every": 0, "progress": False, "run_dir": str(tmp_path / "run")}
    return DPG(env_id, seed=0, **{**settings, **overrides})


def test_agent_surface_and_registration(tmp_path):
    assert ALGORITHMS["dpg"] is DPG
    agent = make_agent(tmp_path, eval_episodes=2).learn()
    assert agent.steps == 400
    assert agent.act(np.ones(1, np.float32)).shape == (1,)
    assert agent.act(np.ones((5, 1), np.float32)).shape == (5, 1)
    assert agent.evaluate(3).shape == (3,)
    assert agent.linear_gain().shape == (1, 1)


def test_agent_learns_toward_the_riccati_gain_with_seeds_vmapped(tmp_path):
    # measured on seeds 0-9: errors 0.046-0.139 after 20,000 steps (1.0 at theta = 0), 0.11-0.35 after 5,000
    agent = make_agent(tmp_path, total_steps=20_000, seeds=5, gamma=0.9).learn()
    gain = optimal_gain(gym.make("dpgkit/LQR1D-v0").unwrapped.lqr)
    errors = [np.linalg.norm(agent.linear_gain(i) - gain) / np.linalg.norm(gain) for i in range(5)]
    assert max(errors) <= 0.25, errors


def test_save_load_restores_learner_and_continues(tmp_path):
    first = make_agent(tmp_path, total_steps=600)
    first.learn(300)
    resumed = DPG.load(first.save())
    assert resumed.steps == 300
    for saved, loaded in zip(
        *(jax.tree_util.tree_leaves(a.trainer.state) for a in (first, resumed)), strict=True
    ):
        np.testing.assert_array_equal(saved, loaded)
    np.testing.assert_array_equal(resumed.trainer.env_actor.explorer.keys, first.trainer.env_actor.explorer.keys)
    obs = np.linspace(-1.0, 1.0, 7, dtype=np.float32).reshape(7, 1)
    np.testing.assert_array_equal(resumed.act(obs), first.act(obs))
    resumed.learn()
    assert resumed.steps == 600 and np.isfinite(resumed.linear_gain()).all()


def test_same_seed_same_run(tmp_path):
    gains = [make_agent(tmp_path / str(i)).learn().linear_gain() for i in range(2)]
    np.testing.assert_array_equal(*gains)


@pytest.mark.parametrize("features", ["rff", "rbf", "mlp"])
def test_other_features_train_on_pendulum(tmp_path, features):
    agent = make_agent(tmp_path, "Pendulum-v1", features=features, total_steps=300, eval_episodes=1)
    before = jax.tree_util.tree_leaves(agent.trainer.state)
    agent.learn()
    after = jax.tree_util.tree_leaves(agent.trainer.state)
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))
    assert np.isfinite(agent.evaluate(1)).all()
    action = agent.act(np.zeros(3, np.float32))
    assert action.shape == (1,) and np.all(np.abs(action) <= 2.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"features": "poly"}, "unknown features 'poly'"),
        ({"behaviour": "greedy"}, "unknown behaviour 'greedy'"),
        ({"alpha_w": 0.0}, "alpha_w must be > 0"),
        ({"value_features": "cubic"}, "unknown value_features"),
        ({"explore": "ou"}, "config.explore='ou' is not used by DPG"),
        ({"n_step": 3}, "config.n_step=3 is not used by DPG"),
        ({"mirror": ("obs=1,1,1", "action=-1")}, "config.mirror=.* is not used by DPG"),
        ({"augment_shift": 4}, "config.augment_shift=4 is not used by DPG"),
    ],
)
def test_bad_settings_are_named(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        make_agent(tmp_path, **overrides)


def test_linear_gain_needs_linear_features(tmp_path):
    with pytest.raises(ValueError, match="features='linear'"):
        make_agent(tmp_path, features="rbf").linear_gain()


def test_cli_trains_dpg_with_features(tmp_path, capsys):
    run = tmp_path / "cli"
    args = ["train", "dpg", "--env", "dpgkit/LQR2D-v0", "--features", "rff", "--total-steps", "200"]
    cli.main([*args, "--eval-every", "0", "--eval-episodes", "1", "--run-dir", str(run), "--no-progress"])
    assert "training dpg on dpgkit/LQR2D-v0" in capsys.readouterr().out
    assert DPG.load(run).config.features == "rff"
