"""Host replay: numpy storage for pytrees of transitions, uniform or prioritized, the n-step writer, and pixel
frames stored once (frame rings and stack ids)."""

from dpgkit.replay.frames import (
    FrameStore,
    StackIds,
    add_transitions,
    bytes_per_transition,
    frame_capacity,
    id_example,
    replay_bytes,
    with_stacks,
)
from dpgkit.replay.nstep import NStepWriter
from dpgkit.replay.prioritized import PrioritizedReplay
from dpgkit.replay.uniform import ReplayBuffer

__all__ = [
    "FrameStore",
    "NStepWriter",
    "PrioritizedReplay",
    "ReplayBuffer",
    "StackIds",
    "add_transitions",
    "bytes_per_transition",
    "frame_capacity",
    "id_example",
    "replay_bytes",
    "with_stacks",
]
