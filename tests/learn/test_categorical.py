"""Categorical projection, losses, mean and support suggestion: hand cases and a slow numpy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpgkit.learn.categorical import (
    categorical_cross_entropy,
    categorical_kl,
    expected_value,
    project_categorical,
    suggest_support,
    support,
)

Z = support(-2.0, 2.0, 5)  # atoms -2, -1, 0, 1, 2: spacing 1


def project_reference(next_probs, reward, discount, z):
    """Bellemare et al. 2017, Algorithm 1, in plain loops (floor == ceil: all mass on that atom)."""
    v_min, v_max, atoms = z[0], z[-1], len(z)
    dz = (v_max - v_min) / (atoms - 1)
    out = np.zeros_like(next_probs, dtype=np.float64)
    for i in range(next_probs.shape[0]):
        for j in range(atoms):
            tz = min(max(reward[i] + discount[i] * z[j], v_min), v_max)
            b = (tz - v_min) / dz
            lo, up = int(np.floor(b)), int(np.ceil(b))
            if lo == up:
                out[i, lo] += next_probs[i, j]
            else:
                out[i, lo] += next_probs[i, j] * (up - b)
                out[i, up] += next_probs[i, j] * (b - lo)
    return out


def project_one(probs, reward, discount, z=Z):
    out = project_categorical(
        jnp.asarray([probs], jnp.float32), jnp.array([reward]), jnp.array([discount]), z
    )
    return np.asarray(out[0])


def point_mass(index, atoms=5):
    return np.eye(atoms, dtype=np.float32)[index]


def test_support_is_linspace():
    np.testing.assert_allclose(np.asarray(support(-10.0, 10.0, 51)), np.linspace(-10.0, 10.0, 51), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(Z), [-2.0, -1.0, 0.0, 1.0, 2.0])


def test_target_between_two_atoms_splits_by_distance():
    # point mass at z = 0, r = 0.25, discount 1: Tz = 0.25, 0.75 to atom 0 and 0.25 to atom 1
    np.testing.assert_allclose(project_one(point_mass(2), 0.25, 1.0), [0, 0, 0.75, 0.25, 0], atol=1e-6)
    # point mass at z = 2, r = -1, discount 0.5: Tz = 0, exactly atom 0 (index 2)
    np.testing.assert_allclose(project_one(point_mass(4), -1.0, 0.5), [0, 0, 1, 0, 0], atol=1e-6)
    # point mass at z = -1, r = 0.6, discount 0.5: Tz = 0.1, 0.9 to atom 0 and 0.1 to atom 1
    np.testing.assert_allclose(project_one(point_mass(1), 0.6, 0.5), [0, 0, 0.9, 0.1, 0], atol=1e-6)


def test_target_exactly_on_an_atom_keeps_all_mass_there():
    probs = np.array([0.1, 0.2, 0.3, 0.15, 0.25], np.float32)
    out = project_one(probs, 1.0, 1.0)  # Tz = z + 1: shift right by one atom, the top atom clipped onto z = 2
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [0, 0.1, 0.2, 0.3, 0.4], atol=1e-6)
    # the edges themselves: Tz = v_min and Tz = v_max
    np.testing.assert_allclose(project_one(point_mass(0), 0.0, 1.0), point_mass(0), atol=1e-6)
    np.testing.assert_allclose(project_one(point_mass(4), 0.0, 1.0), point_mass(4), atol=1e-6)


@pytest.mark.parametrize(("reward", "edge"), [(5.0, 4), (-7.0, 0)])
def test_beyond_an_edge_all_mass_on_the_edge_atom(reward, edge):
    probs = np.array([0.1, 0.2, 0.3, 0.15, 0.25], np.float32)
    np.testing.assert_allclose(project_one(probs, reward, 0.9), point_mass(edge), atol=1e-6)


def test_terminal_is_point_mass_at_reward():
    probs = np.full(5, 0.2, np.float32)  # whatever the next distribution, discount 0 ignores it
    np.testing.assert_allclose(project_one(probs, 0.25, 0.0), [0, 0, 0.75, 0.25, 0], atol=1e-6)
    np.testing.assert_allclose(project_one(probs, -1.0, 0.0), point_mass(1), atol=1e-6)
    np.testing.assert_allclose(project_one(probs, -0.5, 0.0), [0, 0.5, 0.5, 0, 0], atol=1e-6)
    np.testing.assert_allclose(project_one(probs, 3.0, 0.0), point_mass(4), atol=1e-6)


def random_inputs(seed, batch=64, atoms=11):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, atoms)) * 2.0
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    reward = rng.uniform(-4.0, 4.0, batch)
    discount = rng.choice([0.0, 0.5, 0.9, 0.99, 0.99**3], batch)
    return probs, reward, discount


def test_random_inputs_match_reference_and_keep_total_mass():
    z = np.linspace(-3.0, 3.0, 11)
    probs, reward, discount = random_inputs(0)
    out = jax.jit(project_categorical)(
        jnp.asarray(probs, jnp.float32),
        jnp.asarray(reward, jnp.float32),
        jnp.asarray(discount, jnp.float32),
        jnp.asarray(z, jnp.float32),
    )
    out = np.asarray(out)
    assert out.shape == probs.shape
    assert out.min() >= 0.0
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out, project_reference(probs, reward, discount, z), atol=1e-5)


def test_projection_preserves_mean_when_inside_support():
    # linear interpolation between neighbours keeps E[Tz] when nothing is clipped
    z = np.linspace(-10.0, 10.0, 21)
    probs, _, _ = random_inputs(1, atoms=21)
    reward, discount = np.full(64, 0.3), np.full(64, 0.5)  # Tz in [-4.7, 5.3]
    out = np.asarray(project_categorical(jnp.asarray(probs), jnp.asarray(reward), jnp.asarray(discount), z))
    np.testing.assert_allclose(out @ z, 0.3 + 0.5 * (probs @ z), atol=1e-4)


def test_cross_entropy_is_kl_plus_entropy():
    probs, _, _ = random_inputs(2)
    probs[:, :3] = 0.0  # zeros in the target: 0 log 0 = 0 in both entropy and KL
    probs /= probs.sum(-1, keepdims=True)
    logits = np.random.default_rng(3).normal(size=probs.shape)
    entropy = -np.sum(np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0), axis=-1)
    ce = np.asarray(categorical_cross_entropy(jnp.asarray(probs), jnp.asarray(logits)))
    kl = np.asarray(categorical_kl(jnp.asarray(probs), jnp.asarray(logits)))
    assert ce.shape == kl.shape == (64,)
    assert np.all(np.isfinite(kl)) and np.all(kl > 0.0)
    np.testing.assert_allclose(ce, kl + entropy, rtol=1e-5, atol=1e-5)


def test_cross_entropy_hand_case():
    # target (0.5, 0.5, 0) against uniform logits over 3 atoms: -log(1/3)
    ce = categorical_cross_entropy(jnp.array([[0.5, 0.5, 0.0]]), jnp.zeros((1, 3)))
    np.testing.assert_allclose(np.asarray(ce), [np.log(3.0)], rtol=1e-6)
    kl = categorical_kl(jnp.array([[0.5, 0.5, 0.0]]), jnp.zeros((1, 3)))
    np.testing.assert_allclose(np.asarray(kl), [np.log(3.0) - np.log(2.0)], rtol=1e-5)


def test_kl_zero_when_logits_match_target():
    target = np.array([[0.2, 0.3, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25]])
    logits = np.log(np.where(target > 0, target, 1e-30)) + 7.0  # any shift of the logits
    np.testing.assert_allclose(
        np.asarray(categorical_kl(jnp.asarray(target), jnp.asarray(logits))), 0, atol=1e-6
    )


def test_expected_value_hand_case():
    # softmax of log(0.1, 0.2, 0.3, 0.4, 0) is (0.1, 0.2, 0.3, 0.4, 0): -0.2 - 0.2 + 0 + 0.4 + 0 = 0.0; and
    # logits (0, 0, 0, 0, log 4): probs (1, 1, 1, 1, 4) / 8: (-2 - 1 + 0 + 1 + 8) / 8 = 0.75
    logits = jnp.log(jnp.array([[0.1, 0.2, 0.3, 0.4, 1e-30], [1.0, 1.0, 1.0, 1.0, 4.0]]))
    np.testing.assert_allclose(np.asarray(expected_value(logits, Z)), [0.0, 0.75], atol=1e-6)


def test_suggest_support_pendulum():
    factor = (1.0 - 0.99**200) / (1.0 - 0.99)
    v_min, v_max = suggest_support(-16.27, 0.0, 0.99, horizon=200)
    assert isinstance(v_min, float) and isinstance(v_max, float)
    assert v_min == pytest.approx(-16.27 * factor, rel=1e-12)
    assert v_min == pytest.approx(-1409.0, abs=1.0)
    assert v_max == 0.0


def test_suggest_support_infinite_horizon():
    assert suggest_support(-1.0, 2.0, 0.9) == pytest.approx((-10.0, 20.0))


def test_vmap_over_a_seed_axis_matches_each_seed():
    z = jnp.linspace(-3.0, 3.0, 11)
    inputs = [random_inputs(seed, batch=8) for seed in (4, 5)]
    probs, reward, discount = (jnp.asarray(np.stack(x), jnp.float32) for x in zip(*inputs, strict=True))
    out = jax.vmap(project_categorical, in_axes=(0, 0, 0, None))(probs, reward, discount, z)
    for s in range(2):
        np.testing.assert_allclose(
            out[s], project_categorical(probs[s], reward[s], discount[s], z), atol=1e-6
        )


def test_suggest_support_short_episodes_and_undiscounted():
    # positive rewards: an episode may end after one step, so v_min is one reward, not H of them
    assert suggest_support(1.0, 1.0, 0.5, horizon=3) == pytest.approx((1.0, 1.75))
    assert suggest_support(-2.0, -1.0, 1.0, horizon=10) == pytest.approx((-20.0, -1.0))
    with pytest.raises(ValueError, match="finite horizon"):
        suggest_support(-1.0, 1.0, 1.0)


def test_mass_outside_by_hand():
    from dpgkit.learn.categorical import mass_outside

    probs = jnp.array([[0.1, 0.2, 0.3, 0.3, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2]])
    # r + 1 * z: 1 + [-2, -1, 0, 1, 2] puts the top atom (3) outside; 0 + 0.5 z stays inside
    shares = mass_outside(probs, jnp.array([1.0, 0.0]), jnp.array([1.0, 0.5]), Z)
    np.testing.assert_allclose(np.asarray(shares), [0.1, 0.0], atol=1e-7)
    # -3 + 0 * z: every atom at -3, all mass outside
    np.testing.assert_allclose(
        np.asarray(mass_outside(probs[:1], jnp.array([-3.0]), jnp.array([0.0]), Z)), [1.0]
    )
