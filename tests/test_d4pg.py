"""D4PG in the loop: the categorical critic on a probe, n-step transitions in the replay, priorities written
back, actors with a spread of noise scales, several seeds, and the command line."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from dpgkit import D4PG, TD3, cli
from dpgkit.checkpoint import load_checkpoint
from dpgkit.learn.categorical import expected_value
from envs_for_tests import ProbeOneStep, ProbeTwoStep

QUIET = {"eval_every": 0, "log_every": 100_000, "progress": False}


def test_categorical_probe_puts_the_mass_around_the_reward(tmp_path):
    """One-step reward 1 on atoms -2, -1.6, ..., 2: the mean goes to 1, the mass to the atoms 0.8 and 1.2."""
    agent = D4PG(
        ProbeOneStep,
        seed=0,
        run_dir=str(tmp_path),
        atoms=11,
        v_min=-2.0,
        v_max=2.0,
        hidden=(32, 32),
        batch_size=64,
        learning_starts=100,
        gradient_steps=8,
        critic_lr=1e-3,
        **QUIET,
    )
    obs = np.random.default_rng(7).uniform(-1.0, 1.0, (64, 1)).astype(np.float32)
    actions = np.random.default_rng(8).uniform(-1.0, 1.0, (64, 1)).astype(np.float32)
    spec = agent.trainer.driver.spec

    def distribution():
        critic = jax.tree_util.tree_map(lambda p: p[0, 0], agent.trainer.state.critic)
        return spec.critic.apply(critic, obs, actions)

    before = distribution()
    assert np.abs(np.asarray(expected_value(before, spec.support)) - 1.0).max() > 0.2
    agent.learn(400)
    logits = distribution()
    probs = np.asarray(jax.nn.softmax(logits))
    np.testing.assert_allclose(np.asarray(expected_value(logits, spec.support)), 1.0, atol=0.05)
    assert probs[:, 7:9].sum(axis=1).min() > 0.9
    np.testing.assert_allclose(probs[:, 7], probs[:, 8], atol=0.15)  # split in half: 1 is between the atoms


@pytest.mark.parametrize("actors", [1, 2])
def test_replay_holds_n_step_transitions(tmp_path, actors):
    """Two-step episodes (rewards 0 then 1) with n = 3: R = gamma and R = 1, both ending in termination."""
    gamma = 0.9
    agent = D4PG(
        ProbeTwoStep, seed=0, run_dir=str(tmp_path), gamma=gamma, n_step=3, actors=actors, learning_starts=100,
        **QUIET,
    )  # fmt: skip
    agent.learn(10 * actors)  # 5 episodes per copy, all during the random warm-up
    replay = agent.trainer.driver.replay
    assert replay.size[0] == 10 * actors
    stored = jax.tree_util.tree_map(lambda x: x[0, : 10 * actors], replay.storage)
    first = np.all(stored.obs == ProbeTwoStep.FIRST, axis=-1)
    assert first.sum() == 5 * actors
    np.testing.assert_allclose(stored.reward[first], gamma)
    np.testing.assert_allclose(stored.reward[~first], 1.0)
    np.testing.assert_array_equal(stored.discount, 0.0)
    np.testing.assert_array_equal(
        stored.next_obs, np.broadcast_to(ProbeTwoStep.SECOND, stored.next_obs.shape)
    )


def test_priorities_are_written_back_after_each_learner_call(tmp_path):
    agent = D4PG("Pendulum-v1", seed=1, run_dir=str(tmp_path), hidden=(32, 32), batch_size=16,
                 atoms=11, v_min=-850.0, v_max=0.0, learning_starts=50, **QUIET)  # fmt: skip
    agent.learn(50)
    tree = agent.trainer.driver.replay.trees[0]
    # 46 transitions (n = 5: the first window completes at step 5), all at the entry priority
    np.testing.assert_allclose(tree.values(np.arange(46)), 1.0)
    agent.learn(1)  # one learner call; its priorities are written back before the next transitions go in
    assert agent.trainer.driver.pending_priorities is not None
    agent.learn(1)
    values = tree.values(np.arange(agent.trainer.driver.replay.size[0]))
    assert np.sum(~np.isclose(values, values.max())) > 5  # sampled rows got their own KL priorities
    assert agent.trainer.driver.replay.max_priority[0] >= 1.0


def test_actors_explore_with_a_spread_of_noise_scales(tmp_path):
    agent = TD3("Pendulum-v1", seed=0, run_dir=str(tmp_path), actors=4, noise_sigma=0.05, noise_sigma_max=0.4,
                **QUIET)  # fmt: skip
    np.testing.assert_allclose(
        agent.trainer.env_actor.explorer.noises[0].sigma[:, 0], [0.05, 0.1, 0.2, 0.4], rtol=1e-12
    )


def test_each_seed_matches_its_single_seed_run(tmp_path):
    """Per-seed n-step writers, replay positions and priority trees: seeds vmapped equal seeds alone."""
    settings = {"hidden": (32, 32), "batch_size": 16, "atoms": 11, "v_min": -850.0, "v_max": 0.0,
                "learning_starts": 60, "run_dir": "", **QUIET}  # fmt: skip
    together = D4PG("Pendulum-v1", seed=0, seeds=2, **{**settings, "run_dir": str(tmp_path / "t")}).learn(80)
    for seed in range(2):
        alone = D4PG("Pendulum-v1", seed=seed, **{**settings, "run_dir": str(tmp_path / f"{seed}")}).learn(80)
        for many, one in zip(
            jax.tree_util.tree_leaves(together.trainer.state), jax.tree_util.tree_leaves(alone.trainer.state)
        ):
            np.testing.assert_allclose(np.asarray(many)[seed], np.asarray(one)[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            together.trainer.driver.replay.trees[seed].sums, alone.trainer.driver.replay.trees[0].sums, rtol=1e-4
        )


def test_cli_trains_d4pg(tmp_path, capsys):
    run = tmp_path / "run"
    cli.main(["train", "d4pg", "--env", "Pendulum-v1", "--total-steps", "150", "--learning-starts", "100",
              "--hidden", "32", "32", "--batch-size", "32", "--atoms", "21", "--n-step", "3",
              "--eval-every", "0", "--run-dir", str(run), "--no-progress"])  # fmt: skip
    assert "training d4pg on Pendulum-v1" in capsys.readouterr().out
    _, meta = load_checkpoint(run)
    config = meta["config"]
    assert meta["algo"] == "d4pg" and meta["steps"] == 150
    assert config["atoms"] == 21 and config["n_step"] == 3 and config["replay"] == "prioritized"
    assert (config["v_min"], config["v_max"]) == (-850.0, 0.0)  # from the Pendulum-v1 preset
