"""The learner's rate: the default samples per insert is the local schedule, chunks of any size get the calls
of one step at a time, and other targets are met exactly over a run."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from dpgkit.config import TD3Config
from dpgkit.rate import calls_between, samples_per_insert, steps_per_call


def test_the_default_target_is_the_local_schedule():
    config = TD3Config(gradient_steps=2, batch_size=64, train_freq=3, actors=4)
    assert samples_per_insert(config) == 2 * 64 / 12
    assert steps_per_call(config) == 12 and isinstance(steps_per_call(config), int)
    assert steps_per_call(config.replace(samples_per_insert=32.0)) == Fraction(2 * 64, 32)
    assert samples_per_insert(config.replace(samples_per_insert=32.0)) == 32.0


def test_one_step_at_a_time_calls_at_the_multiples_after_the_warm_up():
    calls = [calls_between(s - 4, s, 10, 8) for s in range(4, 41, 4)]
    assert calls == [0, 0, 0, 1, 0, 1, 0, 1, 0, 1]  # steps 16, 24, 32, 40


def test_chunks_of_any_size_get_the_calls_of_one_step_at_a_time():
    rng = np.random.default_rng(0)
    for every in (4, Fraction(7, 3), Fraction(256, 32)):
        cuts = np.cumsum(rng.integers(1, 300, 40))
        chunks = sum(calls_between(a, b, 500, every) for a, b in zip(np.r_[0, cuts[:-1]], cuts, strict=True))
        steps = sum(calls_between(s - 1, s, 500, every) for s in range(1, int(cuts[-1]) + 1))
        assert chunks == steps
        assert abs(chunks - (cuts[-1] - 499) / every) <= 1  # the rate is kept
