"""Trainer-level learner options: acting with the target actor, and when the acting copy is refreshed."""

from __future__ import annotations

import jax
import numpy as np

from dpgkit import DDPG
from dpgkit.config import DDPGConfig, TD3Config
from dpgkit.driver import changes_acting_actor

SMALL = {
    "total_steps": 300,
    "learning_starts": 100,
    "hidden": (16, 16),
    "batch_size": 16,
    "eval_every": 0,
    "progress": False,
}


def seed_zero(tree):
    return jax.tree_util.tree_map(lambda x: np.asarray(x[0]), tree)


def trees_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_act_with_target_acts_explores_and_evaluates_with_the_target_actor(tmp_path):
    agent = DDPG("Pendulum-v1", seed=0, run_dir=str(tmp_path), act_with_target=True, **SMALL)
    agent.learn()
    trainer = agent.trainer
    assert trees_equal(trainer.driver.acting_actor, trainer.state.target_actor)
    assert not trees_equal(trainer.driver.acting_actor, trainer.state.actor)  # the two differ, so the choice shows
    obs = np.array([0.5, -0.5, 0.1], np.float32)
    target_action = trainer.driver.spec.actor.apply(seed_zero(trainer.state.target_actor), obs)
    np.testing.assert_allclose(
        agent.act(obs) / 2.0, np.asarray(target_action), rtol=1e-6
    )  # Pendulum: [-2, 2]
    agent.save()
    loaded = DDPG.load(tmp_path)
    assert trees_equal(loaded.trainer.driver.acting_actor, trainer.state.target_actor)


def test_online_actor_acts_by_default(tmp_path):
    agent = DDPG("Pendulum-v1", seed=0, run_dir=str(tmp_path), **SMALL)
    agent.learn()
    assert trees_equal(agent.trainer.driver.acting_actor, agent.trainer.state.actor)


def test_acting_copy_is_refreshed_when_the_acting_actor_changes():
    td3 = TD3Config()  # d = 2: actor steps after updates 1, 3, ...
    assert [changes_acting_actor(td3, u, 1) for u in range(4)] == [False, True, False, True]
    hard = DDPGConfig(act_with_target=True, target_update_every=3)  # copies after updates 2, 5, ...
    assert [changes_acting_actor(hard, u, 1) for u in range(6)] == [False, False, True, False, False, True]
    assert changes_acting_actor(hard, 0, 3) and not changes_acting_actor(hard, 3, 2)
    polyak = DDPGConfig(act_with_target=True)  # the target follows every actor step
    assert all(changes_acting_actor(polyak, u, 1) for u in range(3))
