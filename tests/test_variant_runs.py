"""The benchmarks' committed rows: more seeds of a variant join its rows file without touching the others."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from variant_runs import finished, values_at, write_eval_rows

from dpgkit.logger import RunLogger


def logged_run(run_dir: Path, seeds: list[int], offset: float) -> Path:
    """A run dir whose metrics.csv has eval/return = offset + seed at steps 5 and 10, and one charts/ row."""
    logger = RunLogger(run_dir, seeds, tensorboard=False)
    for step in (5, 10):
        logger.log(step, {"eval/return": [offset + s for s in seeds], "charts/SPS": [1.0] * len(seeds)})
    logger.close()
    return run_dir


def test_later_seeds_join_the_rows_of_earlier_ones(tmp_path):
    rows = tmp_path / "rows.csv"
    write_eval_rows(logged_run(tmp_path / "first", [0, 1, 2], 100.0), rows)
    assert finished(rows, 10, range(3)) and not finished(rows, 10, range(3, 5))
    write_eval_rows(logged_run(tmp_path / "more", [3, 4], 200.0), rows)
    assert finished(rows, 10, range(5))
    assert sorted(values_at(rows, "eval/return", 10)) == [100.0, 101.0, 102.0, 203.0, 204.0]
    assert "charts/SPS" not in rows.read_text()


def test_a_rerun_of_the_same_seeds_replaces_their_rows(tmp_path):
    rows = tmp_path / "rows.csv"
    write_eval_rows(logged_run(tmp_path / "first", [0, 1], 100.0), rows)
    write_eval_rows(logged_run(tmp_path / "again", [1], 300.0), rows)
    assert sorted(values_at(rows, "eval/return", 5)) == [100.0, 301.0]
    assert not finished(rows, 15, range(2))
