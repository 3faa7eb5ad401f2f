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
    project_categorical,
    support,
)
from dpgkit.learn.losses import dpg_actor_loss, weighted_mean
from dpgkit.learn.targets import clipped_double_q, smoothed_target_action, td_target
from dpgkit.nets import Actor, Critic
from dpgkit.nets.layers import factorised_noise

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


@dataclass(frozen=True)
class LearnerSpec:
    """Static settings of the update (hashable; a change means a new compilation)."""

    action_dim: int
    hidden: tuple[int, ...] = (256, 256)
    critic_action_layer: int = 0
    final_init: float = 0.0
    num_critics: int = 2
    policy_delay: int = 2
    target_noise: float = 0.2
    target_noise_clip: float = 0.5
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    critic_l2: float = 0.0
    atoms: int = 0
    v_min: float = -100.0
    v_max: float = 100.0
    layer_norm: bool = False
    noisy: bool = False
    noisy_sigma0: float = 0.5

    @property
    def support(self) -> jax.Array:
        """The atoms of a categorical critic (its return distribution's fixed support)."""
        return support(self.v_min, self.v_max, self.atoms)

    @property
    def actor(self) -> Actor:
        """The actor module."""
        return Actor(
            self.hidden, self.action_dim, self.final_init, self.layer_norm, self.noisy, self.noisy_sigma0
        )

    @property
    def critic(self) -> Critic:
        """The critic module (one of the ensemble)."""
        return Critic(self.hidden, self.critic_action_layer, self.final_init, self.atoms)

    @property
    def actor_optimizer(self) -> optax.GradientTransformation:
        """Adam for the actor."""
        return optax.adam(self.actor_lr)

    @property
    def critic_optimizer(self) -> optax.GradientTransformation:
        """Adam for the critics, with L2 weight decay on the kernels added to the gradient when critic_l2 > 0."""
        adam = optax.adam(self.critic_lr)
        if self.critic_l2 == 0.0:
            return adam
        return optax.chain(optax.add_decayed_weights(self.critic_l2, mask=kernel_mask), adam)


def kernel_mask(params):
    """True for weight matrices, False for biases."""
    return jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "kernel", params)


def critic_outputs(spec: LearnerSpec, critic_params, obs, action):
    """Every critic at (s, a), one fused vmapped evaluation: Q_i (num_critics, B) or logits (num_critics, B, atoms)."""
    return jax.vmap(spec.critic.apply, in_axes=(0, None, None))(critic_params, obs, action)


def q_values(spec: LearnerSpec, outputs):
    """Q(s, a) from critic outputs: the value itself, or the mean sum_i p_i z_i of a categorical critic."""
    return expected_value(outputs, spec.support) if spec.atoms else outputs


def lowest_distribution(spec: LearnerSpec, logits):
    """Per example, the logits of the critic whose mean is lowest (clipped double-Q for distributions)."""
    lowest = jnp.argmin(expected_value(logits, spec.support), axis=0)
    return jnp.take_along_axis(logits, lowest[None, :, None], axis=0)[0]


def first_critic(critic_params):
    """Parameters of critic 1, through which the actor is trained."""
    return jax.tree_util.tree_map(lambda p: p[0], critic_params)


def init_learner(spec: LearnerSpec, key, obs_example) -> LearnerState:
    """Fresh networks (targets equal to the online networks) and optimizer states."""
    key, actor_key, critic_key = jax.random.split(key, 3)
    action_example = jnp.zeros(obs_example.shape[:-1] + (spec.action_dim,), jnp.float32)
    actor = spec.actor.init(actor_key, obs_example)
    critic_keys = jax.random.split(critic_key, spec.num_critics)
    critic = jax.vmap(spec.critic.init, in_axes=(0, None, None))(critic_keys, obs_example, action_example)
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


def critic_target(spec: LearnerSpec, state: LearnerState, batch: Batch, key):
    """y = r + discount * min_i Q'_i(s', a'), a' = smoothed mu'(s'); a categorical critic's: Phi(r + discount * Z').

    Phi projects onto the support (Bellemare et al. 2017); Z' is the lowest-mean target critic's distribution.
    """
    next_action = smoothed_target_action(
        spec.actor.apply(state.target_actor, batch.next_obs), key, spec.target_noise, spec.target_noise_clip
    )
    next_outputs = critic_outputs(spec, state.target_critic, batch.next_obs, next_action)
    if spec.atoms:
        next_probs = jax.nn.softmax(lowest_distribution(spec, next_outputs))
        return project_categorical(next_probs, batch.reward, batch.discount, spec.support)
    return td_target(batch.reward, batch.discount, clipped_double_q(next_outputs))


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
    """One gradient step of every critic towards the shared target; returns (state, loss, priorities)."""
    target = critic_target(spec, state, batch, key)

    def loss_fn(critic):
        losses, priorities = critic_losses(
            spec, critic_outputs(spec, critic, batch.obs, batch.action), target
        )
        return weighted_mean(losses, batch.weight), priorities

    (loss, priorities), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.critic)
    updates, critic_opt = spec.critic_optimizer.update(grads, state.critic_opt, state.critic)
    critic = optax.apply_updates(state.critic, updates)
    return state._replace(critic=critic, critic_opt=critic_opt), loss, priorities


