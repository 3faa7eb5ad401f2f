"""Action-noise processes in actor units, one independent process per environment copy."""

from __future__ import annotations

import numpy as np


class ActionNoise:
    """Noise of shape (copies, action_dim) drawn from a numpy Generator; reset per copy at episode ends.

    sigma is one scale for every copy, or one scale per copy (a spread of scales across actors).
    """

    def __init__(self, copies: int, action_dim: int, sigma: float | np.ndarray):
        self.shape = (copies, action_dim)
        self.sigma = np.broadcast_to(np.asarray(sigma, np.float64).reshape(-1, 1), self.shape).copy()

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """The next noise for every copy."""
        raise NotImplementedError

    def reset(self, done: np.ndarray) -> None:
        """Restart the process of the copies whose episode ended."""

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to checkpoint."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from state()."""


class GaussianNoise(ActionNoise):
    """Independent N(0, sigma^2) noise at every step."""

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """sigma * N(0, I)."""
        return self.sigma * rng.standard_normal(self.shape)


class OrnsteinUhlenbeckNoise(ActionNoise):
    """x <- x + theta (mu - x) dt + sigma sqrt(dt) N(0, I) (Uhlenbeck and Ornstein 1930; Lillicrap et al. 2015)."""

    def __init__(
        self, copies: int, action_dim: int, sigma, theta: float = 0.15, dt: float = 1e-2, mu: float = 0.0
    ):
        super().__init__(copies, action_dim, sigma)
        self.theta, self.dt, self.mu = theta, dt, mu
        self.x = np.full(self.shape, mu, np.float64)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Advance every copy's process one step and return its value."""
        self.x = (
            self.x
            + self.theta * (self.mu - self.x) * self.dt
            + self.sigma * np.sqrt(self.dt) * rng.standard_normal(self.shape)
        )
        return self.x.copy()

    def reset(self, done: np.ndarray) -> None:
        """Put the finished copies back at mu."""
        self.x[np.asarray(done, bool)] = self.mu

    def state(self) -> dict[str, np.ndarray]:
        """The process values."""
        return {"x": self.x.copy()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore the process values."""
        self.x = np.array(state["x"], np.float64)


def actor_sigmas(sigma: float, sigma_max: float, actors: int) -> np.ndarray:
    """Per-actor scales sigma_i = sigma (sigma_max / sigma)^(i / (A - 1)), geometric as Ape-X's epsilons; sigma when
    sigma_max is 0 or there is one actor."""
    if sigma_max == 0.0 or actors == 1:
        return np.full(actors, sigma)
    return sigma * (sigma_max / sigma) ** (np.arange(actors) / (actors - 1))


def make_noise(kind: str, copies: int, action_dim: int, sigma, theta: float, dt: float) -> ActionNoise:
    """The configured noise process."""
    if kind == "gaussian":
        return GaussianNoise(copies, action_dim, sigma)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(copies, action_dim, sigma, theta, dt)
    raise ValueError(f"unknown exploration noise {kind!r}; choose 'gaussian' or 'ou'")
