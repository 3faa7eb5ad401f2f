"""The learner's parameters after short runs equal those written by the code before the one-loop refactor.

The fixtures in tests/fixtures/loop_params/<cpu kind>/ are written by the code of bfff4b2 (before the loop was
reorganised): `PYTHONPATH=<bfff4b2's src> python tests/test_loop_params.py OUT`, which tests/recorded.py does
for a kind of CPU without a committed folder; every later change to the loop, its collectors, drivers and
schedules must leave these runs bit-identical (same seed, same kind of CPU).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dpgkit import D4PG, DDPG, DPG, TD3
from dpgkit.checkpoint import flatten_tree
from recorded import recorded

FIXTURES = Path(__file__).parent / "fixtures" / "loop_params"
RECORDED_AT = "bfff4b2"
BASE = {"hidden": (32, 32), "batch_size": 32, "learning_starts": 200, "eval_every": 0, "progress": False}
CASES = {
    "td3-seeds2-actors2": (TD3, "Pendulum-v1", dict(BASE, seeds=2, actors=2), 600),
    "d4pg-per-n5": (D4PG, "Pendulum-v1", dict(BASE, atoms=11, v_min=-850.0, v_max=0.0), 600),
    "ddpg-ou": (DDPG, "Pendulum-v1", dict(BASE, explore="ou", noise_sigma=0.2), 600),
    "td3-param": (TD3, "Pendulum-v1", dict(BASE, explore="param", param_adapt_every=50), 600),
    "td3-noisy": (TD3, "Pendulum-v1", dict(BASE, explore="noisy"), 600),
    "dpg-linear-lqr2d": (DPG, "dpgkit/LQR2D-v0", {"gamma": 0.9, "eval_every": 0, "progress": False}, 2000),
    "dpg-mlp-pendulum": (
        DPG,
        "Pendulum-v1",
        {"features": "mlp", "hidden": (16, 16), "eval_every": 0, "progress": False},
        400,
    ),
}


def trained_params(name: str, run_dir: Path) -> dict[str, np.ndarray]:
    """The flattened learner state after the case's run (seed 5)."""
    algo, env, settings, steps = CASES[name]
    agent = algo(env, seed=5, run_dir=str(run_dir), **settings).learn(steps)
    return flatten_tree(agent.trainer.state)


@pytest.fixture(scope="module")
def recorded_params(tmp_path_factory) -> Path:
    """The folder of this CPU's fixtures, written by bfff4b2's code where none is committed."""
    return recorded(FIXTURES, RECORDED_AT, Path(__file__), tmp_path_factory.mktemp("loop_params"))


@pytest.mark.parametrize("name", list(CASES))
def test_parameters_equal_the_pre_refactor_run(tmp_path, name, recorded_params):
    """Every leaf, bit for bit."""
    got = trained_params(name, tmp_path)
    with np.load(recorded_params / f"{name}.npz") as want:
        assert sorted(got) == sorted(want.files)
        for key in want.files:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}: {key}")


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for case in CASES:
        np.savez(out / f"{case}.npz", **trained_params(case, out / "runs" / case))
