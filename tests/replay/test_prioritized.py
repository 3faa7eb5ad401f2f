"""Prioritized replay: entry at the max priority, sampling in proportion to p^alpha, importance weights,
write-back, per-seed trees and checkpoint round trip."""

import numpy as np
import pytest

from dpgkit.replay import PrioritizedReplay


def filled(values, alpha=0.6, eps=1e-6, seeds=1, capacity=8):
    replay = PrioritizedReplay(seeds, capacity, np.float32(0.0), alpha, eps)
    for seed in range(seeds):
        replay.add(seed, np.asarray(values, np.float32) + 100 * seed)
    return replay


def test_new_transitions_enter_at_the_highest_priority_so_far():
    replay = filled([1.0, 2.0, 3.0], alpha=0.5)
    np.testing.assert_allclose(replay.trees[0].values(np.arange(3)), 1.0)  # max priority starts at 1
    replay.update_priorities(np.array([[0, 2]]), np.array([[8.0, 0.5]]))
    np.testing.assert_allclose(replay.trees[0].values(np.arange(3)), np.sqrt([8.0 + 1e-6, 1.0, 0.5 + 1e-6]))
    rows = replay.add(0, np.array([4.0], np.float32))
    assert list(rows) == [3]
    np.testing.assert_allclose(replay.trees[0].values(rows), np.sqrt(8.0 + 1e-6))
    replay.update_priorities(np.array([[1]]), np.array([[0.1]]))  # a lower priority leaves the max alone
    replay.add(0, np.array([5.0], np.float32))
    np.testing.assert_allclose(replay.trees[0].values([4]), np.sqrt(8.0 + 1e-6))


def test_sampling_frequencies_follow_priorities_to_the_alpha():
    alpha = 0.6
    replay = filled(np.arange(4.0), alpha=alpha)
    errors = np.array([[0.5, 1.0, 2.0, 4.0]])
    replay.update_priorities(np.arange(4)[None], errors)
    rng = np.random.default_rng(0)
    draws = np.concatenate([replay.sample_indices([rng], 256)[0] for _ in range(200)])
    expected = (errors[0] + 1e-6) ** alpha / np.sum((errors[0] + 1e-6) ** alpha)
    freq = np.bincount(draws, minlength=4) / draws.size
    # 51,200 stratified draws: the binomial sd of each frequency is below 0.0022
    np.testing.assert_allclose(freq, expected, atol=0.01)
    # alpha = 0 is uniform
    uniform = filled(np.arange(4.0), alpha=0.0)
    uniform.update_priorities(np.arange(4)[None], errors)
    draws = np.concatenate([uniform.sample_indices([rng], 256)[0] for _ in range(50)])
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / draws.size, 0.25, atol=0.02)


def test_importance_weights_by_hand():
    replay = filled(np.arange(4.0), alpha=1.0, eps=0.0)
    replay.update_priorities(np.arange(4)[None], np.array([[1.0, 2.0, 3.0, 4.0]]))
    beta = 0.5
    weights = replay.weights(np.array([[0, 3, 1]]), beta)
    p = np.array([1.0, 2.0, 3.0, 4.0]) / 10.0
    w = (4 * p) ** -beta
    np.testing.assert_allclose(weights[0], w[[0, 3, 1]] / w.max(), rtol=1e-6)
    assert weights.dtype == np.float32 and weights.max() == pytest.approx(1.0)
    np.testing.assert_allclose(replay.weights(np.array([[0, 3]]), 0.0), 1.0)


def test_seeds_keep_their_own_trees():
    replay = filled([1.0, 2.0], seeds=2)
    replay.update_priorities(np.array([[0, 1], [0, 1]]), np.array([[0.0, 9.0], [9.0, 0.0]]))
    rngs = [np.random.default_rng(1), np.random.default_rng(2)]
    idx = replay.sample_indices(rngs, 64)
    assert (idx[0] == 1).mean() > 0.9 and (idx[1] == 0).mean() > 0.9
    np.testing.assert_array_equal(replay.gather(idx)[1] >= 100, True)


def test_checkpoint_round_trip_continues_identically():
    replay = filled([1.0, 2.0, 3.0], seeds=2)
    replay.update_priorities(np.array([[0, 2], [1, 1]]), np.array([[3.0, 0.2], [0.7, 5.0]]))
    fresh = PrioritizedReplay(2, 8, np.float32(0.0), 0.6, 1e-6)
    fresh.load_state(replay.state())
    np.testing.assert_array_equal(fresh.max_priority, replay.max_priority)
    for a, b in zip(fresh.trees, replay.trees, strict=True):
        np.testing.assert_array_equal(a.sums, b.sums)
        np.testing.assert_array_equal(a.mins, b.mins)
    for r in (fresh, replay):
        r.add(1, np.array([7.0], np.float32))
    for r in (fresh, replay):
        r.sampled = r.sample_indices([np.random.default_rng(3), np.random.default_rng(4)], 16)
    np.testing.assert_array_equal(fresh.sampled, replay.sampled)
    np.testing.assert_array_equal(fresh.weights(fresh.sampled, 0.4), replay.weights(replay.sampled, 0.4))
