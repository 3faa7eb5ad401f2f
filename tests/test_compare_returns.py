"""The statistics behind the return comparisons in benchmarks/RESULTS.md."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

spec = importlib.util.spec_from_file_location(
    "compare_returns", Path(__file__).resolve().parents[1] / "benchmarks" / "compare_returns.py"
)
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def test_welch_t_matches_scipy():
    a = np.array([4635.0, 5710.0, 4150.0, 4044.0, 5573.0])
    b = np.array([4860.0, 5747.0, 4952.0, 4778.0, 4073.0, 5193.0])
    difference, error, t = compare.welch_t(a, b)
    assert difference == pytest.approx(a.mean() - b.mean())
    assert t == pytest.approx(scipy.stats.ttest_ind(a, b, equal_var=False).statistic)
    assert error == pytest.approx(difference / t)


def test_bootstrap_interval_of_constant_runs_is_the_ratio_and_widens_with_spread():
    assert compare.bootstrap_ratio_interval(np.full(5, 3.0), np.full(5, 4.0)) == pytest.approx((0.75, 0.75))
    rng = np.random.default_rng(1)
    a, b = 100 + rng.normal(size=10), 100 + rng.normal(size=10)
    narrow = compare.bootstrap_ratio_interval(a, b)
    wide = compare.bootstrap_ratio_interval(100 + 10 * (a - 100), b)
    assert narrow[0] < a.mean() / b.mean() < narrow[1]
    assert wide[1] - wide[0] > 5 * (narrow[1] - narrow[0])


def test_table_rows_and_missing_seed():
    curves = {0: (np.array([5, 10]), np.array([1.0, 3.0])), 1: (np.array([5, 10]), np.array([2.0, 5.0]))}
    assert compare.table_rows("run", curves, [5, 10], [0, 1]) == [
        "| run seed 0 | 1 | 3 |",
        "| run seed 1 | 2 | 5 |",
        "| run, mean of 2 | 2 | 4 ± 1 |",
    ]
    with pytest.raises(ValueError, match="seed 2 has no value at step 10"):
        compare.returns_at(curves, 10, [0, 2])
    assert compare.seed_range("0-4") == [0, 1, 2, 3, 4] and compare.seed_range("1,5") == [1, 5]
