"""The user-facing agent: construct, learn, act, evaluate, save and load, shared by every algorithm."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from dpgkit.checkpoint import load_checkpoint
from dpgkit.config import Config
from dpgkit.envs import env_factory
from dpgkit.presets import load_preset
from dpgkit.train import Trainer, config_from_meta


class Agent:
    """An algorithm of the family: its name, config class and default settings; the rest is shared."""

    name = "base"
    config_class: type[Config] = Config
    trainer_class: type = Trainer

    def __init__(
        self,
        env: str | gym.Env | Callable[[], gym.Env],
        config: Config | None = None,
        seed: int | None = None,
        **overrides,
    ):
        """Build the agent.

        Args:
            env: a Gymnasium env id, an env instance (deep-copied for each copy) or a function making one.
            config: the settings; None takes the algorithm's defaults with the env's preset, if any.
            seed: seed of the first agent (overrides config.seed).
            **overrides: config fields to change, e.g. total_steps=20_000.
        """
        if config is None:
            config = self.default_config(env if isinstance(env, str) else None)
        overrides.setdefault("env", env_name(env))
        if seed is not None:
            overrides["seed"] = seed
        self.trainer = self.trainer_class(self.name, config.replace(**overrides), env_factory(env))

    @property
    def config(self) -> Config:
        """The run's settings (saved with every checkpoint)."""
        return self.trainer.config

    @config.setter
    def config(self, config: Config) -> None:
        self.trainer.config = config

    @classmethod
    def default_config(cls, env_id: str | None = None) -> Config:
        """The algorithm's defaults, with the env's preset applied when there is one."""
        config = cls.config_class()
        if env_id is None:
            return config
        return config.replace(env=env_id, **load_preset(cls.name, env_id))

    @property
    def steps(self) -> int:
        """Env steps taken per seed (stored transitions)."""
        return self.trainer.steps

    @property
    def run_dir(self) -> pathlib.Path:
        """Where logs (and checkpoints, by default) go."""
        return self.trainer.run_dir

    def learn(self, total_steps: int | None = None) -> Agent:
        """Train for total_steps more env steps per seed (default: up to config.total_steps)."""
        steps = self.config.total_steps - self.steps if total_steps is None else total_steps
        self.trainer.learn(steps)
        return self

    def act(self, obs: np.ndarray, agent: int = 0) -> np.ndarray:
        """Deterministic action in the env's units for one observation or a batch (agent: which seed)."""
        obs = np.asarray(obs, np.float32)
        batch = obs.reshape((1, -1, obs.shape[-1]))
        stacked = np.repeat(batch, self.config.seeds, axis=0)
        action = self.trainer.collector.scaler.to_env(self.trainer.policy(stacked)[agent])
        return action.reshape(obs.shape[:-1] + action.shape[-1:])

    def evaluate(self, episodes: int = 10) -> np.ndarray:
        """Returns of deterministic episodes on the fixed evaluation seeds: (episodes,), or (seeds, episodes)."""
        returns = self.trainer.evaluate(episodes)
        return returns[0] if self.config.seeds == 1 else returns

    def save(self, path: str | pathlib.Path | None = None) -> pathlib.Path:
        """Write a resumable checkpoint under path (default: the run dir) and return its folder."""
        return self.trainer.save(self.run_dir if path is None else path)

    @classmethod
    def load(
        cls, path: str | pathlib.Path, env: str | gym.Env | Callable[[], gym.Env] | None = None
    ) -> Agent:
        """Load a checkpoint (a run dir or a checkpoint folder), ready to act or to continue learning."""
        arrays, meta = load_checkpoint(path)
        if meta["algo"] != cls.name and cls is not Agent:
            raise ValueError(f"{path} holds a {meta['algo']} checkpoint, not {cls.name}")
        agent_class = ALGORITHMS[meta["algo"]] if cls is Agent else cls
        config = config_from_meta(agent_class.config_class, meta)
        if env is None and config.env.startswith(CUSTOM):
            raise ValueError(
                f"{path} was trained on a custom environment ({config.env}): pass env= to load it"
            )
        run_dir = (
            pathlib.Path(path)
            if (pathlib.Path(path) / "checkpoints").is_dir()
            else pathlib.Path(config.run_dir)
        )
        agent = agent_class(env or config.env, config=dataclasses.replace(config, run_dir=str(run_dir)))
        agent.trainer.restore(arrays, meta)
        agent.trainer.refresh_acting_actor()
        return agent


CUSTOM = "custom:"


def env_name(env) -> str:
    """The env id to record in the config: the id itself, the spec's id, or custom:<name>."""
    if isinstance(env, str):
        return env
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else f"{CUSTOM}{getattr(env, '__name__', type(env).__name__)}"


ALGORITHMS: dict[str, type[Agent]] = {}


def register(agent_class: type[Agent]) -> type[Agent]:
    """Add an algorithm to the registry used by load and the CLI."""
    ALGORITHMS[agent_class.name] = agent_class
    return agent_class
