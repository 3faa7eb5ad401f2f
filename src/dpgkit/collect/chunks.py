"""Chunks of collection from Ray workers: their ids, the ledger that stores each once, and merged records."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dpgkit.collect.actor import Collected, concat_transitions
from dpgkit.config import Config
from dpgkit.explore import actor_sigmas
from dpgkit.replay.framed import NewFrames


class Chunk(NamedTuple):
    """What a worker ships per call: its id (worker index, incarnation, sequence number from 1), the record of
    its env steps, and the env exceptions met on the way (each followed by a rebuild of its envs)."""

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
