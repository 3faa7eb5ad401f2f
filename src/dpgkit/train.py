"""The training loop shared by every algorithm: collect, store, learn; then evaluate, log and checkpoint."""

from __future__ import annotations

import dataclasses
import pathlib
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Self

import gymnasium as gym
import jax
import numpy as np

from dpgkit import __version__
from dpgkit.checkpoint import CheckpointSpaceError, claim_run_dir, save_checkpoint
from dpgkit.collect import Collected, Collector, EnvActor, LocalCollector
from dpgkit.config import Config
from dpgkit.driver import NonFiniteError, ReplayDriver, crossed
from dpgkit.envs import check_action_space, check_observation_space, obs_spec
from dpgkit.envs.wrappers import observation_wrappers
from dpgkit.evaluate import Evaluator, discounted_returns_to_go, fully_observed, value_error
from dpgkit.logger import RunLogger
from dpgkit.progress import TrainingProgress
from dpgkit.replay import NStepWriter


class EnvError(RuntimeError):
    """An environment raised during training; the run was saved first."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training at a loop boundary, after a checkpoint."""


SUPPORT_WARNING = 0.05
"""Warn when more than this share of the categorical target's mass falls outside [v_min, v_max] in an interval."""

RUN_FIELDS = (
    "total_steps",
    "eval_every",
    "eval_episodes",
    "log_every",
    "checkpoint_every",
    "checkpoint_seconds",
    "keep_checkpoints",
    "run_dir",
    "progress",
)
"""Config fields that a built agent may change (Agent.config = ...): the rest made its learner and replay."""

SAVE_COST_SHARE = 0.02
"""Time-based checkpoints are spaced so that saving takes at most this share of the training wall time."""


class StopSignals:
    """While active, SIGINT and SIGTERM only set `received`; a second SIGINT raises KeyboardInterrupt at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self.previous: dict = {}

    def handle(self, signum, frame) -> None:
        """Remember the first signal; abort on a second SIGINT."""
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self.handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class CheckpointClock:
    """Time-based checkpoints: due every `seconds`, and never sooner than the last save's cost / SAVE_COST_SHARE."""

    def __init__(self, seconds: float):
        self.seconds, self.cost = seconds, 0.0
        self.last = time.monotonic()

    def due(self) -> bool:
        """Whether a time-based checkpoint is due now."""
        return self.seconds > 0 and time.monotonic() - self.last >= max(
            self.seconds, self.cost / SAVE_COST_SHARE
        )

    def saved(self, started: float) -> None:
        """Note a save that began at monotonic time `started` and has just ended."""
        self.last = time.monotonic()
        self.cost = self.last - started


def make_collector(
    config: Config,
    make_env: Callable[[], gym.Env],
    driver,
    agent_seeds: list[int],
    rngs: list[np.random.Generator],
    action_space: gym.spaces.Box,
) -> Collector:
    """The configured collection: an EnvActor of seeds x actors copies in this process, or Ray workers."""
    if config.collect == "ray":
        from dpgkit.collect.ray import RayCollector

        return RayCollector(
            config,
            make_env,
            agent_seeds,
            driver.explorer(),
            driver.spec.actor,
            driver.learning_from,
            action_space,
            driver.frame_encoder(),
        )
    return EnvActor(
        LocalCollector(make_env, agent_seeds, config.actors),
        driver.explorer(),
        [NStepWriter(config.n_step, config.gamma, config.actors) for _ in agent_seeds],
        rngs,
        driver.learning_from,
        driver.frame_encoder(),
    )


def env_call(where: str, fn: Callable, *args):
    """fn(*args), with an exception from the environment turned into an EnvError saying where it happened."""
    try:
        return fn(*args)
    except Exception as error:
        raise EnvError(f"the environment raised {type(error).__name__}: {error} {where}") from error


