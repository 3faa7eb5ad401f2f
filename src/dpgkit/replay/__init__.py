"""Host replay: numpy storage for pytrees of transitions."""

from dpgkit.replay.uniform import ReplayBuffer

__all__ = ["ReplayBuffer"]
