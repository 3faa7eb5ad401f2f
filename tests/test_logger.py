import pathlib
import struct

import numpy as np
import pytest
from tensorboardX.proto.event_pb2 import Event

from dpgkit.logger import RunLogger, read_metrics, run_ids


def _tb_scalars(seed_dir):
    """Return {(tag, step): value} from every TFRecord event file under seed_dir."""
    scalars = {}
    for path in seed_dir.glob("events.out.tfevents.*"):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars[(value.tag, event.step)] = value.simple_value
    return scalars


def test_log_and_read_back_per_seed_scalar_and_nan(tmp_path):
    with RunLogger(tmp_path, seeds=[3, 7], tensorboard=False) as logger:
        logger.log(1000, {"charts/episodic_return": np.array([np.nan, -12.5]), "charts/SPS": 812.25})
        logger.log(2000, {"charts/episodic_return": np.array([0.1, 2.0 / 3.0]), "charts/SPS": 790.0})

    metrics = read_metrics(tmp_path)
    assert sorted(metrics) == ["charts/SPS", "charts/episodic_return"]
    ret = metrics["charts/episodic_return"]
    assert sorted(ret) == [3, 7]
    np.testing.assert_array_equal(ret[3][0], [2000])  # NaN at step 1000 skipped
    np.testing.assert_array_equal(ret[3][1], [0.1])
    np.testing.assert_array_equal(ret[7][0], [1000, 2000])
    np.testing.assert_array_equal(ret[7][1], [-12.5, 2.0 / 3.0])  # exact float round trip
    for seed in (3, 7):
        np.testing.assert_array_equal(metrics["charts/SPS"][seed][0], [1000, 2000])
        np.testing.assert_array_equal(metrics["charts/SPS"][seed][1], [812.25, 790.0])
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,seed,key,value,run"
    assert len(lines) == 1 + 7


def test_log_rejects_wrong_shape(tmp_path):
    logger = RunLogger(tmp_path, seeds=[0, 1], tensorboard=False)
    with pytest.raises(ValueError, match="shape"):
        logger.log(0, {"losses/critic": np.zeros(3)})
    logger.close()


def test_resume_appends_one_header_and_last_write_wins(tmp_path):
    with RunLogger(tmp_path, seeds=[0, 1], tensorboard=False) as logger:
        logger.log(1000, {"eval/return": np.array([1.0, 2.0])})
        logger.log(2000, {"eval/return": np.array([3.0, 4.0])})
    # simulate a crash in the middle of writing a row
    with open(tmp_path / "metrics.csv", "a") as f:
        f.write("3000,0,eval/ret")
    # resume from the step-1000 checkpoint: step 2000 is logged again
    with RunLogger(tmp_path, seeds=[0, 1], tensorboard=False) as logger:
        logger.log(2000, {"eval/return": np.array([30.0, 40.0])})
        logger.log(3000, {"eval/return": np.array([50.0, 60.0])})

    text = (tmp_path / "metrics.csv").read_text()
    assert text.count("step,seed,key,value") == 1
    assert "eval/ret\n" not in text and "eval/ret3000" not in text
    metrics = read_metrics(tmp_path)["eval/return"]
    np.testing.assert_array_equal(metrics[0][0], [1000, 2000, 3000])
    np.testing.assert_array_equal(metrics[0][1], [1.0, 30.0, 50.0])
    np.testing.assert_array_equal(metrics[1][1], [2.0, 40.0, 60.0])


def test_read_ignores_partial_last_line(tmp_path):
    with RunLogger(tmp_path, seeds=[0], tensorboard=False) as logger:
        logger.log(5, {"losses/actor": 1.5})
    with open(tmp_path / "metrics.csv", "a") as f:
        f.write("6,0,losses/actor,2.")  # cut mid-number: must not be read as 2.0
    steps, values = read_metrics(tmp_path)["losses/actor"][0]
    np.testing.assert_array_equal(steps, [5])
    np.testing.assert_array_equal(values, [1.5])