def host_rng(agent_seed: int) -> np.random.Generator:
    """The host generator of one agent (warm-up actions, exploration noise, replay sampling)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([agent_seed, 0x5EED])))


class Trainer:
    """One run of one or several seeds: the loop of DESIGN.md part 2, the same for every algorithm.

        while steps < target:
            collected = env_actor.collect(1)         # n-step transitions, finished episodes
            store(collected)                          # NaN checks; last call's priorities back; replay adds
            for _ in range(driver.calls_due(steps, collected)):   # every train_freq steps, or after episodes
                driver.dispatch(steps)                # one jitted call of K updates, not waited for
            env_actor.set_params(*driver.acting())    # newest params, or with overlap the call before
            hooks: evaluate, log, checkpoint (by steps and by time), stop on SIGINT/SIGTERM

    The driver (ReplayDriver, or DPG's OnlineDriver) owns the learner and gives the frame encoder; the EnvActor
    owns the env copies, the explorer, the n-step writers and that encoder. An env exception is reported after the last completed step is saved.
    """

    def __init__(self, algo: str, config: Config, make_env: Callable[[], gym.Env], driver_class=ReplayDriver):
        driver_class.check(config)
        make_env = observation_wrappers(make_env, config.network == "parkour", config.frame_stack)
        self.algo, self.make_env = algo, make_env
        self.agent_seeds = [config.seed + i for i in range(config.seeds)]
        probe = make_env()
        check_action_space(probe.action_space)
        check_observation_space(probe.observation_space)
        self.rngs = [host_rng(s) for s in self.agent_seeds]
        self.driver = driver_class(config, probe, self.agent_seeds, self.rngs, self.stop_message)
        self.observation_spec = obs_spec(probe.observation_space)
        probe.close()
        self.env_actor = make_collector(
            config, make_env, self.driver, self.agent_seeds, self.rngs, probe.action_space
        )
        self.env_actor.set_params(*self.driver.acting())
        self.steps = 0
        self.run_id = uuid.uuid4().hex
        self.run_dir = pathlib.Path(
            config.run_dir or f"runs/{algo}-{config.env}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        self.config = self.config.replace(run_dir=str(self.run_dir))
        self.evaluator: Evaluator | None = None
        self.last_eval = np.full(config.seeds, np.nan)
        self.last_checkpoint: pathlib.Path | None = None
        self.warned_unobserved = False

    @property
    def config(self) -> Config:
        """The run's settings (the driver's: a derived categorical support is written into them)."""
        return self.driver.config

    @config.setter
    def config(self, config: Config) -> None:
        changed = [
            f.name
            for f in dataclasses.fields(config)
            if getattr(config, f.name) != getattr(self.config, f.name)
        ]
        fixed = sorted(set(changed) - set(RUN_FIELDS))
        if fixed:
            raise ValueError(
                f"config field(s) {', '.join(fixed)} cannot change in a built agent (its learner, replay and "
                f"explorer were made with them); only {', '.join(RUN_FIELDS)} can"
            )
        self.driver.config = config

    @property
    def state(self):
        """The learner state (stacked over seeds)."""
        return self.driver.state

    @property
    def updates(self) -> int:
        """Gradient updates taken per seed."""
        return self.driver.updates

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions in actor units for obs shaped (seeds, copies, ...)."""
        return self.driver.policy(obs)

    def iteration(self, stats: dict) -> None:
        """Collect one step of every copy, store it, learn when the schedule says, let the explorer adapt."""
        before = self.steps
        collected = env_call(f"at env step {self.steps + 1}", self.env_actor.collect, 1)
        self.store(collected, stats)
        calls = self.driver.calls_due(self.steps, collected)
        for _ in range(calls):
            self.driver.dispatch(self.steps)
        if calls:
            self.env_actor.set_params(*self.driver.acting())
        if self.driver.learning(self.steps) and crossed(
            before, self.steps, self.env_actor.explorer.adapt_every
        ):
            self.env_actor.adapt(self.driver.sample_states())

    def store(self, collected: Collected, stats: dict) -> None:
        """Stop at a non-finite observation or reward; else write the last call's priorities back, then add."""
        if collected.non_finite:
            self.driver.check_losses(stats)
            raise NonFiniteError(
                self.stop_message(f"non-finite {collected.non_finite}", self.steps + collected.env_steps + 1)
            )
        self.driver.finish(self.steps)
        self.driver.store(collected, self.steps)
        for i, returns in enumerate(collected.episode_returns):
            stats["returns"][i].extend(returns)
        self.steps += collected.env_steps

    def stop_message(self, what: str, steps: int) -> str:
        """Why training stopped, at which step, and where the last good checkpoint is."""
        kept = f"; the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else ""
        return f"{what} at env step {steps}: training stopped{kept}"

    def resume_hint(self, path: pathlib.Path) -> str:
        """Where the run was saved and how to continue it."""
        return f"saved {path}; continue with `dpgkit resume {self.run_dir}`"

    def value_error(self) -> dict[str, np.ndarray]:
        """Critic 1's Q(s_t, a_t) against the discounted return G_t that followed, per seed, on the last evaluation's
        states whose G_t is observed (evaluate.fully_observed); NaN, with one warning per run, where none is."""
        if not self.driver.support_known():
            return {}
        episodes = self.evaluator.recorded

        def per_seed(tree):
            return jax.tree_util.tree_map(
                lambda x: np.swapaxes(x, 0, 1).reshape((self.config.seeds, -1) + x.shape[2:]), tree
            )

        steps = episodes.reward.shape[0]
        mask = per_seed(fully_observed(episodes.length, episodes.terminated, steps, self.config.gamma))
        returns = per_seed(discounted_returns_to_go(episodes.reward, self.config.gamma))
        if mask.any():
            return value_error(
                self.driver.q_estimates(per_seed(episodes.obs), per_seed(episodes.action)), returns, mask
            )
        if not self.warned_unobserved:
            self.warned_unobserved = True
            warnings.warn(
                "no evaluation state has an observed discounted return (episodes truncated with gamma^(steps "
                "left) > 0.01 everywhere): eval/q_estimate, eval/value_bias and the rest are NaN",
                stacklevel=2,
            )
        return value_error(np.zeros(mask.shape), returns, mask)

    def evaluate(self, episodes: int | None = None) -> np.ndarray:
        """Deterministic returns of shape (seeds, episodes) on the fixed evaluation seeds."""
        episodes = episodes or self.config.eval_episodes
        if self.evaluator is None or self.evaluator.episodes != episodes:
            self.evaluator = Evaluator(self.make_env, self.config.seeds, episodes)
        return self.evaluator.run(self.policy)

    def learn(self, total_steps: int) -> None:
        """Train for total_steps more env steps per seed, with logs, evaluations and checkpoints."""
        if total_steps < 0:
            raise ValueError(f"total_steps must be >= 0, got {total_steps}")
        claim_run_dir(self.run_dir, self.run_id)
        config, target = self.config, self.steps + total_steps
        logger = RunLogger(self.run_dir, self.agent_seeds, run_id=self.run_id)
        stats = new_stats(config.seeds)
        last_time, last_steps = time.perf_counter(), self.steps
        clock = CheckpointClock(config.checkpoint_seconds)
        try:
            with (
                StopSignals() as stop,
                TrainingProgress(target, self.steps, self.updates, config.progress) as progress,
            ):
                while self.steps < target:
                    before = self.steps
                    try:
                        self.iteration(stats)
                        evaluate = crossed(before, self.steps, config.eval_every)
                        where = f"in the evaluation at env step {self.steps}"
                        returns = env_call(where, self.evaluate) if evaluate else None
                    except EnvError as error:
                        self.driver.check_losses(stats)
                        path = self.save(self.run_dir)
                        raise EnvError(f"{error}; {self.resume_hint(path)}") from error.__cause__
                    log = crossed(before, self.steps, config.log_every) or self.steps >= target
                    checkpoint = crossed(before, self.steps, config.checkpoint_every) or clock.due()
                    if evaluate or log or checkpoint or stop.received:
                        self.driver.check_losses(stats)
                    if evaluate:
                        self.last_eval = returns.mean(axis=1)
                        logger.log(self.steps, {"eval/return": self.last_eval} | self.value_error())
                    if log:
                        now = time.perf_counter()
                        sps = (self.steps - last_steps) / max(now - last_time, 1e-9)
                        values = (
                            summarize(stats, sps)
                            | self.env_actor.explorer.log_values(self.driver.actor_params)
                            | self.env_actor.log_values()
                        )
                        warn_outside_support(values)
                        logger.log(self.steps, values | self.driver.support_log)
                        self.driver.support_log = {}
                        stats, last_time, last_steps = new_stats(config.seeds), now, self.steps
                    if checkpoint or stop.received:
                        started = time.monotonic()
                        try:
                            path = self.save(self.run_dir)
                        except CheckpointSpaceError as error:
                            if stop.received:
                                raise
                            warnings.warn(
                                f"{error}; training goes on and saves at the next checkpoint", stacklevel=2
                            )
                        clock.saved(started)
                    if stop.received:
                        name = signal.Signals(stop.received).name
                        raise TrainingInterrupted(
                            f"{name} at env step {self.steps}: {self.resume_hint(path)}"
                        )
                    progress.update(self.steps, self.last_eval, self.updates, self.driver.replay_size)
        finally:
            logger.close()

    def save(self, path) -> pathlib.Path:
        """Write an atomic, verified checkpoint of everything needed to resume exactly."""
        arrays, meta = self.driver.checkpoint_contents(self.steps)
        arrays["explore"] = self.env_actor.explorer.state()
        meta = {
            "algo": self.algo,
            "run_id": self.run_id,
            "version": __version__,
            "config": dataclasses.asdict(self.config),
            "steps": self.steps,
            "collector": self.env_actor.state(),
            "last_eval": self.last_eval.tolist(),
            "host_rng": [rng.bit_generator.state for rng in self.rngs],
        } | meta
        self.last_checkpoint = save_checkpoint(
            path,
            self.steps,
            arrays,
            meta,
            run_id=self.run_id,
            keep=self.config.keep_checkpoints,
            newest_only=self.driver.newest_only,
        )
        return self.last_checkpoint

    def restore(self, arrays: dict, meta: dict) -> None:
        """Load the state written by save(); an interrupted episode starts over."""
        self.steps = meta["steps"]
        self.driver.restore(arrays, meta, self.steps)
        for rng, state in zip(self.rngs, meta.get("host_rng", []), strict=False):
            rng.bit_generator.state = state
        self.env_actor.load_state(
            meta["collector"], arrays["explore"], self.steps, self.driver.frame_encoder()
        )
        self.env_actor.warmup_until = self.driver.learning_from
        self.env_actor.set_params(*self.driver.acting())
        self.last_eval = np.asarray(meta["last_eval"], np.float64)
        self.run_id = meta["run_id"]

    def close(self) -> None:
        """Close every environment."""
        self.env_actor.close()
        if self.evaluator is not None:
            self.evaluator.close()


