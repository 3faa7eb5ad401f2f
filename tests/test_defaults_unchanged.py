"""New options at their defaults leave runs bit-identical: the learner state after a short run equals the one
recorded in tests/fixtures/default_params/<cpu kind>/<algo>.npz by the code before those options existed
(12587d4): `PYTHONPATH=<12587d4's src> python tests/test_defaults_unchanged.py OUT`, which tests/recorded.py does
for a kind of CPU without a committed folder.
"""

from __future__ import annotations

import pathlib
import sys

import jax
import numpy as np
import pytest

from dpgkit import D4PG, DDPG, TD3
from recorded import recorded

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "default_params"
RECORDED_AT = "12587d4"
SETTINGS = {
    "total_steps": 300,
    "learning_starts": 100,
    "hidden": (16, 16),
    "batch_size": 16,
    "eval_every": 0,
    "progress": False,
}
RUNS = {
    "ddpg": (DDPG, {}),
    "td3": (TD3, {"gradient_steps": 2, "train_freq": 2}),
    "d4pg": (D4PG, {"atoms": 11, "v_min": -850.0, "v_max": 0.0}),
    "ddpg-param": (DDPG, {"explore": "param"}),
}


def short_run(name: str, run_dir) -> dict[str, np.ndarray]:
    """The flattened learner state of a 300-step Pendulum-v1 run of one algorithm, seed 0, on the CPU."""
    agent_class, overrides = RUNS[name]
    agent = agent_class("Pendulum-v1", seed=0, run_dir=str(run_dir), **SETTINGS, **overrides)
    agent.learn()
    flat = jax.tree_util.tree_flatten_with_path(agent.trainer.state)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}


@pytest.fixture(scope="module")
def recorded_states(tmp_path_factory) -> pathlib.Path:
    """The folder of this CPU's fixtures, written by 12587d4's code where none is committed."""
    return recorded(FIXTURES, RECORDED_AT, pathlib.Path(__file__), tmp_path_factory.mktemp("default_params"))


@pytest.mark.parametrize("name", list(RUNS))
def test_default_run_equals_the_recorded_one(name, tmp_path, recorded_states):
    expected = np.load(recorded_states / f"{name}.npz")
    state = short_run(name, tmp_path)
    assert sorted(state) == sorted(expected.files)
    for key, value in state.items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


if __name__ == "__main__":
    import tempfile

    for run in RUNS:
        with tempfile.TemporaryDirectory() as folder:
            np.savez(pathlib.Path(sys.argv[1]) / f"{run}.npz", **short_run(run, folder))
