"""The algorithms: each a config preset of the shared learner and loop."""

from dpgkit.algos.base import ALGORITHMS, Agent
from dpgkit.algos.d4pg import D4PG
from dpgkit.algos.ddpg import DDPG
from dpgkit.algos.dpg import DPG
from dpgkit.algos.td3 import TD3

__all__ = ["ALGORITHMS", "D4PG", "DDPG", "DPG", "TD3", "Agent"]