def new_stats(seeds: int) -> dict:
    """Empty accumulators for one log interval."""
    return {
        "returns": [[] for _ in range(seeds)],
        "critic_loss": np.zeros(seeds),
        "critic_calls": 0,
        "actor_loss": np.zeros(seeds),
        "actor_steps": np.zeros(seeds),
        "support_outside": np.zeros(seeds),
        "support_calls": 0,
    }


def summarize(stats: dict, sps: float) -> dict:
    """Log values of one interval (NaN where nothing happened, which the logger skips)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "charts/episodic_return": np.array([np.mean(r) if r else np.nan for r in stats["returns"]]),
            "charts/SPS": sps,
            "losses/critic": stats["critic_loss"] / stats["critic_calls"]
            if stats["critic_calls"]
            else np.nan,
            "losses/actor": stats["actor_loss"] / stats["actor_steps"],
            "losses/support_outside": stats["support_outside"] / stats["support_calls"]
            if stats["support_calls"]
            else np.nan,
        }


def warn_outside_support(values: dict) -> None:
    """Warn when a large share of the categorical target's mass fell outside the support in the interval."""
    outside = np.nanmax(np.append(values["losses/support_outside"], 0.0))
    if outside > SUPPORT_WARNING:
        warnings.warn(
            f"{outside:.0%} of the categorical target's mass fell outside [v_min, v_max] (losses/support_outside):"
            " widen config.v_min / config.v_max",
            stacklevel=2,
        )


