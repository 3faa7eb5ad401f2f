"""Sum tree and min tree of priorities for proportional prioritized replay (Schaul et al. 2016), in host numpy."""

from __future__ import annotations

import numpy as np


class SumTree:
    """Flat binary trees of 2 * leaves nodes (root at 1, children of i at 2i and 2i + 1), leaves a power of two.

    Sums and minima of the leaf priorities; leaves never written hold 0 in the sum tree and +inf in the min tree.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.leaves = 1 << max(capacity - 1, 0).bit_length()
        self.sums = np.zeros(2 * self.leaves, np.float64)
        self.mins = np.full(2 * self.leaves, np.inf, np.float64)

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set the priorities of leaves (the last write wins for a repeated index), then every parent above."""
        indices = np.asarray(indices)
        values = np.broadcast_to(np.asarray(values, np.float64), indices.shape)
        last = indices.size - 1 - np.unique(indices[::-1], return_index=True)[1]
        nodes = indices[last] + self.leaves
        self.sums[nodes] = values[last]
        self.mins[nodes] = values[last]
        while nodes.size and nodes[0] > 1:
            nodes = np.unique(nodes // 2)
            self.sums[nodes] = self.sums[2 * nodes] + self.sums[2 * nodes + 1]
            self.mins[nodes] = np.minimum(self.mins[2 * nodes], self.mins[2 * nodes + 1])

    def total(self) -> float:
        """Sum of all priorities (the root)."""
        return float(self.sums[1])

    def min(self) -> float:
        """Smallest priority among the leaves written so far (+inf before any)."""
        return float(self.mins[1])

    def values(self, indices: np.ndarray) -> np.ndarray:
        """The priorities of leaves."""
        return self.sums[np.asarray(indices) + self.leaves]

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """For each u, the leaf i with sum_{k<i} p_k <= u < sum_{k<=i} p_k, by one descent for all values at once.

        A step never enters a subtree of zero sum, so rounding at a boundary cannot return a zero priority.
        """
        u = np.array(prefix_sums, np.float64)
        nodes = np.ones(u.shape, np.int64)
        while nodes.size and nodes[0] < self.leaves:
            left = self.sums[2 * nodes]
            right = (u >= left) & (self.sums[2 * nodes + 1] > 0.0)
            u = np.where(right, u - left, u)
            nodes = 2 * nodes + right
        return nodes - self.leaves

    def state(self) -> dict[str, np.ndarray]:
        """Both trees (views, not copies), to checkpoint."""
        return {"sums": self.sums, "mins": self.mins}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from state()."""
        self.sums = np.array(state["sums"], np.float64)
        self.mins = np.array(state["mins"], np.float64)


def sample_proportional(tree: SumTree, rng: np.random.Generator, count: int) -> np.ndarray:
    """count leaves drawn with P(i) = p_i / sum_k p_k, stratified (Schaul et al. 2016, Appendix B.2.1).

    [0, total) is split into count equal segments and one value drawn uniformly in each.
    """
    return tree.find((np.arange(count) + rng.random(count)) * (tree.total() / count))


def importance_weights(tree: SumTree, indices: np.ndarray, size: int, beta: float) -> np.ndarray:
    """w_i = (N P(i))^-beta / max_j w_j, P(i) = p_i / sum_k p_k (Schaul et al. 2016, section 3.4).

    N is size, the number of stored transitions; max_j w_j is the weight of the smallest priority.
    """
    total = tree.total()
    weights = (size * tree.values(indices) / total) ** -beta
    return weights / (size * tree.min() / total) ** -beta
