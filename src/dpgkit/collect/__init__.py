"""Experience collection behind the Collector interface: EnvActor steps in-process vectorized environments."""

from dpgkit.collect.actor import Collected, Collector, EnvActor, Transitions
from dpgkit.collect.frames import FrameEncoder
from dpgkit.collect.local import LocalCollector, StepResult

__all__ = [
    "Collected",
    "Collector",
    "EnvActor",
    "FrameEncoder",
    "LocalCollector",
    "StepResult",
    "Transitions",
]
