"""Behaviour policies of the loop, one per exploration mode, all with the same interface.

Every step the trainer tells the explorer which env copies restarted an episode (begin_episodes), then asks for
the behaviour actions of all copies (after the random warm-up); every `adapt_every` steps it may adapt.
Arrays are shaped (seeds, actors, ...), actions are in the actor's units [-1, 1]. `policy` is the trainer's
jitted actor vmapped over seeds, (params (seeds, ...), obs (seeds, n, obs_dim)) -> actions, shared so that it
compiles once.
"""

from __future__ import annotations

import itertools

import jax
import numpy as np

from dpgkit import xla
from dpgkit.config import Config
from dpgkit.explore.noise import actor_sigmas, make_noise
from dpgkit.explore.param import action_distance, adapted_sigma, perturb
from dpgkit.nets import ActorNet, has_convolutions
from dpgkit.nets.layers import noisy_layer_sizes, scaled_noise
from dpgkit.trees import write_entry


def seed_params(params, seed: int):
    """One seed's parameters out of parameters stacked over seeds (host numpy)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x[seed]), params)


class Explorer:
    """A behaviour policy; the defaults are those of a policy with nothing to redraw, adapt or log."""

    adapt_every = 0

    def begin_episodes(self, reset: np.ndarray) -> None:
        """Note the copies whose episode just started."""

    def actions(self, actor_params, obs: np.ndarray, rngs: list[np.random.Generator]) -> np.ndarray:
        """Behaviour actions of every copy."""
        raise NotImplementedError

    def adapt(self, actor_params, states: np.ndarray, rngs: list[np.random.Generator]) -> None:
        """Adapt to the current actor on replay states shaped (seeds, batch, obs_dim)."""

    def log_values(self, actor_params) -> dict[str, np.ndarray]:
        """Per-seed values to log."""
        return {}

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to checkpoint."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore from state(); every copy restarts its episode."""


class ActionNoiseExplorer(Explorer):
    """a = clip(mu(s) + noise): Gaussian or OU, one process per copy, reset when the copy's episode starts."""

    def __init__(self, config: Config, policy, seeds: int, action_dim: int):
        sigmas = actor_sigmas(config.noise_sigma, config.noise_sigma_max, config.actors)
        self.noises = [
            make_noise(
                config.explore,
                config.actors,
                action_dim,
                sigmas,
                config.ou_theta,
                config.ou_dt,
                config.noise_halving_episodes,
            )
            for _ in range(seeds)
        ]
        self.policy = policy

    def begin_episodes(self, reset: np.ndarray) -> None:
        """Restart the noise process of the copies that restarted."""
        for noise, seed_reset in zip(self.noises, reset, strict=True):
            noise.reset(seed_reset)

    def actions(self, actor_params, obs, rngs):
        """mu(s) plus each copy's next noise, clipped to [-1, 1]."""
        noise = np.stack([n.sample(rng) for n, rng in zip(self.noises, rngs, strict=True)])
        return np.clip(np.asarray(self.policy(actor_params, obs)) + noise, -1.0, 1.0)

    def state(self):
        """Every seed's noise process state."""
        return {f"{i}/{k}": v for i, n in enumerate(self.noises) for k, v in n.state().items()}

    def load_state(self, state):
        """Restore every seed's noise process."""
        for i, noise in enumerate(self.noises):
            noise.load_state({k.split("/", 1)[1]: v for k, v in state.items() if k.startswith(f"{i}/")})


