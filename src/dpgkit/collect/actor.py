"""The unit of collection: env copies, their behaviour policy and n-step writers, acting with given params."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import jax
import numpy as np

from dpgkit.collect.frames import FrameEncoder
from dpgkit.collect.local import LocalCollector
from dpgkit.explore import Explorer
from dpgkit.replay.framed import NewFrames
from dpgkit.replay.nstep import NStepWriter
from dpgkit.trees import entry, stack_leaves


class Transitions(NamedTuple):
    """n-step transitions of one seed stacked on a leading axis; discount = gamma^m (1 - terminated); framed
    observation leaves are frame ids."""

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    next_obs: np.ndarray


class Collected(NamedTuple):
    """What EnvActor.collect returns.

    transitions: per seed, the n-step transitions finished (None where there were none); frames: per framed
    observation leaf and seed, the new frames these steps registered, named by the ids of these and later
    transitions (each frame shipped once, in order; stored before the transitions); episode_returns and
    episode_lengths: per seed, the episodes that ended; env_steps: steps taken per seed; version: the params
    version acted with; non_finite: "observation" or "reward" when the step after these was not finite (it is
    not in the record, and collection stopped there). Its transitions enter a prioritized replay at the max
    priority, as Schaul et al. 2016 add them.
    """

    transitions: list[Transitions | None]
    frames: dict[str, list[NewFrames]]
    episode_returns: list[list[float]]
    episode_lengths: list[list[int]]
    env_steps: int
    version: int
    non_finite: str | None = None


def stack_transitions(transitions: list[dict]) -> Transitions:
    """An n-step writer's transitions stacked on a leading axis: observations (pytrees) in their own dtype
    (float32, or uint8 pixels), actions, rewards and discounts as float32."""
    return Transitions(
        *(
            stack_leaves([t[name] for t in transitions])
            if name.endswith("obs")
            else np.asarray([t[name] for t in transitions], np.float32)
            for name in Transitions._fields
        )
    )


def first_non_finite(named: tuple) -> str | None:
    """The name of the first (name, pytree) pair holding a NaN or inf, or None."""
    for name, tree in named:
        if not all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(tree)):
            return name
    return None


def concat_transitions(parts: list[Transitions]) -> Transitions | None:
    """Transitions of several steps of one seed, in order, as one stack; None if there are none."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *parts)


class Collector(Protocol):
    """What the loop needs from collection: the in-process EnvActor, or collect/ray.py's RayCollector of Ray
    worker processes.

    Arrays are shaped (seeds, actors, ...); actions are in the actor's units [-1, 1]. The explorer acts on the
    observations as they are; the transitions hold framed leaves as frame ids, from a FrameEncoder given by the
    driver (continuing its frame stores' ids), and Collected.frames ships each new frame once.
    """

    explorer: Explorer
    warmup_until: int
    version: int

    def set_params(self, params, version: int) -> None:
        """Act with these actor params from now on."""
        ...

    def collect(self, vector_steps: int) -> Collected:
        """Step every copy vector_steps times (Ray: wait for that many chunks) and return the transitions and
        episodes."""
        ...

    def adapt(self, states: np.ndarray) -> None:
        """Let the explorer adapt on replay states."""
        ...

    def log_values(self) -> dict:
        """Values of the collection to log for the interval since the last call."""
        ...

    def state(self) -> dict:
        """What a checkpoint must hold to restart the copies (JSON)."""
        ...

    def load_state(self, state: dict, explore: dict, steps: int, encoder: FrameEncoder) -> None:
        """Restore from state() and the explorer's arrays; the copies restart their episodes and frame stacks with
        encoder (continuing the restored replay's frame ids)."""
        ...

    def close(self) -> None:
        """Close every environment."""
        ...


