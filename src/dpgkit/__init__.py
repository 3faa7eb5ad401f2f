"""dpgkit: the deterministic policy gradient family (DPG, DDPG, TD3, D4PG) in JAX."""

__version__ = "0.1.0"

from dpgkit.algos import DDPG, TD3, Agent
from dpgkit.config import Config, DDPGConfig, TD3Config

__all__ = ["DDPG", "TD3", "Agent", "Config", "DDPGConfig", "TD3Config", "__version__"]