def actor_noise(spec: LearnerSpec, key, obs_dim: int):
    """(key, noise): one fresh factorised noise sample for a NoisyNet actor's update, None (key unused) otherwise."""
    if not spec.noisy:
        return key, None
    key, noise_key = jax.random.split(key)
    return key, factorised_noise(noise_key, (obs_dim, *spec.hidden, spec.action_dim))


def actor_step(spec: LearnerSpec, state: LearnerState, batch: Batch):
    """One DPG step of the actor through critic 1 (a NoisyNet actor under one fresh noise sample), then Polyak
    updates of both targets."""
    critic = first_critic(state.critic)
    key, noise = actor_noise(spec, state.key, batch.obs.shape[-1])

    def loss_fn(actor):
        outputs = spec.critic.apply(critic, batch.obs, spec.actor.apply(actor, batch.obs, noise))
        return dpg_actor_loss(q_values(spec, outputs))

    loss, grads = jax.value_and_grad(loss_fn)(state.actor)
    updates, actor_opt = spec.actor_optimizer.update(grads, state.actor_opt, state.actor)
    actor = optax.apply_updates(state.actor, updates)
    state = state._replace(
        actor=actor,
        actor_opt=actor_opt,
        target_actor=polyak(state.target_actor, actor, spec.tau),
        target_critic=polyak(state.target_critic, state.critic, spec.tau),
        key=key,
    )
    return state, loss


def critic_update(spec: LearnerSpec, state: LearnerState, batch: Batch):
    """Critic step with a fresh key for the target-policy smoothing noise; returns (state, loss, priorities)."""
    key, target_key = jax.random.split(state.key)
    return critic_step(spec, state._replace(key=key), batch, target_key)


def delayed_update(spec: LearnerSpec, state: LearnerState, batch: Batch, update_index):
    """One update whose actor step is taken when update_index + 1 is a multiple of d (a lax.cond)."""
    state, critic_loss, priorities = critic_update(spec, state, batch)
    is_actor_step = (update_index + 1) % spec.policy_delay == 0
    state, actor_loss = jax.lax.cond(
        is_actor_step, lambda s: actor_step(spec, s, batch), lambda s: (s, jnp.zeros((), jnp.float32)), state
    )
    return state, (
        critic_loss[None],
        jnp.where(is_actor_step, actor_loss, 0.0),
        is_actor_step.astype(jnp.int32),
        priorities[None],
    )


def update_group(spec: LearnerSpec, state: LearnerState, batches: Batch):
    """d updates: d critic steps, the actor and target step after the last (TD3's delay, no cond)."""
    losses, priorities = [], []
    for j in range(spec.policy_delay):
        state, loss, priority = critic_update(
            spec, state, jax.tree_util.tree_map(operator.itemgetter(j), batches)
        )
        losses.append(loss)
        priorities.append(priority)
    state, actor_loss = actor_step(spec, state, jax.tree_util.tree_map(lambda x: x[-1], batches))
    return state, (jnp.stack(losses), actor_loss, jnp.ones((), jnp.int32), jnp.stack(priorities))


def update_block(spec: LearnerSpec, state: LearnerState, batches: Batch, first_update):
    """K updates from batches stacked on axis 0, first_update the global index of the first.

    When d divides K (first_update is then a multiple of d), a lax.scan over K/d groups of d updates, each
    ending with the actor step; otherwise a scan over single updates choosing the actor step by lax.cond.
    Returns the state, a summary of the losses and the examples' new priorities, shape (K, B).
    """
    count, d = jax.tree_util.tree_leaves(batches)[0].shape[0], spec.policy_delay
    if count % d == 0:
        groups = jax.tree_util.tree_map(lambda x: x.reshape((count // d, d) + x.shape[1:]), batches)
        state, (critic, actor, steps, priorities) = jax.lax.scan(
            lambda s, b: update_group(spec, s, b), state, groups
        )
    else:
        indices = first_update + jnp.arange(count)
        state, (critic, actor, steps, priorities) = jax.lax.scan(
            lambda s, xs: delayed_update(spec, s, *xs), state, (batches, indices)
        )
    summary = {
        "critic_loss": jnp.mean(critic),
        "actor_loss_sum": jnp.sum(actor),
        "actor_steps": jnp.sum(steps),
    }
    return state, summary, priorities.reshape((count,) + priorities.shape[2:])
