"""Sum tree: tree invariants under random updates, find against searchsorted, sampling frequencies,
importance weights, ring wrap-around, zero priorities and checkpoint round trip."""

import numpy as np
import pytest

from dpgkit.replay.sumtree import SumTree, importance_weights, sample_proportional


def check_invariants(tree, leaves):
    """Every internal node is the sum (min) of its children; leaves match the reference."""
    internal = np.arange(1, tree.leaves)
    np.testing.assert_allclose(tree.sums[internal], tree.sums[2 * internal] + tree.sums[2 * internal + 1])
    np.testing.assert_array_equal(
        tree.mins[internal], np.minimum(tree.mins[2 * internal], tree.mins[2 * internal + 1])
    )
    np.testing.assert_array_equal(tree.values(np.arange(tree.capacity)), leaves)
    assert tree.total() == pytest.approx(leaves.sum(), rel=1e-12)


def test_capacity_rounded_up_to_power_of_two():
    assert [SumTree(c).leaves for c in (1, 2, 5, 8, 9)] == [1, 2, 8, 8, 16]
    assert SumTree(5).sums.shape == (16,)


def test_random_updates_keep_sums_and_mins():
    rng = np.random.default_rng(0)
    capacity = 37
    tree, leaves, written = SumTree(capacity), np.zeros(capacity), np.zeros(capacity, bool)
    assert tree.min() == np.inf
    for _ in range(300):
        indices = rng.integers(0, capacity, rng.integers(1, 12))
        values = rng.uniform(0.0, 5.0, indices.size)
        tree.update(indices, values)
        for i, v in zip(indices, values, strict=True):  # sequential writes: the last one wins
            leaves[i], written[i] = v, True
        check_invariants(tree, leaves)
        assert tree.min() == leaves[written].min()
    assert np.all(tree.sums[tree.leaves + capacity :] == 0.0)
    assert np.all(tree.mins[tree.leaves + capacity :] == np.inf)


