"""Frame storage for observations: their uint8 image leaves (and frame stacks) stored once per frame.

A framed leaf is an image (H, W, C), a stack of 1 at this seam, or a frame stack (k, H, W, C) of config.frame_stack;
vector leaves stay in the replay rows. Collection turns a step's framed leaves into frame ids (collect.frames'
FrameEncoder) and ships each new frame once as NewFrames; FramedReplay keeps one FrameStore per framed leaf,
writes the frames, holds and releases them with the rows, rebuilds the stacks of gathered rows and checkpoints
the stores next to the replay.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from dpgkit.nets.spec import is_image_leaf
from dpgkit.replay.frames import FrameStore, add_transitions, frame_capacity, id_example, store_bytes
from dpgkit.replay.uniform import ReplayBuffer

MIN_EPISODE = 5
"""Frame stores have room for episodes of this many steps or more on average (frame_capacity's min_episode)."""


class FramedLeaf(NamedTuple):
    """An observation leaf stored once per frame: stacks of k frames of `frame` shape and dtype; stacked: whether
    the leaf has the stack axis (else it is one image, a stack of 1)."""

    k: int
    frame: tuple[int, ...]
    dtype: np.dtype
    stacked: bool

    def as_stacks(self, x: np.ndarray) -> np.ndarray:
        """Leaves (..., *leaf shape) as stacks (..., k, *frame)."""
        return x if self.stacked else np.expand_dims(x, -len(self.frame) - 1)

    def from_stacks(self, x: np.ndarray) -> np.ndarray:
        """Stacks (..., k, *frame) as leaves (..., *leaf shape)."""
        return x if self.stacked else np.squeeze(x, -len(self.frame) - 1)


class NewFrames(NamedTuple):
    """Frames of one framed leaf and seed, written in order: the id of the first, and the frames (count, *frame)."""

    first: int
    frames: np.ndarray


def named_leaves(obs) -> dict:
    """An observation (or its spec) as {leaf name: leaf}: a flat dict as it is, an array as {"": array}."""
    return dict(obs) if isinstance(obs, dict) else {"": obs}


def replace_leaves(obs, leaves: dict):
    """obs with the named leaves replaced (named as named_leaves names them)."""
    return {**obs, **leaves} if isinstance(obs, dict) else leaves.get("", obs)


def framed_leaves(spec, frame_stack: int) -> dict[str, FramedLeaf]:
    """The leaves of an obs_spec stored once per frame, by name: uint8 images (H, W, C), or with frame_stack k > 1
    their stacks (k, H, W, C)."""
    stack = (frame_stack,) if frame_stack > 1 else ()
    return {
        name: FramedLeaf(frame_stack, tuple(leaf.shape[len(stack) :]), np.dtype(leaf.dtype), bool(stack))
        for name, leaf in named_leaves(spec).items()
        if is_image_leaf(leaf) and tuple(leaf.shape[: len(leaf.shape) - 3]) == stack
    }


def with_ids(leaves: dict[str, FramedLeaf], obs):
    """The replay rows' form of one observation: each framed leaf as its stack's frame ids (k,)."""
    return replace_leaves(obs, {name: id_example(leaf.k) for name, leaf in leaves.items()})


def ring_capacity(leaf: FramedLeaf, buffer_size: int, n_step: int, actors: int) -> int:
    """Frames per seed of a framed leaf's FrameStore: frame_capacity for episodes of MIN_EPISODE steps or more."""
    return frame_capacity(buffer_size, n_step, leaf.k, actors, MIN_EPISODE)


def frame_bytes(leaves: dict[str, FramedLeaf], seeds: int, buffer_size: int, n_step: int, actors: int) -> int:
    """Bytes of the FrameStores of leaves (frames and hold counts), known before they are made."""
    return sum(
        store_bytes(seeds, ring_capacity(leaf, buffer_size, n_step, actors), leaf.frame, leaf.dtype)
        for leaf in leaves.values()
    )


SHORT_EPISODES = (
    f"pixel replay stores each frame once, with room for episodes of {MIN_EPISODE} steps or more on average over "
    f"each env copy's last buffer_size / actors steps; episodes shorter than {MIN_EPISODE} steps on average are not "
    "supported for pixel replay. A stretch of short episodes fits with a larger config.buffer_size or fewer "
    "config.actors (averaging over more steps)"
)
"""What a FrameStore refusing to overwrite a held frame advises."""


def obs_leaf(name: str, batch):
    """The obs leaf `name` of a batch of transitions."""
    return named_leaves(batch.obs)[name]


class FramedReplay:
    """One FrameStore per framed leaf (a ring per seed): new frames in, rows held and released, stacks out."""

    def __init__(self, leaves: dict[str, FramedLeaf], seeds: int, buffer_size: int, n_step: int, actors: int):
        self.leaves = leaves
        self.stores = {
            name: FrameStore(
                seeds,
                ring_capacity(leaf, buffer_size, n_step, actors),
                leaf.frame,
                leaf.dtype,
                SHORT_EPISODES,
            )
            for name, leaf in leaves.items()
        }

    def add_frames(self, new: dict[str, list[NewFrames]]) -> None:
        """Write each framed leaf's new frames (per seed) to its store; refuses frames that do not continue its ids."""
        for name, per_seed in new.items():
            store = self.stores[name]
            for seed, (first, frames) in enumerate(per_seed):
                if first != store.written[seed]:
                    raise RuntimeError(
                        f"seed {seed}: the new frames of {name!r} start at id {first}, its frame store at "
                        f"{store.written[seed]}: collection and replay disagree on the frame ids"
                    )
                store.add(seed, frames)

    def add_transitions(self, replay: ReplayBuffer, seed: int, transitions) -> np.ndarray:
        """Store one seed's transitions (framed leaves as ids), holding their frames; returns the rows."""
        held = [(store, functools.partial(obs_leaf, name)) for name, store in self.stores.items()]
        return add_transitions(replay, seed, transitions, held)

    def stacks(self, obs):
        """Gathered obs (seeds, count, ...) with each framed leaf's ids replaced by its frames."""
        ids = named_leaves(obs)
        return replace_leaves(
            obs,
            {
                name: leaf.from_stacks(self.stores[name].gather(ids[name]))
                for name, leaf in self.leaves.items()
            },
        )

    def written(self) -> dict[str, np.ndarray]:
        """Each framed leaf's frames written per seed: where collection continues the ids."""
        return {name: store.written.copy() for name, store in self.stores.items()}

    def state(self) -> dict[str, np.ndarray]:
        """Each store's state() (views), keyed frames_<i>_<part> in the leaves' order."""
        return {
            f"frames_{i}_{part}": value
            for i, store in enumerate(self.stores.values())
            for part, value in store.state().items()
        }

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from state() (other keys are ignored)."""
        for i, store in enumerate(self.stores.values()):
            prefix = f"frames_{i}_"
            store.load_state({k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)})
