"""Adaptive parameter noise: perturbation, the distance by hand, the sigma rule, per-copy perturbations and
their redraw at episode starts, and the explorer's checkpoint state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpgkit.config import TD3Config
from dpgkit.explore import ParamNoiseExplorer
from dpgkit.explore.param import action_distance, adapted_sigma, perturb
from dpgkit.nets import Actor, ActorNet

ACTOR = ActorNet(Actor((8, 8), 2, layer_norm=True), encoders=None, detach=False)
OBS_DIM = 3


def actor_params(seeds=1, key=0):
    params = ACTOR.init(jax.random.PRNGKey(key), jnp.zeros((1, OBS_DIM)))
    return jax.tree_util.tree_map(lambda x: np.stack([np.asarray(x)] * seeds), params)


def test_perturb_changes_weights_but_not_layer_norm_nor_the_original():
    params = ACTOR.init(jax.random.PRNGKey(0), jnp.zeros((1, OBS_DIM)))
    before = jax.tree_util.tree_map(np.array, params)
    perturbed = perturb(params, 0.3, np.random.default_rng(0))
    for name, layer in perturbed["params"].items():
        for leaf, value in layer.items():
            original = np.asarray(params["params"][name][leaf])
            if name.startswith("LayerNorm"):
                np.testing.assert_array_equal(value, original)
            else:
                diff = value - original
                assert np.abs(diff).min() > 0
                if diff.size > 20:
                    assert np.std(diff) == pytest.approx(0.3, rel=0.35)
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)  # the actor itself is untouched


def test_action_distance_by_hand():
    a = np.array([[[0.0, 0.0], [1.0, -1.0]]])
    b = np.array([[[0.3, 0.4], [1.0, -1.0]]])
    # mean over 2 states x 2 dims of the squares: (0.09 + 0.16 + 0 + 0) / 4
    np.testing.assert_allclose(action_distance(a, b), [np.sqrt(0.25 / 4)])


def test_sigma_shrinks_above_delta_and_grows_below():
    np.testing.assert_allclose(adapted_sigma([0.1, 0.1], [0.3, 0.1], 0.2, 1.01), [0.1 / 1.01, 0.1 * 1.01])


def explorer(seeds=2, actors=3, **overrides):
    config = TD3Config(explore="param", actors=actors, seeds=seeds, **overrides)
    return ParamNoiseExplorer(config, ACTOR, jax.jit(jax.vmap(ACTOR.apply)), seeds, 2)


def test_adapt_with_a_fixed_actor_moves_sigma_towards_delta():
    params = actor_params(seeds=1)
    states = np.random.default_rng(1).normal(size=(1, 64, OBS_DIM)).astype(np.float32)
    rng = [np.random.default_rng(2)]
    big = explorer(seeds=1, param_noise_sigma=5.0, param_noise_delta=0.2)
    big.adapt(params, states, rng)
    assert big.distance[0] > 0.2 and big.sigma[0] == pytest.approx(5.0 / 1.01)
    small = explorer(seeds=1, param_noise_sigma=1e-4, param_noise_delta=0.2)
    small.adapt(params, states, rng)
    assert small.distance[0] < 0.2 and small.sigma[0] == pytest.approx(1e-4 * 1.01)
    # the distance is the one of a perturbation at that sigma, computed by hand
    fresh = perturb(jax.tree_util.tree_map(lambda x: x[0], params), 1e-4 * 1.01, np.random.default_rng(3))
    check = explorer(seeds=1, param_noise_sigma=1e-4 * 1.01)
    check.adapt(params, states, [np.random.default_rng(3)])
    plain, noisy = (
        ACTOR.apply(jax.tree_util.tree_map(lambda x: x[0], params), states[0]),
        ACTOR.apply(fresh, states[0]),
    )
    expected = np.sqrt(np.mean((np.asarray(noisy, np.float64) - np.asarray(plain, np.float64)) ** 2))
    assert check.distance[0] == pytest.approx(expected, rel=1e-4)


def test_copies_get_their_own_perturbations_redrawn_at_episode_start():
    params = actor_params(seeds=2)
    ex = explorer(seeds=2, actors=3, param_noise_sigma=0.5)
    rngs = [np.random.default_rng(5), np.random.default_rng(6)]
    obs = np.zeros((2, 3, OBS_DIM), np.float32)
    first = ex.actions(params, obs, rngs)
    assert first.shape == (2, 3, 2)
    assert len({tuple(np.round(a, 6)) for a in first.reshape(6, 2)}) == 6  # six different behaviour actors
    np.testing.assert_array_equal(ex.actions(params, obs, rngs), first)  # kept within the episode
    reset = np.array([[False, True, False], [False, False, False]])
    ex.begin_episodes(reset)
    third = ex.actions(params, obs, rngs)
    changed = np.any(third != first, axis=-1)
    np.testing.assert_array_equal(changed, reset)


def test_resample_every_m_steps_redraws_every_copy():
    params = actor_params(seeds=1)
    ex = explorer(seeds=1, actors=2, param_noise_sigma=0.5, param_resample_every=2)
    rngs, obs = [np.random.default_rng(0)], np.zeros((1, 2, OBS_DIM), np.float32)
    a0, a1, a2 = (ex.actions(params, obs, rngs) for _ in range(3))
    np.testing.assert_array_equal(a0, a1)
    assert np.all(np.any(a2 != a1, axis=-1))


def test_state_round_trip_and_redraw_on_load():
    ex = explorer(seeds=2, param_noise_sigma=0.3)
    ex.sigma = np.array([0.25, 0.4])
    ex.distance = np.array([0.1, 0.3])
    ex.stale[:] = False
    fresh = explorer(seeds=2)
    fresh.load_state(ex.state())
    np.testing.assert_array_equal(fresh.sigma, [0.25, 0.4])
    np.testing.assert_array_equal(fresh.distance, [0.1, 0.3])
    assert fresh.stale.all()


def test_the_loop_adapts_and_logs_sigma(tmp_path):
    from dpgkit import TD3
    from dpgkit.logger import read_metrics

    agent = TD3("Pendulum-v1", seed=0, run_dir=str(tmp_path), explore="param", learning_starts=100, hidden=(16, 16),
                batch_size=16, param_adapt_every=20, log_every=100, eval_every=0, progress=False)  # fmt: skip
    assert agent.trainer.driver.spec.layer_norm  # on by default with parameter noise
    agent.learn(300)
    explorer = agent.trainer.env_actor.explorer
    assert np.isfinite(explorer.distance).all()
    # eleven adaptations (steps 100, 120, ..., 300), each multiplying or dividing sigma by 1.01
    ratio = np.log(explorer.sigma[0] / 0.1) / np.log(1.01)
    assert abs(ratio - round(ratio)) < 1e-6 and abs(round(ratio)) <= 11 and round(ratio) % 2 == 1
    logged = read_metrics(tmp_path)
    steps, sigma = logged["explore/param_sigma"][0]
    assert steps.tolist() == [100, 200, 300] and sigma[-1] == pytest.approx(explorer.sigma[0])
    assert "explore/param_distance" in logged
