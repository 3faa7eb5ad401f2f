import numpy as np
import pytest

from dpgkit.logger import RunLogger
from dpgkit.plot import aggregate_seeds, plot_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_run(run_dir, seeds, scale):
    with RunLogger(run_dir, seeds=seeds, tensorboard=False) as logger:
        for step in range(0, 5001, 1000):
            logger.log(step, {"eval/return": scale * step + np.arange(len(seeds)), "losses/critic": 1.0})
    return run_dir


def _fake_reference(path):
    rows = ["env,seed,step,eval_return"]
    for env in ("HalfCheetah", "Hopper"):
        for seed in range(2):
            rows += [f"{env},{seed},{step},{step * 0.5 + seed}" for step in range(0, 10001, 5000)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_aggregate_seeds_interpolates_onto_common_range():
    curves = {
        0: (np.array([0, 10, 20]), np.array([0.0, 10.0, 20.0])),
        1: (np.array([5, 15, 30]), np.array([50.0, 150.0, 300.0])),
    }
    steps, mean, std = aggregate_seeds(curves)
    np.testing.assert_array_equal(steps, [5, 10, 15, 20])  # union of steps inside [5, 20]
    seed0 = np.array([5.0, 10.0, 15.0, 20.0])
    seed1 = np.array([50.0, 100.0, 150.0, 200.0])
    np.testing.assert_allclose(mean, (seed0 + seed1) / 2)
    np.testing.assert_allclose(std, np.abs(seed1 - seed0) / 2)

    steps, mean, _ = aggregate_seeds(curves, max_step=10)
    np.testing.assert_array_equal(steps, [5, 10])
    np.testing.assert_allclose(mean, [27.5, 55.0])


def test_plot_two_runs_default_path(tmp_path):
    a = _fake_run(tmp_path / "td3_a", [0, 1], 0.1)
    b = _fake_run(tmp_path / "td3_b", [0, 1, 2], 0.2)
    path = plot_runs([str(a), str(b)])
    assert path == a / "curves.png"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_plot_with_reference_draws_more(tmp_path):
    a = _fake_run(tmp_path / "run", [0, 1], 0.1)
    ref = _fake_reference(tmp_path / "ref.csv")
    plain = plot_runs([a], out=tmp_path / "plain.png")
    with_ref = plot_runs(
        [a], out=tmp_path / "out" / "ref.png", reference=str(ref), reference_env="HalfCheetah", max_step=5000
    )
    assert with_ref == tmp_path / "out" / "ref.png"
    assert with_ref.read_bytes().startswith(PNG_MAGIC)
    assert with_ref.read_bytes() != plain.read_bytes()


def test_reference_env_missing_lists_envs(tmp_path):
    a = _fake_run(tmp_path / "run", [0], 0.1)
    ref = _fake_reference(tmp_path / "ref.csv")
    with pytest.raises(ValueError, match=r"\['HalfCheetah', 'Hopper'\]"):
        plot_runs([a], out=tmp_path / "x.png", reference=ref, reference_env="Walker2d")
    with pytest.raises(ValueError, match="reference_env .* is required"):
        plot_runs([a], out=tmp_path / "x.png", reference=ref)


def test_missing_key_names_available_keys(tmp_path):
    a = _fake_run(tmp_path / "run", [0, 1], 0.1)
    with pytest.raises(ValueError, match=r"'charts/episodic_return'.*\['eval/return', 'losses/critic'\]"):
        plot_runs([a], key="charts/episodic_return")
    assert not (a / "curves.png").exists()


def test_missing_metrics_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no metrics.csv"):
        plot_runs([tmp_path / "empty"])


def test_a_file_of_several_runs_is_plotted_apart_and_a_resumed_run_as_one(tmp_path):
    from dpgkit.plot import run_curves

    for run_id, steps in (("aaaa1111", range(0, 3001, 1000)), ("aaaa1111", range(2000, 5001, 1000))):
        with RunLogger(tmp_path / "resumed", seeds=[0], tensorboard=False, run_id=run_id) as logger:
            for step in steps:
                logger.log(step, {"eval/return": float(step)})
    assert [name for name, _ in run_curves(tmp_path / "resumed", "eval/return")] == ["resumed"]
    for run_id in ("aaaa1111", "bbbb2222"):
        with RunLogger(tmp_path / "two", seeds=[0, 1], tensorboard=False, run_id=run_id) as logger:
            logger.log(0, {"eval/return": 0.0})
            logger.log(1000, {"eval/return": 1.0 if run_id == "aaaa1111" else 2.0})
    curves = run_curves(tmp_path / "two", "eval/return")
    assert [name for name, _ in curves] == ["two, run aaaa1111", "two, run bbbb2222"]
    assert [c[0][1].tolist() for _, c in curves] == [[0.0, 1.0], [0.0, 2.0]]
    assert plot_runs([tmp_path / "two"]).read_bytes().startswith(PNG_MAGIC)
