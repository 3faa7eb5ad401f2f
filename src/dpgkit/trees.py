"""Host (numpy) operations on pytrees of arrays: observations, transitions and params."""

from __future__ import annotations

import jax
import numpy as np


def stack_leaves(trees: list):
    """Pytrees of arrays stacked leaf by leaf on a new leading axis."""
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)


def entry(tree, index):
    """Entry `index` (an int or a tuple of ints) on the leading axes of every leaf (views)."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def copy_entry(tree, index=None):
    """A numpy copy of every leaf (of its entry `index` on the leading axes, when given)."""
    return jax.tree_util.tree_map(lambda x: np.array(x if index is None else x[index]), tree)


def write_entry(stacked, index, values) -> None:
    """Write `values` into entry `index` of the leaves of `stacked`, in place."""
    jax.tree_util.tree_map(lambda store, x: store.__setitem__(index, x), stacked, values)
