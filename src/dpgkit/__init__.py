"""dpgkit: the deterministic policy gradient family (DPG, DDPG, TD3, D4PG) in JAX."""

__version__ = "0.1.0"

from dpgkit.algos import D4PG, DDPG, DPG, TD3, Agent
from dpgkit.config import Config, D4PGConfig, DDPGConfig, DPGConfig, TD3Config

__all__ = [
    "D4PG",
    "DDPG",
    "DPG",
    "TD3",
    "Agent",
    "Config",
    "D4PGConfig",
    "DDPGConfig",
    "DPGConfig",
    "TD3Config",
    "__version__",
]
