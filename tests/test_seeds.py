"""Several seeds in one process (vmapped learner) train exactly like separate single-seed runs."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from dpgkit import TD3

SETTINGS = {
    "learning_starts": 100,
    "train_freq": 1,
    "hidden": (32, 32),
    "batch_size": 32,
    "eval_every": 0,
    "progress": False,
}
STEPS = 120


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One agent with seeds=3 (seed 0) and three single-seed agents with seeds 0, 1, 2."""
    together = TD3(
        "Pendulum-v1", seed=0, seeds=3, run_dir=str(tmp_path_factory.mktemp("vmapped")), **SETTINGS
    )
    together.learn(STEPS)
    alone = []
    for seed in range(3):
        agent = TD3(
            "Pendulum-v1", seed=seed, seeds=1, run_dir=str(tmp_path_factory.mktemp(f"s{seed}")), **SETTINGS
        )
        alone.append(agent.learn(STEPS))
    return together, alone


def test_counters(runs):
    together, alone = runs
    assert together.trainer.agent_seeds == [0, 1, 2]
    for agent in [together, *alone]:
        assert agent.steps == STEPS
        assert agent.trainer.updates == STEPS - 100 + 1  # one update per step from step 100 on


def test_each_seed_matches_its_single_seed_run(runs):
    together, alone = runs
    stacked = jax.tree_util.tree_leaves(together.trainer.state)
    for seed, single in enumerate(alone):
        single_leaves = jax.tree_util.tree_leaves(single.trainer.state)
        assert len(single_leaves) == len(stacked)
        for i, (many, one) in enumerate(zip(stacked, single_leaves, strict=True)):
            many, one = np.asarray(many), np.asarray(one)
            assert many.shape[0] == 3 and one.shape[0] == 1
            assert many.shape[1:] == one.shape[1:] and many.dtype == one.dtype
            np.testing.assert_allclose(
                many[seed], one[0], rtol=1e-5, atol=1e-6, err_msg=f"seed {seed} leaf {i}"
            )
    # and the seeds really are different runs
    actor_kernel = np.asarray(jax.tree_util.tree_leaves(together.trainer.state.actor)[0])
    assert not np.allclose(actor_kernel[0], actor_kernel[1])


def test_replay_and_noise_streams_match(runs):
    together, alone = runs
    for seed, single in enumerate(alone):
        np.testing.assert_allclose(
            together.trainer.driver.replay.storage.obs[seed, :STEPS],
            single.trainer.driver.replay.storage.obs[0, :STEPS],
            rtol=1e-5,
        )
        assert together.trainer.rngs[seed].bit_generator.state == single.trainer.rngs[0].bit_generator.state


def test_act_and_evaluate_per_seed(runs):
    together, alone = runs
    obs = np.random.default_rng(0).uniform(-1.0, 1.0, (8, 3)).astype(np.float32)
    for seed, single in enumerate(alone):
        np.testing.assert_allclose(together.act(obs, agent=seed), single.act(obs), rtol=1e-5, atol=1e-6)
    returns = together.evaluate(1)
    assert returns.shape == (3, 1)
    np.testing.assert_allclose(returns[:, 0], [single.evaluate(1)[0] for single in alone], rtol=1e-4)


def test_update_compiles_once(runs):
    together, alone = runs
    assert together.trainer.driver.update_fn._cache_size() == 1
    for single in alone:
        assert single.trainer.driver.update_fn._cache_size() == 1
    # more learning reuses the same program
    together.learn(5)
    assert together.trainer.driver.update_fn._cache_size() == 1
