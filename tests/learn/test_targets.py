"""Hand-computed checks of the TD target, clipped double-Q, target-policy smoothing and the two losses."""

import jax
import jax.numpy as jnp
import numpy as np

from dpgkit.config import TD3Config
from dpgkit.driver import learner_spec
from dpgkit.learn.learner import critic_losses
from dpgkit.learn.losses import dpg_actor_loss, weighted_mean
from dpgkit.learn.targets import clipped_double_q, smoothed_target_action, td_target


def test_td_target_terminal_and_multistep_discounts():
    gamma = 0.99
    reward = jnp.array([1.0, 2.0, 3.0, -0.5])
    # discount = gamma^m (1 - terminated): one step, terminal, three steps, terminal after three steps.
    discount = jnp.array([gamma, 0.0, gamma**3, 0.0 * gamma**3])
    next_value = jnp.array([10.0, 10.0, 10.0, 7.0])
    y = np.asarray(td_target(reward, discount, next_value))
    np.testing.assert_allclose(y, [1.0 + 9.9, 2.0, 3.0 + 0.970299 * 10.0, -0.5], rtol=1e-6)


def test_td_target_terminal_ignores_even_huge_next_value():
    y = td_target(jnp.array([0.25]), jnp.array([0.0]), jnp.array([1e30]))
    assert float(y[0]) == 0.25


def test_clipped_double_q_takes_min_over_critic_axis():
    next_q = jnp.array([[1.0, 5.0, -2.0, 0.0], [3.0, 4.0, -1.0, 0.0]])
    np.testing.assert_array_equal(np.asarray(clipped_double_q(next_q)), [1.0, 4.0, -2.0, 0.0])


def test_clipped_double_q_three_critics():
    next_q = jnp.array([[1.0, 2.0], [0.5, 9.0], [4.0, -3.0]])
    np.testing.assert_array_equal(np.asarray(clipped_double_q(next_q)), [0.5, -3.0])


def test_clipped_double_q_single_critic_is_identity():
    next_q = jnp.array([[1.0, 5.0, -2.0]])
    out = np.asarray(clipped_double_q(next_q))
    assert out.shape == (3,)
    np.testing.assert_array_equal(out, [1.0, 5.0, -2.0])


def test_smoothed_target_action_stays_in_unit_box():
    mu = jnp.array([[0.99, -0.99, 0.0], [1.0, -1.0, 0.5]] * 500)
    out = np.asarray(smoothed_target_action(mu, jax.random.PRNGKey(0), 0.5, 0.5))
    assert out.shape == mu.shape
    assert out.min() >= -1.0 and out.max() <= 1.0
    # near the bounds the clip is active for many entries: exactly +-1 occurs
    assert np.any(out == 1.0) and np.any(out == -1.0)


def test_smoothed_target_action_noise_clipped_to_clip():
    clip = 0.1
    # mu' well inside [-1 + clip, 1 - clip] so the final [-1, 1] clip never acts
    mu = jnp.linspace(-0.5, 0.5, 2000).reshape(1000, 2)
    out = np.asarray(smoothed_target_action(mu, jax.random.PRNGKey(1), 1e6, clip))
    delta = np.abs(out - np.asarray(mu))
    assert delta.max() <= clip + 1e-6
    # with a huge std the noise is (essentially) always at the clip
    np.testing.assert_allclose(delta, clip, atol=1e-6)
    # and both signs occur
    signed = out - np.asarray(mu)
    assert (signed > 0).mean() > 0.4 and (signed < 0).mean() > 0.4


def test_smoothed_target_action_noise_std():
    n = 100_000
    std = 0.2
    mu = jnp.zeros((n, 1))
    out = np.asarray(smoothed_target_action(mu, jax.random.PRNGKey(2), std, 10.0))
    se = std / np.sqrt(2 * n)
    assert abs(out.std() - std) < 3 * se + 1e-4
    assert abs(out.mean()) < 3 * std / np.sqrt(n)


def test_smoothed_target_action_zero_std_returns_input():
    mu = jnp.array([[0.3, -0.7], [1.5, -2.0]])  # even out-of-range values pass through untouched
    out = smoothed_target_action(mu, jax.random.PRNGKey(3), 0.0, 0.5)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(mu))


def test_smoothed_target_action_depends_on_key():
    mu = jnp.zeros((8, 2))
    a = np.asarray(smoothed_target_action(mu, jax.random.PRNGKey(4), 0.2, 0.5))
    b = np.asarray(smoothed_target_action(mu, jax.random.PRNGKey(5), 0.2, 0.5))
    c = np.asarray(smoothed_target_action(mu, jax.random.PRNGKey(4), 0.2, 0.5))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, c)


SCALAR = learner_spec(TD3Config(), 1)


def critic_mse_loss(q, target, weight=None):
    """The scalar critics' loss as the learner computes it."""
    return weighted_mean(critic_losses(SCALAR, q, target)[0], weight)


def test_critic_mse_loss_sums_critics_means_batch():
    q = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = jnp.array([1.0, 1.0, 1.0])
    # critic 0: (0 + 1 + 4) / 3; critic 1: (1 + 1 + 1) / 3
    np.testing.assert_allclose(float(critic_mse_loss(q, target)), 5.0 / 3.0 + 1.0, rtol=1e-6)


def test_critic_mse_loss_single_critic():
    q = jnp.array([[2.0, -1.0]])
    target = jnp.array([0.0, 1.0])
    np.testing.assert_allclose(float(critic_mse_loss(q, target)), (4.0 + 4.0) / 2.0, rtol=1e-6)


def test_critic_mse_loss_gradient():
    q = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = jnp.array([1.0, 1.0, 1.0])
    g = np.asarray(jax.grad(critic_mse_loss)(q, target))
    # d/dq_ij = 2 (q_ij - y_j) / batch
    np.testing.assert_allclose(g, 2.0 * (np.asarray(q) - 1.0) / 3.0, rtol=1e-6)


def test_importance_weights_scale_each_example():
    q = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = jnp.array([1.0, 1.0, 1.0])
    weight = jnp.array([1.0, 0.5, 0.25])
    # per example, summed over critics: 0 + 1, 1 + 1, 4 + 1
    expected = (1.0 * 1.0 + 0.5 * 2.0 + 0.25 * 5.0) / 3.0
    np.testing.assert_allclose(float(critic_mse_loss(q, target, weight)), expected, rtol=1e-6)


def test_scalar_priority_is_largest_absolute_td_error_over_critics():
    q = jnp.array([[1.0, 2.0, -3.0], [0.5, 0.0, 0.0]])
    target = jnp.array([1.0, 1.0, 1.0])
    _, priorities = critic_losses(SCALAR, q, target)
    np.testing.assert_allclose(np.asarray(priorities), [0.5, 1.0, 4.0], rtol=1e-6)


def test_dpg_actor_loss():
    np.testing.assert_allclose(float(dpg_actor_loss(jnp.array([1.0, 2.0, 3.0, 6.0]))), -3.0, rtol=1e-6)
    np.testing.assert_allclose(float(dpg_actor_loss(jnp.array([-4.0]))), 4.0, rtol=1e-6)
    g = np.asarray(jax.grad(dpg_actor_loss)(jnp.array([1.0, 2.0, 3.0, 6.0])))
    np.testing.assert_allclose(g, [-0.25] * 4, rtol=1e-6)
