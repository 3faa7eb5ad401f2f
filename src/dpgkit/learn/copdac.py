"""Online deterministic actor-critic (Silver et al. 2014): COPDAC-Q with fixed features, and its neural form.

COPDAC-Q (section 4.3 of the paper), from each transition (s, a, r, s') as it comes, no replay, no targets:
  actor          mu_theta(s) = theta^T phi(s)
  critic         Q_w(s, a) = (a - mu_theta(s))^T grad_theta mu_theta(s)^T w + V_v(s),  V_v(s) = v^T psi(s)
  TD error       delta = r + gamma V_v(s') - Q_w(s, a)            (Q_w(s', mu_theta(s')) = V_v(s'))
  critic         w <- w + alpha_w delta grad_theta mu_theta(s) (a - mu_theta(s));  v <- v + alpha_v delta psi(s)
  actor          theta <- theta + alpha_theta grad_theta mu_theta(s) grad_theta mu_theta(s)^T w
With theta and w as (features, action_dim) matrices, grad_theta mu(s)^T w = W^T phi(s) and the compatible
features are phi(s) (a - mu(s))^T. The neural form swaps in MLPs: delta = r + gamma Q(s', mu(s')) - Q(s, a),
a gradient step of the critic on delta^2 / 2 and of the actor along grad_theta mu(s) grad_a Q(s, a)|a=mu(s).
Actions are in actor units [-1, 1]; the behaviour policy is Gaussian around mu or uniform (off-policy, no
importance weights).

Optional curvature term (curvature=True, not in the paper): Q_w += h^T [(a - mu)_i (a - mu)_j]_{i<=j}. Its
gradient at a = mu is zero, so the actor update is unchanged, but it takes up the quadratic part of the
advantage. Without it, under a behaviour whose a - mu(s) depends on s (uniform), least squares aliases that
quadratic part into w; on an LQR the actor then has no fixed point and diverges (tests/test_dpg.py notes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dpgkit.nets import Actor, Critic

FEATURES = ("linear", "rff", "rbf", "mlp")
VALUE_FEATURES = ("quadratic", "features")
BEHAVIOURS = ("gaussian", "uniform")


@dataclass(frozen=True, kw_only=True)
class OnlineSpec:
    """Static settings of the online update (hashable, so jit specialises on them once); built from a DPGConfig by
    dpgkit.algos.dpg.online_spec, the only source of its values (no defaults here)."""

    action_dim: int
    features: str
    num_features: int
    feature_width: float
    value_features: str
    curvature: bool
    alpha_theta: float
    alpha_w: float
    alpha_v: float
    gamma: float
    behaviour: str
    noise_sigma: float
    hidden: tuple[int, ...]
    actor_lr: float
    critic_lr: float


class Transition(NamedTuple):
    """One transition; discount = gamma (1 - terminated), so truncation bootstraps and termination does not."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    discount: jax.Array
    next_obs: jax.Array


class Features(NamedTuple):
    """A fixed feature map of z = (s - center) / scale: RFF frequencies and phases, or RBF centres."""

    center: jax.Array
    scale: jax.Array
    weights: jax.Array
    phases: jax.Array


class LinearState(NamedTuple):
    """COPDAC-Q parameters: actor theta, advantage weights w, baseline v, and the running average of theta."""

    features: Features
    theta: jax.Array
    w: jax.Array
    v: jax.Array
    h: jax.Array
    theta_avg: jax.Array
    averaged: jax.Array


class NeuralState(NamedTuple):
    """MLP actor and critic parameters with their Adam states."""

    actor: dict
    critic: dict
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def check_spec(spec: OnlineSpec) -> None:
    """Raise ValueError naming the first setting the online update cannot use."""
    choices = {"features": FEATURES, "value_features": VALUE_FEATURES, "behaviour": BEHAVIOURS}
    for name, allowed in choices.items():
        if getattr(spec, name) not in allowed:
            raise ValueError(f"unknown {name} {getattr(spec, name)!r}; choose one of {', '.join(allowed)}")
    if spec.features in ("rff", "rbf") and spec.num_features < 1:
        raise ValueError(f"num_features must be >= 1 for {spec.features} features, got {spec.num_features}")
    if not spec.feature_width > 0:
        raise ValueError(f"feature_width must be > 0, got {spec.feature_width}")


