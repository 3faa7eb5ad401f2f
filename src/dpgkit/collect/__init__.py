"""Experience collection behind the Collector interface: in-process vectorized environments."""

from dpgkit.collect.local import Collector, LocalCollector, StepResult

__all__ = ["Collector", "LocalCollector", "StepResult"]
