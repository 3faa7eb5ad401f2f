"""Proportional prioritized replay (Schaul et al. 2016) of several seeds, on per-seed sum trees."""

from __future__ import annotations

import numpy as np

from dpgkit.replay.sumtree import SumTree, importance_weights, sample_proportional
from dpgkit.replay.uniform import ReplayBuffer


class PrioritizedReplay(ReplayBuffer):
    """Replay sampling transition i with P(i) = p_i^alpha / sum_k p_k^alpha; new ones enter at the max priority.

    The trees hold p^alpha; p = |delta| + eps (or KL + eps) is written back after each learner call.
    """

    def __init__(self, seeds: int, capacity: int, example, alpha: float, eps: float):
        super().__init__(seeds, capacity, example)
        self.alpha, self.eps = alpha, eps
        self.trees = [SumTree(capacity) for _ in range(seeds)]
        self.max_priority = np.ones(seeds)

    def add(self, seed: int, transitions) -> np.ndarray:
        """Store one seed's transitions at that seed's highest priority so far; returns the rows."""
        rows = super().add(seed, transitions)
        self.trees[seed].update(rows, self.max_priority[seed] ** self.alpha)
        return rows

    def sample_indices(self, rngs: list[np.random.Generator], count: int) -> np.ndarray:
        """Indices (seeds, count) drawn in proportion to p^alpha, stratified, seed i drawing from rngs[i]."""
        return np.stack(
            [sample_proportional(tree, rng, count) for tree, rng in zip(self.trees, rngs, strict=True)]
        )

    def weights(self, indices: np.ndarray, beta: float) -> np.ndarray:
        """Importance-sampling weights (N P(i))^-beta / max_j (N P(j))^-beta, shape (seeds, count)."""
        return np.stack(
            [
                importance_weights(tree, idx, size, beta)
                for tree, idx, size in zip(self.trees, indices, self.size, strict=True)
            ]
        ).astype(np.float32)

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> None:
        """Set p = error + eps for the transitions at indices (seeds, count) (before any new ones are added)."""
        for seed, (tree, rows, error) in enumerate(zip(self.trees, indices, errors, strict=True)):
            priority = np.asarray(error, np.float64) + self.eps
            tree.update(rows, priority**self.alpha)
            self.max_priority[seed] = max(self.max_priority[seed], float(priority.max()))

    def state(self) -> dict[str, np.ndarray]:
        """The storage, write counts, both trees of every seed and the max priorities, to checkpoint."""
        state = super().state()
        for seed, tree in enumerate(self.trees):
            state.update({f"tree_{seed}_{name}": value for name, value in tree.state().items()})
        state["max_priority"] = self.max_priority.copy()
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from state()."""
        super().load_state(state)
        for seed, tree in enumerate(self.trees):
            tree.load_state({name: state[f"tree_{seed}_{name}"] for name in ("sums", "mins")})
        self.max_priority = np.array(state["max_priority"], np.float64)
