"""Uniform replay of pytrees of transitions for several seeds stepping in lockstep, in host numpy."""

from __future__ import annotations

import jax
import numpy as np


class ReplayBuffer:
    """Ring buffer of shape (seeds, capacity, ...) per leaf; each seed samples with its own Generator."""

    def __init__(self, seeds: int, capacity: int, example):
        self.seeds, self.capacity = seeds, capacity
        self.storage = jax.tree_util.tree_map(
            lambda x: np.zeros((seeds, capacity) + np.shape(x), np.asarray(x).dtype), example
        )
        self.pos = 0
        self.size = 0

    def add(self, transitions) -> None:
        """Store transitions with leading axes (seeds, copies), overwriting the oldest when full."""
        copies = jax.tree_util.tree_leaves(transitions)[0].shape[1]
        rows = (self.pos + np.arange(copies)) % self.capacity
        jax.tree_util.tree_map(
            lambda store, x: store.__setitem__((slice(None), rows), x), self.storage, transitions
        )
        self.pos = int((self.pos + copies) % self.capacity)
        self.size = min(self.size + copies, self.capacity)

    def sample_indices(self, rngs: list[np.random.Generator], count: int) -> np.ndarray:
        """Uniform indices of shape (seeds, count), seed i drawing from rngs[i]."""
        return np.stack([rng.integers(0, self.size, count) for rng in rngs])

    def gather(self, indices: np.ndarray):
        """The transitions at indices (seeds, count), as a pytree of arrays (seeds, count, ...)."""
        flat = indices + (np.arange(self.seeds) * self.capacity)[:, None]
        return jax.tree_util.tree_map(
            lambda store: store.reshape((-1,) + store.shape[2:])[flat], self.storage
        )

    def sample(self, rngs: list[np.random.Generator], count: int):
        """count uniformly drawn transitions per seed, as a pytree of arrays (seeds, count, ...)."""
        return self.gather(self.sample_indices(rngs, count))

    def state(self) -> dict[str, np.ndarray]:
        """The filled part of the storage and the write position, to checkpoint."""
        leaves = jax.tree_util.tree_leaves(self.storage)
        state = {f"leaf_{i}": leaf[:, : self.size].copy() for i, leaf in enumerate(leaves)}
        state["pos"] = np.asarray(self.pos)
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from state()."""
        leaves = jax.tree_util.tree_leaves(self.storage)
        self.size = state["leaf_0"].shape[1]
        for i, leaf in enumerate(leaves):
            leaf[:, : self.size] = state[f"leaf_{i}"]
        self.pos = int(state["pos"])
