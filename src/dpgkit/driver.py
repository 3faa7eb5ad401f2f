"""Drivers: the learner state and its jitted update, fed by the loop. ReplayDriver learns from a replay;
DPG's online driver (dpgkit.algos.dpg) from the transitions just collected.

A driver stores what the loop collected, says when an update is due, dispatches it (not waited for),
finishes it (priorities back to the replay, before the next transitions are stored), and hands out the
acting params with their version (the number of updates behind them).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from collections.abc import Callable

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from dpgkit import xla
from dpgkit.checkpoint import flatten_tree, unflatten_tree
from dpgkit.collect import Collected, FrameEncoder
from dpgkit.collect.chunks import check_frame_window, frame_window
from dpgkit.config import Config, validate
from dpgkit.envs import as_network_dtypes, obs_spec
from dpgkit.explore import Explorer, make_explorer
from dpgkit.learn import Batch, LearnerSpec, init_learner, update_block
from dpgkit.learn.categorical import suggest_support, warmup_support
from dpgkit.learn.learner import first_q
from dpgkit.nets import FLAT_INPUTS
from dpgkit.nets.spec import loaded_params, network_inputs
from dpgkit.nets.torsos import ENCODER_KINDS
from dpgkit.rate import calls_between, steps_per_call
from dpgkit.replay import FramedReplay, PrioritizedReplay, ReplayBuffer, frame_bytes, framed_leaves, with_ids

VALUE_CHUNK = 1024
"""States per seed in one jitted critic evaluation of the value diagnostic (padded, so it compiles once)."""


class NonFiniteError(FloatingPointError):
    """Training met a NaN or inf (observation, reward or loss) and stopped."""


def learner_spec(config: Config, action_dim: int, obs=None) -> LearnerSpec:
    """The static update settings of a config, for observations of structure obs (envs.obs_spec; None: one
    vector)."""
    actor_hidden = tuple(config.actor_hidden or config.hidden)
    critic_hidden = tuple(config.critic_hidden or config.hidden)
    inputs, ndims = (
        (FLAT_INPUTS, (1,))
        if obs is None
        else network_inputs(
            obs,
            config.network,
            config.torsos,
            config.cnn,
            min(len(actor_hidden), len(critic_hidden)),
            config.encoder,
            config.encoder_trainable,
        )
    )
    mirror_inputs, mirror_action = mirror_signs(config.mirror, inputs, action_dim, obs)
    derived = {
        "mirror_inputs": mirror_inputs,
        "mirror_action": mirror_action,
        "action_dim": action_dim,
        "actor_hidden": actor_hidden,
        "critic_hidden": critic_hidden,
        "inputs": inputs,
        "ndims": ndims,
        "layer_norm": config.explore == "param" and config.torso == "relu"
        if config.layer_norm is None
        else config.layer_norm,
        "noisy": config.explore == "noisy",
    }
    names = {f.name for f in dataclasses.fields(LearnerSpec)} - set(derived)
    return LearnerSpec(**derived, **{name: getattr(config, name) for name in names})


def parse_mirror_entry(entry: str) -> tuple[str, tuple[float, ...] | None]:
    """(name, signs) of a config.mirror entry name=S,S,... (each S 1 or -1), or (name, None) for name=flip."""
    name, equals, value = entry.partition("=")
    try:
        signs = None if value == "flip" else tuple(float(v) for v in value.split(","))
    except ValueError:
        signs = ()
    if not (equals and name) or signs == () or (signs and set(signs) - {-1.0, 1.0}):
        raise ValueError(f"config.mirror: {entry!r} is not name=flip or name=S,S,... with each S 1 or -1")
    return name, signs


def mirror_signs(entries: tuple[str, ...], inputs, action_dim: int, obs=None):
    """config.mirror as the learner takes it: ((input name, signs or None for a flip), ...) in input order, and
    the action's signs; ((), ()) when off. Every input and the action must be named once, images flipped."""
    if not entries:
        return (), ()
    parsed = dict(parse_mirror_entry(e) for e in entries)
    names = [i.name for i in inputs] + ["action"]
    if len(parsed) != len(entries) or sorted(parsed) != sorted(names):
        raise ValueError(
            f"config.mirror names {', '.join(parse_mirror_entry(e)[0] for e in entries)}: it needs each of "
            f"{', '.join(names)} once"
        )
    shapes = {"action": (action_dim,)}
    if obs is not None:
        shapes |= {k: v.shape for k, v in obs.items()} if isinstance(obs, dict) else {names[0]: obs.shape}
    for spec in inputs:
        if (spec.torso.kind in ENCODER_KINDS) != (parsed[spec.name] is None):
            raise ValueError(f"config.mirror: {spec.name}=flip is for image inputs, and image inputs need it")
    for name, signs in parsed.items():
        if signs is not None and name in shapes and len(signs) != shapes[name][-1]:
            raise ValueError(
                f"config.mirror: {name} has {shapes[name][-1]} component(s), {len(signs)} sign(s) given"
            )
    return tuple((i.name, parsed[i.name]) for i in inputs), parsed["action"]


