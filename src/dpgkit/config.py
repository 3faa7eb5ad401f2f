"""Configuration dataclasses: every field is documented, and the docs become `dpgkit train --help`."""

from __future__ import annotations

import dataclasses
import numbers
import pathlib
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
    """Environment copies per seed collecting in parallel in one process (with collect ray: in each worker), each
    with its own exploration noise."""
    collect: Literal["local", "ray"] = "local"
    """Where the env copies run: local (in this process; deterministic), or ray (`workers` Ray actor processes
    shipping chunks of n-step transitions to this process's learner and replay; not bit-reproducible)."""
    workers: int = 4
    """With collect ray: Ray actor processes collecting, each with `actors` env copies per seed."""
    ray_address: str = ""
    """With collect ray: the Ray cluster to join (host:port of its head, or ray://host:port); "": RAY_ADDRESS when
    set, else a new local cluster. Ray reads the cluster's token itself (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or
    ~/.ray/auth_token); dpgkit never reads, logs or saves it."""
    chunk_steps: int = 256
    """With collect ray: env steps of each seed a worker collects per call (rounded up to whole vector steps of its
    actors); their n-step transitions travel as one chunk."""
    param_sync_every: int = 100
    """With collect ray: learner updates between broadcasts of the acting params (one ray.put each); a worker acts
    with the newest broadcast from the start of each chunk."""
    samples_per_insert: float = 0.0
    """Sampled transitions per inserted env step (of each seed) that the learner keeps to, as Reverb's rate limiter
    (Acme's D4PG: 32); 0: gradient_steps x batch_size / (train_freq x actors), a learner call every train_freq
    vector steps, so local and Ray runs learn at the same rate."""
    worker_cpus: float = 1.0
    """With collect ray: CPUs Ray reserves for each worker (below 1 packs several workers per core)."""
    worker_restarts: int = 10
    """With collect ray: times Ray restarts a worker whose process died (killed, out of memory) or that failed
    worker_env_failures times in a row (Ray's max_restarts); one more stops the run, naming the worker."""
    worker_env_failures: int = 3
    """With collect ray: env exceptions in a row after which a worker ends its process and Ray restarts it; after
    each one the worker rebuilds its envs and goes on."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak averaging rate of the target networks: target <- tau * online + (1 - tau) * target."""
    target_update_every: int = 0
    """0: targets follow by Polyak averaging with tau after every actor step. N > 0: targets are copies of the
    online networks, renewed after every N-th learner update (update u, counted from 0 over the whole run in
    critic updates, so K and policy_delay do not change it, copies when (u + 1) % N == 0; Acme: 100); tau unused."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic(s)."""
    critic_l2: float = 0.0
    """L2 weight decay of the critic (added to its gradient, as Lillicrap et al. 2015 use 1e-2)."""
    max_grad_norm: float = 0.0
    """If > 0, the actor's and the critics' gradients are each clipped to this global L2 norm before Adam (Acme:
    40); 0: off."""
    dqda_clip: float = 0.0
    """If > 0, each example's dQ/da is clipped to this L2 norm before it reaches the actor, through the loss
    0.5 ||sg(a + clip(dQ/da)) - a||^2 (then the logged actor loss; Acme's D4PG: 1); 0: off, the loss -Q(s, mu(s))."""
    preactivation_l2: float = 0.0
    """If > 0, the actor's loss adds preactivation_l2 x the mean square of its pre-tanh outputs, so that tanh does
    not saturate and stop the actor's gradient (Andrychowicz et al. 2017, HER: 1); 0: off."""
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
    updates_per_episode: int = 0
    """If > 0, learn between episodes instead of every train_freq steps: after each step in which episodes of the
    first seed ended, this many updates per ended episode (in calls of gradient_steps), none during episodes
    (Kendall et al. 2018)."""
    overlap: bool = False
    """Collect with the params of the learner call before the last, so that acting never waits for the device (one
    call of staleness, as Ape-X and Acme accept); off: every step acts with the newest params (deterministic). A
    resumed run restarts the lag: its first steps act with the newest params."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the actor and the critic MLPs."""
    actor_hidden: tuple[int, ...] | None = None
    """Hidden layer sizes of the actor alone (None: hidden)."""
    critic_hidden: tuple[int, ...] | None = None
    """Hidden layer sizes of the critic alone (None: hidden)."""
    torso: Literal["relu", "layernorm"] = "relu"
    """Hidden layers of actor and critic: relu (dense, ReLU), or layernorm, Acme's LayerNormMLP (dense, LayerNorm,
    tanh in the first layer; dense, ELU in the others). Unlike layer_norm (the actor alone, LayerNorm before every
    ReLU, Plappert et al. 2018 for parameter noise), it changes both networks and their activations."""
    critic_action_layer: int = 0
    """Hidden layer whose input the action joins in the critic (0: with the observation; 1: second layer)."""
    network: Literal["early", "parkour"] = "early"
    """How observation inputs enter the trunk. early: every input (a Box, or each entry of a Dict) joins layer 0
    through its default torso (uint8 images: the CNN `cnn`; anything else as it is). parkour: Heess et al. 2017's
    split for Dict observations with "proprioception" and "terrain" entries: proprioception joins layer 0, the
    terrain goes through its own MLP stream (32, 32) and joins layer 1."""
    torsos: tuple[str, ...] = ()
    """Per-input torso and join layer, over the network's defaults: entries name=torso[@layer], torso one of
    identity, mlp:SIZES (mlp:64,64), cnn:NAME (nature, small) or cnn:C-K-S,...+F, frozen:PATH (an encoder file,
    never trained), pretrained:PATH (an encoder file, trained from there); a single Box observation is named obs.
    Example: terrain=mlp:64,64@1."""
    cnn: str = "nature"
    """CNN of image inputs: nature (Mnih et al. 2015, SB3's NatureCNN: 32-8-4, 64-4-2, 64-3-1 then a 512-unit
    layer), small (Kendall et al. 2018: four 16-channel 3x3 stride-2 convolutions), or layers C-K-S,...+F."""
    encoder: str = ""
    """vae:PATH: the image input's encoder is the one of a VAE file written by `dpgkit pretrain-vae` (its convolutions
    and latent-mean layer), and its latent mean is the state the networks see; frozen unless encoder_trainable. For
    several image inputs use torsos (name=frozen:PATH or name=pretrained:PATH). "": the CNN `cnn`, trained."""
    encoder_trainable: bool = False
    """With encoder: fine-tune the loaded encoder (its params start from the file and are trained as a cnn torso's,
    with shared_encoder by the critic's loss) instead of freezing it."""
    shared_encoder: bool = False
    """One CNN encoder for actor and critics, trained by the critic's loss (DrQ-v2, SAC-AE); off: the actor has
    its own encoder, trained by the actor's loss, and the critics share theirs (SB3's TD3 default)."""
    encoder_actor_gradient: bool = False
    """With shared_encoder, let the actor's loss train the shared encoder too (off: the actor's gradient stops
    at the encoder, as DrQ-v2 and SAC-AE do)."""
    frame_stack: int = 1
    """Observations are the last frame_stack observations of the env, stacked on a new leading axis (Gymnasium's
    FrameStackObservation, the first padded with the reset observation); a CNN sees the frames in its channels."""
    augment_shift: int = 0
    """If > 0, every update shifts each image of obs and next_obs by a random integer offset in
    [-augment_shift, augment_shift] pixels, edges replicated (DrQ-v2: 4); 0: off."""
    mirror: tuple[str, ...] = ()
    """The env's left-right symmetry, for augmentation: one entry per observation input and one for the action,
    name=flip (an image, flipped horizontally) or name=S,S,... (the sign of each component in the mirror image;
    a single Box observation is named obs, the action action). With it every update mirrors a random half of its
    transitions, obs, action and next_obs together. Example (LaneFollow-v0, envs.lanefollow.CAMERA_MIRROR):
    image=flip speed=1 steering=-1 action=-1,1. (): off."""
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
    v_min: float | None = None
    """Lowest atom of the categorical critic, below the lowest discounted return. None (with v_max None): derived
    from the env's finite reward_range, or else from the warm-up's rewards when learning starts; then saved."""
    v_max: float | None = None
    """Highest atom of the categorical critic: above the highest discounted return (None: derived with v_min)."""
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
    explore: Literal["gaussian", "ou", "param", "noisy"] = "gaussian"
    """Exploration: Gaussian or Ornstein-Uhlenbeck action noise, adaptive parameter-space noise, or NoisyNet."""
    noise_sigma: float = 0.1
    """Scale of the exploration noise in actor units [-1, 1]."""
    noise_sigma_max: float = 0.0
    """If > 0, actor i of A explores with noise_sigma * (noise_sigma_max / noise_sigma)^(i / (A - 1)) (Ape-X)."""
    noise_halving_episodes: int = 0
    """If > 0, the action noise's scale (gaussian, ou) halves every this many episodes of each env copy:
    noise_sigma 2^(-e / N) in its episode e + 1 (Kendall et al. 2018: 250); 0: constant."""
    ou_theta: float = 0.15
    """Ornstein-Uhlenbeck rate of mean reversion."""
    ou_dt: float = 1e-2
    """Ornstein-Uhlenbeck time step."""
    param_noise_sigma: float = 0.1
    """Parameter noise: initial std of the Gaussian perturbation of the actor's weights (adapted during training)."""
    param_noise_delta: float = 0.2
    """Parameter noise: target distance sqrt(mean((mu~(s) - mu(s))^2)) between perturbed and plain actions."""
    param_noise_alpha: float = 1.01
    """Parameter noise: sigma <- sigma / alpha when the distance exceeds delta, sigma * alpha otherwise."""
    param_adapt_every: int = 50
    """Parameter noise: environment steps between adaptations of sigma (on a replay batch of states)."""
    param_resample_every: int = 0
    """Parameter noise: environment steps between new perturbations of every copy (0: at each episode start)."""
    layer_norm: bool | None = None
    """Layer normalization before each ReLU of the actor's hidden layers, for parameter noise (None: on with
    parameter noise and the relu torso, off otherwise); not with the layernorm torso, which has its own."""
    act_with_target: bool = False
    """Act (explore, evaluate, Agent.act) with the target actor, as Acme's actors do. Off by default: DDPG's and
    TD3's papers, the TD3 authors' code and SB3 act with the online actor, and runs stay as they were."""
    noisy_sigma0: float = 0.5
    """NoisyNet: initial sigma of every weight is noisy_sigma0 / sqrt(fan_in)."""
    noisy_resample: Literal["episode", "step"] = "episode"
    """NoisyNet: draw each copy's acting noise at the start of its episodes, or at every step."""
    eval_every: int = 5_000
    """Environment steps between deterministic evaluations (0: never)."""
    eval_episodes: int = 10
    """Episodes per evaluation, on fixed evaluation seeds."""
    log_every: int = 1_000
    """Environment steps between log lines (TensorBoard and CSV)."""
    checkpoint_every: int = 0
    """Environment steps between checkpoints (0: none by steps; checkpoint_seconds still applies)."""
    checkpoint_seconds: float = 600.0
    """Seconds of training between checkpoints, spaced so that saving takes at most 2% of the time (0: off)."""
    keep_checkpoints: int = 3
    """Checkpoints of a run kept on disk (its newest ones); only the newest holds the replay."""
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
        explore="ou",
        noise_sigma=0.2,
        ou_theta=0.15,
        critic_action_layer=1,
        final_init=3e-3,
    )


