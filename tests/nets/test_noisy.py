"""NoisyDense: sigma = 0 is a Dense layer, the noise variance matches the factorised formula, the gradient in
sigma matches finite differences, the mean-weight output is deterministic; the NoisyNet actor and its noise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpgkit.nets import Actor
from dpgkit.nets.layers import NoisyDense, factorised_noise, scaled_noise

IN, OUT = 5, 3
X = jnp.asarray(np.random.default_rng(0).normal(size=(IN,)), jnp.float32)


def layer_params(sigma0=0.5):
    return NoisyDense(OUT, sigma0).init(jax.random.PRNGKey(0), X)


def test_initialisation():
    p = layer_params()["params"]
    bound = IN**-0.5
    for name in ("mu_kernel", "mu_bias"):
        assert np.abs(np.asarray(p[name])).max() <= bound and np.std(p[name]) > 0
    np.testing.assert_allclose(p["sigma_kernel"], 0.5 * bound)
    np.testing.assert_allclose(p["sigma_bias"], 0.5 * bound)


def test_zero_sigma_is_a_dense_layer():
    params = layer_params(sigma0=0.0)
    noise = factorised_noise(jax.random.PRNGKey(1), (IN, OUT))[0]
    p = params["params"]
    dense = X @ p["mu_kernel"] + p["mu_bias"]
    np.testing.assert_allclose(NoisyDense(OUT, 0.0).apply(params, X, noise), dense, rtol=1e-6)
    np.testing.assert_allclose(NoisyDense(OUT, 0.0).apply(params, X), dense, rtol=1e-6)


def test_scaled_noise_is_signed_square_root():
    np.testing.assert_allclose(scaled_noise(jnp.array([4.0, -9.0, 0.0])), [2.0, -3.0, 0.0])


def test_output_variance_matches_the_factorised_formula():
    """Var y_j = E|e| (E|e| sum_i sigma_ij^2 x_i^2 + sigma_j^2), E|e| = sqrt(2 / pi), for f(e) = sgn(e) sqrt|e|."""
    params = layer_params()
    p = params["params"]
    keys = jax.random.split(jax.random.PRNGKey(2), 40_000)
    outputs = jax.vmap(lambda k: NoisyDense(OUT).apply(params, X, factorised_noise(k, (IN, OUT))[0]))(keys)
    e_abs = np.sqrt(2.0 / np.pi)
    sigma_w, sigma_b = np.asarray(p["sigma_kernel"], np.float64), np.asarray(p["sigma_bias"], np.float64)
    variance = e_abs * (e_abs * (sigma_w**2 * np.asarray(X, np.float64)[:, None] ** 2).sum(0) + sigma_b**2)
    # 40,000 samples: the relative standard error of a sample variance is about sqrt(2 / n) ~ 0.7% (more with
    # the heavier tails of products of f); 5% is many standard errors, and a wrong f or a missing term is far off
    np.testing.assert_allclose(np.var(np.asarray(outputs), axis=0), variance, rtol=0.05)
    mean = np.asarray(X @ p["mu_kernel"] + p["mu_bias"])
    assert np.all(np.abs(np.mean(np.asarray(outputs), axis=0) - mean) < 4 * np.sqrt(variance / 40_000))


def test_gradient_in_sigma_matches_finite_differences():
    params = layer_params()
    noise = factorised_noise(jax.random.PRNGKey(3), (IN, OUT))[0]

    def loss(p):
        return jnp.sum(jnp.sin(NoisyDense(OUT).apply(p, X, noise)))

    grads = jax.grad(loss)(params)["params"]
    p64 = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), params)
    for name, index in (("sigma_kernel", (1, 2)), ("sigma_kernel", (4, 0)), ("sigma_bias", (1,))):
        h = 1e-3
        plus = jax.tree_util.tree_map(np.copy, p64)
        minus = jax.tree_util.tree_map(np.copy, p64)
        plus["params"][name][index] += h
        minus["params"][name][index] -= h
        numeric = (float(loss(plus)) - float(loss(minus))) / (2 * h)
        assert float(grads[name][index]) == pytest.approx(numeric, rel=2e-2, abs=1e-4)
        assert abs(numeric) > 1e-3  # the noise sample reaches sigma


def test_noisy_actor_mean_output_is_deterministic_and_noise_changes_it():
    actor = Actor((8, 8), 2, noisy=True)
    obs = jnp.ones((4, 3))
    params = actor.init(jax.random.PRNGKey(0), obs)
    np.testing.assert_array_equal(actor.apply(params, obs), actor.apply(params, obs))
    noise_a = factorised_noise(jax.random.PRNGKey(1), (3, 8, 8, 2))
    noise_b = factorised_noise(jax.random.PRNGKey(2), (3, 8, 8, 2))
    a, b = actor.apply(params, obs, noise_a), actor.apply(params, obs, noise_b)
    assert not np.allclose(a, b) and not np.allclose(a, actor.apply(params, obs))
    np.testing.assert_array_equal(a, actor.apply(params, obs, noise_a))
    assert np.abs(np.asarray(a)).max() <= 1.0
