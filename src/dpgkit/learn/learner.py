"""The learner state and the one update shared by DDPG and TD3 (and, by settings, the rest of the family)."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dpgkit.learn.categorical import (
    categorical_cross_entropy,
    categorical_kl,
    expected_value,
    mass_outside,
    project_categorical,
    support,
)
from dpgkit.learn.losses import dpg_actor_loss, weighted_mean
from dpgkit.learn.targets import clipped_double_q, smoothed_target_action, td_target
from dpgkit.nets import Actor, ActorNet, Critic, CriticNet, InputSpec, make_encoders
from dpgkit.nets.layers import factorised_noise, noisy_layer_sizes
from dpgkit.nets.torsos import ENCODER_KINDS

Params = Any


class Batch(NamedTuple):
    """A batch of transitions; discount = gamma^m (1 - terminated), m the steps in the return.

    weight holds importance-sampling weights of prioritized replay (None: every example weighs 1).
    """

    obs: Any
    action: jax.Array
    reward: jax.Array
    discount: jax.Array
    next_obs: Any
    weight: Any = None


class LearnerState(NamedTuple):
    """Everything the learner updates: online and target networks, optimizer states and its RNG key."""

    actor: Params
    critic: Params
    target_actor: Params
    target_critic: Params
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    key: jax.Array


@dataclass(frozen=True, kw_only=True)
class LearnerSpec:
    """Static settings of the update (hashable; a change means a new compilation).

    dpgkit.driver.learner_spec builds it from a config, the only source of its values (no defaults here).
    """

    action_dim: int
    actor_hidden: tuple[int, ...]
    critic_hidden: tuple[int, ...]
    torso: str
    critic_action_layer: int
    final_init: float
    num_critics: int
    policy_delay: int
    target_noise: float
    target_noise_clip: float
    tau: float
    target_update_every: int
    actor_lr: float
    critic_lr: float
    critic_l2: float
    max_grad_norm: float
    dqda_clip: float
    preactivation_l2: float
    atoms: int
    v_min: float | None
    v_max: float | None
    layer_norm: bool
    noisy: bool
    noisy_sigma0: float
    inputs: tuple[InputSpec, ...]
    ndims: tuple[int, ...]
    shared_encoder: bool
    encoder_actor_gradient: bool
    augment_shift: int
    mirror_inputs: tuple[tuple[str, tuple[float, ...] | None], ...]
    mirror_action: tuple[float, ...]

    @property
    def support(self) -> jax.Array:
        """The atoms of a categorical critic (its return distribution's fixed support)."""
        return support(self.v_min, self.v_max, self.atoms)

    @property
    def actor(self) -> ActorNet:
        """The actor network; with shared_encoder its encoders are the critic's (copied in), detached unless
        encoder_actor_gradient."""
        head = Actor(
            self.actor_hidden,
            self.action_dim,
            self.final_init,
            self.layer_norm,
            self.noisy,
            self.noisy_sigma0,
            self.torso,
            self.inputs,
            self.ndims,
        )
        detach = self.shared_encoder and not self.encoder_actor_gradient
        return ActorNet(head, make_encoders(self.inputs, self.ndims), detach)

    @property
    def critic(self) -> CriticNet:
        """The critic network (init and apply of one critic, and of the ensemble over shared encoders)."""
        head = Critic(
            self.critic_hidden,
            self.critic_action_layer,
            self.final_init,
            self.atoms,
            self.torso,
            self.inputs,
            self.ndims,
        )
        return CriticNet(head, make_encoders(self.inputs, self.ndims))

    @property
    def has_encoders(self) -> bool:
        """Whether an input has an encoder torso (then networks hold {"encoder", "head(s)"} params)."""
        return any(spec.torso.kind in ENCODER_KINDS for spec in self.inputs)

    @property
    def has_frozen(self) -> bool:
        """Whether an input's encoder is frozen (its params get no optimizer step)."""
        return any(spec.torso.kind == "frozen" for spec in self.inputs)

    @property
    def actor_optimizer(self) -> optax.GradientTransformation:
        """Adam for the actor, after clipping the gradient's global norm to max_grad_norm when > 0."""
        return adam_optimizer(self.actor_lr, self.max_grad_norm, frozen=self.has_frozen)

    @property
    def critic_optimizer(self) -> optax.GradientTransformation:
        """Adam for the critics, after clipping the gradient's global norm to max_grad_norm when > 0 and adding
        L2 weight decay on the kernels when critic_l2 > 0."""
        return adam_optimizer(self.critic_lr, self.max_grad_norm, self.critic_l2, self.has_frozen)


def adam_optimizer(
    lr: float, max_grad_norm: float, l2: float = 0.0, frozen: bool = False
) -> optax.GradientTransformation:
    """Adam(lr) of g' = clip_by_global_norm(g, max_grad_norm) + l2 * kernels (each part only when > 0); with
    frozen, no update at all for the params of frozen encoders."""
    parts = []
    if max_grad_norm > 0.0:
        parts.append(optax.clip_by_global_norm(max_grad_norm))
    if l2 > 0.0:
        parts.append(optax.add_decayed_weights(l2, mask=kernel_mask))
    parts.append(optax.adam(lr))
    adam = parts[0] if len(parts) == 1 else optax.chain(*parts)
    if not frozen:
        return adam
    return optax.multi_transform({"trained": adam, "frozen": optax.set_to_zero()}, frozen_labels)


def is_frozen(path) -> bool:
    """Whether a parameter belongs to a frozen encoder (its module is named frozen_<input>)."""
    return any(str(getattr(entry, "key", entry)).startswith("frozen_") for entry in path)


def frozen_labels(params):
    """ "frozen" for the params of frozen encoders, "trained" for the others."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "frozen" if is_frozen(path) else "trained", params
    )


def kernel_mask(params):
    """True for weight matrices, False for biases."""
    return jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "kernel", params)


def critic_outputs(spec: LearnerSpec, critic_params, obs, action):
    """Every critic at (s, a), one fused vmapped evaluation: Q_i (num_critics, B) or logits (num_critics, B, atoms)."""
    return spec.critic.apply_ensemble(critic_params, obs, action)


def q_values(spec: LearnerSpec, outputs):
    """Q(s, a) from critic outputs: the value itself, or the mean sum_i p_i z_i of a categorical critic."""
    return expected_value(outputs, spec.support) if spec.atoms else outputs


def lowest_distribution(spec: LearnerSpec, logits):
    """Per example, the logits of the critic whose mean is lowest (clipped double-Q for distributions)."""
    lowest = jnp.argmin(expected_value(logits, spec.support), axis=0)
    return jnp.take_along_axis(logits, lowest[None, :, None], axis=0)[0]


def first_q(spec: LearnerSpec, critic_params, obs, action):
    """Q_1(s, a) of critic 1 out of the ensemble's parameters (a categorical critic's mean)."""
    return q_values(spec, spec.critic.apply(spec.critic.member(critic_params, 0), obs, action))


def batch_shape(spec: LearnerSpec, obs) -> tuple[int, ...]:
    """The leading (batch) axes of an observation pytree."""
    leaf = jax.tree_util.tree_leaves(obs)[0]
    return leaf.shape[: leaf.ndim - spec.ndims[0]]


def with_pretrained(params, pretrained: dict):
    """Encoder params with the given modules' params put in (frozen_<input> and pretrained_<input>: read from
    encoder files)."""
    if not pretrained:
        return params
    inner = dict(params["params"])
    inner.update(pretrained)
    return {**params, "params": inner}


def share_encoder(spec: LearnerSpec, actor, critic):
    """The actor params with the critic's encoder copied in (a shared encoder), or as they are."""
    if not (spec.shared_encoder and spec.has_encoders):
        return actor
    return {**actor, "encoder": critic["encoder"]}


