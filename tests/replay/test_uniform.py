"""Uniform replay: shapes, ring order, sampling only filled rows, per-seed generators and write positions,
checkpoint round trip, pytree observations and dtypes."""

import operator

import jax
import numpy as np

from dpgkit.replay import ReplayBuffer


def example():
    return {
        "obs": np.zeros(3, np.float32),
        "action": np.zeros(2, np.float32),
        "reward": np.float32(0.0),
    }


def transitions(seeds, copies, start=0.0):
    """Values that identify (seed, copy): obs = start + 100 seed + copy."""
    base = start + 100.0 * np.arange(seeds)[:, None] + np.arange(copies)[None, :]
    return {
        "obs": np.repeat(base[..., None], 3, axis=-1).astype(np.float32),
        "action": np.repeat(-base[..., None], 2, axis=-1).astype(np.float32),
        "reward": base.astype(np.float32),
    }


def add_all(buf, transitions):
    """Add transitions with leading axes (seeds, count), seed by seed."""
    for seed in range(buf.seeds):
        buf.add(seed, jax.tree_util.tree_map(operator.itemgetter(seed), transitions))


def scalar_buffer(capacity, values, seeds=1):
    buf = ReplayBuffer(seeds, capacity, np.float32(0.0))
    for v in values:
        add_all(buf, np.full((seeds, 1), v, np.float32))
    return buf


