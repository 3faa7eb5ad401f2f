"""The categorical support when v_min/v_max are not given: from a declared reward_range, or from the warm-up's
rewards when learning starts; saved with the config; and the warning when targets leave it."""

from __future__ import annotations

import numpy as np
import pytest

from dpgkit import D4PG, TD3
from dpgkit.config import D4PGConfig
from dpgkit.learn.categorical import suggest_support, warmup_support
from dpgkit.logger import read_metrics
from envs_for_tests import ProbeTwoStep

QUIET = {"hidden": (16, 16), "batch_size": 16, "eval_every": 0, "progress": False}


class ProbeDeclaredRange(ProbeTwoStep):
    """ProbeTwoStep declaring its rewards' range [0, 1]."""

    reward_range = (0.0, 1.0)


def test_warmup_support_by_hand():
    rewards = np.array([-2.0, -1.0, 0.5])
    # suggest_support(-2, 0.5, 0.9) = (-20, 5), width 25, widened by 12.5 on each side
    np.testing.assert_allclose(warmup_support(rewards, 0.9, 1, None), (-32.5, 17.5))
    # n = 2 over a 10-step horizon: 5 blocks discounted by 0.81, factor (1 - 0.81^5) / 0.19
    factor = (1 - 0.81**5) / 0.19
    low, high = -2.0 * factor, 0.5 * factor
    expected = (low - 0.5 * (high - low), high + 0.5 * (high - low))
    np.testing.assert_allclose(warmup_support(rewards, 0.9, 2, 10), expected)


def test_support_is_derived_from_the_warm_up_when_learning_starts_and_saved(tmp_path, capsys):
    # D4PG's defaults without the Pendulum-v1 preset (which sets a support)
    agent = D4PG("Pendulum-v1", D4PGConfig(), seed=0, run_dir=str(tmp_path), learning_starts=50, **QUIET)
    assert agent.config.v_min is None  # no reward_range in Gymnasium's Pendulum: wait for the warm-up
    agent.learn(50)  # the first learner call, at step 50, fixes the support from the 46 5-step rewards stored
    rewards = agent.trainer.driver.replay.storage.reward[0, : agent.trainer.driver.replay.size[0]]
    expected = warmup_support(rewards, 0.99, 5, 200)
    assert (agent.config.v_min, agent.config.v_max) == expected
    assert (agent.trainer.driver.spec.v_min, agent.trainer.driver.spec.v_max) == expected
    assert expected[0] < -100 and expected[1] > 0
    assert "categorical support" in capsys.readouterr().out
    metrics = read_metrics(tmp_path)
    assert metrics["critic/v_min"][0][1].tolist() == [expected[0]]
    assert "losses/support_outside" in metrics
    agent.save()
    loaded = D4PG.load(tmp_path)
    assert (loaded.config.v_min, loaded.config.v_max) == expected
    loaded.learn(10)
    assert "categorical support" not in capsys.readouterr().out  # not derived again on resume
    assert loaded.trainer.driver.spec == agent.trainer.driver.spec


def test_declared_reward_range_fixes_the_support_at_construction(tmp_path):
    agent = TD3(ProbeDeclaredRange, atoms=11, gamma=0.9, run_dir=str(tmp_path), **QUIET)
    assert (agent.config.v_min, agent.config.v_max) == suggest_support(0.0, 1.0, 0.9)
    np.testing.assert_allclose(suggest_support(0.0, 1.0, 0.9), (0.0, 10.0))


def test_no_warm_up_and_no_range_names_v_min(tmp_path):
    with pytest.raises(ValueError, match=r"config\.v_min"):
        TD3("Pendulum-v1", atoms=11, learning_starts=0, run_dir=str(tmp_path), **QUIET)


def test_explicit_support_is_kept(tmp_path):
    agent = D4PG(
        "Pendulum-v1", seed=0, run_dir=str(tmp_path), learning_starts=50, v_min=-850.0, v_max=0.0, **QUIET
    )
    agent.learn(60)
    assert (agent.config.v_min, agent.config.v_max) == (-850.0, 0.0)
    assert "critic/v_min" not in read_metrics(tmp_path)


def test_targets_outside_a_narrow_support_are_logged_and_warned(tmp_path):
    agent = D4PG("Pendulum-v1", seed=0, run_dir=str(tmp_path), learning_starts=50, v_min=-1.0, v_max=1.0,
                 log_every=25, **QUIET)  # fmt: skip
    with pytest.warns(UserWarning, match="outside"):
        agent.learn(100)
    _, shares = read_metrics(tmp_path)["losses/support_outside"][0]
    assert shares.max() > 0.5  # Pendulum's 5-step rewards reach -40: most of the target mass is clipped
