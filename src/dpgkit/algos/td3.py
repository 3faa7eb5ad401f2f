"""TD3 (Fujimoto, van Hoof and Meger 2018, Algorithm 1).

Twin critics Q_1, Q_2 and a deterministic actor mu, with targets; each step:
  explore: a = clip(mu(s) + eps, -1, 1), eps ~ N(0, sigma^2); store (s, a, r, s') in the replay
  target smoothing: a' = clip(mu'(s') + clip(eps', -c, c), -1, 1), eps' ~ N(0, 0.2^2), c = 0.5
  clipped double-Q: y = r + gamma (1 - terminated) min_i Q'_i(s', a')
  critics: minimise sum_i (Q_i(s, a) - y)^2
  every d = 2 updates: actor along grad_a Q_1(s, a)|a=mu(s) grad mu(s); targets by Polyak with tau.
These are settings of the shared learner (num_critics=2, target_noise=0.2, policy_delay=2).
"""

from dpgkit.algos.base import Agent, register
from dpgkit.config import TD3Config


@register
class TD3(Agent):
    """Twin Delayed Deep Deterministic policy gradient."""

    name = "td3"
    config_class = TD3Config
