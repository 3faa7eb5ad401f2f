"""Running one learner function for many independent seeds at once."""

from collections.abc import Callable

import jax


def over_seeds(fn: Callable, seeds: int, in_axes) -> Callable:
    """fn mapped over a leading seed axis: vmap for several seeds, a squeeze for one (a cheaper program)."""
    if seeds > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def single(*args):
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        args = [
            jax.tree_util.tree_map(lambda x: x[0], a) if ax == 0 else a
            for a, ax in zip(args, axes, strict=True)
        ]
        return jax.tree_util.tree_map(lambda x: x[None], fn(*args))

    return single