class EnvActor:
    """Env copies of every seed in lockstep, their explorer and n-step writers; random actions until
    `warmup_until` env steps per seed, then the explorer's with the params it was last given.

    `rngs` (one host Generator per seed) drive the warm-up actions and the exploration noise; `encoder` turns the
    framed observation leaves of the steps into frame ids before the n-step writers.
    """

    def __init__(
        self,
        collector: LocalCollector,
        explorer: Explorer,
        writers: list[NStepWriter],
        rngs: list[np.random.Generator],
        warmup_until: int,
        encoder: FrameEncoder,
    ):
        self.collector, self.explorer, self.writers, self.rngs = collector, explorer, writers, rngs
        self.encoder = encoder
        self.warmup_until = warmup_until
        self.steps = 0
        self.params, self.version = None, 0
        self.action_shape = (collector.actors, collector.envs.single_action_space.shape[0])

    @property
    def scaler(self):
        """Maps actor-unit actions [-1, 1] to the env's units."""
        return self.collector.scaler

    def set_params(self, params, version: int) -> None:
        """Act with these actor params from now on; version is the learner's update count behind them."""
        self.params, self.version = params, version

    def behaviour_actions(self, obs: np.ndarray) -> np.ndarray:
        """Uniform random actions during warm-up, then the explorer's (action noise, parameter noise, NoisyNet)."""
        if self.steps < self.warmup_until:
            return np.stack([rng.uniform(-1.0, 1.0, self.action_shape) for rng in self.rngs]).astype(
                np.float32
            )
        return self.explorer.actions(self.params, obs, self.rngs).astype(np.float32)

    def collect(self, vector_steps: int) -> Collected:
        """Step every copy vector_steps times; the n-step writers turn the steps (framed leaves as frame ids) into
        transitions."""
        seeds = len(self.writers)
        parts: list[list[Transitions]] = [[] for _ in range(seeds)]
        returns: list[list[float]] = [[] for _ in range(seeds)]
        lengths: list[list[int]] = [[] for _ in range(seeds)]
        taken, non_finite = 0, None
        for _ in range(vector_steps):
            obs, reset = self.collector.observe()
            self.explorer.begin_episodes(reset)
            actions = self.behaviour_actions(obs)
            result = self.collector.step(actions)
            non_finite = first_non_finite((("observation", result.next_obs), ("reward", result.reward)))
            if non_finite:
                break
            for seed, writer in enumerate(self.writers):
                seed_obs, seed_next_obs = self.encoder.encode(
                    seed, reset[seed], entry(obs, seed), entry(result.next_obs, seed)
                )
                finished = writer.push(
                    seed_obs,
                    actions[seed],
                    result.reward[seed],
                    result.terminated[seed],
                    result.truncated[seed],
                    seed_next_obs,
                )
                if finished:
                    parts[seed].append(stack_transitions(finished))
                returns[seed] += result.episode_returns[seed]
                lengths[seed] += result.episode_lengths[seed]
            self.steps += self.collector.actors
            taken += self.collector.actors
        transitions = [concat_transitions(p) for p in parts]
        return Collected(transitions, self.encoder.take(), returns, lengths, taken, self.version, non_finite)

    def adapt(self, states: np.ndarray) -> None:
        """Let the explorer adapt to the acting params on states shaped (seeds, batch, ...)."""
        self.explorer.adapt(self.params, states, self.rngs)

    def log_values(self) -> dict:
        """Nothing beyond the loop's own values (returns, steps per second)."""
        return {}

    def state(self) -> dict:
        """The env copies' RNG states (JSON), to checkpoint; the explorer's arrays are explorer.state()."""
        return self.collector.state()

    def load_state(self, state: dict, explore: dict, steps: int, encoder: FrameEncoder) -> None:
        """Restore the copies' RNGs and the explorer; every copy restarts its episode and frame stack (encoder),
        the writers start empty."""
        self.collector.load_state(state)
        self.explorer.load_state(explore)
        self.encoder = encoder
        self.steps = steps
        for writer in self.writers:
            writer.reset()

    def close(self) -> None:
        """Close the env copies."""
        self.collector.close()
