"""A module registering a small env when imported, for the `module:EnvName-v0` form of env ids."""

import gymnasium as gym

gym.register(id="CustomProbe-v0", entry_point="envs_for_tests:ProbeOneStep")
