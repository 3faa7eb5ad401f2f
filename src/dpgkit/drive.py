"""Driving the held-out test route of LaneFollow-v0 in test mode: meters per disengagement, and the run's video."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np


@dataclass
class RouteDrive:
    """One drive over the test route: meters driven along the lane centre, the safety driver's disengagements,
    env steps, and the rendered frames when recorded."""

    distance: float
    disengagements: int
    steps: int
    frames: list = field(default_factory=list, repr=False)

    @property
    def meters_per_disengagement(self) -> float:
        """Distance / disengagements, the distance itself when there were none (Kendall et al. 2018, Table I)."""
        from dpgkit.envs.lanefollow import meters_per_disengagement

        return meters_per_disengagement(self.distance, self.disengagements)

    def summary(self) -> str:
        """The test numbers in one line."""
        return (
            f"{self.distance:.1f} m, {self.disengagements} disengagement(s), "
            f"{self.meters_per_disengagement:.1f} m per disengagement"
        )


def route_env(env_id: str, record: bool = False) -> gym.Env:
    """env_id in test mode (its held-out route, the safety driver on), rendering frames when record."""
    try:
        return gym.make(env_id, mode="test", render_mode="rgb_array" if record else None)
    except TypeError as error:
        raise ValueError(
            f"{env_id} has no test mode ({error}): driving a test route needs an env taking mode='test', such as "
            "LaneFollow-v0"
        ) from error


def drive_route(
    act: Callable[[dict], np.ndarray], env: gym.Env, record: bool = False, max_steps: int | None = None
) -> RouteDrive:
    """Drive env's test route once with act (observation -> action in the env's units), or its first max_steps
    steps; with record, keep every rendered frame."""
    obs, info = env.reset()
    frames = [env.render()] if record else []
    steps, done = 0, False
    while not done and steps != max_steps:
        obs, _, terminated, truncated, info = env.step(act(obs))
        steps += 1
        done = terminated or truncated
        if record:
            frames.append(env.render())
    return RouteDrive(float(info["distance"]), int(info["disengagements"]), steps, frames)