VAE_PREFIX = "vae:"


def vae_encoder_path(encoder: str) -> pathlib.Path:
    """The file of a config.encoder "vae:PATH", which must exist; ValueError naming the field otherwise."""
    if not encoder.startswith(VAE_PREFIX) or encoder == VAE_PREFIX:
        raise ValueError(
            f"config.encoder must read vae:PATH (a file written by `dpgkit pretrain-vae`) or be empty, got {encoder!r}"
        )
    path = pathlib.Path(encoder.removeprefix(VAE_PREFIX))
    if not path.is_file():
        raise ValueError(
            f"config.encoder: the VAE file {path} does not exist; write it with `dpgkit pretrain-vae`"
        )
    return path


COLLECTION_FIELDS = (
    "collect",
    "workers",
    "ray_address",
    "chunk_steps",
    "param_sync_every",
    "worker_cpus",
    "worker_restarts",
    "worker_env_failures",
)
"""Where and how the env copies run: what a checkpoint may resume with changed (a Ray run locally, or back)."""


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
        "param_noise_delta",
        "param_noise_alpha",
        "eval_episodes",
        "log_every",
        "keep_checkpoints",
        "frame_stack",
        "workers",
        "chunk_steps",
        "param_sync_every",
        "worker_cpus",
        "worker_env_failures",
    ]
    for name in positive:
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"config.{name} must be > 0, got {value!r}")
    non_negative = [
        "seed",
        "learning_starts",
        "critic_l2",
        "final_init",
        "target_noise",
        "target_noise_clip",
        "noise_sigma",
        "noise_sigma_max",
        "noise_halving_episodes",
        "priority_alpha",
        "param_noise_sigma",
        "param_adapt_every",
        "param_resample_every",
        "noisy_sigma0",
        "ou_theta",
        "target_update_every",
        "augment_shift",
        "max_grad_norm",
        "dqda_clip",
        "preactivation_l2",
        "eval_every",
        "checkpoint_every",
        "checkpoint_seconds",
        "samples_per_insert",
        "worker_restarts",
    ]
    for name in non_negative:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"config.{name} must be a number >= 0, got {value!r}")
    if not 0.0 < config.tau <= 1.0:
        raise ValueError(f"config.tau must be in (0, 1], got {config.tau!r}")
    if not 0.0 <= config.gamma <= 1.0:
        raise ValueError(f"config.gamma must be in [0, 1], got {config.gamma!r}")
    if not config.ou_dt > 0:
        raise ValueError(f"config.ou_dt must be > 0, got {config.ou_dt!r}")
    if not config.updates_per_episode >= 0 or config.updates_per_episode % config.gradient_steps:
        raise ValueError(
            f"config.updates_per_episode must be a non-negative multiple of config.gradient_steps "
            f"({config.gradient_steps}), got {config.updates_per_episode!r}"
        )
    if config.batch_size > config.buffer_size:
        raise ValueError(
            f"config.batch_size ({config.batch_size}) is larger than the replay (buffer_size {config.buffer_size})"
        )
    for name in ("hidden", "actor_hidden", "critic_hidden"):
        sizes = getattr(config, name)
        if (sizes is not None or name == "hidden") and (not sizes or any(h <= 0 for h in sizes)):
            raise ValueError(f"config.{name} must be a non-empty list of positive sizes, got {sizes!r}")
    critic_layers = len(config.critic_hidden or config.hidden)
    if not 0 <= config.critic_action_layer < critic_layers:
        raise ValueError(
            f"config.critic_action_layer must be in [0, {critic_layers - 1}], got {config.critic_action_layer}"
        )
    if config.network not in ("early", "parkour"):
        raise ValueError(f"config.network must be 'early' or 'parkour', got {config.network!r}")
    if config.encoder_actor_gradient and not config.shared_encoder:
        raise ValueError(
            "config.encoder_actor_gradient needs config.shared_encoder (the actor's own encoder "
            "is always trained by the actor's loss)"
        )
    if config.encoder:
        vae_encoder_path(config.encoder)
    elif config.encoder_trainable:
        raise ValueError("config.encoder_trainable needs config.encoder (vae:PATH, the encoder to fine-tune)")
    if config.torso not in ("relu", "layernorm"):
        raise ValueError(f"config.torso must be 'relu' or 'layernorm', got {config.torso!r}")
    if config.torso == "layernorm" and config.layer_norm:
        raise ValueError(
            "config.layer_norm (LayerNorm before ReLU) cannot be on with config.torso 'layernorm'"
        )
    if config.atoms == 1 or config.atoms < 0:
        raise ValueError(f"config.atoms must be 0 (a scalar critic) or at least 2, got {config.atoms}")
    if (config.v_min is None) != (config.v_max is None):
        raise ValueError("config.v_min and config.v_max must both be given, or both None (derived)")
    if config.atoms and config.v_min is not None and not config.v_min < config.v_max:
        raise ValueError(f"config.v_min ({config.v_min}) must be below config.v_max ({config.v_max})")
    if not 0.0 <= config.priority_beta <= 1.0:
        raise ValueError(f"config.priority_beta must be in [0, 1], got {config.priority_beta!r}")
    if config.noise_sigma_max > 0 and not config.noise_sigma > 0:
        raise ValueError(
            "config.noise_sigma must be > 0 to spread the actors' scales up to config.noise_sigma_max"
        )
    if config.noise_halving_episodes and config.explore not in ("gaussian", "ou"):
        raise ValueError(
            f"config.noise_halving_episodes halves action noise (explore 'gaussian' or 'ou'), not explore "
            f"{config.explore!r}"
        )
    if config.noisy_resample not in ("episode", "step"):
        raise ValueError(f"config.noisy_resample must be 'episode' or 'step', got {config.noisy_resample!r}")
    if config.replay not in ("uniform", "prioritized"):
        raise ValueError(f"config.replay must be 'uniform' or 'prioritized', got {config.replay!r}")
    if config.explore not in ("gaussian", "ou", "param", "noisy"):
        raise ValueError(
            f"config.explore must be 'gaussian', 'ou', 'param' or 'noisy', got {config.explore!r}"
        )
    if config.collect not in ("local", "ray"):
        raise ValueError(f"config.collect must be 'local' or 'ray', got {config.collect!r}")
    if config.collect == "ray" and config.explore == "param":
        raise ValueError(
            "config.explore 'param' adapts each seed's perturbation scale on the acting copies, which Ray workers "
            "do not share: with collect 'ray' explore with 'gaussian', 'ou' or 'noisy'"
        )


