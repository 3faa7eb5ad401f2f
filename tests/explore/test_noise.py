"""Exploration noise: Gaussian and Ornstein-Uhlenbeck statistics, per-copy resets, checkpoint round trips."""

import numpy as np
import pytest

from dpgkit.explore import GaussianNoise, OrnsteinUhlenbeckNoise, make_noise


def ou_stationary_std(sigma, theta, dt):
    """x' = a x + sigma sqrt(dt) eps with a = 1 - theta dt: Var = sigma^2 dt / (1 - a^2)."""
    return sigma * np.sqrt(dt / (1.0 - (1.0 - theta * dt) ** 2))


def test_gaussian_std_and_mean():
    sigma, n = 0.3, 20_000
    noise = GaussianNoise(copies=4, action_dim=5, sigma=sigma)  # 20 values per sample
    rng = np.random.default_rng(0)
    samples = np.stack([noise.sample(rng) for _ in range(n // 20)])
    assert samples.shape == (n // 20, 4, 5)
    se = sigma / np.sqrt(2 * n)
    assert abs(samples.std() - sigma) < 3 * se
    assert abs(samples.mean()) < 3 * sigma / np.sqrt(n)


def test_gaussian_sigma_per_copy():
    noise = GaussianNoise(copies=2, action_dim=3, sigma=np.array([0.1, 2.0]))
    rng = np.random.default_rng(1)
    samples = np.stack([noise.sample(rng) for _ in range(4000)])  # 12000 values per copy
    se = np.array([0.1, 2.0]) / np.sqrt(2 * 12_000)
    np.testing.assert_array_less(np.abs(samples.std(axis=(0, 2)) - [0.1, 2.0]), 3 * se)


def test_gaussian_samples_are_fresh_and_reproducible():
    noise = GaussianNoise(2, 2, 1.0)
    a = noise.sample(np.random.default_rng(5))
    b = noise.sample(np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(5)
    assert not np.array_equal(noise.sample(rng), noise.sample(rng))


def test_ou_stationary_std_fast_mixing():
    sigma, theta, dt = 0.2, 0.5, 0.1  # a = 0.95: correlation time ~20 steps
    noise = OrnsteinUhlenbeckNoise(copies=50, action_dim=20, sigma=sigma, theta=theta, dt=dt)
    rng = np.random.default_rng(2)
    for _ in range(300):  # burn in: 0.95^300 ~ 2e-7
        noise.sample(rng)
    samples = np.stack([noise.sample(rng) for _ in range(2000)])
    expected = ou_stationary_std(sigma, theta, dt)
    assert expected == pytest.approx(0.2 * np.sqrt(0.1 / 0.0975))
    # effective samples ~ 1000 chains x 2000 / 39 ~ 5e4: relative SE of the std ~ 0.3%
    assert abs(samples.std() / expected - 1.0) < 0.02
    assert abs(samples.mean()) < 0.02 * expected


def test_ou_stationary_std_library_defaults():
    """make_noise's OU with the default theta = 0.15, dt = 1e-2, started from the stationary law."""
    sigma, theta, dt = 0.2, 0.15, 1e-2
    noise = make_noise("ou", copies=100, action_dim=10, sigma=sigma, theta=theta, dt=dt)
    assert isinstance(noise, OrnsteinUhlenbeckNoise)
    expected = ou_stationary_std(sigma, theta, dt)  # ~ 1.826 sigma
    rng = np.random.default_rng(3)
    noise.load_state({"x": rng.normal(0.0, expected, (100, 10))})
    samples = np.stack([noise.sample(rng) for _ in range(3000)])
    # 1000 chains, correlation time ~1333 steps: relative SE ~ 1.5%
    assert abs(samples.std() / expected - 1.0) < 0.06
    # and without the stationary start the process begins at mu = 0 with a much smaller spread
    cold = make_noise("ou", copies=100, action_dim=10, sigma=sigma, theta=theta, dt=dt)
    first = cold.sample(np.random.default_rng(4))
    assert abs(first.std() / (sigma * np.sqrt(dt)) - 1.0) < 0.1


def test_ou_mean_reverts_deterministically():
    theta, dt, mu = 0.5, 0.1, 0.3
    noise = OrnsteinUhlenbeckNoise(copies=2, action_dim=1, sigma=0.0, theta=theta, dt=dt, mu=mu)
    np.testing.assert_array_equal(noise.x, np.full((2, 1), mu))  # starts at mu
    noise.load_state({"x": np.array([[5.0], [-1.0]])})
    rng = np.random.default_rng(0)
    for _ in range(10):
        x = noise.sample(rng)
    expected = mu + (np.array([[5.0], [-1.0]]) - mu) * (1.0 - theta * dt) ** 10
    np.testing.assert_allclose(x, expected, rtol=1e-12)


def test_ou_long_run_mean_is_mu():
    mu, sigma, theta, dt = -0.4, 0.3, 1.0, 0.1
    noise = OrnsteinUhlenbeckNoise(copies=20, action_dim=10, sigma=sigma, theta=theta, dt=dt, mu=mu)
    noise.load_state({"x": np.full((20, 10), 3.0)})  # far from mu
    rng = np.random.default_rng(6)
    for _ in range(200):  # 0.9^200 ~ 7e-10
        noise.sample(rng)
    samples = np.stack([noise.sample(rng) for _ in range(2000)])
    se = ou_stationary_std(sigma, theta, dt) * np.sqrt(19.0 / (200 * 2000))  # (1 + a) / (1 - a) = 19
    assert abs(samples.mean() - mu) < 4 * se


def test_ou_reset_per_copy():
    noise = OrnsteinUhlenbeckNoise(copies=2, action_dim=3, sigma=1.0, theta=0.15, dt=1.0)
    rng = np.random.default_rng(7)
    for _ in range(3):
        noise.sample(rng)
    before = noise.x.copy()
    assert np.all(before != 0.0)
    noise.reset(np.array([True, False]))
    np.testing.assert_array_equal(noise.x[0], np.zeros(3))
    np.testing.assert_array_equal(noise.x[1], before[1])
    noise.reset([False, False])
    np.testing.assert_array_equal(noise.x[1], before[1])
    noise.reset([False, True])
    np.testing.assert_array_equal(noise.x, np.zeros((2, 3)))


def test_ou_reset_goes_back_to_mu():
    noise = OrnsteinUhlenbeckNoise(copies=3, action_dim=1, sigma=1.0, mu=0.7)
    rng = np.random.default_rng(8)
    noise.sample(rng)
    before = noise.x.copy()
    noise.reset(np.array([False, True, False]))
    np.testing.assert_array_equal(noise.x[:, 0], [before[0, 0], 0.7, before[2, 0]])


def test_ou_state_round_trip_gives_identical_samples():
    noise = make_noise("ou", 3, 2, 0.2, 0.15, 1e-2)
    rng = np.random.default_rng(9)
    for _ in range(5):
        noise.sample(rng)
    saved, rng_state = noise.state(), rng.bit_generator.state
    expected = [noise.sample(rng) for _ in range(3)]

    restored = make_noise("ou", 3, 2, 0.2, 0.15, 1e-2)
    restored.load_state(saved)
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = rng_state
    got = [restored.sample(rng2) for _ in range(3)]
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(expected[0], expected[1])
    # state() is a snapshot, not a view of the live process
    saved_x = saved["x"].copy()
    noise.sample(rng)
    np.testing.assert_array_equal(saved["x"], saved_x)


def test_gaussian_state_is_the_episode_counts_and_an_old_empty_state_loads():
    noise = make_noise("gaussian", 2, 2, 0.1, 0.15, 1e-2)
    assert isinstance(noise, GaussianNoise)
    noise.reset(np.array([True, False]))
    np.testing.assert_array_equal(noise.state()["episodes"], [1, 0])
    assert set(noise.state()) == {"episodes"}
    noise.load_state({})
    np.testing.assert_array_equal(noise.episodes, [0, 0])
    a = noise.sample(np.random.default_rng(10))
    np.testing.assert_array_equal(a, 0.1 * np.random.default_rng(10).standard_normal((2, 2)))


def test_make_noise_rejects_unknown_kind():
    with pytest.raises(ValueError, match="pink"):
        make_noise("pink", 1, 1, 0.1, 0.15, 1e-2)
    with pytest.raises(ValueError, match="gaussian"):
        make_noise("Gaussian", 1, 1, 0.1, 0.15, 1e-2)


def test_actor_sigmas_spread_geometrically_from_sigma_to_sigma_max():
    from dpgkit.explore import actor_sigmas

    np.testing.assert_allclose(actor_sigmas(0.1, 0.8, 4), [0.1, 0.2, 0.4, 0.8], rtol=1e-12)
    np.testing.assert_allclose(actor_sigmas(0.1, 0.0, 3), [0.1, 0.1, 0.1])
    np.testing.assert_allclose(actor_sigmas(0.1, 0.8, 1), [0.1])


@pytest.mark.parametrize("kind", ["gaussian", "ou"])
def test_noise_scale_halves_every_halving_episodes_per_copy(kind):
    noise = make_noise(kind, 2, 1, 0.4, 0.6, 0.1, halving_episodes=250)
    for _ in range(251):
        noise.reset(np.array([True, False]))
    np.testing.assert_allclose(noise.sigma[:, 0], [0.2, 0.4])
    for _ in range(35):
        noise.reset(np.array([False, True]))
    np.testing.assert_allclose(noise.sigma[1, 0], 0.4 * 2 ** (-34 / 250))
    restored = make_noise(kind, 2, 1, 0.4, 0.6, 0.1, halving_episodes=250)
    restored.load_state(noise.state())
    np.testing.assert_array_equal(restored.sigma, noise.sigma)


def test_halved_gaussian_noise_has_the_halved_spread():
    noise = make_noise("gaussian", 1, 20_000, 1.0, 0.15, 1e-2, halving_episodes=2)
    for _ in range(5):
        noise.reset(np.array([True]))
    assert np.std(noise.sample(np.random.default_rng(0))) == pytest.approx(0.25, rel=0.03)


def test_noise_halving_without_action_noise_is_an_error():
    from dpgkit.config import DDPGConfig, validate

    with pytest.raises(ValueError, match="noise_halving_episodes"):
        validate(DDPGConfig(explore="param", noise_halving_episodes=10))
