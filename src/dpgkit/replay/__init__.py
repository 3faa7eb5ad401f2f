"""Host replay: numpy storage for pytrees of transitions, uniform or prioritized, the n-step writer, and pixel
frames stored once (frame rings and stack ids; per observation leaf in framed)."""

from dpgkit.replay.framed import FramedLeaf, FramedReplay, NewFrames, frame_bytes, framed_leaves, with_ids
from dpgkit.replay.frames import (
    FrameStore,
    StackIds,
    add_transitions,
    bytes_per_transition,
    frame_capacity,
    id_example,
    replay_bytes,
    store_bytes,
    with_stacks,
)
from dpgkit.replay.nstep import NStepWriter
from dpgkit.replay.prioritized import PrioritizedReplay
from dpgkit.replay.uniform import ReplayBuffer

__all__ = [
    "FrameStore",
    "FramedLeaf",
    "FramedReplay",
    "NStepWriter",
    "NewFrames",
    "PrioritizedReplay",
    "ReplayBuffer",
    "StackIds",
    "add_transitions",
    "bytes_per_transition",
    "frame_bytes",
    "frame_capacity",
    "framed_leaves",
    "id_example",
    "replay_bytes",
    "store_bytes",
    "with_ids",
    "with_stacks",
]
