"""Host replay: numpy storage for pytrees of transitions, uniform or prioritized, and the n-step writer."""

from dpgkit.replay.nstep import NStepWriter
from dpgkit.replay.prioritized import PrioritizedReplay
from dpgkit.replay.uniform import ReplayBuffer

__all__ = ["NStepWriter", "PrioritizedReplay", "ReplayBuffer"]