def init_learner(spec: LearnerSpec, key, obs_example, pretrained: dict | None = None) -> LearnerState:
    """Fresh networks (targets equal to the online networks) and optimizer states; pretrained holds the params
    of encoders read from files (frozen and pretrained ones) by module name."""
    key, actor_key, critic_key = jax.random.split(key, 3)
    action_example = jnp.zeros(batch_shape(spec, obs_example) + (spec.action_dim,), jnp.float32)
    actor = spec.actor.init(actor_key, obs_example)
    critic = spec.critic.init_ensemble(critic_key, spec.num_critics, obs_example, action_example)
    if spec.has_encoders:
        actor = {**actor, "encoder": with_pretrained(actor["encoder"], pretrained or {})}
        critic = {**critic, "encoder": with_pretrained(critic["encoder"], pretrained or {})}
        actor = share_encoder(spec, actor, critic)
    return LearnerState(
        actor=actor,
        critic=critic,
        target_actor=actor,
        target_critic=critic,
        actor_opt=spec.actor_optimizer.init(actor),
        critic_opt=spec.critic_optimizer.init(critic),
        key=key,
    )


def polyak(target, online, tau: float):
    """theta' <- tau theta + (1 - tau) theta'."""
    return jax.tree_util.tree_map(lambda t, o: t + tau * (o - t), target, online)