def test_storage_and_sample_shapes():
    buf = ReplayBuffer(seeds=2, capacity=10, example=example())
    assert buf.storage["obs"].shape == (2, 10, 3)
    assert buf.storage["action"].shape == (2, 10, 2)
    assert buf.storage["reward"].shape == (2, 10)
    add_all(buf, transitions(2, 4))
    np.testing.assert_array_equal(buf.size, [4, 4])
    batch = buf.sample([np.random.default_rng(0), np.random.default_rng(1)], 7)
    assert batch["obs"].shape == (2, 7, 3)
    assert batch["action"].shape == (2, 7, 2)
    assert batch["reward"].shape == (2, 7)
    assert batch["obs"].dtype == np.float32
    # each seed samples its own transitions, whole (obs, action, reward stay together)
    np.testing.assert_array_equal(batch["reward"][0] // 100, 0)
    np.testing.assert_array_equal(batch["reward"][1] // 100, 1)
    np.testing.assert_array_equal(batch["obs"][..., 1], batch["reward"])
    np.testing.assert_array_equal(batch["action"][..., 0], -batch["reward"])


def test_add_writes_copies_in_order():
    buf = ReplayBuffer(seeds=2, capacity=10, example=example())
    add_all(buf, transitions(2, 3))
    add_all(buf, transitions(2, 2, start=50.0))
    np.testing.assert_array_equal(buf.storage["reward"][0, :5], [0, 1, 2, 50, 51])
    np.testing.assert_array_equal(buf.storage["reward"][1, :5], [100, 101, 102, 150, 151])
    np.testing.assert_array_equal(buf.storage["reward"][:, 5:], 0)
    np.testing.assert_array_equal(buf.size, [5, 5])


def test_seeds_write_at_their_own_positions():
    buf = ReplayBuffer(seeds=2, capacity=4, example=np.float32(0.0))
    assert list(buf.add(0, np.array([1.0, 2.0, 3.0], np.float32))) == [0, 1, 2]
    assert list(buf.add(1, np.array([7.0], np.float32))) == [0]
    assert list(buf.add(0, np.array([4.0, 5.0], np.float32))) == [3, 0]  # seed 0 wraps, seed 1 does not move
    np.testing.assert_array_equal(buf.storage, [[5.0, 2.0, 3.0, 4.0], [7.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(buf.size, [4, 1])
    idx = buf.sample_indices([np.random.default_rng(0), np.random.default_rng(1)], 200)
    assert set(np.unique(idx[0])) == {0, 1, 2, 3} and set(np.unique(idx[1])) == {0}


def test_wrap_around_ring_order():
    buf = scalar_buffer(5, [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0])
    np.testing.assert_array_equal(buf.storage[0], [15.0, 16.0, 12.0, 13.0, 14.0])
    assert buf.size[0] == 5
    assert buf.written[0] % 5 == 2


def test_wrap_around_with_several_copies():
    buf = ReplayBuffer(1, 5, np.float32(0.0))
    buf.add(0, np.array([1.0, 2.0, 3.0], np.float32))
    assert list(buf.add(0, np.array([4.0, 5.0, 6.0], np.float32))) == [3, 4, 0]
    np.testing.assert_array_equal(buf.storage[0], [6.0, 2.0, 3.0, 4.0, 5.0])
    assert buf.size[0] == 5 and buf.written[0] == 6


def test_samples_only_filled_rows():
    buf = scalar_buffer(100, [1.0, 2.0, 3.0])
    assert buf.size[0] == 3
    rng = np.random.default_rng(0)
    idx = buf.sample_indices([rng], 1000)
    assert idx.shape == (1, 1000)
    assert idx.min() == 0 and idx.max() == 2
    values = buf.sample([rng], 3000)
    assert set(np.unique(values).tolist()) == {1.0, 2.0, 3.0}
    # roughly uniform: each of the 3 rows ~1000 times (binomial sd ~26)
    counts = np.array([(values == v).sum() for v in (1.0, 2.0, 3.0)])
    assert np.all(np.abs(counts - 1000) < 130)


def test_each_seed_uses_its_own_generator():
    data1 = scalar_buffer(20, np.arange(1.0, 11.0), seeds=1)
    data3 = ReplayBuffer(3, 20, np.float32(0.0))
    for v in np.arange(1.0, 11.0):
        add_all(data3, np.array([[v], [100 + v], [200 + v]], np.float32))

    idx1 = data1.sample_indices([np.random.default_rng(123)], 50)
    idx3 = data3.sample_indices(
        [np.random.default_rng(123), np.random.default_rng(1), np.random.default_rng(2)], 50
    )
    np.testing.assert_array_equal(idx1[0], idx3[0])
    assert not np.array_equal(idx3[0], idx3[1]) and not np.array_equal(idx3[1], idx3[2])

    s1 = data1.sample([np.random.default_rng(123)], 50)
    s3 = data3.sample([np.random.default_rng(123), np.random.default_rng(1), np.random.default_rng(2)], 50)
    np.testing.assert_array_equal(s1[0], s3[0])
    np.testing.assert_array_equal(s3[1], np.asarray(data3.storage)[1, idx3[1]])
    assert np.all((s3[1] > 100) & (s3[1] < 200)) and np.all(s3[2] > 200)


def test_state_round_trip_partial():
    buf = ReplayBuffer(2, 8, example())
    add_all(buf, transitions(2, 3))
    buf.add(1, jax.tree_util.tree_map(lambda x: x[1, :1], transitions(2, 1, start=60.0)))
    fresh = ReplayBuffer(2, 8, example())
    fresh.load_state(buf.state())
    np.testing.assert_array_equal(fresh.size, [3, 4])
    for key in buf.storage:
        np.testing.assert_array_equal(fresh.storage[key], buf.storage[key])
    # both continue identically
    add_all(buf, transitions(2, 2, start=7.0))
    add_all(fresh, transitions(2, 2, start=7.0))
    for key in buf.storage:
        np.testing.assert_array_equal(fresh.storage[key], buf.storage[key])
    np.testing.assert_array_equal(fresh.written, [5, 6])
    np.testing.assert_array_equal(buf.written, [5, 6])


def test_state_round_trip_wrapped():
    buf = scalar_buffer(5, np.arange(1.0, 8.0), seeds=2)
    state = buf.state()
    fresh = ReplayBuffer(2, 5, np.float32(0.0))
    fresh.load_state(state)
    np.testing.assert_array_equal(fresh.storage, buf.storage)
    np.testing.assert_array_equal(fresh.storage[0], [6.0, 7.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(fresh.size, [5, 5])
    np.testing.assert_array_equal(fresh.written, buf.written)
    np.testing.assert_array_equal(
        fresh.sample([np.random.default_rng(4), np.random.default_rng(5)], 10),
        buf.sample([np.random.default_rng(4), np.random.default_rng(5)], 10),
    )
    add_all(fresh, np.full((2, 1), 9.0, np.float32))
    np.testing.assert_array_equal(fresh.storage[1], [6.0, 7.0, 9.0, 4.0, 5.0])


def test_pytree_observations_keep_dtypes():
    ex = {
        "obs": {"image": np.zeros((2, 2), np.uint8), "vec": np.zeros(3, np.float32)},
        "done": np.bool_(False),
        "step": np.int64(0),
    }
    buf = ReplayBuffer(1, 4, ex)
    assert buf.storage["obs"]["image"].dtype == np.uint8
    assert buf.storage["obs"]["vec"].dtype == np.float32
    assert buf.storage["done"].dtype == np.bool_
    assert buf.storage["step"].dtype == np.int64
    image = np.full((1, 2, 2, 2), 250, np.uint8)
    image[0, 1] = 7
    add_all(
        buf,
        {
            "obs": {"image": image, "vec": np.ones((1, 2, 3), np.float32)},
            "done": np.array([[False, True]]),
            "step": np.array([[3, 2**40]], np.int64),
        },
    )
    batch = buf.gather(np.array([[1, 0]]))
    assert batch["obs"]["image"].dtype == np.uint8
    np.testing.assert_array_equal(batch["obs"]["image"][0, 0], np.full((2, 2), 7, np.uint8))
    np.testing.assert_array_equal(batch["obs"]["image"][0, 1], np.full((2, 2), 250, np.uint8))
    np.testing.assert_array_equal(batch["done"], [[True, False]])
    np.testing.assert_array_equal(batch["step"], [[2**40, 3]])
    sampled = buf.sample([np.random.default_rng(0)], 5)
    assert sampled["obs"]["image"].dtype == np.uint8 and sampled["done"].dtype == np.bool_

    fresh = ReplayBuffer(1, 4, ex)
    fresh.load_state(buf.state())
    assert fresh.storage["obs"]["image"].dtype == np.uint8
    np.testing.assert_array_equal(fresh.storage["obs"]["image"], buf.storage["obs"]["image"])
    np.testing.assert_array_equal(fresh.storage["step"], buf.storage["step"])
    assert fresh.size[0] == 2 and fresh.written[0] == 2


def test_state_is_a_view_not_a_copy():
    """state() hands the checkpoint writer views of the storage, so a save holds no second replay in memory."""
    buf = scalar_buffer(3, [1.0, 2.0, 3.0], seeds=2)
    state = buf.state()
    assert np.shares_memory(state["leaf_0"], buf.storage)
    assert state["leaf_0"].nbytes == buf.storage.nbytes
