"""Linear-quadratic regulator: an environment whose optimal policy and policy costs are known exactly.

Dynamics x' = A x + B u + w, w ~ N(0, noise_std^2 I); reward -(x^T Q x + u^T R u); start x_0 ~ U[-c, c]^n.
The discounted optimal policy is linear, u = -K x, with K from the discrete algebraic Riccati equation of
(sqrt(gamma) A, sqrt(gamma) B); the cost of any linear policy follows from a discrete Lyapunov equation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg


@dataclass(frozen=True, eq=False)
class LQR:
    """A discounted LQR instance: x' = A x + B u + w, w ~ N(0, noise_std^2 I), cost x^T Q x + u^T R u."""

    A: np.ndarray
    """State transition matrix (n, n)."""
    B: np.ndarray
    """Control matrix (n, m)."""
    Q: np.ndarray
    """State cost (n, n), symmetric positive semi-definite."""
    R: np.ndarray
    """Control cost (m, m), symmetric positive definite."""
    gamma: float = 0.9
    """Discount factor of the problem; the instance needs rho(A) sqrt(gamma) < 1."""
    noise_std: float = 0.0
    """Standard deviation of the Gaussian process noise w, per state dimension."""
    start_scale: float = 1.0
    """Start states are uniform in [-start_scale, start_scale]^n."""

    def __post_init__(self):
        for name in ("A", "B", "Q", "R"):
            object.__setattr__(self, name, np.atleast_2d(np.asarray(getattr(self, name), np.float64)))
        check_lqr(self)

    @property
    def state_dim(self) -> int:
        """n, the dimension of x."""
        return self.A.shape[0]

    @property
    def action_dim(self) -> int:
        """m, the dimension of u."""
        return self.B.shape[1]


def spectral_radius(matrix: np.ndarray) -> float:
    """rho(M) = max |eigenvalue of M|."""
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def check_lqr(lqr: LQR) -> None:
    """Raise ValueError naming what makes an LQR instance ill-posed."""
    n, m = lqr.A.shape[0], lqr.B.shape[1]
    if lqr.A.shape != (n, n):
        raise ValueError(f"LQR: A must be square, got shape {lqr.A.shape}")
    if lqr.B.shape != (n, m):
        raise ValueError(f"LQR: B must have shape ({n}, m) to match A, got {lqr.B.shape}")
    if lqr.Q.shape != (n, n) or lqr.R.shape != (m, m):
        raise ValueError(f"LQR: Q must be ({n}, {n}) and R ({m}, {m}), got {lqr.Q.shape} and {lqr.R.shape}")
    if not (np.allclose(lqr.Q, lqr.Q.T) and np.linalg.eigvalsh(lqr.Q).min() >= -1e-12):
        raise ValueError("LQR: Q must be symmetric positive semi-definite")
    if not (np.allclose(lqr.R, lqr.R.T) and np.linalg.eigvalsh(lqr.R).min() > 0):
        raise ValueError("LQR: R must be symmetric positive definite")
    if not 0.0 < lqr.gamma < 1.0:
        raise ValueError(f"LQR: gamma must be in (0, 1), got {lqr.gamma}")
    if not (lqr.noise_std >= 0 and lqr.start_scale >= 0):
        raise ValueError(
            f"LQR: noise_std and start_scale must be >= 0, got {lqr.noise_std}, {lqr.start_scale}"
        )
    rho = spectral_radius(lqr.A) * np.sqrt(lqr.gamma)
    if rho >= 1.0:
        raise ValueError(
            f"LQR: rho(A) * sqrt(gamma) = {rho:.4f} >= 1, so the zero policy has infinite discounted cost; "
            "choose a smaller gamma or a less unstable A"
        )


def optimal_value_matrix(lqr: LQR) -> np.ndarray:
    """P of the discounted DARE: P = Q + g A^T P A - g^2 A^T P B (R + g B^T P B)^-1 B^T P A, g = gamma."""
    root = np.sqrt(lqr.gamma)
    return scipy.linalg.solve_discrete_are(root * lqr.A, root * lqr.B, lqr.Q, lqr.R)


