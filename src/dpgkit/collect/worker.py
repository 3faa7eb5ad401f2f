"""One Ray worker's collection: an EnvActor of `actors` copies per seed with its own noise scales, acting with the
newest params it has pulled, shipping chunks of n-step transitions; an env exception rebuilds its envs, and the
chunk goes on. Runs inside a Ray actor process (collect/ray.py makes the actor and the ParamBoard)."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from dpgkit.collect.actor import Collected, EnvActor
from dpgkit.collect.chunks import Chunk, chunk_vector_steps, merge_collected, worker_seed
from dpgkit.collect.frames import FrameEncoder
from dpgkit.collect.local import LocalCollector
from dpgkit.collect.numpy_actor import numpy_fits, numpy_policy
from dpgkit.config import Config
from dpgkit.explore import make_explorer
from dpgkit.nets import ActorNet, has_convolutions
from dpgkit.replay import NStepWriter
from dpgkit.replay.framed import FramedLeaf


class WorkerEnvFailure(RuntimeError):
    """A worker's envs raised worker_env_failures times in a row; its next call ends its process (Ray restarts it)."""


def current_incarnation() -> int:
    """0 for a worker's first process, a random 63-bit number for each process Ray restarts it in."""
    import ray

    if not ray.get_runtime_context().was_current_actor_reconstructed:
        return 0
    return int.from_bytes(os.urandom(8), "little") >> 1


class ParamBoard:
    """The newest params broadcast, as (version, [object ref]) (the list keeps Ray from fetching the params), for
    a worker to pull in its constructor: a worker that Ray restarts catches up by itself."""

    def __init__(self):
        self.newest: tuple[int, list] | None = None

    def post(self, version: int, params: list) -> None:
        """Hold this broadcast as the newest."""
        self.newest = (version, params)

    def read(self) -> tuple[int, list] | None:
        """The newest broadcast, or None before the first."""
        return self.newest


def pull(board) -> tuple[int, object]:
    """(version, params) of the newest broadcast on a ParamBoard; (-1, None) before the first."""
    import ray

    newest = ray.get(board.read.remote())
    if newest is None:
        return -1, None
    version, (params,) = newest
    return version, ray.get(params)


def acting_function(actor: ActorNet) -> Callable:
    """The policy over (seeds, copies): numpy for the plain MLP actor, else the jitted flax actor (JAX on CPU)."""
    if numpy_fits(actor):
        return numpy_policy
    import jax

    from dpgkit import xla

    return xla.jit(jax.vmap(actor.apply), has_convolutions(actor))


def uss_bytes() -> int:
    """Memory unique to this process (USS): what another worker process adds."""
    import psutil

    return psutil.Process().memory_full_info().uss


class CollectWorker:
    """A worker: chunks of chunk_steps env steps of each seed, from env copies seeded by (agent seed, worker,
    incarnation, rebuild); config is the worker's own (chunks.worker_config). It pulls the newest params from the
    board when it starts (also when Ray restarts it), and a call's broadcast when its version differs."""

    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        config: Config,
        agent_seeds: list[int],
        index: int,
        actor: ActorNet,
        leaves: dict[str, FramedLeaf],
        board,
    ):
        self.make_env, self.config, self.agent_seeds, self.index, self.actor = (
            make_env,
            config,
            agent_seeds,
            index,
            actor,
        )
        self.encoder = FrameEncoder(
            config.actors, leaves, {name: np.zeros(len(agent_seeds)) for name in leaves}
        )
        self.policy = acting_function(actor)
        self.incarnation = current_incarnation()
        self.vector_steps = chunk_vector_steps(config)
        self.sequence, self.rebuilds, self.failures = 0, 0, 0
        self.env_actor: EnvActor | None = None
        self.version, self.params = pull(board)

    def build(self) -> EnvActor:
        """Fresh env copies, explorer and n-step writers, seeded by this worker's incarnation and rebuild count."""
        config = self.config
        seeds = [worker_seed(s, self.index, self.incarnation, self.rebuilds) for s in self.agent_seeds]
        explorer = make_explorer(config, self.actor, self.policy, len(seeds), self.actor.head.action_dim)
        writers = [NStepWriter(config.n_step, config.gamma, config.actors) for _ in seeds]
        rngs = [np.random.default_rng(s) for s in seeds]
        collector = LocalCollector(self.make_env, seeds, config.actors)
        return EnvActor(collector, explorer, writers, rngs, 0, self.encoder)

    def collect(self, version: int, params: list, random: bool) -> Chunk:
        """The next chunk, acting with params ([object ref] of the learner's after `version` updates, fetched only
        when the worker holds another version), or uniformly at random; after a WorkerEnvFailure, the end of this
        process instead (the call fails with a RayActorError)."""
        if self.failures >= self.config.worker_env_failures:
            os._exit(1)
        if version != self.version:
            import ray

            self.version, self.params = version, ray.get(params[0])
        records: list[Collected] = []
        errors: list[str] = []
        while len(records) < self.vector_steps and not (records and records[-1].non_finite):
            record = self.attempt(random, errors)
            if record is not None:
                records.append(record)
        self.sequence += 1
        return Chunk((self.index, self.incarnation, self.sequence), merge_collected(records), errors)

    def attempt(self, random: bool, errors: list[str]) -> Collected | None:
        """One vector step; None after an env exception, which is noted in errors and drops the envs (rebuilt at
        the next attempt); the worker_env_failures-th in a row raises WorkerEnvFailure."""
        try:
            if self.env_actor is None:
                self.env_actor = self.build()
            self.env_actor.set_params(self.params, self.version)
            self.env_actor.warmup_until = math.inf if random else 0
            record = self.env_actor.collect(1)
        except Exception as error:
            self.failures += 1
            errors.append(f"{type(error).__name__}: {error}")
            self.discard()
            if self.failures >= self.config.worker_env_failures:
                raise WorkerEnvFailure(
                    f"worker {self.index}: {self.failures} env exceptions in a row, the last {errors[-1]}"
                ) from error
            return None
        self.failures = 0
        return record

    def discard(self) -> None:
        """Drop the env copies after an exception (closing them as far as they let us); the next ones are new, and
        so are their frame stacks (the frames of the failed step, never shipped, are dropped and their ids reused)."""
        if self.env_actor is not None:
            with contextlib.suppress(Exception):
                self.env_actor.close()
        self.env_actor = None
        self.rebuilds += 1
        unshipped = self.encoder.take()
        self.encoder = FrameEncoder(
            self.config.actors,
            self.encoder.leaves,
            {name: np.array([new.first for new in per_seed]) for name, per_seed in unshipped.items()},
        )

    def process(self) -> dict:
        """This worker's process id, incarnation, params version held, memory (USS, bytes) and whether it acts with
        numpy."""
        return {
            "pid": os.getpid(),
            "incarnation": self.incarnation,
            "version": self.version,
            "uss": uss_bytes(),
            "numpy_policy": self.policy is numpy_policy,
        }