def hard_target_update(spec: LearnerSpec, state: LearnerState, update_index):
    """theta' <- theta after update u when (u + 1) % N == 0, N = target_update_every; N = 0 leaves the targets to
    the Polyak step of actor_step."""
    if not spec.target_update_every:
        return state
    copy = (update_index + 1) % spec.target_update_every == 0

    def copied(target, online):
        return jax.tree_util.tree_map(lambda t, o: jnp.where(copy, o, t), target, online)

    return state._replace(
        target_actor=copied(state.target_actor, state.actor),
        target_critic=copied(state.target_critic, state.critic),
    )


def critic_target(spec: LearnerSpec, state: LearnerState, batch: Batch, key):
    """y = r + discount * min_i Q'_i(s', a'), a' = smoothed mu'(s'); a categorical critic's: Phi(r + discount * Z').

    Phi projects onto the support (Bellemare et al. 2017); Z' is the lowest-mean target critic's distribution.
    Also returns, per example, the share of the target's mass that Phi clips to [v_min, v_max] (0 for scalars).
    """
    next_action = smoothed_target_action(
        spec.actor.apply(state.target_actor, batch.next_obs), key, spec.target_noise, spec.target_noise_clip
    )
    next_outputs = critic_outputs(spec, state.target_critic, batch.next_obs, next_action)
    if spec.atoms:
        next_probs = jax.nn.softmax(lowest_distribution(spec, next_outputs))
        return (
            project_categorical(next_probs, batch.reward, batch.discount, spec.support),
            mass_outside(next_probs, batch.reward, batch.discount, spec.support),
        )
    return td_target(batch.reward, batch.discount, clipped_double_q(next_outputs)), jnp.zeros_like(
        batch.reward
    )


def critic_losses(spec: LearnerSpec, outputs, target):
    """Per example: the loss summed over critics, and the new priority (max over critics).

    Scalar critics: sum_i (Q_i - y)^2 and max_i |Q_i - y|; categorical: sum_i CE(y, p_i) and max_i KL(y || p_i).
    """
    if spec.atoms:
        cross_entropy = categorical_cross_entropy(target[None], outputs)
        return jnp.sum(cross_entropy, axis=0), jnp.max(categorical_kl(target[None], outputs), axis=0)
    errors = outputs - target[None]
    return jnp.sum(jnp.square(errors), axis=0), jnp.max(jnp.abs(errors), axis=0)


def critic_step(spec: LearnerSpec, state: LearnerState, batch: Batch, key):
    """One gradient step of every critic towards the shared target; returns (state, loss, priorities, the batch
    mean of the target mass outside the support)."""
    target, outside = critic_target(spec, state, batch, key)

    def loss_fn(critic):
        losses, priorities = critic_losses(
            spec, critic_outputs(spec, critic, batch.obs, batch.action), target
        )
        return weighted_mean(losses, batch.weight), priorities

    (loss, priorities), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.critic)
    updates, critic_opt = spec.critic_optimizer.update(grads, state.critic_opt, state.critic)
    critic = optax.apply_updates(state.critic, updates)
    actor = share_encoder(spec, state.actor, critic)
    return (
        state._replace(actor=actor, critic=critic, critic_opt=critic_opt),
        loss,
        priorities,
        jnp.mean(outside),
    )


def actor_noise(spec: LearnerSpec, key, actor_params):
    """(key, noise): one fresh factorised noise sample for a NoisyNet actor's update, None (key unused) otherwise."""
    if not spec.noisy:
        return key, None
    key, noise_key = jax.random.split(key)
    return key, factorised_noise(noise_key, noisy_layer_sizes(spec.actor.head_params(actor_params)))


def clip_norm(x, max_norm: float):
    """x min(1, max_norm / ||x||), the L2 norm taken over the last axis."""
    return x * jnp.minimum(1.0, max_norm / jnp.linalg.norm(x, axis=-1, keepdims=True))


def clipped_dpg_loss(action, dqda, max_norm: float):
    """0.5 mean_b ||sg(a_b + clip(dQ/da_b)) - a_b||^2, whose gradient in a_b is -clip(dQ/da_b) / B (rlax.dpg_loss)."""
    target = jax.lax.stop_gradient(action + clip_norm(dqda, max_norm))
    return 0.5 * jnp.mean(jnp.sum(jnp.square(target - action), axis=-1))


