"""The user-facing agent: construct, learn, act, evaluate, save and load, shared by every algorithm."""

from __future__ import annotations

import dataclasses
import pathlib
import uuid
import warnings
from collections.abc import Callable

import gymnasium as gym
import jax
import numpy as np

from dpgkit.checkpoint import CHECKPOINTS_DIR, latest_checkpoint, load_checkpoint, resolve_step_dir
from dpgkit.config import COLLECTION_FIELDS, Config, steps_left, warmup_only
from dpgkit.driver import ReplayDriver
from dpgkit.envs import as_network_dtypes, check_observation, env_factory
from dpgkit.presets import load_preset
from dpgkit.train import Trainer, config_from_meta, meta_entry


class Agent:
    """An algorithm of the family: its name, config class and default settings; the rest is shared."""

    name = "base"
    config_class: type[Config] = Config
    driver_class: type = ReplayDriver
    warms_up = True
    """Whether the algorithm takes random actions and no update before config.learning_starts."""

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
        self.trainer = Trainer(self.name, config.replace(**overrides), env_factory(env), self.driver_class)

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
        """Train for total_steps more env steps per seed (default: up to config.total_steps).

        Training to config.total_steps without reaching learning_starts is an error; a shorter learn(n) that
        ends before it only warns, since a later call may reach it.
        """
        steps = steps_left(self.config, self.steps) if total_steps is None else total_steps
        no_update = warmup_only(self.config, self.steps + steps) if self.warms_up else None
        if no_update and total_steps is None:
            raise ValueError(no_update)
        if no_update:
            warnings.warn(no_update, stacklevel=2)
        self.trainer.learn(steps)
        return self

    @property
    def observation_spec(self):
        """Shape and dtype of one observation: a jax.ShapeDtypeStruct, or a dict of them for a Dict space."""
        return self.trainer.observation_spec

    def act(self, obs, agent: int = 0) -> np.ndarray:
        """Deterministic action in the env's units for one observation or a batch, in the env's structure (an
        array, or a dict for a Dict space; agent: which seed)."""
        spec = self.observation_spec
        obs = as_network_dtypes(obs)
        batch = check_observation(obs, spec)
        stacked = jax.tree_util.tree_map(
            lambda x, leaf: np.repeat(x.reshape((1, -1) + leaf.shape), self.config.seeds, axis=0), obs, spec
        )
        action = self.trainer.env_actor.scaler.to_env(self.trainer.policy(stacked)[agent])
        return action.reshape(batch + action.shape[-1:])

    def evaluate(self, episodes: int = 10) -> np.ndarray:
        """Returns of deterministic episodes on the fixed evaluation seeds: (episodes,), or (seeds, episodes)."""
        if isinstance(episodes, bool) or not isinstance(episodes, int | np.integer) or episodes < 1:
            raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
        returns = self.trainer.evaluate(episodes)
        return returns[0] if self.config.seeds == 1 else returns

    def save(self, path: str | pathlib.Path | None = None) -> pathlib.Path:
        """Write a resumable checkpoint under path (default: the run dir) and return its folder."""
        return self.trainer.save(self.run_dir if path is None else path)

    def close(self) -> None:
        """Close the environments (and end the Ray workers of collect 'ray')."""
        self.trainer.close()

    @classmethod
    def load(
        cls,
        path: str | pathlib.Path,
        env: str | gym.Env | Callable[[], gym.Env] | None = None,
        **collection,
    ) -> Agent:
        """Load a checkpoint (a run dir or a checkpoint folder), ready to act or to continue learning.

        Args:
            path: the run dir or checkpoint folder.
            env: the env, needed for a run on a custom env (None: the saved env id).
            **collection: where to collect from now on, over the saved config (config.COLLECTION_FIELDS), e.g.
                collect="local" to continue a Ray run in this process.
        """
        arrays, meta = load_checkpoint(path)
        return cls.from_checkpoint(arrays, meta, path, env, **collection)

    @classmethod
    def from_checkpoint(
        cls,
        arrays: dict,
        meta: dict,
        path: str | pathlib.Path,
        env: str | gym.Env | Callable[[], gym.Env] | None = None,
        **collection,
    ) -> Agent:
        """The agent of a checkpoint's arrays and meta read from path; a missing or unknown entry is named."""
        fixed = sorted(set(collection) - set(COLLECTION_FIELDS))
        if fixed:
            raise ValueError(
                f"a checkpoint resumes with its own {', '.join(fixed)}; only {', '.join(COLLECTION_FIELDS)} "
                "(where the env copies run) can change"
            )
        where = f"checkpoint {path}"
        algo = meta_entry(meta, "algo", where)
        if algo not in ALGORITHMS:
            raise ValueError(
                f"{where}: unknown algorithm {algo!r} in meta.json; known: {', '.join(sorted(ALGORITHMS))}"
            )
        if algo != cls.name and cls is not Agent:
            raise ValueError(f"{path} holds a {algo} checkpoint, not {cls.name}")
        agent_class = ALGORITHMS[algo] if cls is Agent else cls
        config = config_from_meta(agent_class.config_class, meta, where)
        if env is None and config.env.startswith(CUSTOM):
            raise ValueError(
                f"{path} was trained on a custom environment ({config.env}): pass env= to load it"
            )
        step_dir = resolve_step_dir(path)
        inside_run = step_dir.parent.name == CHECKPOINTS_DIR
        run_dir = step_dir.parent.parent if inside_run else pathlib.Path(config.run_dir or ".")
        config = dataclasses.replace(config, run_dir=str(run_dir), **collection)
        agent = agent_class(env or config.env, config=config)
        try:
            agent.trainer.restore(arrays, meta)
        except KeyError as error:
            raise ValueError(
                f"{where}: no {error.args[0]!r} entry in meta.json or its arrays (meta.json holds "
                f"{', '.join(sorted(meta))}); it was edited or written by another dpgkit version"
            ) from error
        newest = latest_checkpoint(run_dir) if inside_run else step_dir
        if newest is not None and newest != step_dir:
            trainer = agent.trainer
            trainer.run_id = uuid.uuid4().hex
            trainer.run_dir = run_dir.with_name(f"{run_dir.name}-from-{step_dir.name}")
            trainer.config = trainer.config.replace(run_dir=str(trainer.run_dir))
            warnings.warn(
                f"{step_dir} is not the newest checkpoint of its run ({newest} is): this agent acts as saved "
                f"and is a new run, which learns and saves into {trainer.run_dir}; the run's own checkpoints "
                "stay as they are",
                stacklevel=3,
            )
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
