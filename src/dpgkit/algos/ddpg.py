"""DDPG (Lillicrap et al. 2015, Algorithm 1).

One critic Q and a deterministic actor mu, with targets Q', mu'; each step:
  explore: a = mu(s) + N, N Gaussian or Ornstein-Uhlenbeck; store (s, a, r, s') in the replay
  target: y = r + gamma (1 - terminated) Q'(s', mu'(s'))
  critic: minimise (Q(s, a) - y)^2
  actor: along grad_a Q(s, a)|a=mu(s) grad mu(s); targets by Polyak with tau, every step.
`ddpg` is the TD3 paper's re-tuned "Our DDPG"; `ddpg-paper` is Lillicrap et al.'s own settings.
"""

from dpgkit.algos.base import Agent, register
from dpgkit.config import DDPGConfig, ddpg_paper_config


@register
class DDPG(Agent):
    """Deep Deterministic Policy Gradient ("Our DDPG" of the TD3 paper by default)."""

    name = "ddpg"
    config_class = DDPGConfig

    @classmethod
    def paper(cls, env, seed: int | None = None, **overrides) -> "DDPG":
        """DDPG with Lillicrap et al. (2015)'s published settings (400-300, OU noise, tau 1e-3, L2 1e-2)."""
        config = ddpg_paper_config()
        if isinstance(env, str):
            config = config.replace(env=env)
        return cls(env, config=config, seed=seed, **overrides)