def actor_loss(spec: LearnerSpec, critic_params, obs, action):
    """The actor's loss at a = mu(s): -mean Q_1(s, a), or with dqda_clip the DPG loss of dQ_1/da clipped per example."""
    if spec.dqda_clip:
        dqda = jax.grad(lambda a: jnp.sum(first_q(spec, critic_params, obs, a)))(action)
        return clipped_dpg_loss(action, dqda, spec.dqda_clip)
    return dpg_actor_loss(first_q(spec, critic_params, obs, action))


def preactivation_penalty(preactivation, l2: float):
    """l2 mean_b,i u_bi^2 for the pre-tanh outputs u of mu(s) = tanh(u) (HER's guard against saturated tanh)."""
    return l2 * jnp.mean(jnp.square(preactivation))


def actor_step(spec: LearnerSpec, state: LearnerState, batch: Batch):
    """One DPG step of the actor through critic 1 (a NoisyNet actor under one fresh noise sample; with
    preactivation_l2 the penalty on its pre-tanh outputs added), then, unless targets are copied every N updates,
    Polyak updates of both targets."""
    key, noise = actor_noise(spec, state.key, state.actor)

    def loss_fn(actor):
        preactivation = spec.actor.apply(actor, batch.obs, noise, preactivation=True)
        loss = actor_loss(spec, state.critic, batch.obs, jnp.tanh(preactivation))
        if spec.preactivation_l2:
            return loss + preactivation_penalty(preactivation, spec.preactivation_l2)
        return loss

    loss, grads = jax.value_and_grad(loss_fn)(state.actor)
    updates, actor_opt = spec.actor_optimizer.update(grads, state.actor_opt, state.actor)
    actor = optax.apply_updates(state.actor, updates)
    state = state._replace(actor=actor, actor_opt=actor_opt, key=key)
    if spec.shared_encoder and spec.encoder_actor_gradient and spec.has_encoders:
        state = state._replace(critic={**state.critic, "encoder": actor["encoder"]})
    if spec.target_update_every:
        return state, loss
    state = state._replace(
        target_actor=polyak(state.target_actor, actor, spec.tau),
        target_critic=polyak(state.target_critic, state.critic, spec.tau),
    )
    return state, loss


def critic_update(spec: LearnerSpec, state: LearnerState, batch: Batch):
    """Critic step with a fresh key for the target-policy smoothing noise; returns critic_step's four values."""
    key, target_key = jax.random.split(state.key)
    return critic_step(spec, state._replace(key=key), batch, target_key)


def delayed_update(spec: LearnerSpec, state: LearnerState, batch: Batch, update_index):
    """Update u = update_index: its actor step is taken when u + 1 is a multiple of d (a lax.cond), then the
    targets' hard copy when it falls on u."""
    state, critic_loss, priorities, outside = critic_update(spec, state, batch)
    is_actor_step = (update_index + 1) % spec.policy_delay == 0
    state, actor_loss = jax.lax.cond(
        is_actor_step, lambda s: actor_step(spec, s, batch), lambda s: (s, jnp.zeros((), jnp.float32)), state
    )
    state = hard_target_update(spec, state, update_index)
    return state, (
        critic_loss[None],
        jnp.where(is_actor_step, actor_loss, 0.0),
        is_actor_step.astype(jnp.int32),
        priorities[None],
        outside[None],
    )


def update_group(spec: LearnerSpec, state: LearnerState, batches: Batch, first_index):
    """Updates first_index .. first_index + d - 1: d critic steps, the actor step after the last (TD3's delay, no
    cond), each update followed by the targets' hard copy when it falls on it."""
    losses, priorities, outside = [], [], []
    actor_loss = None
    for j in range(spec.policy_delay):
        state, loss, priority, out = critic_update(
            spec, state, jax.tree_util.tree_map(operator.itemgetter(j), batches)
        )
        losses.append(loss)
        priorities.append(priority)
        outside.append(out)
        if j == spec.policy_delay - 1:
            state, actor_loss = actor_step(spec, state, jax.tree_util.tree_map(lambda x: x[-1], batches))
        state = hard_target_update(spec, state, first_index + j)
    return state, (
        jnp.stack(losses),
        actor_loss,
        jnp.ones((), jnp.int32),
        jnp.stack(priorities),
        jnp.stack(outside),
    )


