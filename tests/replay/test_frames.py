"""Pixel replay storing each frame once: scripted episodes of 2 interleaved copies through StackIds, an n-step
writer of ids and a replay of id rows, against the same steps' real stacks through a second writer, across
both rings' wrap-around; frame holds and refusals, bytes per transition and checkpoint round trip."""

import copy
import functools
import io
import operator
from collections import deque

import numpy as np
import pytest

from dpgkit.replay import (
    FrameStore,
    NStepWriter,
    ReplayBuffer,
    StackIds,
    add_transitions,
    bytes_per_transition,
    frame_capacity,
    id_example,
    with_stacks,
)

N, GAMMA, K = 3, 0.5, 3
FIELDS = ("obs", "action", "reward", "discount", "next_obs")
EXAMPLE = {  # a replay row: the stacks as their frame ids
    "obs": id_example(K),
    "action": np.zeros(1, np.float32),
    "reward": np.float32(0),
    "discount": np.float32(0),
    "next_obs": id_example(K),
}


def frame(shape, seed, copy, episode, t):
    """A uint8 frame whose first five values encode (seed, copy, episode, t) as (seed, copy, episode, t mod 256,
    t // 256), the rest zero."""
    out = np.zeros(shape, np.uint8)
    out.reshape(-1)[:5] = [seed, copy, episode, t % 256, t // 256]
    return out


def stack(shape, seed, copy, episode, t):
    """The stack at step t of an episode with padding "reset": frames of steps max(0, t - k + 1 .. t)."""
    return np.stack([frame(shape, seed, copy, episode, max(0, s)) for s in range(t - K + 1, t + 1)])


class Episodes:
    """Env copies (seeds, copies) in lockstep playing scripted episodes, lazily reset: schedules[seed][copy]
    cycles through episodes (length, terminated), truncated when not terminated."""

    def __init__(self, schedules, shape):
        self.schedules, self.shape = schedules, shape
        self.seeds, self.copies = len(schedules), len(schedules[0])
        self.episode = np.full((self.seeds, self.copies), -1)
        self.t = np.zeros((self.seeds, self.copies), np.int64)
        self.ended = np.ones((self.seeds, self.copies), bool)

    def spec(self, seed, copy, episode):
        """(length, terminated) of an episode of a copy."""
        return self.schedules[seed][copy][episode % len(self.schedules[seed][copy])]

    def stacks(self, t):
        return np.stack(
            [
                np.stack([stack(self.shape, s, c, self.episode[s, c], t[s, c]) for c in range(self.copies)])
                for s in range(self.seeds)
            ]
        )

    def observe(self):
        """Reset the copies that ended; return (reset, obs)."""
        reset = self.ended.copy()
        self.episode += reset
        self.t[reset] = 0
        self.ended[:] = False
        return reset, self.stacks(self.t)

    def step(self):
        """One step of every copy: (action, reward, terminated, truncated, next_obs)."""
        action = self.t[..., None].astype(np.float32)
        reward = 1.0 + self.t + 10.0 * np.arange(self.copies) + 100.0 * np.arange(self.seeds)[:, None]
        self.t += 1
        spec = np.array(
            [[self.spec(s, c, self.episode[s, c]) for c in range(self.copies)] for s in range(self.seeds)]
        )
        self.ended = self.t == spec[..., 0]
        terminated = spec[..., 1].astype(bool)
        return action, reward, self.ended & terminated, self.ended & ~terminated, self.stacks(self.t)


def stacked(transitions):
    """A writer's transitions stacked on a leading axis (ids or stacks in their dtype, the rest float32)."""
    return {
        name: np.asarray([t[name] for t in transitions], None if name.endswith("obs") else np.float32)
        for name in FIELDS
    }


class Pipeline:
    """StackIds -> NStepWriter of ids -> ReplayBuffer of id rows + FrameStore, per seed; `expected` holds, per
    seed, the transitions of the real stacks (a second writer) of the rows stored, oldest first."""

    def __init__(self, schedules, capacity, frames, shape=(3, 2, 1)):
        self.env = Episodes(schedules, shape)
        seeds, copies = self.env.seeds, self.env.copies
        self.store = FrameStore(seeds, frames, shape, np.uint8)
        self.replay = ReplayBuffer(seeds, capacity, EXAMPLE)
        self.ids = [StackIds(copies, K) for _ in range(seeds)]
        self.writers = [NStepWriter(N, GAMMA, copies) for _ in range(seeds)]
        self.references = [NStepWriter(N, GAMMA, copies) for _ in range(seeds)]
        self.expected = [deque(maxlen=capacity) for _ in range(seeds)]
        self.events = []  # per step and seed: (an episode ended, the frame ring wrapped, the replay wrapped)

    def step(self):
        reset, obs = self.env.observe()
        action, reward, terminated, truncated, next_obs = self.env.step()
        for seed in range(self.env.seeds):
            frames_before, rows_before = self.store.written[seed], self.replay.written[seed]
            obs_ids, next_ids = self.ids[seed].step(
                reset[seed], obs[seed], next_obs[seed], functools.partial(self.store.add, seed)
            )
            step = (action[seed], reward[seed], terminated[seed], truncated[seed])
            finished = self.writers[seed].push(obs_ids, *step, next_ids)
            reference = self.references[seed].push(obs[seed], *step, next_obs[seed])
            assert len(finished) == len(reference)
            if finished:
                add_transitions(
                    self.replay, seed, stacked(finished), [(self.store, operator.itemgetter("obs"))]
                )
                self.expected[seed].extend(reference)
            self.events.append(
                (
                    bool((terminated[seed] | truncated[seed]).any()),
                    frames_before // self.store.capacity != self.store.written[seed] // self.store.capacity,
                    rows_before // self.replay.capacity != self.replay.written[seed] // self.replay.capacity,
                )
            )

    def verify(self):
        """Every stored row, rebuilt, equals its reference and stays in one episode; returns the rows whose
        next_obs is their episode's final observation."""
        sizes, written, capacity = self.replay.size, self.replay.written, self.replay.capacity
        count = int(sizes.max())
        rows = np.stack(
            [(w - size + np.arange(count) % max(size, 1)) % capacity for w, size in zip(written, sizes)]
        )
        batch = with_stacks(self.replay.gather(rows), self.store)
        finals = 0
        for seed, size in enumerate(sizes):
            assert len(self.expected[seed]) == size
            for j, ref in enumerate(self.expected[seed]):
                for name in FIELDS:
                    np.testing.assert_array_equal(batch[name][seed, j], ref[name], err_msg=name)
                obs, next_obs = batch["obs"][seed, j], batch["next_obs"][seed, j]
                codes = np.concatenate([obs, next_obs]).reshape(2 * K, -1)[:, :5].astype(np.int64)
                assert (codes[:, :3] == codes[0, :3]).all()  # one (seed, copy, episode) throughout
                times = codes[:, 3] + 256 * codes[:, 4]
                s, c, e, t = codes[0, 0], codes[0, 1], codes[0, 2], times[K - 1]
                length, terminated = self.env.spec(s, c, e)
                np.testing.assert_array_equal(times[:K], np.maximum(np.arange(t - K + 1, t + 1), 0))
                next_t = min(t + N, length)
                np.testing.assert_array_equal(times[K:], np.maximum(np.arange(next_t - K + 1, next_t + 1), 0))
                discount = 0.0 if terminated and next_t == length else GAMMA ** (next_t - t)
                assert batch["discount"][seed, j] == pytest.approx(discount)
                finals += next_t == length
        return finals


SHORT = [  # per seed, per copy: episodes (length, terminated), inside and across n-step windows
    [
        [(4, True), (1, False), (5, False), (2, True), (7, True)],
        [(2, False), (6, True), (3, True), (1, True)],
    ],
    [[(3, True), (3, False), (1, False), (8, True)], [(5, False), (2, True), (1, True), (4, False)]],
]
LONGER = [[[(4, True), (5, False), (6, True)], [(7, False), (4, False), (5, True)]]]


@pytest.mark.parametrize(("schedules", "min_episode"), [(SHORT, 1), (LONGER, 4)])
def test_rebuilt_rows_match_the_real_stacks_across_both_wrap_arounds(schedules, min_episode):
    capacity = 16
    frames = frame_capacity(capacity, N, K, 2, min_episode)
    pipe = Pipeline(schedules, capacity, frames)
    for _ in range(150):
        pipe.step()
        pipe.verify()
    assert (pipe.store.written > 3 * frames).all() and (pipe.replay.written > 3 * capacity).all()
    ended, frame_wrap, row_wrap = np.array(pipe.events).T
    assert (ended & frame_wrap).any() and (ended & row_wrap).any()
    assert pipe.verify() > 0  # true final observations in next_obs
    assert pipe.store.frames.dtype == np.uint8 and pipe.replay.storage["obs"].dtype == np.int32


def test_frame_ring_ids_gather_live_and_holds():
    store = FrameStore(2, 4, (1,), np.uint8)
    ids = store.add(0, np.arange(6, dtype=np.uint8)[:, None])
    assert ids.dtype == np.int64 and list(ids) == [0, 1, 2, 3, 4, 5]
    assert list(store.add(1, np.array([[9]], np.uint8))) == [0]
    np.testing.assert_array_equal(store.live(0, np.arange(7)), [0, 0, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(store.gather(np.array([[5, 2], [0, 0]]))[..., 0], [[5, 2], [9, 9]])
    with pytest.raises(RuntimeError, match="overwritten before"):
        store.hold(0, np.array([1]), 1)
    store.hold(0, np.array([2, 2]), 1)  # two stored rows start at frame 2
    for _ in range(2):
        with pytest.raises(RuntimeError, match="frame 2 would be overwritten"):
            store.add(0, np.array([[6]], np.uint8))
        assert store.written[0] == 6
        store.hold(0, np.array([2]), -1)
    assert list(store.add(0, np.array([[6], [7]], np.uint8))) == [6, 7]
    np.testing.assert_array_equal(store.gather(np.array([[6, 7, 4], [0, 0, 0]]))[0, :, 0], [6, 7, 4])


def test_reset_stack_registers_consecutive_distinct_frames_once():
    store = FrameStore(1, 16, (1,), np.uint8)
    add = functools.partial(store.add, 0)
    ids = StackIds(2, K)
    np.testing.assert_array_equal(ids.on_reset(0, np.array([[5], [5], [5]], np.uint8), add), [0, 0, 0])
    np.testing.assert_array_equal(ids.on_reset(1, np.array([[0], [0], [6]], np.uint8), add), [1, 1, 2])
    np.testing.assert_array_equal(ids.on_step(0, np.array([[5], [5], [7]], np.uint8), add), [0, 0, 3])
    np.testing.assert_array_equal(ids.on_reset(0, np.array([[1], [2], [1]], np.uint8), add), [4, 5, 6])
    assert store.written[0] == 7
    np.testing.assert_array_equal(
        StackIds(1, 1).on_reset(0, np.array([[3]], np.uint8), add), [7]
    )  # a stack of 1
    np.testing.assert_array_equal(store.gather(ids.ids[None])[0, ..., 0], [[1, 2, 1], [0, 0, 6]])
    store.written[0] = 2**31
    with pytest.raises(OverflowError, match="int32"):
        ids.on_step(1, np.array([[0], [6], [8]], np.uint8), add)


def test_bytes_per_transition_at_64x64x3_within_a_quarter_above_one_frame():
    shape, capacity, copies = (64, 64, 3), 500, 2
    frame_bytes = int(np.prod(shape))
    frames = frame_capacity(capacity, N, K, copies, min_episode=1000)
    pipe = Pipeline([[[(1000, True)], [(1000, False)]]], capacity, frames, shape)
    for _ in range(frames // copies + 10):  # both rings wrap without a refusal
        pipe.step()
    assert pipe.store.written[0] > frames and pipe.replay.written[0] > capacity
    pipe.verify()
    ids = [pipe.replay.storage["obs"], pipe.replay.storage["next_obs"]]
    per_transition = bytes_per_transition(pipe.store, ids)
    assert (
        per_transition
        == (pipe.store.frames.nbytes + pipe.store.held.nbytes + 2 * capacity * K * 4) / capacity
    )
    assert per_transition <= 1.25 * frame_bytes
    stacks = ReplayBuffer(
        1, capacity, {"obs": np.zeros((K,) + shape, np.uint8), "next_obs": np.zeros((K,) + shape, np.uint8)}
    )
    stacked_bytes = (stacks.storage["obs"].nbytes + stacks.storage["next_obs"].nbytes) / capacity
    assert stacked_bytes / frame_bytes == 2 * K == 6


def test_short_episodes_are_refused_before_a_stored_row_loses_a_frame():
    capacity, copies = 64, 2
    frames = frame_capacity(capacity, N, K, copies, min_episode=50)
    long = Pipeline([[[(50, True), (61, False)], [(57, False), (50, True)]]], capacity, frames)
    for _ in range(4 * frames // copies):
        long.step()
    assert long.store.written[0] > 3 * frames
    assert long.verify() > 0
    short = Pipeline([[[(1, True), (1, False)], [(1, False), (2, True)]]], capacity, frames)
    with pytest.raises(RuntimeError, match="would be overwritten while it is the oldest frame"):
        for _ in range(frames):
            short.step()
            short.verify()
    short.verify()  # the refused step wrote nothing: every stored row still rebuilds


def test_checkpoint_round_trip_keeps_uint8_and_continues_identically():
    pipe = Pipeline(SHORT, 16, frame_capacity(16, N, K, 2, 1))
    for _ in range(30):
        pipe.step()
    parts = {"frames": pipe.store, "replay": pipe.replay}
    states = {name: part.state() for name, part in parts.items()}
    assert np.shares_memory(states["frames"]["frames"], pipe.store.frames)
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{name}/{k}": v for name, state in states.items() for k, v in state.items()})
    buffer.seek(0)
    loaded = np.load(buffer)
    restored = copy.deepcopy(pipe)  # the env, stack ids and writers; storage fresh, then loaded
    restored.store = FrameStore(2, pipe.store.capacity, (3, 2, 1), np.uint8)
    restored.replay = ReplayBuffer(2, 16, EXAMPLE)
    for name, part in (("frames", restored.store), ("replay", restored.replay)):
        part.load_state({k: loaded[f"{name}/{k}"] for k in states[name]})
    assert loaded["frames/frames"].dtype == np.uint8 and restored.store.frames.dtype == np.uint8
    restored.verify()
    for p in (pipe, restored):
        for _ in range(40):
            p.step()
        p.verify()
    for a, b in (
        (restored.store.frames, pipe.store.frames),
        (restored.store.held, pipe.store.held),
        (restored.store.written, pipe.store.written),
        (restored.replay.storage["obs"], pipe.replay.storage["obs"]),
    ):
        np.testing.assert_array_equal(a, b)
