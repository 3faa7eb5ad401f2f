"""Configuration dataclasses: every field is documented, and the docs become `dpgkit train --help`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Config:
    """Settings shared by every algorithm of the deterministic policy gradient family."""

    env: str = "Pendulum-v1"
    """Gymnasium environment id (any env with a bounded Box action space)."""
    total_steps: int = 100_000
    """Environment steps to train for, per seed (each step of each actor counts)."""
    seed: int = 0
    """Seed of the first agent; agent i uses seed + i. Drives envs, noise, replay and networks."""
    seeds: int = 1
    """Independent agents trained together in one process (learner state vmapped over seeds)."""
    actors: int = 1
    """Environment copies per seed collecting in parallel, each with its own exploration noise."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak averaging rate of the target networks: target <- tau * online + (1 - tau) * target."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic(s)."""
    critic_l2: float = 0.0
    """L2 weight decay of the critic (added to its gradient, as Lillicrap et al. 2015 use 1e-2)."""
    batch_size: int = 256
    """Transitions per gradient update."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions, per seed."""
    learning_starts: int = 25_000
    """Environment steps with uniformly random actions before learning starts."""
    train_freq: int = 1
    """Environment steps (per actor) between learner calls."""
    gradient_steps: int = 1
    """Gradient updates per learner call (K), run in one jitted lax.scan."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the actor and the critic MLPs."""
    critic_action_layer: int = 0
    """Hidden layer whose input the action joins in the critic (0: with the observation; 1: second layer)."""
    final_init: float = 0.0
    """If > 0, final layers are initialised uniformly in [-final_init, final_init] (DDPG paper: 3e-3)."""
    num_critics: int = 2
    """Number of critics; 2 gives the clipped double-Q target of TD3."""
    policy_delay: int = 2
    """Critic updates per actor and target update (TD3's d)."""
    target_noise: float = 0.2
    """Std of the target-policy smoothing noise, in actor units [-1, 1] (0 disables it)."""
    target_noise_clip: float = 0.5
    """Clip of the target-policy smoothing noise."""
    atoms: int = 0
    """Atoms of a categorical (distributional) critic over [v_min, v_max] (D4PG: 51); 0: a scalar critic."""
    v_min: float = -150.0
    """Lowest atom of the categorical critic: below the lowest discounted return (see suggest_support)."""
    v_max: float = 150.0
    """Highest atom of the categorical critic: above the highest discounted return."""
    n_step: int = 1
    """n of the n-step return R = sum_{k<n} gamma^k r_{t+k+1} bootstrapped with gamma^n (D4PG: 5)."""
    replay: Literal["uniform", "prioritized"] = "uniform"
    """Replay sampling: uniform, or proportional prioritized (Schaul et al. 2016)."""
    priority_alpha: float = 0.6
    """Prioritized replay: P(i) proportional to p_i^alpha."""
    priority_beta: float = 0.4
    """Prioritized replay: importance-sampling exponent at the start, annealed linearly to 1 over total_steps."""
    priority_eps: float = 1e-6
    """Prioritized replay: p_i = |TD error| + eps (KL + eps for a categorical critic)."""
    noise: Literal["gaussian", "ou"] = "gaussian"
    """Exploration noise added to the actor's action: Gaussian or Ornstein-Uhlenbeck."""
    noise_sigma: float = 0.1
    """Scale of the exploration noise in actor units [-1, 1]."""
    noise_sigma_max: float = 0.0
    """If > 0, actor i of A explores with noise_sigma * (noise_sigma_max / noise_sigma)^(i / (A - 1)) (Ape-X)."""
    ou_theta: float = 0.15
    """Ornstein-Uhlenbeck rate of mean reversion."""
    ou_dt: float = 1e-2
    """Ornstein-Uhlenbeck time step."""
    eval_every: int = 5_000
    """Environment steps between deterministic evaluations (0: never)."""
    eval_episodes: int = 10
    """Episodes per evaluation, on fixed evaluation seeds."""
    log_every: int = 1_000
    """Environment steps between log lines (TensorBoard and CSV)."""
    checkpoint_every: int = 0
    """Environment steps between checkpoints (0: only at the end of learn)."""
    run_dir: str = ""
    """Where logs and checkpoints go (default: runs/<algo>-<env>-<time>)."""
    progress: bool = True
    """Show a progress bar."""

    def replace(self, **changes) -> Config:
        """A copy with some fields changed (unknown names are an error)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)} for {type(self).__name__}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TD3Config(Config):
    """TD3 (Fujimoto et al. 2018): twin critics, target-policy smoothing, delayed actor updates."""


@dataclass(frozen=True)
class DDPGConfig(Config):
    """DDPG as re-tuned in the TD3 paper ("Our DDPG"): one critic, actor updated every step."""

    num_critics: int = 1
    """Number of critics; 2 gives the clipped double-Q target of TD3."""
    policy_delay: int = 1
    """Critic updates per actor and target update (TD3's d)."""
    target_noise: float = 0.0
    """Std of the target-policy smoothing noise, in actor units [-1, 1] (0 disables it)."""


@dataclass(frozen=True)
class D4PGConfig(Config):
    """D4PG (Barth-Maron et al. 2018): DDPG with a categorical critic, n-step returns and prioritized replay."""

    num_critics: int = 1
    """Number of critics; 2 gives the clipped double-Q target of TD3."""
    policy_delay: int = 1
    """Critic updates per actor and target update (TD3's d)."""
    target_noise: float = 0.0
    """Std of the target-policy smoothing noise, in actor units [-1, 1] (0 disables it)."""
    atoms: int = 51
    """Atoms of a categorical (distributional) critic over [v_min, v_max] (D4PG: 51); 0: a scalar critic."""
    n_step: int = 5
    """n of the n-step return R = sum_{k<n} gamma^k r_{t+k+1} bootstrapped with gamma^n (D4PG: 5)."""
    replay: Literal["uniform", "prioritized"] = "prioritized"
    """Replay sampling: uniform, or proportional prioritized (Schaul et al. 2016)."""


def ddpg_paper_config() -> DDPGConfig:
    """DDPG exactly as Lillicrap et al. (2015) publish it (section 7, supplementary)."""
    return DDPGConfig(
        hidden=(400, 300),
        actor_lr=1e-4,
        critic_lr=1e-3,
        critic_l2=1e-2,
        tau=1e-3,
        batch_size=64,
        noise="ou",
        noise_sigma=0.2,
        ou_theta=0.15,
        critic_action_layer=1,
        final_init=3e-3,
    )


def validate(config: Config) -> None:
    """Raise ValueError naming the first field whose value makes no sense."""
    positive = [
        "total_steps",
        "seeds",
        "actors",
        "actor_lr",
        "critic_lr",
        "batch_size",
        "buffer_size",
        "train_freq",
        "gradient_steps",
        "num_critics",
        "policy_delay",
        "n_step",
        "priority_eps",
        "eval_episodes",
        "log_every",
    ]
    for name in positive:
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"config.{name} must be > 0, got {value!r}")
    non_negative = [
        "learning_starts",
        "critic_l2",
        "final_init",
        "target_noise",
        "target_noise_clip",
        "noise_sigma",
        "noise_sigma_max",
        "priority_alpha",
        "ou_theta",
        "eval_every",
        "checkpoint_every",
    ]
    for name in non_negative:
        value = getattr(config, name)
        if not value >= 0:
            raise ValueError(f"config.{name} must be >= 0, got {value!r}")
    if not 0.0 < config.tau <= 1.0:
        raise ValueError(f"config.tau must be in (0, 1], got {config.tau!r}")
    if not 0.0 <= config.gamma <= 1.0:
        raise ValueError(f"config.gamma must be in [0, 1], got {config.gamma!r}")
    if not config.ou_dt > 0:
        raise ValueError(f"config.ou_dt must be > 0, got {config.ou_dt!r}")
    if config.batch_size > config.buffer_size:
        raise ValueError(
            f"config.batch_size ({config.batch_size}) is larger than the replay (buffer_size {config.buffer_size})"
        )
    if not config.hidden or any(h <= 0 for h in config.hidden):
        raise ValueError(f"config.hidden must be a non-empty list of positive sizes, got {config.hidden!r}")
    if not 0 <= config.critic_action_layer < len(config.hidden):
        raise ValueError(
            f"config.critic_action_layer must be in [0, {len(config.hidden) - 1}], got {config.critic_action_layer}"
        )
    if config.atoms == 1 or config.atoms < 0:
        raise ValueError(f"config.atoms must be 0 (a scalar critic) or at least 2, got {config.atoms}")
    if config.atoms and not config.v_min < config.v_max:
        raise ValueError(f"config.v_min ({config.v_min}) must be below config.v_max ({config.v_max})")
    if not 0.0 <= config.priority_beta <= 1.0:
        raise ValueError(f"config.priority_beta must be in [0, 1], got {config.priority_beta!r}")
    if config.noise_sigma_max > 0 and not config.noise_sigma > 0:
        raise ValueError("config.noise_sigma must be > 0 to spread the actors' scales up to config.noise_sigma_max")
    if config.replay not in ("uniform", "prioritized"):
        raise ValueError(f"config.replay must be 'uniform' or 'prioritized', got {config.replay!r}")
    if config.noise not in ("gaussian", "ou"):
        raise ValueError(f"config.noise must be 'gaussian' or 'ou', got {config.noise!r}")