class ParamNoiseExplorer(Explorer):
    """Each copy acts with its own perturbed actor mu~ = mu_{theta + sigma eps}, redrawn when its episode starts
    (or every resample_every steps); each seed's sigma adapts so that the action distance stays near delta."""

    def __init__(self, config: Config, actor: ActorNet, policy, seeds: int, action_dim: int):
        self.sigma = np.full(seeds, config.param_noise_sigma)
        self.distance = np.full(seeds, np.nan)
        self.delta, self.alpha = config.param_noise_delta, config.param_noise_alpha
        self.adapt_every, self.resample_every = config.param_adapt_every, config.param_resample_every
        self.stale = np.ones((seeds, config.actors), bool)
        self.perturbed = None
        self.steps = 0
        self.apply_copies = xla.jit(jax.vmap(jax.vmap(actor.apply)), has_convolutions(actor))
        self.policy = policy

    def begin_episodes(self, reset):
        """Mark the restarted copies for a new perturbation."""
        self.stale |= np.asarray(reset, bool)

    def actions(self, actor_params, obs, rngs):
        """mu~(s) of every copy, after redrawing the stale copies' perturbations from the current actor."""
        if self.resample_every and self.steps % self.resample_every == 0:
            self.stale[:] = True
        self.steps += 1
        if self.perturbed is None:
            self.perturbed = jax.tree_util.tree_map(
                lambda x: np.repeat(np.asarray(x)[:, None], self.stale.shape[1], axis=1), actor_params
            )
        for seed, copy in zip(*np.nonzero(self.stale), strict=True):
            fresh = perturb(seed_params(actor_params, seed), self.sigma[seed], rngs[seed])
            write_entry(self.perturbed, (seed, copy), fresh)
        self.stale[:] = False
        return np.asarray(self.apply_copies(self.perturbed, obs))

    def adapt(self, actor_params, states, rngs):
        """d = distance of a fresh perturbation at the current sigma on the states; sigma <- sigma / alpha or * alpha."""
        fresh = jax.tree_util.tree_map(
            lambda *xs: np.stack(xs),
            *[perturb(seed_params(actor_params, s), self.sigma[s], rng) for s, rng in enumerate(rngs)],
        )
        self.distance = action_distance(self.policy(actor_params, states), self.policy(fresh, states))
        self.sigma = adapted_sigma(self.sigma, self.distance, self.delta, self.alpha)

    def log_values(self, actor_params):
        """The current sigma and the last measured distance of every seed."""
        return {"explore/param_sigma": self.sigma, "explore/param_distance": self.distance}

    def state(self):
        """sigma, the last distance and the step count of every seed."""
        return {"sigma": self.sigma.copy(), "distance": self.distance.copy(), "steps": np.asarray(self.steps)}

    def load_state(self, state):
        """Restore sigma and the distance; every copy draws a new perturbation."""
        self.sigma = np.array(state["sigma"], np.float64)
        self.distance = np.array(state["distance"], np.float64)
        self.steps = int(state["steps"])
        self.stale[:] = True


class NoisyNetExplorer(Explorer):
    """Each copy acts with the NoisyNet actor under its own factorised noise, drawn at the start of its episodes
    (or at every step); the actor's mean and sigma are the learner's current ones."""

    def __init__(self, config: Config, actor: ActorNet, seeds: int, action_dim: int):
        self.actor = actor
        self.every_step = config.noisy_resample == "step"
        self.stale = np.ones((seeds, config.actors), bool)
        self.noise = None
        self.apply = xla.jit(jax.vmap(jax.vmap(actor.apply, in_axes=(None, 0, 0))), has_convolutions(actor))

    def fresh_noise(self, actor_params) -> tuple:
        """Zeroed noise factors (seeds, actors, fan) of every noisy layer, sized from the actor's params."""
        sizes = noisy_layer_sizes(self.actor.head_params(seed_params(actor_params, 0)))
        return tuple(
            (
                np.zeros(self.stale.shape + (fan_in,), np.float32),
                np.zeros(self.stale.shape + (fan_out,), np.float32),
            )
            for fan_in, fan_out in itertools.pairwise(sizes)
        )

    def begin_episodes(self, reset):
        """Mark the restarted copies for new noise."""
        self.stale |= np.asarray(reset, bool)

    def actions(self, actor_params, obs, rngs):
        """The noisy actor's action of every copy, after redrawing the stale copies' noise."""
        if self.every_step:
            self.stale[:] = True
        if self.noise is None:
            self.noise = self.fresh_noise(actor_params)
        for seed, rng in enumerate(rngs):
            copies = np.nonzero(self.stale[seed])[0]
            for layer in self.noise:
                for factor in layer:
                    draw = rng.standard_normal((copies.size, factor.shape[-1]))
                    factor[seed, copies] = np.asarray(scaled_noise(draw), np.float32)
        self.stale[:] = False
        return np.asarray(self.apply(actor_params, obs, self.noise))

    def log_values(self, actor_params):
        """Mean sigma of each layer's weights, per seed."""
        layers = self.actor.head_params(actor_params)["params"]
        return {
            f"explore/noisy_sigma_{i}": np.asarray(layers[name]["sigma_kernel"]).mean(axis=(1, 2))
            for i, name in enumerate(n for n in layers if n.startswith("NoisyDense_"))
        }

    def load_state(self, state):
        """Every copy draws new noise."""
        self.stale[:] = True


def make_explorer(config: Config, actor: ActorNet, policy, seeds: int, action_dim: int) -> Explorer:
    """The configured behaviour policy."""
    if config.explore == "param":
        return ParamNoiseExplorer(config, actor, policy, seeds, action_dim)
    if config.explore == "noisy":
        return NoisyNetExplorer(config, actor, seeds, action_dim)
    return ActionNoiseExplorer(config, policy, seeds, action_dim)
