"""Chunks of collection from Ray workers: their ids, the ledger that stores each once, and merged records."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dpgkit.collect.actor import Collected, concat_transitions
from dpgkit.config import COLLECTION_FIELDS, Config
from dpgkit.explore import actor_sigmas
from dpgkit.replay.framed import NewFrames, named_leaves, replace_leaves
from dpgkit.replay.frames import row_ids


class Chunk(NamedTuple):
    """What a worker ships per call: its id (worker index, incarnation, sequence number from 1), the record of
    its env steps, and the env exceptions met on the way (each followed by a rebuild of its envs).

    The record's transitions enter the replay at the max priority, as a local run's do. Ape-X's actors send
    |TD error| instead, but that needs the critic and both target networks, three more broadcasts and a critic
    forward pass (a categorical one for D4PG) in every worker, which acts with the actor alone (in numpy for MLPs,
    to stay small).
    """

    id: tuple[int, int, int]
    collected: Collected
    env_errors: list[str]


class ChunkLedger:
    """The last sequence number stored of each worker incarnation: a chunk at or below it was stored already."""

    def __init__(self):
        self.last: dict[tuple[int, int], int] = {}

    def admit(self, chunk_id: tuple[int, int, int]) -> bool:
        """Whether a chunk is new (then it is noted as stored); a repeat of a stored one is not."""
        worker, incarnation, sequence = chunk_id
        if sequence <= self.last.get((worker, incarnation), 0):
            return False
        self.last[(worker, incarnation)] = sequence
        return True

    def incarnations(self, worker: int) -> int:
        """How many incarnations of a worker have delivered chunks (1 + its restarts seen)."""
        return sum(w == worker for w, _ in self.last)


def merge_frames(parts: list[NewFrames]) -> NewFrames:
    """One encoder's new frames of a leaf and seed over several records, in order, as one."""
    return NewFrames(parts[0].first, np.concatenate([p.frames for p in parts]))


def merge_collected(records: list[Collected]) -> Collected:
    """Several records of the same seeds, in order, as one: transitions, frames (of one encoder) and episodes
    joined, env steps added, the oldest params version, the first non-finite report."""
    seeds = len(records[0].transitions)
    return Collected(
        [
            concat_transitions([r.transitions[s] for r in records if r.transitions[s] is not None])
            for s in range(seeds)
        ],
        {
            name: [merge_frames([r.frames[name][s] for r in records]) for s in range(seeds)]
            for name in records[0].frames
        },
        [[x for r in records for x in r.episode_returns[s]] for s in range(seeds)],
        [[x for r in records for x in r.episode_lengths[s]] for s in range(seeds)],
        sum(r.env_steps for r in records),
        min(r.version for r in records),
        next((r.non_finite for r in records if r.non_finite), None),
    )


class FrameIdMap:
    """Where the frames of each worker process (ids of its own, from 0) land in the replay's frame stores, whose ids
    continue `written`: per (stream, leaf, seed) the own and the replay id of each chunk's first frame (a chunk's
    frames are consecutive in both)."""

    def __init__(self, written: dict[str, np.ndarray]):
        self.written = {name: np.array(ids, np.int64) for name, ids in written.items()}
        self.starts: dict[tuple, tuple[list[int], list[int]]] = {}

    def ship(self, stream: tuple, collected: Collected) -> Collected:
        """A chunk's record in the replay's frame ids (after the chunks shipped before it); stream: (worker,
        incarnation)."""
        if not self.written:
            return collected
        frames = {
            name: [self.place(stream, name, s, new) for s, new in enumerate(per_seed)]
            for name, per_seed in collected.frames.items()
        }
        transitions = [
            None
            if t is None
            else t._replace(
                obs=self.replay_ids(stream, s, t.obs), next_obs=self.replay_ids(stream, s, t.next_obs)
            )
            for s, t in enumerate(collected.transitions)
        ]
        return collected._replace(transitions=transitions, frames=frames)

    def place(self, stream: tuple, name: str, seed: int, new: NewFrames) -> NewFrames:
        """Give a chunk's new frames of a leaf and seed the next replay ids."""
        own, replay = self.starts.setdefault((stream, name, seed), ([], []))
        own.append(new.first)
        replay.append(int(self.written[name][seed]))
        self.written[name][seed] += len(new.frames)
        return NewFrames(replay[-1], new.frames)

    def replay_ids(self, stream: tuple, seed: int, obs):
        """obs with each framed leaf's own frame ids as replay ids."""
        leaves = named_leaves(obs)
        return replace_leaves(
            obs, {name: self.to_replay(stream, name, seed, leaves[name]) for name in self.written}
        )

    def to_replay(self, stream: tuple, name: str, seed: int, ids: np.ndarray) -> np.ndarray:
        """A stream's own frame ids of a leaf and seed as replay ids."""
        own, replay = (np.asarray(x, np.int64) for x in self.starts[(stream, name, seed)])
        chunk = np.searchsorted(own, ids, side="right") - 1
        return row_ids(replay[chunk] + (ids - own[chunk]))


def frame_window(config: Config) -> tuple[int, int]:
    """(steps, copies) the replay's frame stores are sized for (replay.framed.ring_capacity's n_step and actors):
    locally n_step and actors; on Ray a chunk more (a chunk's frames may be the rows of the worker's next chunk) and
    every worker's copies."""
    if config.collect != "ray":
        return config.n_step, config.actors
    return config.n_step + chunk_vector_steps(config), config.actors * config.workers


def check_frame_window(config: Config, saved: dict) -> None:
    """Refuse to restore frame stores sized for another collection than config's (saved: a checkpoint's config)."""
    before = config.replace(**{name: saved[name] for name in COLLECTION_FIELDS if name in saved})
    if frame_window(before) != frame_window(config):
        raise ValueError(
            f"this checkpoint's frame stores (image observations, stored once per frame) are sized for collect "
            f"{before.collect!r} with {before.workers} worker(s) and chunks of {before.chunk_steps} steps: resume it "
            "with the same collect, workers and chunk_steps"
        )


def chunk_vector_steps(config: Config) -> int:
    """Vector steps of a worker's actors per chunk: chunk_steps env steps of each seed, rounded up."""
    return -(-config.chunk_steps // config.actors)


def worker_seed(agent_seed: int, *path: int) -> int:
    """The seed of a worker's env copies and noise, from its agent's seed and (worker, incarnation, rebuild)."""
    return int(np.random.SeedSequence([agent_seed, 0x5A7, *path]).generate_state(1)[0])


def worker_config(config: Config, worker: int) -> Config:
    """One worker's config: its actors' share of the Ape-X spread of noise scales over all workers x actors copies
    (explore.actor_sigmas), as the noise_sigma .. noise_sigma_max of its own actors."""
    if not config.noise_sigma_max:
        return config
    sigmas = actor_sigmas(config.noise_sigma, config.noise_sigma_max, config.workers * config.actors)
    own = sigmas[worker * config.actors : (worker + 1) * config.actors]
    return config.replace(noise_sigma=float(own[0]), noise_sigma_max=float(own[-1]))
