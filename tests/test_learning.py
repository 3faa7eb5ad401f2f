"""Learning runs (slow): k of 5 seeds reach the return threshold, k set from 10 measured seeds.

The pass rates behind each k are in benchmarks/RESULTS.md (benchmarks/learning_thresholds.py, whose
`learn_until` this test shares). Each seed trains alone and stops once it has reached the threshold.
Run with `make test-slow` or `pytest -m slow`.
"""

import sys
from pathlib import Path

import pytest

from dpgkit import D4PG, DDPG, TD3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from learning_thresholds import learn_until

CASES = [
    # (algorithm, env, steps, threshold, k of 5)
    # Pendulum: 10 of 10 measured seeds passed by 10,000 steps (half the budget): gate 5 of 5.
    (TD3, "Pendulum-v1", 20_000, -200.0, 5),
    (DDPG, "Pendulum-v1", 20_000, -200.0, 5),
    # InvertedPendulum: 10 of 10 passed, but the last at 24,000 of 30,000 steps: gate 4 of 5 (P >= 0.92 even
    # at a true pass rate of 0.9, which 10 of 10 does not rule out).
    (TD3, "InvertedPendulum-v5", 30_000, 1000.0, 4),
    # D4PG (presets: 51 atoms, n = 5, prioritized replay): on Pendulum 9 of 10 passed by 7,000 steps, the tenth
    # plateaued at -201: gate 4 of 5. On InvertedPendulum 10 of 10 by 9,000 of 30,000 steps: gate 5 of 5.
    (D4PG, "Pendulum-v1", 20_000, -200.0, 4),
    (D4PG, "InvertedPendulum-v5", 30_000, 1000.0, 5),
]
EXPLORE_CASES = [
    # TD3 on Pendulum-v1 with each way to explore (Gaussian is the TD3 case above): OU 10 of 10 by 9,000-10,000
    # steps, parameter noise and NoisyNet 10 of 10 by 9,000 steps: 5 of 5 each.
    ("ou", 5),
    ("param", 5),
    ("noisy", 5),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algo", "env", "steps", "threshold", "k"), CASES, ids=lambda c: getattr(c, "name", c)
)
def test_reaches_threshold(tmp_path, algo, env, steps, threshold, k):
    assert_k_of_5_reach(tmp_path, algo, env, steps, threshold, k)


@pytest.mark.slow
@pytest.mark.parametrize(("explore", "k"), EXPLORE_CASES)
def test_td3_explores_pendulum(tmp_path, explore, k):
    assert_k_of_5_reach(tmp_path, TD3, "Pendulum-v1", 20_000, -200.0, k, explore=explore)


@pytest.mark.slow
def test_td3_with_overlap_passes_the_pendulum_gate(tmp_path):
    """Acting one learner call behind (overlap): 10 of 10 measured seeds reached -200 by 9,000 steps: 5 of 5."""
    assert_k_of_5_reach(tmp_path, TD3, "Pendulum-v1", 20_000, -200.0, 5, overlap=True)


@pytest.mark.slow
def test_d4pg_on_ray_passes_the_pendulum_gate(tmp_path):
    """Two Ray workers at the local rate: 10 of 10 measured seeds reached -210 by 6,144 of 20,000 steps: gate 5 of
    5 (at -200 only 7 of 10 did, three plateaued at -200 to -203; benchmarks/RESULTS.md)."""
    assert_k_of_5_reach(tmp_path, D4PG, "Pendulum-v1", 20_000, -210.0, 5, collect="ray", workers=2)


def assert_k_of_5_reach(tmp_path, algo, env, steps, threshold, k, **overrides):
    """Seeds 100-104 train alone from the env's preset (and overrides); at least k reach the threshold."""
    reached = {}
    for seed in range(100, 105):
        agent = algo(
            env,
            seed=seed,
            total_steps=steps,
            eval_every=1_000,
            eval_episodes=10,
            run_dir=str(tmp_path / str(seed)),
            progress=False,
            **overrides,
        )
        reached.update(learn_until(agent, tmp_path / str(seed), steps, threshold, chunk=1_000, needed=1))
        agent.trainer.close()
    passed = [seed for seed, step in reached.items() if step is not None]
    assert len(passed) >= k, f"{len(passed)} of 5 seeds reached {threshold} by {steps} steps: {reached}"


PIXEL_PROBE = {"cnn": "8-3-2,8-3-1", "hidden": (64, 64), "batch_size": 64, "learning_starts": 1_000}


@pytest.mark.slow
def test_td3_learns_from_pixels_alone(tmp_path):
    """dpgkit/PixelDot-v0: a 16x16 image with one bright dot is the only information; a random policy scores -39,
    one that steers the dot to the centre from the image about -4.5. 10 of 10 measured seeds reached -15 by
    10,000 of 20,000 steps (about 40 CPU-seconds a seed): 5 of 5."""
    assert_k_of_5_reach(tmp_path, TD3, "dpgkit/PixelDot-v0", 20_000, -15.0, 5, buffer_size=20_000, **PIXEL_PROBE)


@pytest.mark.slow
def test_td3_learns_from_both_entries_of_a_dict_observation(tmp_path):
    """dpgkit/DictProbe-v0: the best action needs both entries; the best using one alone loses 0.18 per episode.
    10 of 10 measured seeds reached -0.05 by 2,000 of 5,000 steps: 5 of 5."""
    assert_k_of_5_reach(tmp_path, TD3, "dpgkit/DictProbe-v0", 5_000, -0.05, 5, hidden=(64, 64), batch_size=64,
                        learning_starts=1_000)  # fmt: skip
