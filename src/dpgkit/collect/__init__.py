"""Experience collection: in-process vectorized environments."""

from dpgkit.collect.local import LocalCollector, StepResult

__all__ = ["LocalCollector", "StepResult"]
