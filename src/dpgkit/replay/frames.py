"""Pixel replay storing each frame once: per-seed frame rings, and replay rows holding frame ids for stacks.

Observations are frame stacks (k, *frame) (Gymnasium's FrameStackObservation): a step shifts one new frame in,
so an env copy writes one frame per step (plus its reset stack's distinct frames) and the replay rows hold the
ids (k,) of their obs and next_obs stacks. Ids are per-seed write counts, int64 in FrameStore's API and int32
in replay rows (ROW_ID: at most 2^31 - 1 frames per seed, about 2.1e9 env steps; StackIds refuses more).

A stack's ids ascend and a transition's next_obs ids are at least its obs ids, so a row's oldest frame is
obs_ids[0]; add_transitions holds that frame in the FrameStore while the row is stored, and the frame ring
refuses to overwrite a held frame (a clear error, raised before any stored row could lose a frame).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import numpy as np

from dpgkit.replay.uniform import ReplayBuffer

ROW_ID = np.int32
HOLD_COUNT = np.int32
"""The dtype of FrameStore's hold counts."""


class FrameStore:
    """Per seed a ring of `capacity` frames: frame id i (the seed's i-th frame written) lives in slot i % capacity.

    held counts, per slot, the stored transitions whose oldest frame is that slot's frame; add refuses to
    overwrite a held frame, its error ending with `advice`.
    """

    def __init__(
        self,
        seeds: int,
        capacity: int,
        frame_shape: tuple[int, ...],
        dtype,
        advice: str = "raise it (frame_capacity with a smaller min_episode)",
    ):
        self.seeds, self.capacity, self.advice = seeds, capacity, advice
        self.frames = np.zeros((seeds, capacity) + tuple(frame_shape), dtype)
        self.held = np.zeros((seeds, capacity), HOLD_COUNT)
        self.written = np.zeros(seeds, np.int64)

    def add(self, seed: int, frames: np.ndarray) -> np.ndarray:
        """Store one seed's frames (leading axis: count) over its oldest; returns their ids (int64)."""
        ids = self.written[seed] + np.arange(len(frames))
        slots = ids % self.capacity
        if self.held[seed, slots].any():
            oldest = int(ids[self.held[seed, slots] > 0][0] - self.capacity)
            raise RuntimeError(
                f"seed {seed}: frame {oldest} would be overwritten while it is the oldest frame of stored "
                f"transitions; episodes are shorter than the frame capacity {self.capacity} allows: {self.advice}"
            )
        self.frames[seed, slots] = frames
        self.written[seed] += len(frames)
        return ids

    def live(self, seed: int, ids: np.ndarray) -> np.ndarray:
        """Whether each id is stored: written - capacity <= id < written."""
        return (ids >= max(self.written[seed] - self.capacity, 0)) & (ids < self.written[seed])

    def hold(self, seed: int, ids: np.ndarray, by: int) -> None:
        """Add `by` (1 to hold, -1 to release) to the hold count of each frame id; refuses ids not live."""
        ids = np.asarray(ids)
        if not self.live(seed, ids).all():
            raise RuntimeError(
                f"seed {seed}: frames {ids[~self.live(seed, ids)].tolist()} were overwritten before their "
                f"transitions were stored; raise the frame capacity"
            )
        np.add.at(self.held[seed], ids % self.capacity, by)

    def gather(self, ids: np.ndarray) -> np.ndarray:
        """The frames of ids (seeds, ...), shaped (seeds, ..., *frame_shape)."""
        offsets = (np.arange(self.seeds) * self.capacity).reshape((-1,) + (1,) * (np.ndim(ids) - 1))
        flat = self.frames.reshape((-1,) + self.frames.shape[2:])
        return flat[np.asarray(ids) % self.capacity + offsets]

    def state(self) -> dict[str, np.ndarray]:
        """Views of the filled part of the rings and hold counts, and each seed's write count (no copy)."""
        filled = int(min(self.written.max(), self.capacity))
        return {
            "frames": self.frames[:, :filled],
            "held": self.held[:, :filled],
            "written": self.written.copy(),
        }

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from state()."""
        filled = state["frames"].shape[1]
        self.frames[:, :filled] = state["frames"]
        self.held[:, :filled] = state["held"]
        self.written = np.array(state["written"], np.int64)


def store_bytes(seeds: int, capacity: int, frame_shape: tuple[int, ...], dtype) -> int:
    """Bytes of a FrameStore's rings and hold counts, known before it is made."""
    frame = math.prod(frame_shape) * np.dtype(dtype).itemsize
    return seeds * capacity * (frame + np.dtype(HOLD_COUNT).itemsize)


def row_ids(ids: np.ndarray) -> np.ndarray:
    """Frame ids as ROW_ID (int32), the dtype of replay rows; refuses ids that do not fit."""
    if ids.max(initial=0) > np.iinfo(ROW_ID).max:
        raise OverflowError(f"frame id {int(ids.max())} does not fit the replay rows' {np.dtype(ROW_ID)}")
    return ids.astype(ROW_ID)


