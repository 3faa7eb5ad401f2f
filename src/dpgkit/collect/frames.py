"""The collection side of frame storage: a step's framed observation leaves as frame ids, each new frame shipped
once to the replay's frame stores (dpgkit.replay.framed)."""

from __future__ import annotations

import functools

import numpy as np

from dpgkit.replay.framed import FramedLeaf, NewFrames, named_leaves, replace_leaves
from dpgkit.replay.frames import StackIds


class FrameEncoder:
    """Per framed leaf and seed: the stack ids of the env copies, the frames written (the ids issued) and the
    frames registered since the last take().

    written gives, per framed leaf, each seed's frames already in the replay's stores (FramedReplay.written), so
    the ids continue theirs; a collector in another process holds its own encoder and ships take()'s frames.
    """

    def __init__(self, copies: int, leaves: dict[str, FramedLeaf], written: dict[str, np.ndarray]):
        self.leaves = leaves
        self.written = {name: np.array(written[name], np.int64) for name in leaves}
        self.ids = {
            name: [StackIds(copies, leaf.k) for _ in self.written[name]] for name, leaf in leaves.items()
        }
        self.pending: dict[str, list[list[np.ndarray]]] = {
            name: [[] for _ in ids] for name, ids in self.ids.items()
        }

    def register(self, name: str, seed: int, frames: np.ndarray) -> np.ndarray:
        """Queue one seed's new frames of a leaf (copies); returns their ids."""
        ids = self.written[name][seed] + np.arange(len(frames))
        self.written[name][seed] += len(frames)
        self.pending[name][seed].append(np.array(frames))
        return ids

    def encode(self, seed: int, reset: np.ndarray, obs, next_obs) -> tuple:
        """One seed's step (obs and next_obs (copies, ...), reset (copies,): the copies just reset) with each framed
        leaf as the ids (copies, k) of its stacks."""
        obs_leaves, next_leaves = named_leaves(obs), named_leaves(next_obs)
        encoded = {
            name: self.ids[name][seed].step(
                reset,
                leaf.as_stacks(obs_leaves[name]),
                leaf.as_stacks(next_leaves[name]),
                functools.partial(self.register, name, seed),
            )
            for name, leaf in self.leaves.items()
        }
        return (
            replace_leaves(obs, {name: ids[0] for name, ids in encoded.items()}),
            replace_leaves(next_obs, {name: ids[1] for name, ids in encoded.items()}),
        )

    def take(self) -> dict[str, list[NewFrames]]:
        """Per framed leaf and seed, the frames registered since the last take (in order) and the id of the first."""
        taken = {
            name: [self.new_frames(name, seed) for seed in range(len(per_seed))]
            for name, per_seed in self.pending.items()
        }
        self.pending = {name: [[] for _ in per_seed] for name, per_seed in self.pending.items()}
        return taken

    def new_frames(self, name: str, seed: int) -> NewFrames:
        """The frames of a leaf and seed registered since the last take."""
        leaf, parts = self.leaves[name], self.pending[name][seed]
        frames = np.concatenate(parts) if parts else np.zeros((0, *leaf.frame), leaf.dtype)
        return NewFrames(int(self.written[name][seed]) - len(frames), frames)
