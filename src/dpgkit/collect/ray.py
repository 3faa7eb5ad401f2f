"""Collection on Ray: `workers` Ray actor processes (collect/worker.py) ship chunks of n-step transitions to the
learner's process, which stores them in its replay. RayCollector returns the same Collected records as the local
EnvActor, so the training loop is the same.

Each worker has one call in flight: it collects its next chunk while the learner learns from its last one, and
pauses when that chunk waits (backpressure); the learner waits in collect() when no chunk is ready. The learner
makes the calls that keep sampled transitions per inserted step at the target (rate.py). A call lost with its
process (RayActorError) is issued again (Ray restarts the process, up to worker_restarts times); a worker whose
envs raised worker_env_failures times in a row is killed and restarted; chunk ids keep any repeat out of the
replay. Arrival order varies, so Ray runs are not bit-reproducible.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable

import gymnasium as gym
import jax
import numpy as np

from dpgkit.collect.actor import Collected
from dpgkit.collect.chunks import (
    Chunk,
    ChunkLedger,
    FrameIdMap,
    chunk_vector_steps,
    merge_collected,
    worker_config,
)
from dpgkit.collect.frames import FrameEncoder
from dpgkit.collect.worker import CollectWorker, ParamBoard
from dpgkit.config import Config
from dpgkit.envs import ActionScaler
from dpgkit.explore import Explorer
from dpgkit.nets import ActorNet

RAY_EXTRA = 'pip install "dpgkit[ray]"'
CONNECT_SECONDS = 20.0
"""How long to wait for a Ray cluster's head to answer before stopping with an error."""
FORK_WARNING = "os.fork"
"""JAX's warning when a process forks: Ray's fork is followed at once by an exec of its own programs, so it does not
apply."""
WAIT_SECONDS = 300.0
"""How long collect() waits for a chunk from any worker before stopping with an error (a worker starts in a few
seconds and collects a chunk in well under a minute)."""
LOST_CALLS = 3
"""Calls of one worker lost in a row (no chunk between) after which it counts as dead for good."""


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the Ray cluster to join does not answer."""


class WorkerLostError(RuntimeError):
    """A Ray worker is dead for good (Ray restarted it worker_restarts times, or it could not start)."""


def import_ray():
    """The ray module, with RAY_AUTH_MODE=token when Ray is first imported here (token authentication on, as Ray's
    default for local clusters, without its notice); an error naming the extra to install when Ray is missing."""
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError as error:
        raise RayUnavailableError(f"collect 'ray' needs Ray, which is not installed: {RAY_EXTRA}") from error
    return ray


def cluster_address(config: Config) -> str:
    """The cluster to join: config.ray_address, else RAY_ADDRESS, else "" (start a local one)."""
    return config.ray_address or os.environ.get("RAY_ADDRESS", "")


def head_endpoint(address: str) -> tuple[str, int]:
    """(host, port) of a "host:port" or "ray://host:port" address; a clear error for anything else."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit():
        raise RayUnavailableError(
            f"the Ray address {address!r} is not host:port or ray://host:port (the head's address that "
            "`ray start --head` prints), nor 'auto'"
        )
    return host, int(port)


def check_answers(address: str, seconds: float) -> None:
    """Require the head at address to accept a connection within `seconds`."""
    try:
        socket.create_connection(head_endpoint(address), timeout=seconds).close()
    except OSError as error:
        raise RayUnavailableError(
            f"the Ray cluster at {address!r} does not answer ({error}; waited at most {seconds:.0f} s): start "
            "it with `ray start --head`, or give the head's address with --ray-address or RAY_ADDRESS"
        ) from error


def connect(config: Config) -> bool:
    """Join the configured Ray cluster, or start a local one; True when this call started Ray (not when a Ray
    session already ran in this process). Worker logs stay in Ray's session folder, off the progress bar."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    address = cluster_address(config)
    if address and address != "auto":
        check_answers(address, CONNECT_SECONDS)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", FORK_WARNING, RuntimeWarning)
            ray.init(address=address or None, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, ray.exceptions.AuthenticationError) as error:
        raise RayUnavailableError(f"cannot join the Ray cluster at {address!r}: {error}") from error
    return True


def first_line(error: BaseException) -> str:
    """An exception's class and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


