"""TD targets for deterministic policy gradient critics."""

import jax
import jax.numpy as jnp


def smoothed_target_action(target_action, key, noise_std: float, noise_clip: float):
    """TD3 target-policy smoothing (Fujimoto et al. 2018, eq. 15): clip(mu'(s') + clip(eps, -c, c), -1, 1)."""
    if noise_std == 0.0:
        return target_action
    eps = jnp.clip(noise_std * jax.random.normal(key, target_action.shape), -noise_clip, noise_clip)
    return jnp.clip(target_action + eps, -1.0, 1.0)


def clipped_double_q(next_q):
    """Clipped double-Q: the minimum over the critic axis (axis 0); a single critic is returned as is."""
    return jnp.min(next_q, axis=0)


def td_target(reward, discount, next_value):
    """y = r + discount * V(s'), with discount = gamma^m (1 - terminated) carried by the batch."""
    return reward + discount * next_value
