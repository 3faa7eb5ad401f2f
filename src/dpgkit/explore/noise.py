"""Action-noise processes in actor units, one independent process per environment copy."""

from __future__ import annotations

import numpy as np


class ActionNoise:
    """Noise of shape (copies, action_dim) drawn from a numpy Generator; reset per copy at episode ends.

    sigma is one scale for every copy, or one scale per copy (a spread of scales across actors). With
    halving_episodes N > 0, a copy's scale after it began e episodes is sigma 2^(-(e - 1) / N).
    """

    def __init__(
        self, copies: int, action_dim: int, sigma: float | np.ndarray, halving_episodes: int = 0
    ):
        self.shape = (copies, action_dim)
        self.base_sigma = np.broadcast_to(np.asarray(sigma, np.float64).reshape(-1, 1), self.shape).copy()
        self.halving_episodes = halving_episodes
        self.episodes = np.zeros(copies, np.int64)
        self.sigma = self.base_sigma.copy()

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """The next noise for every copy."""
        raise NotImplementedError

    def reset(self, done: np.ndarray) -> None:
        """Count the episodes of the copies that restarted, and halve their scale every halving_episodes."""
        self.episodes += np.asarray(done, bool)
        self.sigma = self.base_sigma * halved_scale(self.episodes, self.halving_episodes)[:, None]

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to checkpoint: the episodes each copy began."""
        return {"episodes": self.episodes.copy()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from state() (a checkpoint older than the episode count starts it at 0)."""
        self.episodes = np.array(state.get("episodes", np.zeros_like(self.episodes)), np.int64)
        self.sigma = self.base_sigma * halved_scale(self.episodes, self.halving_episodes)[:, None]


class GaussianNoise(ActionNoise):
    """Independent N(0, sigma^2) noise at every step."""

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """sigma * N(0, I)."""
        return self.sigma * rng.standard_normal(self.shape)


class OrnsteinUhlenbeckNoise(ActionNoise):
    """x <- x + theta (mu - x) dt + sigma sqrt(dt) N(0, I) (Uhlenbeck and Ornstein 1930; Lillicrap et al. 2015)."""

    def __init__(
        self,
        copies: int,
        action_dim: int,
        sigma,
        theta: float = 0.15,
        dt: float = 1e-2,
        mu: float = 0.0,
        halving_episodes: int = 0,
    ):
        super().__init__(copies, action_dim, sigma, halving_episodes)
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
        super().reset(done)
        self.x[np.asarray(done, bool)] = self.mu

    def state(self) -> dict[str, np.ndarray]:
        """The process values and the episode counts."""
        return super().state() | {"x": self.x.copy()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore the process values and the episode counts."""
        super().load_state(state)
        self.x = np.array(state["x"], np.float64)


def actor_sigmas(sigma: float, sigma_max: float, actors: int) -> np.ndarray:
    """Per-actor scales sigma_i = sigma (sigma_max / sigma)^(i / (A - 1)), geometric as Ape-X's epsilons; sigma when
    sigma_max is 0 or there is one actor."""
    if sigma_max == 0.0 or actors == 1:
        return np.full(actors, sigma)
    return sigma * (sigma_max / sigma) ** (np.arange(actors) / (actors - 1))


def halved_scale(episodes: np.ndarray, halving_episodes: int) -> np.ndarray:
    """2^(-(e - 1) / N) for copies that began e >= 1 episodes (1 before the first, and for N = 0: no halving)."""
    if not halving_episodes:
        return np.ones(episodes.shape)
    return 0.5 ** (np.maximum(episodes - 1, 0) / halving_episodes)


def make_noise(
    kind: str, copies: int, action_dim: int, sigma, theta: float, dt: float, halving_episodes: int = 0
) -> ActionNoise:
    """The configured noise process."""
    if kind == "gaussian":
        return GaussianNoise(copies, action_dim, sigma, halving_episodes)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(copies, action_dim, sigma, theta, dt, halving_episodes=halving_episodes)
    raise ValueError(f"unknown exploration noise {kind!r}; choose 'gaussian' or 'ou'")