class WorkerStats:
    """What the collector saw of its workers: totals for the run, and one log interval's per-worker values."""

    def __init__(self, workers: int):
        self.env_errors = np.zeros(workers, np.int64)
        self.lost_calls = np.zeros(workers, np.int64)
        self.dead_in_a_row = np.zeros(workers, np.int64)
        self.duplicates = 0
        self.acted = np.zeros(workers, np.int64)
        self.lag = np.zeros(workers, np.int64)
        self.new_interval(0, 0, time.perf_counter())

    def new_interval(self, steps: int, version: int, now: float) -> None:
        """Start a log interval at these steps, learner version and time."""
        self.interval = (steps, version, now)
        self.returns: list[list[float]] = [[] for _ in self.lag]

    def chunk(self, worker: int, chunk: Chunk, version: int) -> None:
        """Note a stored chunk of a worker when the learner is at `version`."""
        self.env_errors[worker] += len(chunk.env_errors)
        self.dead_in_a_row[worker] = 0
        self.acted[worker] = chunk.collected.version
        self.lag[worker] = version - chunk.collected.version
        self.returns[worker] += [r for returns in chunk.collected.episode_returns for r in returns]

    def log_values(self, steps: int, version: int, batch_size: int, restarts: np.ndarray) -> dict:
        """The interval's updates per second, realised samples per inserted step, each worker's mean return and
        param lag (learner version minus the one it acted with); the run's restarts, env exceptions, lost calls
        and repeated chunks; then a new interval starts."""
        now = time.perf_counter()
        steps0, version0, time0 = self.interval
        updates, inserted = version - version0, steps - steps0
        values = {
            "ray/updates_per_s": updates / max(now - time0, 1e-9),
            "ray/samples_per_insert": updates * batch_size / inserted if inserted else np.nan,
            "ray/param_lag_max": float(self.lag.max()),
            "ray/restarts": float(restarts.sum()),
            "ray/env_errors": float(self.env_errors.sum()),
            "ray/lost_calls": float(self.lost_calls.sum()),
            "ray/repeated_chunks": float(self.duplicates),
        }
        for worker, returns in enumerate(self.returns):
            values[f"ray/worker_{worker}/return"] = float(np.mean(returns)) if returns else np.nan
            values[f"ray/worker_{worker}/param_lag"] = float(self.lag[worker])
        self.new_interval(steps, version, now)
        return values


