"""Every environment family the issue names trains for a few updates: classic control, Box2D and MuJoCo v5."""

import numpy as np
import pytest

from dpgkit import TD3

ENV_IDS = [
    "Pendulum-v1",
    "MountainCarContinuous-v0",
    "LunarLanderContinuous-v3",
    "BipedalWalker-v3",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Humanoid-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "Reacher-v5",
    "Swimmer-v5",
]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_trains_a_few_updates(tmp_path, env_id):
    agent = TD3(
        env_id,
        learning_starts=24,
        batch_size=8,
        buffer_size=64,
        hidden=(8, 8),
        eval_every=0,
        progress=False,
        run_dir=str(tmp_path),
    )
    agent.learn(32)
    assert agent.steps == 32 and agent.trainer.updates == 9
    space = agent.trainer.env_actor.collector.envs.single_action_space
    action = agent.act(agent.trainer.env_actor.collector.obs[0])
    assert action.shape == space.shape and np.all(action >= space.low) and np.all(action <= space.high)
