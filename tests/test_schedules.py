"""When to learn: every train_freq steps, or between episodes; and the one-call staleness of overlap."""

from __future__ import annotations

import functools

import pytest

from dpgkit import TD3
from dpgkit.train import new_stats
from envs_for_tests import ProbeFaulty

SMALL = {"hidden": (8, 8), "batch_size": 8, "eval_every": 0, "progress": False}


def probe(episode_length: int = 20):
    """A harmless probe env whose episodes last episode_length steps."""
    return functools.partial(ProbeFaulty, fault="none", episode_length=episode_length)


def test_updates_happen_only_between_episodes(tmp_path):
    """With updates_per_episode, no update during an episode; after each one that ends, exactly that many."""
    agent = TD3(
        probe(20),
        run_dir=str(tmp_path),
        learning_starts=30,
        updates_per_episode=12,
        gradient_steps=4,
        **SMALL,
    )
    trainer, stats = agent.trainer, new_stats(1)
    history = []
    while trainer.steps < 100:
        trainer.iteration(stats)
        history.append((trainer.steps, trainer.updates))
    changes = [
        (step, updates)
        for (step, updates), (_, before) in zip(history[1:], history, strict=False)
        if updates != before
    ]
    assert changes == [(40, 12), (60, 24), (80, 36), (100, 48)]  # episodes end every 20 steps; warm-up to 30


def test_updates_per_episode_must_be_a_multiple_of_gradient_steps(tmp_path):
    with pytest.raises(
        ValueError, match=r"config\.updates_per_episode must be .*multiple of config\.gradient_steps"
    ):
        TD3(probe(), run_dir=str(tmp_path), updates_per_episode=10, gradient_steps=4, **SMALL)


@pytest.mark.parametrize("overlap", [False, True])
def test_overlap_lags_the_acting_params_by_at_most_one_call(tmp_path, overlap):
    """Off, the copies act with the newest params after each call; on, with those of the call before the last."""
    agent = TD3(
        probe(), run_dir=str(tmp_path), learning_starts=20, gradient_steps=3, overlap=overlap, **SMALL
    )
    trainer, stats = agent.trainer, new_stats(1)
    lags = set()
    while trainer.steps < 80:
        trainer.iteration(stats)
        if trainer.steps > 20:
            lags.add(trainer.updates - trainer.env_actor.version)
    assert lags == ({3} if overlap else {0})