def meta_entry(meta: dict, name: str, where: str):
    """meta[name], or a ValueError naming where the meta came from and the entries it holds."""
    if name not in meta:
        raise ValueError(f"{where}: meta.json has no {name!r} entry (it holds {', '.join(sorted(meta))})")
    return meta[name]


FIELDS_ADDED_LATER = (
    "noise_halving_episodes",
    "network",
    "torsos",
    "cnn",
    "shared_encoder",
    "encoder_actor_gradient",
    "frame_stack",
    "augment_shift",
    "mirror",
    "checkpoint_seconds",
    "keep_checkpoints",
    "target_update_every",
    "dqda_clip",
    "preactivation_l2",
    "max_grad_norm",
    "torso",
    "actor_hidden",
    "critic_hidden",
    "act_with_target",
    "updates_per_episode",
    "overlap",
    "collect",
    "workers",
    "ray_address",
    "chunk_steps",
    "param_sync_every",
    "samples_per_insert",
    "worker_cpus",
    "worker_restarts",
    "worker_env_failures",
    "encoder",
    "encoder_trainable",
)
"""Config fields newer than some checkpoints (format 1 has none of them): a checkpoint without one takes its
default."""


def config_from_meta(config_class: type[Config], meta: dict, where: str = "checkpoint") -> Config:
    """Rebuild the config saved in a checkpoint; a field missing, or unknown to this version, is named."""
    values = dict(meta_entry(meta, "config", where))
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown, missing = sorted(set(values) - fields), sorted(fields - set(values) - set(FIELDS_ADDED_LATER))
    if unknown:
        raise ValueError(
            f"{where}: config field(s) {', '.join(unknown)} unknown to {config_class.__name__} of dpgkit "
            f"{__version__} (the checkpoint was written by dpgkit {meta.get('version', '(unknown)')})"
        )
    if missing:
        raise ValueError(f"{where}: the config in meta.json has no field(s) {', '.join(missing)}")
    for name in ("hidden", "actor_hidden", "critic_hidden", "torsos", "mirror"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    return config_class(**values)