def steps_left(config: Config, steps: int) -> int:
    """Env steps from `steps` to config.total_steps; a run already past its total is an error saying so."""
    if steps > config.total_steps:
        raise ValueError(
            f"the run is already at env step {steps}, past config.total_steps ({config.total_steps}): "
            f"total_steps is the run's total, not the steps to add; set it above {steps} to train further"
        )
    return config.total_steps - steps


def warmup_only(config: Config, end_step: int) -> str | None:
    """Why no gradient update would happen in training up to end_step (before learning_starts), or None."""
    if end_step >= config.learning_starts:
        return None
    return (
        f"no gradient update would happen: training ends at env step {end_step}, before learning starts at "
        f"step {config.learning_starts} (learning_starts); lower learning_starts or train for more steps"
    )


@dataclass(frozen=True)
class DPGConfig(Config):
    """DPG (Silver et al. 2014): online deterministic actor-critic, no replay and no target networks.

    Of Config's fields DPG uses env, total_steps, seed, seeds, actors, gamma, noise_sigma (its Gaussian
    behaviour), hidden, actor_lr and critic_lr (features mlp), and the run fields (eval_*, log_every,
    checkpoint_*, keep_checkpoints, run_dir, progress); n_step must stay 1 and explore "gaussian". The replay,
    target-network, TD3, D4PG, exploration and schedule fields are not used. Step sizes default to the measured
    ones for Gaussian behaviour on the dpgkit/LQR envs; a uniform behaviour needs smaller alpha_w, alpha_v and
    curvature.
    """

    features: Literal["linear", "rff", "rbf", "mlp"] = "linear"
    """Actor features phi(s) of COPDAC-Q: the normalised observation, random Fourier or RBF features; mlp: MLPs."""
    num_features: int = 100
    """Number of random Fourier or RBF features (features rff or rbf)."""
    feature_width: float = 0.5
    """Bandwidth of the rff and rbf features, in normalised observation units (a finite box maps to [-1, 1])."""
    value_features: Literal["quadratic", "features"] = "quadratic"
    """Baseline features psi(s) of V_v: [1, quadratic monomials of s] or [1, phi(s)]."""
    curvature: bool = False
    """Add h^T [(a - mu)_i (a - mu)_j] to the compatible critic (zero gradient at a = mu); needed off-policy."""
    alpha_theta: float = 1e-5
    """COPDAC-Q actor step size: theta <- theta + alpha_theta grad mu grad mu^T w."""
    alpha_w: float = 5e-2
    """COPDAC-Q advantage step size: w <- w + alpha_w delta grad mu (a - mu)."""
    alpha_v: float = 1e-3
    """COPDAC-Q baseline step size: v <- v + alpha_v delta psi(s)."""
    behaviour: Literal["gaussian", "uniform"] = "gaussian"
    """Behaviour policy: mu(s) plus Gaussian noise of std noise_sigma, or uniform on the action box."""
    noise_sigma: float = 0.2
    """Std of the Gaussian behaviour noise, in actor units [-1, 1]."""
    average_theta: bool = False
    """Act with the average of theta over the last half of total_steps (linear, rff, rbf features)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the actor and critic MLPs (features mlp)."""
    actor_lr: float = 1e-4
    """Adam learning rate of the MLP actor (features mlp)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the MLP critic (features mlp)."""