def optimal_gain(lqr: LQR) -> np.ndarray:
    """K* = gamma (R + gamma B^T P B)^-1 B^T P A, the optimal policy being u = -K* x."""
    p = optimal_value_matrix(lqr)
    return np.linalg.solve(lqr.R + lqr.gamma * lqr.B.T @ p @ lqr.B, lqr.gamma * lqr.B.T @ p @ lqr.A)


def closed_loop_stable(lqr: LQR, gain: np.ndarray) -> bool:
    """Whether sqrt(gamma) rho(A - B K) < 1, i.e. u = -K x has a finite discounted cost."""
    return spectral_radius(lqr.A - lqr.B @ gain) * np.sqrt(lqr.gamma) < 1.0


def policy_value_matrix(lqr: LQR, gain: np.ndarray) -> np.ndarray:
    """P_K solving the Lyapunov equation P_K = Q + K^T R K + gamma (A - B K)^T P_K (A - B K)."""
    gain = np.atleast_2d(np.asarray(gain, np.float64))
    if not closed_loop_stable(lqr, gain):
        raise ValueError(f"the gain {gain.tolist()} does not stabilise the discounted system")
    closed = np.sqrt(lqr.gamma) * (lqr.A - lqr.B @ gain)
    return scipy.linalg.solve_discrete_lyapunov(closed.T, lqr.Q + gain.T @ lqr.R @ gain)


def start_covariance(lqr: LQR) -> np.ndarray:
    """E[x_0 x_0^T] = c^2 / 3 I for x_0 uniform in [-c, c]^n."""
    return np.eye(lqr.state_dim) * lqr.start_scale**2 / 3.0


def policy_cost(lqr: LQR, gain: np.ndarray, start_cov: np.ndarray | None = None) -> float:
    """J(K) = tr(P_K S_0) + gamma / (1 - gamma) noise_std^2 tr(P_K), S_0 = E[x_0 x_0^T]; inf if unstable."""
    gain = np.atleast_2d(np.asarray(gain, np.float64))
    if not closed_loop_stable(lqr, gain):
        return float("inf")
    p = policy_value_matrix(lqr, gain)
    start_cov = start_covariance(lqr) if start_cov is None else np.atleast_2d(start_cov)
    noise = lqr.gamma / (1.0 - lqr.gamma) * lqr.noise_std**2 * np.trace(p)
    return float(np.trace(p @ start_cov) + noise)


def quadratic_cost(lqr: LQR, state, action):
    """x^T Q x + u^T R u (numpy or JAX arrays)."""
    return state @ lqr.Q @ state + action @ lqr.R @ action