def distinct(stack: np.ndarray) -> np.ndarray:
    """Which frames of a stack differ from the one before (the first always does): (k,) bool."""
    changed = (stack[1:] != stack[:-1]).any(axis=tuple(range(1, stack.ndim)))
    return np.concatenate([[True], changed])


class StackIds:
    """Per env copy, the frame ids (k,) of its current stack (ROW_ID, oldest first; -1 before its first stack).

    store_add(frames) -> ids registers frames in the copy's seed's FrameStore, e.g.
    functools.partial(store.add, seed).
    """

    def __init__(self, copies: int, k: int):
        self.ids = np.full((copies, k), -1, ROW_ID)

    def on_reset(self, copy: int, stack: np.ndarray, store_add: Callable) -> np.ndarray:
        """Register the reset stack's distinct frames (consecutive equal frames once); returns its ids (k,)."""
        new = distinct(stack)
        self.ids[copy] = row_ids(store_add(stack[new]))[np.cumsum(new) - 1]
        return self.ids[copy].copy()

    def on_step(self, copy: int, next_stack: np.ndarray, store_add: Callable) -> np.ndarray:
        """Register next_stack[-1] only; returns the next stack's ids = ids[1:] + [new id]."""
        self.ids[copy] = np.concatenate([self.ids[copy, 1:], row_ids(store_add(next_stack[-1:]))])
        return self.ids[copy].copy()

    def step(
        self, reset: np.ndarray, obs: np.ndarray, next_obs: np.ndarray, store_add: Callable
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids (copies, k) of obs and next_obs for one lockstep step of every copy; a copy just reset (or with
        no stack yet) registers obs as a reset stack first."""
        obs_ids = np.stack(
            [
                self.on_reset(c, obs[c], store_add) if reset[c] or self.ids[c, 0] < 0 else self.ids[c].copy()
                for c in range(len(self.ids))
            ]
        )
        return obs_ids, np.stack([self.on_step(c, next_obs[c], store_add) for c in range(len(self.ids))])


def id_example(k: int) -> np.ndarray:
    """The replay example of a stack's ids: zeros (k,) of ROW_ID."""
    return np.zeros(k, ROW_ID)


def frame_capacity(
    capacity: int, n: int, k: int, copies: int, min_episode: int, reset_frames: int = 1
) -> int:
    """Frames per seed that keep every stored transition's frames: F = A V + r A ceil(V / L),
    V = floor(C / A) + 2n + k.

    C transitions, A copies, n-step windows, k-frame stacks, episodes of at least L steps registering r
    distinct reset frames each (1 for padding "reset"), rows stored after every vector step: the frames of live
    rows were written within the last V vector steps, A frames per step plus r per reset.
    """
    steps = capacity // copies + 2 * n + k
    return copies * steps + reset_frames * copies * math.ceil(steps / min_episode)


def add_transitions(
    replay: ReplayBuffer, seed: int, transitions, held: list[tuple[FrameStore, Callable]]
) -> np.ndarray:
    """Store one seed's transitions; in each (FrameStore, obs_ids) of held, hold each one's oldest frame and
    release those of the rows overwritten (then at most capacity transitions at once); returns the rows.

    obs_ids picks a store's obs ids leaf (..., k) of a transitions pytree, e.g. operator.itemgetter("obs").
    """
    count = len(jax.tree_util.tree_leaves(transitions)[0])
    if held and count > replay.capacity:
        raise ValueError(f"{count} transitions do not fit a replay of capacity {replay.capacity}")
    index = replay.written[seed] + np.arange(count)
    overwritten = index[index >= replay.capacity] % replay.capacity
    for store, obs_ids in held:
        store.hold(seed, obs_ids(transitions)[:, 0], 1)
        store.hold(seed, obs_ids(replay.storage)[seed, overwritten, 0], -1)
    return replay.add(seed, transitions)


def with_stacks(batch: dict, store: FrameStore, keys=("obs", "next_obs")) -> dict:
    """The batch (seeds, count, ...) with its id leaves at keys replaced by their frame stacks."""
    return {**batch, **{key: store.gather(batch[key]) for key in keys}}


def replay_bytes(store: FrameStore, id_leaves: list[np.ndarray]) -> int:
    """Bytes of observations: the frame rings, their hold counts and the replay's id leaves."""
    return store.frames.nbytes + store.held.nbytes + sum(leaf.nbytes for leaf in id_leaves)


def bytes_per_transition(store: FrameStore, id_leaves: list[np.ndarray]) -> float:
    """replay_bytes / (seeds x capacity) of the id leaves (seeds, capacity, k)."""
    return replay_bytes(store, id_leaves) / math.prod(id_leaves[0].shape[:2])
