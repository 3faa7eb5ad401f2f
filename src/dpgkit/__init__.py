"""dpgkit: the deterministic policy gradient family (DPG, DDPG, TD3, D4PG) in JAX."""

__version__ = "0.1.0"

from dpgkit.algos import DDPG, TD3, Agent  # noqa: E402
from dpgkit.config import Config, DDPGConfig, TD3Config  # noqa: E402

__all__ = ["DDPG", "TD3", "Agent", "Config", "DDPGConfig", "TD3Config", "__version__"]