class RayCollector:
    """The Collector of collect/actor.py on Ray: workers x actors env copies per seed, one call in flight per
    worker; collect() returns the chunks ready (at least one).

    `explorer` is the driver-side copy of the behaviour policy (its log values and checkpoint arrays, in the layout
    of a local run of `actors` copies, so checkpoints move between local and Ray runs); the workers act with their
    own.
    """

    def __init__(
        self,
        config: Config,
        make_env: Callable[[], gym.Env],
        agent_seeds: list[int],
        explorer: Explorer,
        actor: ActorNet,
        warmup_until: int,
        action_space: gym.spaces.Box,
        encoder: FrameEncoder,
    ):
        self.config, self.explorer, self.warmup_until = config, explorer, warmup_until
        self.scaler = ActionScaler(action_space)
        self.started_ray = connect(config)
        self.ray = import_ray()
        remote = self.ray.remote(CollectWorker).options(
            num_cpus=config.worker_cpus,
            max_restarts=config.worker_restarts,
            max_task_retries=0,
            runtime_env={"env_vars": {"JAX_PLATFORMS": "cpu"}},
        )
        self.board = self.ray.remote(ParamBoard).options(num_cpus=0).remote()
        self.workers = [
            remote.remote(
                make_env, worker_config(config, i), agent_seeds, i, actor, encoder.leaves, self.board
            )
            for i in range(config.workers)
        ]
        self.chunk_steps = chunk_vector_steps(config) * config.actors
        self.in_flight: dict = {}
        self.ledger = ChunkLedger()
        self.frame_ids = FrameIdMap(encoder.written)
        self.stats = WorkerStats(config.workers)
        self.steps = 0
        self.version = 0
        self.broadcast: tuple | None = None

    def set_params(self, params, version: int) -> None:
        """Act with these params from the workers' next chunks: one ray.put per param_sync_every updates, posted on
        the board (where a restarted worker pulls it) and sent with the next calls."""
        self.version = version
        if self.broadcast is None or version - self.broadcast[0] >= self.config.param_sync_every:
            self.broadcast = (version, [self.ray.put(jax.device_get(params))])
            self.board.post.remote(*self.broadcast)

    def issue(self, worker: int) -> None:
        """Start a worker's next chunk with the newest broadcast; random actions while the steps delivered and in
        flight are below warmup_until."""
        random = self.steps + len(self.in_flight) * self.chunk_steps < self.warmup_until
        version, params = self.broadcast
        self.in_flight[self.workers[worker].collect.remote(version, params, random)] = worker

    def collect(self, chunks: int) -> Collected:
        """Wait for `chunks` chunks from any workers, take every other one already delivered, and return them as
        one record (each worker gets its next call at once)."""
        for worker in sorted(set(range(len(self.workers))) - set(self.in_flight.values())):
            self.issue(worker)
        records: list[Collected] = []
        while len(records) < chunks:
            ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=WAIT_SECONDS)
            if not ready:
                raise RayUnavailableError(self.no_chunk())
            records += self.receive(ready)
        ready, _ = self.ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
        return merge_collected(records + self.receive(ready))

    def no_chunk(self) -> str:
        """Why collect() stopped waiting: no chunk in WAIT_SECONDS, and the CPUs the workers may be waiting for."""
        free = self.ray.available_resources().get("CPU", 0.0)
        return (
            f"no chunk from any of the {len(self.workers)} Ray workers in {WAIT_SECONDS:.0f} s; each needs "
            f"{self.config.worker_cpus} CPU(s) and the cluster has {free:g} free of "
            f"{self.ray.cluster_resources().get('CPU', 0.0):g}: lower worker_cpus or workers, or end what holds them"
        )

    def receive(self, refs: list) -> list[Collected]:
        """The new chunks among these finished calls, counted as delivered; their workers get their next calls."""
        records, workers = [], [self.in_flight.pop(ref) for ref in refs]
        for worker, ref in zip(workers, refs, strict=True):
            chunk = self.result(worker, ref)
            if chunk is None:
                continue
            if not self.ledger.admit(chunk.id):
                self.stats.duplicates += 1
                continue
            self.note(worker, chunk)
            records.append(self.frame_ids.ship(chunk.id[:2], chunk.collected))
            self.steps += chunk.collected.env_steps
        for worker in workers:
            self.issue(worker)
        return records

    def result(self, worker: int, ref) -> Chunk | None:
        """A finished call's chunk, or None when it was lost: with the worker's process (Ray restarts it), or to a
        WorkerEnvFailure (the worker's next call ends its process for a restart); the next call goes out at once.
        A worker that could not start, or is dead for good (LOST_CALLS ActorDiedErrors in a row), stops the run."""
        ray = self.ray
        stats = self.stats
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as error:
            stats.lost_calls[worker] += 1
            stats.dead_in_a_row[worker] += isinstance(error, ray.exceptions.ActorDiedError)
            if error.actor_init_failed or stats.dead_in_a_row[worker] >= LOST_CALLS:
                raise WorkerLostError(
                    f"Ray worker {worker} is dead for good after {self.restarts(worker)} restart(s) seen "
                    f"(worker_restarts {self.config.worker_restarts}): {first_line(error)}"
                ) from error
            event(
                f"worker {worker} lost a call ({first_line(error)}); Ray restarts it, the call is issued again"
            )
        except ray.exceptions.RayTaskError as error:
            stats.lost_calls[worker] += 1
            event(f"worker {worker}: {first_line(error.cause)}; it is restarted, the call is issued again")
        return None

    def note(self, worker: int, chunk: Chunk) -> None:
        """Count a stored chunk; report its env exceptions and a worker's first chunk from a restarted process."""
        self.stats.chunk(worker, chunk, self.version)
        for message in chunk.env_errors:
            event(f"worker {worker}: the env raised {message}; its envs were rebuilt")
        if chunk.id[2] == 1 and self.restarts(worker):
            event(
                f"worker {worker} is back after a restart ({self.restarts(worker)} so far), acting with params "
                f"version {chunk.collected.version}"
            )

    def restarts(self, worker: int) -> int:
        """Restarts of a worker seen so far (incarnations that delivered a chunk, less one)."""
        return max(self.ledger.incarnations(worker) - 1, 0)

    def log_values(self) -> dict:
        """Values to log for the interval since the last call (WorkerStats.log_values)."""
        restarts = np.array([self.restarts(w) for w in range(len(self.workers))])
        return self.stats.log_values(self.steps, self.version, self.config.batch_size, restarts)

    def adapt(self, states: np.ndarray) -> None:
        """Nothing: the explorers of collect 'ray' do not adapt (param noise, the one that does, is refused)."""

    def state(self) -> dict:
        """What a checkpoint holds of the collection: the number of workers (env RNGs stay with the workers)."""
        return {"workers": len(self.workers)}

    def load_state(self, state: dict, explore: dict, steps: int, encoder: FrameEncoder) -> None:
        """Restore the explorer's arrays and the step count (from a Ray or a local run), and continue the restored
        frame stores' ids (encoder's); the workers start anew, and act with the next set_params' broadcast."""
        self.frame_ids = FrameIdMap(encoder.written)
        self.broadcast = None
        self.explorer.load_state(explore)
        self.steps = steps

    def close(self) -> None:
        """End the workers and the board (and the Ray session, if this collector started it)."""
        for worker in [*self.workers, self.board]:
            self.ray.kill(worker)
        self.in_flight.clear()
        if self.started_ray:
            self.ray.shutdown()


def event(message: str) -> None:
    """Report a worker event on stderr (above the progress bar)."""
    print(f"dpgkit ray: {message}", file=sys.stderr, flush=True)