def test_tensorboard_event_files_per_seed(tmp_path):
    with RunLogger(tmp_path, seeds=[0, 1], tensorboard=True) as logger:
        logger.log(100, {"losses/critic": np.array([0.5, np.nan]), "charts/SPS": 250.0})

    seed0 = _tb_scalars(tmp_path / "tb" / "seed_0")
    seed1 = _tb_scalars(tmp_path / "tb" / "seed_1")
    assert seed0 == {("losses/critic", 100): 0.5, ("charts/SPS", 100): 250.0}
    assert seed1 == {("charts/SPS", 100): 250.0}


def test_no_tensorboard_dir_when_disabled(tmp_path):
    RunLogger(tmp_path, seeds=[0], tensorboard=False).close()
    assert not (tmp_path / "tb").exists()


def test_read_metrics_takes_the_csv_file_itself(tmp_path):
    with RunLogger(tmp_path, seeds=[0], tensorboard=False) as logger:
        logger.log(5000, {"eval/return": 12.5})
    copy = tmp_path / "rows.csv"
    copy.write_text((tmp_path / "metrics.csv").read_text())
    steps, values = read_metrics(copy)["eval/return"][0]
    assert steps.tolist() == [5000] and values.tolist() == [12.5]


def _log_run(run_dir, run_id, steps, offset=0.0):
    with RunLogger(run_dir, seeds=[0], tensorboard=False, run_id=run_id) as logger:
        for step in steps:
            logger.log(step, {"eval/return": step + offset})


def test_each_row_names_its_run_and_runs_read_apart(tmp_path):
    _log_run(tmp_path, "first", [0, 1000])
    _log_run(tmp_path, "second", [0, 1000, 2000], offset=0.5)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,seed,key,value,run"
    assert lines[1] == "0,0,eval/return,0.0,first" and lines[-1] == "2000,0,eval/return,2000.5,second"
    assert run_ids(tmp_path) == ["first", "second"]
    steps, values = read_metrics(tmp_path, "first")["eval/return"][0]
    np.testing.assert_array_equal(steps, [0, 1000])
    np.testing.assert_array_equal(values, [0.0, 1000.0])
    steps, values = read_metrics(tmp_path, "second")["eval/return"][0]
    np.testing.assert_array_equal(values, [0.5, 1000.5, 2000.5])


def test_a_resumed_run_relogging_steps_stays_one_run(tmp_path):
    _log_run(tmp_path, "run", [0, 1000, 2000, 3000])
    _log_run(tmp_path, "run", [2000, 3000, 4000], offset=0.5)  # resumed from its checkpoint at step 1000
    assert run_ids(tmp_path) == ["run"]
    steps, values = read_metrics(tmp_path, "run")["eval/return"][0]
    np.testing.assert_array_equal(steps, [0, 1000, 2000, 3000, 4000])
    np.testing.assert_array_equal(values, [0.0, 1000.0, 2000.5, 3000.5, 4000.5])  # the re-logged steps win


def test_a_four_column_file_is_read_and_appended_to_in_its_format(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,seed,key,value\n0,0,eval/return,-5.0\n")
    _log_run(tmp_path, "new", [1000])
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == ["step,seed,key,value", "0,0,eval/return,-5.0", "1000,0,eval/return,1000.0"]
    assert run_ids(tmp_path) == [""]
    np.testing.assert_array_equal(read_metrics(tmp_path)["eval/return"][0][1], [-5.0, 1000.0])


def test_committed_four_column_csvs_still_read():
    root = pathlib.Path(__file__).parent.parent
    paths = sorted((root / "benchmarks" / "results").glob("*.csv"))
    paths = [p for p in paths if p.read_text().startswith("step,seed,key,value\n")]
    assert paths
    for path in paths:
        metrics = read_metrics(path)
        assert metrics and all(len(s) == len(v) > 0 for c in metrics.values() for s, v in c.values()), path
        assert run_ids(path) == [""]
