"""Chunks from Ray workers, without Ray: the ledger stores a retried chunk once and a restarted worker's chunks
again, records merge in order, each worker gets its share of the Ape-X noise spread, and the numpy actor is the
flax one."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from dpgkit import TD3
from dpgkit.collect import Collected, Transitions
from dpgkit.collect.chunks import ChunkLedger, FrameIdMap, merge_collected, worker_config, worker_seed
from dpgkit.collect.numpy_actor import numpy_fits, numpy_policy
from dpgkit.config import TD3Config
from dpgkit.explore import actor_sigmas
from dpgkit.replay.framed import NewFrames


def test_a_retried_chunk_is_stored_once_and_a_restarted_workers_chunks_are_stored():
    ledger = ChunkLedger()
    assert ledger.admit((0, 0, 1)) and ledger.admit((0, 0, 2)) and ledger.admit((1, 0, 1))
    assert not ledger.admit((0, 0, 2))  # the same chunk delivered again
    assert not ledger.admit((0, 0, 1))
    assert ledger.admit((0, 77, 1)) and ledger.admit((0, 77, 2))  # the restarted process starts at 1 again
    assert ledger.incarnations(0) == 2 and ledger.incarnations(1) == 1


def record(values: list[float], returns: list[float], version: int) -> Collected:
    """One seed's record of transitions whose rewards are `values`."""
    n = len(values)
    transitions = Transitions(
        np.zeros((n, 3), np.float32),
        np.zeros((n, 1), np.float32),
        np.asarray(values, np.float32),
        np.ones(n, np.float32),
        np.zeros((n, 3), np.float32),
    )
    return Collected([transitions if n else None], {}, [returns], [[1] * len(returns)], 2, version)


def framed_chunk(first: int, count: int, obs_ids: list[list[int]]) -> Collected:
    """One seed's chunk of image observations as frame ids (stacks of 2), with `count` new frames from id first."""
    ids = np.asarray(obs_ids, np.int32)
    n = len(ids)
    transitions = Transitions(ids, np.zeros((n, 1)), np.zeros(n), np.ones(n), ids + 1)
    frames = {"": [NewFrames(first, np.full((count, 4, 4, 1), first, np.uint8))]}
    return Collected([transitions], frames, [[]], [[]], n, 0)


def test_frame_ids_of_two_workers_land_one_chunk_after_the_other():
    frame_ids = FrameIdMap({"": np.array([10])})
    a1 = frame_ids.ship((0, 0), framed_chunk(0, 3, [[0, 1]]))
    b1 = frame_ids.ship((1, 0), framed_chunk(0, 2, [[0, 0]]))
    a2 = frame_ids.ship((0, 0), framed_chunk(3, 2, [[2, 3], [3, 4]]))  # its first stack began in chunk a1
    assert [c.frames[""][0].first for c in (a1, b1, a2)] == [10, 13, 15]
    np.testing.assert_array_equal(a1.transitions[0].obs, [[10, 11]])
    np.testing.assert_array_equal(b1.transitions[0].next_obs, [[14, 14]])
    np.testing.assert_array_equal(a2.transitions[0].obs, [[12, 15], [15, 16]])
    np.testing.assert_array_equal(frame_ids.written[""], [17])
    assert merge_collected([a1, b1]).frames[""][0].frames.shape == (5, 4, 4, 1)


def test_records_merge_in_order():
    merged = merge_collected([record([1.0, 2.0], [], 5), record([], [-3.0], 4), record([3.0], [-1.0], 5)])
    np.testing.assert_array_equal(merged.transitions[0].reward, [1.0, 2.0, 3.0])
    assert merged.episode_returns == [[-3.0, -1.0]] and merged.episode_lengths == [[1, 1]]
    assert (merged.env_steps, merged.version, merged.non_finite) == (6, 4, None)


def test_each_worker_explores_with_its_share_of_the_spread():
    config = TD3Config(noise_sigma=0.05, noise_sigma_max=0.8, workers=3, actors=2)
    everyone = actor_sigmas(0.05, 0.8, 6)
    for worker in range(3):
        own = worker_config(config, worker)
        np.testing.assert_allclose(
            actor_sigmas(own.noise_sigma, own.noise_sigma_max, 2),
            everyone[2 * worker : 2 * worker + 2],
            rtol=1e-12,
        )
    assert worker_config(TD3Config(workers=3), 2) == TD3Config(workers=3)  # no spread: everyone the same
    assert (
        len({worker_seed(0, w, 0, 0) for w in range(8)} | {worker_seed(0, 0, 1, 0), worker_seed(0, 0, 0, 1)})
        == 10
    )


def test_the_numpy_actor_is_the_flax_actor(tmp_path):
    agent = TD3("Pendulum-v1", hidden=(32, 16), seeds=2, run_dir=str(tmp_path), progress=False)
    driver = agent.trainer.driver
    assert numpy_fits(driver.spec.actor)
    obs = np.random.default_rng(0).uniform(-1.0, 1.0, (2, 5, 3)).astype(np.float32)
    params = jax.device_get(driver.acting_actor)
    np.testing.assert_allclose(numpy_policy(params, obs), np.asarray(driver.act_fn(params, obs)), atol=1e-6)


@pytest.mark.parametrize("change", [{"explore": "noisy"}, {"layer_norm": True}, {"torso": "layernorm"}])
def test_other_actors_act_with_jax(tmp_path, change):
    agent = TD3("Pendulum-v1", hidden=(8,), run_dir=str(tmp_path), progress=False, **change)
    assert not numpy_fits(agent.trainer.driver.spec.actor)