def declared_reward_range(env: gym.Env) -> tuple[float, float] | None:
    """The env's own finite reward_range, where it declares one (Gymnasium 1 dropped it; custom envs may keep it)."""
    low, high = getattr(env.unwrapped, "reward_range", (-np.inf, np.inf))
    return (float(low), float(high)) if np.isfinite([low, high]).all() else None


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]."""
    return every > 0 and after // every > before // every


def zeros_like_spec(spec):
    """One all-zero observation of an obs_spec structure (numpy, in its dtypes)."""
    return jax.tree_util.tree_map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), spec)


MEMORY_SHARE = 0.7
"""A replay may take at most this share of the machine's memory."""


def machine_memory() -> int:
    """Bytes of physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_replay_fits(config: Config, example, frames: int) -> None:
    """Refuse a replay (over all seeds: rows like example, and `frames` bytes of frame stores) larger than
    MEMORY_SHARE of the machine's memory, naming buffer_size."""
    row = sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(example))
    per_transition = row + frames / (config.buffer_size * config.seeds)
    total = per_transition * config.buffer_size * config.seeds
    available = machine_memory()
    if total > MEMORY_SHARE * available:
        fits = int(MEMORY_SHARE * available // (per_transition * config.seeds))
        raise ValueError(
            f"the replay needs {total / 2**30:.1f} GiB ({per_transition:.0f} bytes per transition x buffer_size "
            f"{config.buffer_size} x {config.seeds} seed(s)), more than {MEMORY_SHARE:.0%} of this machine's "
            f"{available / 2**30:.1f} GiB: lower config.buffer_size (at most about {fits}) or the seeds"
        )


def make_replay(config: Config, example) -> ReplayBuffer:
    """The configured replay: uniform or proportional prioritized."""
    if config.replay == "prioritized":
        return PrioritizedReplay(
            config.seeds, config.buffer_size, example, config.priority_alpha, config.priority_eps
        )
    return ReplayBuffer(config.seeds, config.buffer_size, example)


def annealed_beta(beta0: float, steps: int, total_steps: int) -> float:
    """beta = beta0 + (1 - beta0) min(1, steps / total_steps): linear to 1 over the run (Schaul et al. 2016)."""
    return beta0 + (1.0 - beta0) * min(1.0, steps / total_steps)


def stack_trees(trees):
    """Stack pytrees along a new leading (seed) axis."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def calls_actor_step(first_update: int, count: int, policy_delay: int) -> bool:
    """Whether updates first_update .. first_update + count - 1 include an actor step ((u + 1) % d == 0)."""
    return any((u + 1) % policy_delay == 0 for u in range(first_update, first_update + count))


def changes_acting_actor(config: Config, first_update: int, count: int) -> bool:
    """Whether updates first_update .. first_update + count - 1 change the actor that acts: the online one (an
    actor step), or with act_with_target the target one (an actor step under Polyak, a copy under hard targets)."""
    if config.act_with_target and config.target_update_every:
        return crossed(first_update, first_update + count, config.target_update_every)
    return calls_actor_step(first_update, count, config.policy_delay)


class ReplayDriver:
    """DDPG, TD3 and D4PG: the vmapped learner state, the replay it samples K x B from per call, and a host
    copy of the actor to act with (refreshed by calls with an actor step).

    Framed observation leaves (uint8 images and their frame stacks) are stored once per frame: the replay rows hold
    their frame ids, `frames` the frames, and gathered batches get their stacks back before the learner sees them.
    """

    newest_only = ("replay",)
    """Checkpoint groups only a run's newest checkpoint keeps."""
    check = staticmethod(validate)
    """Raise ValueError naming the first config field that makes no sense (before any work)."""

    def __init__(
        self,
        config: Config,
        probe: gym.Env,
        agent_seeds: list[int],
        rngs: list[np.random.Generator],
        stop_message: Callable[[str, int], str],
    ):
        self.config, self.rngs, self.stop_message = config, rngs, stop_message
        self.obs, self.action_dim = obs_spec(probe.observation_space), probe.action_space.shape[0]
        self.horizon = probe.spec.max_episode_steps if probe.spec is not None else None
        self.support_log: dict[str, float] = {}
        reward_range = declared_reward_range(probe)
        if config.atoms and config.v_min is None:
            if reward_range is not None:
                support = suggest_support(*reward_range, config.gamma, self.horizon)
                self.config = config.replace(v_min=support[0], v_max=support[1])
                self.note_support(f"from the env's reward_range {reward_range}")
            elif config.learning_starts == 0:
                raise ValueError(
                    "config.v_min and config.v_max are needed: the env declares no finite reward_range and "
                    "learning_starts 0 leaves no warm-up to derive the categorical support from"
                )
        self.spec = learner_spec(self.config, self.action_dim, self.obs)
        self.framed = framed_leaves(self.obs, config.frame_stack)
        row_obs = with_ids(self.framed, zeros_like_spec(self.obs))
        example = Batch(
            obs=row_obs,
            action=np.zeros(self.action_dim, np.float32),
            reward=np.float32(0),
            discount=np.float32(0),
            next_obs=row_obs,
        )
        sizes = (config.seeds, config.buffer_size, *frame_window(config))
        check_replay_fits(config, example, frame_bytes(self.framed, *sizes))
        obs_example = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], zeros_like_spec(self.obs))
        pretrained = loaded_params(self.spec.inputs)
        self.state = stack_trees(
            [init_learner(self.spec, jax.random.PRNGKey(s), obs_example, pretrained) for s in agent_seeds]
        )
        self.compile_learner()
        self.act_fn = xla.jit(jax.vmap(self.spec.actor.apply), self.spec.has_encoders)
        self.frames = FramedReplay(self.framed, *sizes)
        self.replay = make_replay(config, example)
        self.pending_priorities: tuple | None = None
        self.pending: list = []
        self.host = jax.devices("cpu")[0]
        self.updates = 0
        self.refresh_acting_actor()
        self.behaviour = self.queued = (self.acting_actor, self.updates)
        self.learning_from = config.learning_starts

    def compile_learner(self) -> None:
        """The jitted update and critic evaluation of the current spec (compiled at their first call)."""
        update = jax.vmap(functools.partial(update_block, self.spec), in_axes=(0, 0, None))
        self.update_fn = xla.jit(update, self.spec.has_encoders)
        self.q_fn = xla.jit(jax.vmap(functools.partial(first_q, self.spec)), self.spec.has_encoders)

    def note_support(self, source: str) -> None:
        """Print a derived categorical support once and keep it for the next log line."""
        v_min, v_max = self.config.v_min, self.config.v_max
        print(f"dpgkit: categorical support [{v_min:.6g}, {v_max:.6g}] {source} (saved with the config)")
        self.support_log = {"critic/v_min": v_min, "critic/v_max": v_max}

    def derive_support(self) -> None:
        """Fix [v_min, v_max] from the warm-up's rewards in the replay (categorical.warmup_support), before the
        first update compiles; the values go into the config, so checkpoints keep them."""
        rewards = np.concatenate(
            [self.replay.storage.reward[s, :size] for s, size in enumerate(self.replay.size)]
        )
        if not rewards.size or (self.config.gamma >= 1.0 and self.horizon is None):
            raise ValueError(
                "config.v_min and config.v_max are needed: no warm-up transition, or gamma 1 without a time limit, "
                "to derive the categorical support from"
            )
        v_min, v_max = warmup_support(rewards, self.config.gamma, self.config.n_step, self.horizon)
        self.config = self.config.replace(v_min=v_min, v_max=v_max)
        self.spec = learner_spec(self.config, self.action_dim, self.obs)
        self.compile_learner()
        self.note_support(
            f"from the rewards of {rewards.size} warm-up transitions (widened by half its width)"
        )

    def support_known(self) -> bool:
        """Whether the critic's output is a value yet (a categorical critic's support may wait for the warm-up)."""
        return not (self.spec.atoms and self.spec.v_min is None)

    def refresh_acting_actor(self) -> None:
        """Copy the actor that acts (the online one, or the target one with act_with_target) to the host."""
        actor = self.state.target_actor if self.config.act_with_target else self.state.actor
        self.acting_actor = jax.device_put(actor, self.host)

    def explorer(self) -> Explorer:
        """The configured behaviour policy around this driver's actor."""
        config = self.config
        return make_explorer(config, self.spec.actor, self.act_fn, config.seeds, self.action_dim)

    @property
    def actor_params(self):
        """The learner's current actor params (stacked over seeds)."""
        return self.state.actor

    @property
    def replay_size(self) -> int:
        """Transitions stored per seed (the fewest over seeds)."""
        return int(self.replay.size.min())

    def acting(self) -> tuple:
        """(host copy of the actor, version) to act with: the newest, or with overlap the one of the call
        before the last (already computed while the last one runs)."""
        return self.behaviour if self.config.overlap else (self.acting_actor, self.updates)

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions in actor units for obs (a pytree in the networks' dtypes, as_network_dtypes) shaped
        (seeds, copies, ...)."""
        return np.asarray(self.act_fn(self.acting_actor, obs))

    def learning(self, steps: int) -> bool:
        """Whether the random warm-up is over."""
        return steps >= self.learning_from

    def calls_due(self, steps: int, collected: Collected) -> int:
        """Learner calls due after a collect, once learning has started: those that keep samples per inserted
        step at its target (rate.py: by default one every train_freq vector steps), or with updates_per_episode
        that many updates per episode of the first seed that just ended."""
        if not self.learning(steps):
            return 0
        if self.config.updates_per_episode:
            episodes = len(collected.episode_returns[0])
            return episodes * self.config.updates_per_episode // self.config.gradient_steps
        return calls_between(
            steps - collected.env_steps, steps, self.learning_from, steps_per_call(self.config)
        )

    def frame_encoder(self) -> FrameEncoder:
        """What collection turns framed observation leaves into frame ids with, continuing the frame stores' ids."""
        return FrameEncoder(self.config.actors, self.framed, self.frames.written())

    def store(self, collected: Collected, steps: int) -> None:
        """Write the new frames to the frame stores, then add each seed's transitions to its part of the replay."""
        self.frames.add_frames(collected.frames)
        for seed, transitions in enumerate(collected.transitions):
            if transitions is not None:
                self.frames.add_transitions(self.replay, seed, Batch(*transitions))

    def gather(self, indices: np.ndarray) -> Batch:
        """The replay's transitions at indices (seeds, count), framed leaves rebuilt as their stacks."""
        batch = self.replay.gather(indices)
        return batch._replace(obs=self.frames.stacks(batch.obs), next_obs=self.frames.stacks(batch.next_obs))

    def dispatch(self, steps: int) -> None:
        """Sample K batches per seed at once and dispatch K updates in one jitted call (not waited for).

        The acting policy is a host (CPU) copy of the actor, refreshed only by calls that change it (the values
        are otherwise the same), so after a call that does not the next env steps run while it computes.
        """
        self.finish(steps)
        if not self.support_known():
            self.derive_support()
        k, b = self.config.gradient_steps, self.config.batch_size
        indices = self.replay.sample_indices(self.rngs, k * b)
        batch = self.gather(indices)
        if isinstance(self.replay, PrioritizedReplay):
            beta = annealed_beta(self.config.priority_beta, steps, self.config.total_steps)
            batch = batch._replace(weight=self.replay.weights(indices, beta))
        batch = jax.tree_util.tree_map(lambda x: x.reshape((x.shape[0], k, b) + x.shape[2:]), batch)
        self.state, summary, priorities = self.update_fn(self.state, batch, np.int32(self.updates))
        if isinstance(self.replay, PrioritizedReplay):
            self.pending_priorities = (indices, priorities)
        if changes_acting_actor(self.config, self.updates, k):
            self.refresh_acting_actor()
        self.updates += k
        self.pending.append((steps, summary))
        if self.config.overlap:
            self.behaviour, self.queued = self.queued, (self.acting_actor, self.updates)

    def finish(self, steps: int) -> None:
        """Give the transitions of the last learner call their new priorities (waits for that call); a non-finite
        one stops training, at env step `steps`, before it reaches the sum tree."""
        if self.pending_priorities is not None:
            indices, priorities = self.pending_priorities
            priorities = np.asarray(priorities).reshape(indices.shape)
            if not np.isfinite(priorities).all():
                raise NonFiniteError(self.stop_message("non-finite loss (TD error of a priority)", steps))
            self.replay.update_priorities(indices, priorities)
            self.pending_priorities = None

    def check_losses(self, stats: dict) -> None:
        """Fetch the losses of the calls since the last check; stop at the first non-finite one."""
        for steps, summary in jax.device_get(self.pending):
            if not (
                np.isfinite(summary["critic_loss"]).all() and np.isfinite(summary["actor_loss_sum"]).all()
            ):
                self.pending.clear()
                raise NonFiniteError(self.stop_message("non-finite loss", steps))
            stats["critic_loss"] += summary["critic_loss"]
            stats["critic_calls"] += 1
            stats["actor_loss"] += summary["actor_loss_sum"]
            stats["actor_steps"] += summary["actor_steps"]
            if "support_outside" in summary:
                stats["support_outside"] += summary["support_outside"]
                stats["support_calls"] += 1
        self.pending.clear()

    def q_estimates(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Q_1(s, a) of each seed's critic 1 (a categorical critic's mean) for obs, action shaped (seeds, N, ...)."""
        count = np.shape(action)[1]

        def pad(x):
            return np.pad(x, [(0, 0), (0, -count % VALUE_CHUNK)] + [(0, 0)] * (x.ndim - 2))

        obs = jax.tree_util.tree_map(pad, as_network_dtypes(obs))
        action = pad(np.asarray(action, np.float32))

        def chunk(x, i):
            return jax.tree_util.tree_map(lambda leaf: leaf[:, i : i + VALUE_CHUNK], x)

        chunks = [
            np.asarray(self.q_fn(self.state.critic, chunk(obs, i), chunk(action, i)))
            for i in range(0, action.shape[1], VALUE_CHUNK)
        ]
        return np.concatenate(chunks, axis=1)[:, :count]

    def sample_states(self) -> np.ndarray:
        """A uniform batch of replay observations per seed, for the explorer's adaptation."""
        indices = ReplayBuffer.sample_indices(self.replay, self.rngs, self.config.batch_size)
        return self.gather(indices).obs

    def checkpoint_contents(self, steps: int) -> tuple[dict, dict]:
        """Learner state and replay with its frame stores (priorities written back first); the update count and
        warm-up end."""
        self.finish(steps)
        arrays = {"learner": flatten_tree(self.state), "replay": self.replay.state() | self.frames.state()}
        return arrays, {"updates": self.updates, "learning_from": self.learning_from}

    def restore(self, arrays: dict, meta: dict, steps: int) -> None:
        """Load what checkpoint_contents wrote; without a replay this dpgkit can read (not a run's newest
        checkpoint, or pixel rows saved before frames were stored once), the replay and frame stores start empty
        and the random warm-up starts again from `steps`."""
        self.state = jax.tree_util.tree_map(jnp.asarray, unflatten_tree(self.state, arrays["learner"]))
        self.updates = meta["updates"]
        self.refresh_acting_actor()
        self.behaviour = self.queued = (self.acting_actor, self.updates)
        self.learning_from = meta.get("learning_from", self.config.learning_starts)
        replay = arrays.get("replay")
        if replay is None:
            reason = "this checkpoint holds no replay (only a run's newest checkpoint does)"
        elif self.framed and not any(key.startswith("frames_") for key in replay):
            reason = (
                "this checkpoint's pixel replay holds whole observations, saved before dpgkit stored each frame "
                "once (commit 558abd4), and cannot be read into today's frame stores"
            )
        else:
            if self.framed:
                check_frame_window(self.config, meta.get("config", {}))
            self.replay.load_state(replay)
            self.frames.load_state(replay)
            return
        warnings.warn(
            f"{reason}: the agent acts as saved, "
            f"and learning from it refills the replay with {self.config.learning_starts} random steps first",
            stacklevel=4,
        )
        self.learning_from = steps + self.config.learning_starts