def observation_normaliser(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(center, scale) mapping a finite observation box to [-1, 1]; unbounded dimensions are left as they are."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    finite = np.isfinite(low) & np.isfinite(high) & (high > low)
    low, high = np.where(finite, low, -1.0), np.where(finite, high, 1.0)
    center, scale = (low + high) / 2, (high - low) / 2
    return center.astype(np.float32), scale.astype(np.float32)


def init_features(spec: OnlineSpec, key: jax.Array, low: np.ndarray, high: np.ndarray) -> Features:
    """Draw the fixed features: RFF Omega ~ N(0, 1 / width^2), b ~ U(0, 2 pi); RBF centres ~ U[-1, 1]^n."""
    center, scale = observation_normaliser(low, high)
    n = center.shape[0]
    count = spec.num_features if spec.features in ("rff", "rbf") else 0
    k_weights, k_phases = jax.random.split(key)
    if spec.features == "rff":
        weights = jax.random.normal(k_weights, (count, n)) / spec.feature_width
    else:
        weights = jax.random.uniform(k_weights, (count, n), minval=-1.0, maxval=1.0)
    phases = jax.random.uniform(k_phases, (count,), minval=0.0, maxval=2 * math.pi)
    return Features(jnp.asarray(center), jnp.asarray(scale), weights, phases)


def normalise(features: Features, obs: jax.Array) -> jax.Array:
    """z = (s - center) / scale."""
    return (obs - features.center) / features.scale


def fourier_features(z: jax.Array, omega: jax.Array, phases: jax.Array) -> jax.Array:
    """phi(z) = sqrt(2 / D) cos(Omega z + b) (random Fourier features, Rahimi and Recht 2007)."""
    return jnp.sqrt(2.0 / omega.shape[0]) * jnp.cos(omega @ z + phases)


def rbf_features(z: jax.Array, centers: jax.Array, width: float) -> jax.Array:
    """phi_i(z) = exp(-|z - c_i|^2 / (2 width^2))."""
    return jnp.exp(-jnp.sum((z - centers) ** 2, axis=-1) / (2.0 * width**2))


def quadratic_features(z: jax.Array) -> jax.Array:
    """psi(z) = [1, z_i z_j for i <= j]: exact for the value of a linear policy on an LQR."""
    rows, cols = np.triu_indices(z.shape[0])
    return jnp.concatenate([jnp.ones(1, z.dtype), z[rows] * z[cols]])


def actor_features(spec: OnlineSpec, features: Features, obs: jax.Array) -> jax.Array:
    """phi(s): the normalised observation (linear), random Fourier or RBF features."""
    z = normalise(features, obs)
    if spec.features == "rff":
        return fourier_features(z, features.weights, features.phases)
    if spec.features == "rbf":
        return rbf_features(z, features.weights, spec.feature_width)
    return z


def value_features(spec: OnlineSpec, features: Features, obs: jax.Array) -> jax.Array:
    """psi(s): quadratic monomials of the normalised observation, or [1, phi(s)]."""
    if spec.value_features == "quadratic":
        return quadratic_features(normalise(features, obs))
    return jnp.concatenate([jnp.ones(1), actor_features(spec, features, obs)])


def linear_policy(theta: jax.Array, phi: jax.Array) -> jax.Array:
    """mu_theta(s) = theta^T phi(s)."""
    return phi @ theta


def compatible_advantage(w: jax.Array, phi: jax.Array, action: jax.Array, mu: jax.Array) -> jax.Array:
    """A_w(s, a) = (a - mu(s))^T grad_theta mu(s)^T w = phi(s)^T W (a - mu(s))."""
    return phi @ w @ (action - mu)


def compatible_critic(w, v, phi, psi, action, mu) -> jax.Array:
    """Q_w(s, a) = A_w(s, a) + v^T psi(s) (Silver et al. 2014, Theorem 3)."""
    return compatible_advantage(w, phi, action, mu) + psi @ v


def compatible_features(phi: jax.Array, action: jax.Array, mu: jax.Array) -> jax.Array:
    """grad_theta mu(s) (a - mu(s)) = phi(s) (a - mu(s))^T, the gradient of Q_w in w."""
    return jnp.outer(phi, action - mu)


def curvature_features(action: jax.Array, mu: jax.Array) -> jax.Array:
    """[(a - mu)_i (a - mu)_j for i <= j]: features of the critic's optional curvature term h^T c(a - mu)."""
    return quadratic_features(action - mu)[1:]


def natural_actor_direction(phi: jax.Array, w: jax.Array) -> jax.Array:
    """grad_theta mu(s) grad_theta mu(s)^T w = phi(s) phi(s)^T W."""
    return jnp.outer(phi, phi @ w)


def copdac_update(
    spec: OnlineSpec, state: LinearState, t: Transition, average
) -> tuple[LinearState, jax.Array]:
    """One COPDAC-Q step from one transition; theta_avg also averages the new theta when `average` is true."""
    phi = actor_features(spec, state.features, t.obs)
    psi = value_features(spec, state.features, t.obs)
    psi_next = value_features(spec, state.features, t.next_obs)
    mu = linear_policy(state.theta, phi)
    curvature = curvature_features(t.action, mu) if spec.curvature else jnp.zeros_like(state.h)
    q = compatible_critic(state.w, state.v, phi, psi, t.action, mu) + curvature @ state.h
    delta = t.reward + t.discount * psi_next @ state.v - q
    w = state.w + spec.alpha_w * delta * compatible_features(phi, t.action, mu)
    v = state.v + spec.alpha_v * delta * psi
    h = state.h + spec.alpha_w * delta * curvature
    theta = state.theta + spec.alpha_theta * natural_actor_direction(phi, state.w)
    averaged = state.averaged + jnp.asarray(average, jnp.int32)
    theta_avg = jnp.where(
        average, state.theta_avg + (theta - state.theta_avg) / jnp.maximum(averaged, 1), state.theta_avg
    )
    return LinearState(state.features, theta, w, v, h, theta_avg, averaged), delta


def networks(spec: OnlineSpec) -> tuple[Actor, Critic]:
    """The MLP actor (tanh output) and critic of the neural variant."""
    return Actor(spec.hidden, spec.action_dim), Critic(spec.hidden)


def optimisers(spec: OnlineSpec) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """Adam for the actor and the critic."""
    return optax.adam(spec.actor_lr), optax.adam(spec.critic_lr)


def neural_update(spec: OnlineSpec, state: NeuralState, t: Transition) -> tuple[NeuralState, jax.Array]:
    """One online step: critic on delta^2 / 2, delta = r + gamma Q(s', mu(s')) - Q(s, a); actor along grad_a Q."""
    actor, critic = networks(spec)
    actor_opt, critic_opt = optimisers(spec)
    target = t.reward + t.discount * critic.apply(
        state.critic, t.next_obs, actor.apply(state.actor, t.next_obs)
    )
    target = jax.lax.stop_gradient(target)

    def critic_loss(params):
        delta = target - critic.apply(params, t.obs, t.action)
        return 0.5 * delta**2, delta

    (_, delta), critic_grad = jax.value_and_grad(critic_loss, has_aux=True)(state.critic)
    actor_grad = jax.grad(lambda p: -critic.apply(state.critic, t.obs, actor.apply(p, t.obs)))(state.actor)
    critic_step, critic_opt_state = critic_opt.update(critic_grad, state.critic_opt)
    actor_step, actor_opt_state = actor_opt.update(actor_grad, state.actor_opt)
    return (
        NeuralState(
            optax.apply_updates(state.actor, actor_step),
            optax.apply_updates(state.critic, critic_step),
            actor_opt_state,
            critic_opt_state,
        ),
        delta,
    )


def init_online(
    spec: OnlineSpec, key: jax.Array, low: np.ndarray, high: np.ndarray
) -> LinearState | NeuralState:
    """Initial state: zero actor and critic weights for COPDAC-Q; fan-in uniform MLPs for the neural variant."""
    check_spec(spec)
    obs = jnp.zeros(np.shape(low), jnp.float32)
    if spec.features == "mlp":
        actor, critic = networks(spec)
        actor_opt, critic_opt = optimisers(spec)
        k_actor, k_critic = jax.random.split(key)
        actor_params = actor.init(k_actor, obs)
        critic_params = critic.init(k_critic, obs, jnp.zeros(spec.action_dim))
        return NeuralState(
            actor_params, critic_params, actor_opt.init(actor_params), critic_opt.init(critic_params)
        )
    features = init_features(spec, key, low, high)
    d = actor_features(spec, features, obs).shape[0]
    k = value_features(spec, features, obs).shape[0]
    zeros = jnp.zeros((d, spec.action_dim))
    h = jnp.zeros(spec.action_dim * (spec.action_dim + 1) // 2)
    return LinearState(features, zeros, zeros, jnp.zeros(k), h, zeros, jnp.zeros((), jnp.int32))


def act(spec: OnlineSpec, state, obs: jax.Array, averaged: bool = False) -> jax.Array:
    """The deterministic policy in actor units, clipped to [-1, 1] (averaged: theta_avg once there is one)."""
    if isinstance(state, NeuralState):
        return Actor(spec.hidden, spec.action_dim).apply(state.actor, obs)
    theta = jnp.where(averaged & (state.averaged > 0), state.theta_avg, state.theta)
    return jnp.clip(linear_policy(theta, actor_features(spec, state.features, obs)), -1.0, 1.0)


def explore(spec: OnlineSpec, state, obs: jax.Array, key: jax.Array) -> jax.Array:
    """Behaviour action: clip(mu(s) + N(0, sigma^2), -1, 1), or uniform on [-1, 1]."""
    if spec.behaviour == "uniform":
        return jax.random.uniform(key, (spec.action_dim,), minval=-1.0, maxval=1.0)
    noise = spec.noise_sigma * jax.random.normal(key, (spec.action_dim,))
    return jnp.clip(act(spec, state, obs) + noise, -1.0, 1.0)


def update(spec: OnlineSpec, state, transition: Transition, average=False):
    """One online step of COPDAC-Q or of the neural variant; returns the new state and the TD error."""
    if isinstance(state, NeuralState):
        return neural_update(spec, state, transition)
    return copdac_update(spec, state, transition, average)


def run_online(
    spec: OnlineSpec,
    state,
    reset_fn: Callable,
    step_fn: Callable,
    key: jax.Array,
    steps: int,
    average_from: int | None = None,
):
    """Train online for `steps` steps of a pure JAX env in one lax.scan; returns (state, rewards, TD errors).

    reset_fn(key) -> s and step_fn(s, t, a, key) -> (s', r, terminated, truncated), with t the step in the
    episode; an ended episode restarts from reset_fn. theta is averaged from step average_from on (default:
    the last half).
    """
    average_from = steps // 2 if average_from is None else average_from
    k_reset, k_steps = jax.random.split(key)

    def body(carry, xs):
        state, obs, t = carry
        index, step_key = xs
        k_act, k_env, k_next = jax.random.split(step_key, 3)
        action = explore(spec, state, obs, k_act)
        next_obs, reward, terminated, truncated = step_fn(obs, t, action, k_env)
        discount = spec.gamma * (1.0 - terminated.astype(jnp.float32))
        state, delta = update(
            spec, state, Transition(obs, action, reward, discount, next_obs), index >= average_from
        )
        done = terminated | truncated
        obs = jnp.where(done, reset_fn(k_next), next_obs)
        return (state, obs, jnp.where(done, 0, t + 1)), (reward, delta)

    carry = (state, reset_fn(k_reset), jnp.zeros((), jnp.int32))
    xs = (jnp.arange(steps), jax.random.split(k_steps, steps))
    (state, _, _), (rewards, deltas) = jax.lax.scan(body, carry, xs)
    return state, rewards, deltas


def linear_gain(theta: jax.Array, scale: jax.Array, action_scale) -> np.ndarray:
    """K such that the linear actor's env-unit action is u = -K s: K_ji = -action_scale_j theta_ij / scale_i."""
    theta = np.asarray(theta, np.float64)
    return -(
        np.asarray(action_scale, np.float64).reshape(-1, 1) * (theta / np.asarray(scale).reshape(-1, 1)).T
    )
