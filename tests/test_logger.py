import struct

import numpy as np
import pytest
from tensorboardX.proto.event_pb2 import Event

from dpgkit.logger import RunLogger, read_metrics


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
    assert lines[0] == "step,seed,key,value"
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