@dataclass(frozen=True)
class VAEConfig:
    """`dpgkit pretrain-vae`: a convolutional VAE learnt from random-policy frames (Kendall et al. 2018), whose
    encoder an agent then takes with config.encoder vae:PATH."""

    env: str
    """Gymnasium environment id with an image observation: a uint8 Box (H, W, C), or a Dict with one such entry."""
    env_kwargs: dict[str, bool | int | float | str] = dataclasses.field(default_factory=dict)
    """Keyword arguments of gymnasium.make for env (--env-kwargs NAME VALUE ...; LaneFollow-v0's safety_driver
    True keeps a random episode on its road after the car leaves the lane)."""
    episodes: int = 5
    """Episodes of uniformly random actions whose frames (reset and every step) the VAE learns from (the paper's 5;
    where each episode draws a new scene, as LaneFollow-v0's roads, many short episodes generalise to unseen ones
    far better than a few long ones: benchmarks/RESULTS.md, "The VAE's latent, probed")."""
    episode_steps: int = 1000
    """Step cap of each random episode, so that an env which never ends on its own still gives its frames."""
    out: str = ""
    """Where the VAE file goes (any name; "": runs/vae-<env>.npz, the env id's / and : as -); its PNG of frames and
    reconstructions goes next to it as <name>-reconstructions.png."""
    image_key: str = ""
    """The Dict observation's image entry ("outer/inner" for nested Dicts); "": the only one."""
    cnn: str = "small"
    """The encoder's convolutions, as config.cnn: small (Kendall et al.'s four 16-channel 3x3 stride-2 layers, for
    64x64), nature, or C-K-S,...[+F]; the agent's CNN torso takes the same."""
    latent: int = 32
    """Latent size: the state the agent sees (32, as World Models' VAE for 64x64 frames; the small CNN's 144
    features compressed 4.5x)."""
    beta: float = 1.0
    """Weight of KL(q(z|x) || N(0, I)) against the L2 reconstruction loss (1: the plain VAE)."""
    updates: int = 5000
    """Adam updates, each on batch_size frames drawn uniformly from the collected ones (on LaneFollow-v0 a VAE of
    1,000 reconstructs no road and one of 5,000 does: benchmarks/RESULTS.md, "The VAE's latent, probed")."""
    batch_size: int = 64
    """Frames per update."""
    lr: float = 1e-3
    """Adam learning rate."""
    seed: int = 0
    """Seed of the env, the random actions, the VAE's init and its batches."""
    progress: bool = True
    """Show a progress bar (plain lines when not on a terminal)."""


def validate_vae(config: VAEConfig) -> None:
    """Raise ValueError naming the first field of a VAEConfig whose value makes no sense."""
    for name in ("episodes", "episode_steps", "latent", "updates", "batch_size", "lr"):
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"config.{name} must be > 0, got {value!r}")
    if not config.beta >= 0:
        raise ValueError(f"config.beta must be >= 0, got {config.beta!r}")
