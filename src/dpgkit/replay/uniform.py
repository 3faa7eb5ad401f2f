"""Uniform replay of pytrees of transitions for several seeds, in host numpy."""

from __future__ import annotations

import jax
import numpy as np


class ReplayBuffer:
    """Ring buffer of shape (seeds, capacity, ...) per leaf; each seed writes at its own position and samples
    with its own Generator (an n-step writer stores a varying number of transitions per step)."""

    def __init__(self, seeds: int, capacity: int, example):
        self.seeds, self.capacity = seeds, capacity
        self.storage = jax.tree_util.tree_map(
            lambda x: np.zeros((seeds, capacity) + np.shape(x), np.asarray(x).dtype), example
        )
        self.written = np.zeros(seeds, np.int64)

    @property
    def size(self) -> np.ndarray:
        """Stored transitions per seed."""
        return np.minimum(self.written, self.capacity)

    def add(self, seed: int, transitions) -> np.ndarray:
        """Store one seed's transitions (leading axis: count), overwriting its oldest when full; returns the rows."""
        count = jax.tree_util.tree_leaves(transitions)[0].shape[0]
        rows = (self.written[seed] + np.arange(count)) % self.capacity
        jax.tree_util.tree_map(lambda store, x: store[seed].__setitem__(rows, x), self.storage, transitions)
        self.written[seed] += count
        return rows

    def sample_indices(self, rngs: list[np.random.Generator], count: int) -> np.ndarray:
        """Uniform indices of shape (seeds, count), seed i drawing from rngs[i]."""
        return np.stack([rng.integers(0, size, count) for rng, size in zip(rngs, self.size, strict=True)])

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
        """Views of the filled part of the storage and each seed's write count, to checkpoint (no copy)."""
        filled = int(self.size.max())
        leaves = jax.tree_util.tree_leaves(self.storage)
        state = {f"leaf_{i}": leaf[:, :filled] for i, leaf in enumerate(leaves)}
        state["written"] = self.written.copy()
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from state()."""
        leaves = jax.tree_util.tree_leaves(self.storage)
        filled = state["leaf_0"].shape[1]
        for i, leaf in enumerate(leaves):
            leaf[:, :filled] = state[f"leaf_{i}"]
        self.written = np.array(state["written"], np.int64)