def rollout_cost(lqr: LQR, policy: Callable, starts: np.ndarray, action_bound: float, seed: int = 0) -> float:
    """Mean over start states of sum_t gamma^t (x_t^T Q x_t + u_t^T R u_t), u = clip(policy(x)), common noise.

    The horizon is long enough that gamma^T < 1e-8; no state bound, so an unstable policy shows its full cost.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(starts, np.float64)
    total = np.zeros(len(x))
    for t in range(int(np.ceil(np.log(1e-8) / np.log(lqr.gamma)))):
        u = np.clip(np.asarray(policy(x.astype(np.float32)), np.float64), -action_bound, action_bound)
        total += lqr.gamma**t * (
            np.einsum("bi,ij,bj->b", x, lqr.Q, x) + np.einsum("bi,ij,bj->b", u, lqr.R, u)
        )
        x = x @ lqr.A.T + u @ lqr.B.T + lqr.noise_std * rng.standard_normal(x.shape)
    return float(total.mean())


class LQREnv(gym.Env):
    """Gymnasium LQR: leaving the state bound or reaching max_steps truncates the episode; it never terminates.

    With all rewards negative, termination would be a reward, so the state bound truncates instead.
    reset(options={"state": x}) starts from a given state.
    """

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(
        self,
        A,
        B,
        Q,
        R,
        gamma: float = 0.9,
        noise_std: float = 0.1,
        start_scale: float = 1.0,
        action_bound: float = 3.0,
        state_bound: float = 5.0,
        max_steps: int = 50,
    ):
        self.lqr = LQR(A, B, Q, R, gamma, noise_std, start_scale)
        if not (action_bound > 0 and state_bound > start_scale and max_steps > 0):
            raise ValueError(
                "LQREnv: need action_bound > 0, state_bound > start_scale and max_steps > 0, got "
                f"{action_bound}, {state_bound} (start_scale {start_scale}), {max_steps}"
            )
        self.action_bound, self.state_bound, self.max_steps = action_bound, state_bound, max_steps
        n, m = self.lqr.state_dim, self.lqr.action_dim
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)
        self.action_space = gym.spaces.Box(-action_bound, action_bound, (m,), np.float32)
        self.state = np.zeros(n)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        scale = self.lqr.start_scale
        if options and "state" in options:
            self.state = np.asarray(options["state"], np.float64).reshape(self.lqr.state_dim)
        else:
            self.state = self.np_random.uniform(-scale, scale, self.lqr.state_dim)
        self.t = 0
        return self.state.astype(np.float32), {}

    def step(self, action):
        u = np.clip(np.asarray(action, np.float64), -self.action_bound, self.action_bound)
        reward = -float(quadratic_cost(self.lqr, self.state, u))
        noise = self.lqr.noise_std * self.np_random.standard_normal(self.lqr.state_dim)
        self.state = self.lqr.A @ self.state + self.lqr.B @ u + noise
        self.t += 1
        truncated = bool(np.any(np.abs(self.state) > self.state_bound) or self.t >= self.max_steps)
        return self.state.astype(np.float32), reward, False, truncated, {}


def functional_lqr(env: LQREnv) -> tuple[Callable, Callable]:
    """Pure JAX (reset(key) -> x, step(x, t, a, key) -> (x', r, terminated, truncated)) of an LQREnv.

    Actions are in actor units [-1, 1], scaled by the action bound; semantics match LQREnv.step.
    """
    lqr = env.lqr
    a_mat, b_mat, q_mat, r_mat = (jnp.asarray(x, jnp.float32) for x in (lqr.A, lqr.B, lqr.Q, lqr.R))
    n, scale = lqr.state_dim, lqr.start_scale

    def reset(key):
        return jax.random.uniform(key, (n,), jnp.float32, -scale, scale)

    def step(x, t, action, key):
        u = jnp.clip(action, -1.0, 1.0) * env.action_bound
        reward = -(x @ q_mat @ x + u @ r_mat @ u)
        x_next = a_mat @ x + b_mat @ u + lqr.noise_std * jax.random.normal(key, (n,), jnp.float32)
        truncated = jnp.any(jnp.abs(x_next) > env.state_bound) | (t + 1 >= env.max_steps)
        return x_next, reward, jnp.zeros((), bool), truncated

    return reset, step


INSTANCES = {
    "dpgkit/LQR1D-v0": {"A": [[1.0]], "B": [[1.0]], "Q": [[1.0]], "R": [[1.0]]},
    "dpgkit/LQR2D-v0": {
        "A": [[1.0, 0.2], [0.0, 1.0]],
        "B": [[0.0], [1.0]],
        "Q": [[1.0, 0.0], [0.0, 0.5]],
        "R": [[1.0]],
    },
}
"""The registered instances (gamma 0.9, noise_std 0.1 and the LQREnv defaults otherwise)."""


def register_envs() -> None:
    """Register the LQR instances with Gymnasium (idempotent)."""
    for env_id, kwargs in INSTANCES.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="dpgkit.envs.lqr:LQREnv", kwargs=kwargs)