def test_duplicate_indices_last_write_wins():
    tree = SumTree(4)
    tree.update(np.array([2, 0, 2, 2, 0]), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(tree.values(np.arange(4)), [5.0, 0.0, 4.0, 0.0])
    assert tree.total() == 9.0
    assert tree.min() == 4.0


def test_scalar_value_broadcasts():
    tree = SumTree(4)
    tree.update(np.array([1, 3]), 2.5)
    np.testing.assert_array_equal(tree.values(np.arange(4)), [0.0, 2.5, 0.0, 2.5])


def test_find_hand_case():
    tree = SumTree(4)
    tree.update(np.arange(4), np.array([1.0, 0.0, 2.0, 3.0]))  # ranges [0,1) [1,1) [1,3) [3,6)
    u = np.array([0.0, 0.999, 1.0, 2.5, 3.0, 5.999])
    np.testing.assert_array_equal(tree.find(u), [0, 0, 2, 2, 3, 3])


def test_find_matches_searchsorted_on_cumsum():
    rng = np.random.default_rng(1)
    capacity = 50
    tree = SumTree(capacity)
    for _ in range(20):
        # integer priorities (many zero): every partial sum is exact, so boundaries are compared exactly
        tree.update(rng.integers(0, capacity, 10), rng.integers(0, 4, 10).astype(float))
        leaves = tree.values(np.arange(capacity))
        cumsum = np.cumsum(leaves)
        u = np.concatenate([rng.uniform(0.0, tree.total(), 200), cumsum[:-1][leaves[1:] > 0], [0.0]])
        u = u[u < tree.total()]
        found = tree.find(u)
        np.testing.assert_array_equal(found, np.searchsorted(cumsum, u, side="right"))
        assert np.all(leaves[found] > 0)


def test_sampling_frequencies_match_priorities():
    rng = np.random.default_rng(2)
    priorities = np.array([0.5, 3.0, 0.0, 1.0, 7.5, 0.25, 2.0, 0.0, 4.0, 1.75])
    tree = SumTree(priorities.size)
    tree.update(np.arange(priorities.size), priorities)
    draws = np.concatenate([sample_proportional(tree, rng, 32) for _ in range(2000)])
    counts = np.bincount(draws, minlength=priorities.size)
    p = priorities / priorities.sum()
    # stratification only lowers the variance below the multinomial one: a 5-sigma binomial bound per bin
    sigma = np.sqrt(draws.size * p * (1 - p))
    assert np.all(np.abs(counts - draws.size * p) <= 5 * sigma + 1e-9)
    assert counts[2] == 0 and counts[7] == 0


def test_stratified_sample_has_one_draw_per_segment():
    tree = SumTree(4)
    tree.update(np.arange(4), np.ones(4))  # total 4: segment i of 4 is exactly leaf i
    rng = np.random.default_rng(3)
    for _ in range(20):
        np.testing.assert_array_equal(sample_proportional(tree, rng, 4), [0, 1, 2, 3])


def test_zero_priorities_never_sampled():
    rng = np.random.default_rng(4)
    capacity = 64
    tree = SumTree(capacity)
    priorities = np.where(np.arange(capacity) % 3 == 1, rng.uniform(1e-6, 1e3, capacity), 0.0)
    tree.update(np.arange(capacity), priorities)
    draws = np.concatenate([sample_proportional(tree, rng, 256) for _ in range(200)])
    assert np.all(draws % 3 == 1)
    # even at and past the end of [0, total) the descent stays on positive leaves (the last, 63, is zero)
    np.testing.assert_array_equal(tree.find(np.array([tree.total(), tree.total() * (1 + 1e-12)])), [61, 61])


def test_importance_weights_hand_case():
    tree = SumTree(4)
    tree.update(np.arange(4), np.array([1.0, 2.0, 4.0, 8.0]))  # total 15
    weights = importance_weights(tree, np.array([0, 1, 2, 3, 2]), size=4, beta=0.5)
    # (4 p / 15)^-0.5 / (4 * 1 / 15)^-0.5 = p^-0.5: max 1 at the smallest priority
    np.testing.assert_allclose(weights, [1.0, 2**-0.5, 0.5, 8**-0.5, 0.5], rtol=1e-12)
    # proportional to (N P(i))^-beta itself
    n_p = 4 * np.array([1.0, 2.0, 4.0, 8.0]) / 15
    np.testing.assert_allclose(weights[:4] / weights[1], n_p**-0.5 / n_p[1] ** -0.5, rtol=1e-12)
    np.testing.assert_array_equal(importance_weights(tree, np.array([3, 0]), size=4, beta=0.0), [1.0, 1.0])


def test_importance_weights_max_from_min_priority_not_from_batch():
    tree = SumTree(8)
    tree.update(np.arange(5), np.array([4.0, 1.0, 4.0, 16.0, 4.0]))  # 5 filled of 8
    weights = importance_weights(tree, np.array([0, 3]), size=5, beta=1.0)
    np.testing.assert_allclose(weights, [0.25, 1.0 / 16.0], rtol=1e-12)


def test_ring_wrap_around_keeps_tree_consistent():
    rng = np.random.default_rng(5)
    capacity = 5  # not a power of two: leaves 5..7 must stay empty
    tree, ring = SumTree(capacity), np.zeros(capacity)
    pos = 0
    for step in range(40):
        copies = int(rng.integers(1, 4))
        rows = (pos + np.arange(copies)) % capacity
        values = rng.uniform(0.1, 2.0, copies) + step
        tree.update(rows, values)
        ring[rows] = values
        pos = (pos + copies) % capacity
        check_invariants(tree, ring)
        assert tree.min() == ring[ring > 0].min()
    assert tree.min() == ring.min()  # every slot overwritten by now: the oldest low values are gone
    assert tree.min() > 30.0
    assert np.all(tree.sums[tree.leaves + capacity :] == 0.0)
    assert set(sample_proportional(tree, rng, 500)) <= set(range(capacity))


def test_state_round_trip():
    tree = SumTree(6)
    tree.update(np.arange(4), np.array([1.0, 2.0, 3.0, 0.5]))
    state = {name: value.copy() for name, value in tree.state().items()}
    assert np.shares_memory(tree.state()["sums"], tree.sums)  # views for the checkpoint writer, no copy
    restored = SumTree(6)
    restored.load_state(state)
    state["sums"][:] = -1.0  # nor does mutating the dict reach the restored tree
    assert restored.total() == 6.5 and restored.min() == 0.5
    np.testing.assert_array_equal(restored.values(np.arange(6)), [1.0, 2.0, 3.0, 0.5, 0.0, 0.0])
    rng_a, rng_b = np.random.default_rng(6), np.random.default_rng(6)
    reference = SumTree(6)
    reference.update(np.arange(4), np.array([1.0, 2.0, 3.0, 0.5]))
    np.testing.assert_array_equal(
        sample_proportional(restored, rng_a, 50), sample_proportional(reference, rng_b, 50)
    )
