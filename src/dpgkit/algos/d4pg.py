"""D4PG (Barth-Maron et al. 2018, Algorithm 1): distributed distributional DDPG.

DDPG with four changes, each a setting of the shared learner, replay and collection:
  categorical critic: Z(s, a) a distribution over atoms z_1 .. z_N in [v_min, v_max];
    target Y = Phi(R + gamma^n Z'(s_{t+n}, mu'(s_{t+n}))), Phi the projection onto the atoms;
    critic: minimise the cross-entropy -sum_i Y_i log p_i(s, a); actor: along grad_a E[Z(s, a)]|a=mu(s) grad mu(s)
  n-step returns: R = sum_{k<n} gamma^k r_{t+k+1} (n = 5)
  prioritized replay: P(i) ~ p_i^alpha, updates weighted by (N P(i))^-beta, new priorities KL(Y || p) + eps
  many actors: A environment copies, each with its own exploration noise scale, writing to one replay.
"""

from dpgkit.algos.base import Agent, register
from dpgkit.config import D4PGConfig


@register
class D4PG(Agent):
    """Distributed Distributional Deep Deterministic Policy Gradient."""

    name = "d4pg"
    config_class = D4PGConfig