def random_shift(images, key, pad: int):
    """Each image (B, ..., H, W, C) translated by its own integer (dy, dx) in [-pad, pad]^2, edges replicated
    (DrQ-v2's augmentation; the frames of a stack move together)."""
    height, width = images.shape[-3], images.shape[-2]
    padding = [(0, 0)] * (images.ndim - 3) + [(pad, pad), (pad, pad), (0, 0)]
    padded = jnp.pad(images, padding, mode="edge")
    offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * pad + 1)

    def crop(image, offset):
        start = (0,) * (image.ndim - 3) + (offset[0], offset[1], 0)
        return jax.lax.dynamic_slice(image, start, image.shape[:-3] + (height, width, image.shape[-1]))

    return jax.vmap(crop)(padded, offsets)


def augmented(spec: LearnerSpec, batches: Batch, key) -> Batch:
    """Batches (K, B, ...) whose CNN inputs in obs and next_obs are randomly shifted by up to augment_shift pixels,
    obs and next_obs independently."""
    images = [i for i, s in enumerate(spec.inputs) if s.torso.kind in ENCODER_KINDS]

    def shift_obs(obs, key):
        values = obs if isinstance(obs, dict) else {spec.inputs[0].name: obs}
        keys = jax.random.split(key, len(images))
        shifted = dict(values)
        for i, k in zip(images, keys, strict=True):
            x = values[spec.inputs[i].name]
            flat = x.reshape((-1,) + x.shape[2:])
            shifted[spec.inputs[i].name] = random_shift(flat, k, spec.augment_shift).reshape(x.shape)
        return shifted if isinstance(obs, dict) else shifted[spec.inputs[0].name]

    obs_key, next_key = jax.random.split(key)
    return batches._replace(
        obs=shift_obs(batches.obs, obs_key), next_obs=shift_obs(batches.next_obs, next_key)
    )


def mirror_where(flags, x, signs: tuple[float, ...] | None):
    """x (K, B, ...) with the examples where flags (K, B) mirrored: an image (signs None) flipped horizontally,
    a vector times signs."""
    mirrored = x[..., ::-1, :] if signs is None else x * jnp.asarray(signs, x.dtype)
    return jnp.where(flags.reshape(flags.shape + (1,) * (x.ndim - 2)), mirrored, x)


def mirrored(spec: LearnerSpec, batches: Batch, key) -> Batch:
    """Batches (K, B, ...) with a random half of their transitions replaced by their left-right mirror image
    (spec.mirror_inputs, spec.mirror_action): obs, action and next_obs of a transition mirrored together."""
    flags = jax.random.bernoulli(key, 0.5, batches.action.shape[:2])

    def mirror_obs(obs):
        if not isinstance(obs, dict):
            return mirror_where(flags, obs, spec.mirror_inputs[0][1])
        return obs | {name: mirror_where(flags, obs[name], signs) for name, signs in spec.mirror_inputs}

    return batches._replace(
        obs=mirror_obs(batches.obs),
        action=mirror_where(flags, batches.action, spec.mirror_action),
        next_obs=mirror_obs(batches.next_obs),
    )


def update_block(spec: LearnerSpec, state: LearnerState, batches: Batch, first_update):
    """K updates from batches stacked on axis 0, first_update the global index of the first.

    When d divides K (first_update is then a multiple of d), a lax.scan over K/d groups of d updates, each
    ending with the actor step; otherwise a scan over single updates choosing the actor step by lax.cond.
    Returns the state, a summary of the losses (and, for a categorical critic, the mean share of target mass
    outside the support) and the examples' new priorities, shape (K, B).
    """
    count, d = jax.tree_util.tree_leaves(batches)[0].shape[0], spec.policy_delay
    indices = first_update + jnp.arange(count)
    if spec.augment_shift:
        key, shift_key = jax.random.split(state.key)
        state, batches = state._replace(key=key), augmented(spec, batches, shift_key)
    if spec.mirror_action:
        key, mirror_key = jax.random.split(state.key)
        state, batches = state._replace(key=key), mirrored(spec, batches, mirror_key)
    if count % d == 0:
        groups = jax.tree_util.tree_map(lambda x: x.reshape((count // d, d) + x.shape[1:]), batches)
        state, (critic, actor, steps, priorities, outside) = jax.lax.scan(
            lambda s, xs: update_group(spec, s, *xs), state, (groups, indices[::d])
        )
    else:
        state, (critic, actor, steps, priorities, outside) = jax.lax.scan(
            lambda s, xs: delayed_update(spec, s, *xs), state, (batches, indices)
        )
    summary = {
        "critic_loss": jnp.mean(critic),
        "actor_loss_sum": jnp.sum(actor),
        "actor_steps": jnp.sum(steps),
    }
    if spec.atoms:
        summary["support_outside"] = jnp.mean(outside)
    return state, summary, priorities.reshape((count,) + priorities.shape[2:])
