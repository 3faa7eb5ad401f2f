"""Tests for dpgkit.checkpoint: round trips, corruption detection, atomic saves, pytree flattening."""

import errno
import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.core import FrozenDict

from dpgkit import checkpoint
from dpgkit.checkpoint import (
    CheckpointCorruptError,
    flatten_tree,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    unflatten_tree,
)


def _arrays(offset: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Array groups covering several dtypes, a 0-d array and an empty array."""
    return {
        "learner": {
            "w": np.arange(6, dtype=np.float32).reshape(2, 3) + offset,
            "scalar": np.array(3.5 + offset, dtype=np.float64),
            "count": np.array([2**40 + offset, -7], dtype=np.int64),
        },
        "replay": {
            "obs": np.arange(10, dtype=np.uint8).reshape(5, 2) + offset,
            "empty": np.zeros((0, 4), dtype=np.float32),
        },
    }


RUN = "run-a"


def save(directory, step, arrays, meta, **kwargs):
    """save_checkpoint as run RUN."""
    return save_checkpoint(directory, step, arrays, meta, run_id=RUN, **kwargs)


META = {"algo": "td3", "lr": 0.1, "steps": 1000, "ok": True, "none": None, "name": "π-run", "seq": [1, 2.5]}


def _assert_arrays_equal(got: dict, want: dict) -> None:
    """Group names, keys, dtypes, shapes and values all match."""
    assert set(got) == set(want)
    for group, arrays in want.items():
        assert set(got[group]) == set(arrays)
        for key, arr in arrays.items():
            assert got[group][key].dtype == arr.dtype, (group, key)
            assert got[group][key].shape == arr.shape, (group, key)
            np.testing.assert_array_equal(got[group][key], arr)


def _step_dirs(run) -> list[str]:
    """Names of all entries in the run's checkpoints dir except LATEST and the lock file."""
    return sorted(p.name for p in (run / "checkpoints").iterdir() if p.name not in ("LATEST", ".lock"))


def test_round_trip_arrays_and_meta(tmp_path):
    """Saved arrays and meta come back exactly, from the run dir and the step dir."""
    step_dir = save(tmp_path, 1000, _arrays(), META)
    assert step_dir == tmp_path / "checkpoints" / "step_000001000"
    assert (tmp_path / "checkpoints" / "LATEST").read_text().strip() == "step_000001000"
    assert latest_checkpoint(tmp_path) == step_dir
    assert sorted(p.name for p in step_dir.iterdir()) == [
        "learner.npz",
        "manifest.json",
        "meta.json",
        "replay.npz",
    ]
    manifest = json.loads((step_dir / "manifest.json").read_text())
    assert manifest["step"] == 1000 and manifest["format"] == 2 and manifest["run_id"] == RUN
    assert json.loads((tmp_path / "run.json").read_text()) == {"run_id": RUN}
    assert manifest["files"]["learner.npz"]["bytes"] == (step_dir / "learner.npz").stat().st_size

    for source in (tmp_path, step_dir):
        arrays, meta = load_checkpoint(source)
        _assert_arrays_equal(arrays, _arrays())
        assert meta == META
        assert list(meta) == list(META)
    # Plain numpy can read the files without pickle.
    with np.load(step_dir / "replay.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["obs"], _arrays()["replay"]["obs"])


def test_array_names_that_clash_with_savez_parameters(tmp_path):
    """Array names like "file" and pytree keystr names survive a round trip."""
    group = {"file": np.ones(2), "allow_pickle": np.zeros(1), "[0].mu['dense']": np.full(3, 7.0)}
    save(tmp_path, 1, {"g": group}, {})
    arrays, _ = load_checkpoint(tmp_path)
    _assert_arrays_equal(arrays, {"g": group})


def test_object_arrays_and_bad_group_names_rejected(tmp_path):
    """Object arrays (which would need pickle) and path-like group names are refused."""
    with pytest.raises(ValueError):
        save(tmp_path, 1, {"g": {"x": np.array([{}, 1], dtype=object)}}, {})
    with pytest.raises(ValueError, match="group name"):
        save(tmp_path, 1, {"../evil": {"x": np.ones(1)}}, {})
    assert latest_checkpoint(tmp_path) is None
    assert _step_dirs(tmp_path) == []


def test_no_checkpoint_raises_file_not_found(tmp_path):
    """A directory without any checkpoint raises FileNotFoundError; latest is None."""
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="LATEST"):
        load_checkpoint(tmp_path)


def test_truncated_file_is_corrupt(tmp_path):
    """A truncated npz is reported as corrupt, naming the file."""
    step_dir = save(tmp_path, 1000, _arrays(), META)
    path = step_dir / "learner.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointCorruptError, match="manifest says") as info:
        load_checkpoint(tmp_path)
    assert str(path) in str(info.value)
    assert f"size {len(data) // 2} bytes" in str(info.value)
    assert "corrupt" in str(info.value)
    assert info.value.path == path


def test_flipped_byte_same_size_is_corrupt(tmp_path):
    """A single flipped byte keeps the size but fails the sha256 check."""
    step_dir = save(tmp_path, 1000, _arrays(), META)
    path = step_dir / "replay.npz"
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF
    path.write_bytes(bytes(data))
    assert path.stat().st_size == len(data)
    with pytest.raises(CheckpointCorruptError, match="sha256 mismatch") as info:
        load_checkpoint(step_dir)
    assert "replay.npz" in str(info.value) and "corrupt" in str(info.value)


def test_edited_meta_is_corrupt(tmp_path):
    """meta.json is covered by the manifest too."""
    step_dir = save(tmp_path, 5, _arrays(), {"lr": 0.1})
    (step_dir / "meta.json").write_text(json.dumps({"lr": 0.2}))
    with pytest.raises(CheckpointCorruptError, match="meta.json"):
        load_checkpoint(tmp_path)


def test_missing_files_are_corrupt(tmp_path):
    """A missing listed file or a missing/garbled manifest is corrupt, naming the file."""
    step_dir = save(tmp_path, 1000, _arrays(), META)
    (step_dir / "learner.npz").unlink()
    with pytest.raises(CheckpointCorruptError, match=r"learner\.npz is corrupt"):
        load_checkpoint(tmp_path)

    step_dir = save(tmp_path, 2000, _arrays(), META)
    (step_dir / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointCorruptError, match=r"manifest\.json is corrupt"):
        load_checkpoint(tmp_path)
    (step_dir / "manifest.json").unlink()
    with pytest.raises(CheckpointCorruptError, match=r"manifest\.json is corrupt"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointCorruptError, match=r"manifest\.json is corrupt"):
        load_checkpoint(step_dir)


def test_dangling_latest_is_corrupt(tmp_path):
    """LATEST naming a step dir that does not exist is corrupt, naming LATEST."""
    step_dir = save(tmp_path, 1000, _arrays(), META)
    shutil.rmtree(step_dir)
    with pytest.raises(CheckpointCorruptError, match=r"LATEST is corrupt"):
        latest_checkpoint(tmp_path)
    with pytest.raises(CheckpointCorruptError, match=r"LATEST is corrupt"):
        load_checkpoint(tmp_path)


def _fail_on_second_group(monkeypatch):
    """Make array writing emit partial bytes then raise while writing the second group."""
    real_write_array = np.lib.format.write_array
    calls = {"n": 0}

    def write_array(fp, array, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:  # learner has 3 arrays; fail inside replay.npz
            fp.write(b"partial")
            raise OSError("disk full")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_array)


@pytest.mark.parametrize("failure", ["array_write", "meta_json"])
def test_failed_save_leaves_previous_checkpoint(tmp_path, monkeypatch, failure):
    """A save that fails mid-way keeps the old checkpoint and LATEST and leaves no temp dir."""
    old_dir = save(tmp_path, 1000, _arrays(), META)
    latest_before = (tmp_path / "checkpoints" / "LATEST").read_bytes()

    if failure == "array_write":
        _fail_on_second_group(monkeypatch)
        with pytest.raises(OSError, match="disk full"):
            save(tmp_path, 2000, _arrays(offset=1), META)
        monkeypatch.undo()
    else:  # the npz files are written before meta.json fails to encode
        with pytest.raises(TypeError):
            save(tmp_path, 2000, _arrays(offset=1), {"obj": object()})

    assert (tmp_path / "checkpoints" / "LATEST").read_bytes() == latest_before
    assert _step_dirs(tmp_path) == ["step_000001000"]
    assert latest_checkpoint(tmp_path) == old_dir
    arrays, meta = load_checkpoint(tmp_path)
    _assert_arrays_equal(arrays, _arrays())
    assert meta == META


def test_failed_resave_of_same_step_keeps_original(tmp_path, monkeypatch):
    """A failed save at an existing step leaves that step's checkpoint intact."""
    save(tmp_path, 1000, _arrays(), META)
    _fail_on_second_group(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path, 1000, _arrays(offset=1), META)
    monkeypatch.undo()
    assert _step_dirs(tmp_path) == ["step_000001000"]
    _assert_arrays_equal(load_checkpoint(tmp_path)[0], _arrays())


def test_failed_final_rename_keeps_same_step(tmp_path, monkeypatch):
    """If installing a re-saved step fails, the original step dir stays, unchanged, and no temp dir is left."""
    save(tmp_path, 1000, _arrays(), META)
    real_rename = checkpoint._rename

    def rename(src, dst):
        if Path(src).name.startswith(".tmp-"):
            raise OSError("rename failed")
        return real_rename(src, dst)

    monkeypatch.setattr(checkpoint, "_rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        save(tmp_path, 1000, _arrays(offset=1), {"v": 2})
    monkeypatch.undo()
    assert _step_dirs(tmp_path) == ["step_000001000"]
    arrays, meta = load_checkpoint(tmp_path)
    _assert_arrays_equal(arrays, _arrays())
    assert meta == META


def test_keep_one_deletes_older_only_after_new_is_in_place(tmp_path, monkeypatch):
    """With keep=1 the old step dir is deleted, and only once the new one and LATEST exist."""
    old_dir = save(tmp_path, 1000, _arrays(), META)
    new_dir = tmp_path / "checkpoints" / "step_000002000"
    real_remove = checkpoint._remove_tree
    seen = []

    def spy_remove(path):
        seen.append((new_dir.is_dir(), latest_checkpoint(tmp_path), old_dir.exists()))
        return real_remove(path)

    monkeypatch.setattr(checkpoint, "_remove_tree", spy_remove)
    assert save(tmp_path, 2000, _arrays(offset=1), {"v": 2}) == new_dir
    # The old dir is moved aside (no longer a step_* dir) before deletion starts.
    assert seen == [(True, new_dir, False)]
    assert _step_dirs(tmp_path) == ["step_000002000"]
    arrays, meta = load_checkpoint(tmp_path)
    _assert_arrays_equal(arrays, _arrays(offset=1))
    assert meta == {"v": 2}


def test_keep_n_and_out_of_order_steps(tmp_path):
    """keep=N retains the run's N newest saves; the checkpoint just saved is never pruned."""
    for step in (10, 20, 30):
        save(tmp_path, step, _arrays(), {"step": step}, keep=2)
    assert _step_dirs(tmp_path) == ["step_000000020", "step_000000030"]
    save(tmp_path, 5, _arrays(), {"step": 5}, keep=2)
    assert _step_dirs(tmp_path) == ["step_000000005", "step_000000030"]
    assert load_checkpoint(tmp_path)[1] == {"step": 5}
    load_checkpoint(tmp_path / "checkpoints" / "step_000000030")
    with pytest.raises(ValueError, match="keep"):
        save(tmp_path, 40, _arrays(), {}, keep=0)


def test_save_twice_at_same_step(tmp_path):
    """Re-saving a step writes a fresh folder, then removes the superseded one; no aside or temp dirs."""
    save(tmp_path, 1000, _arrays(), {"v": 1}, keep=3)
    step_dir = save(tmp_path, 1000, {"learner": {"w": np.ones(3, np.float32)}}, {"v": 2}, keep=3)
    assert step_dir.name == "step_000001000-1"
    assert _step_dirs(tmp_path) == ["step_000001000-1"]
    arrays, meta = load_checkpoint(tmp_path)
    assert meta == {"v": 2}
    _assert_arrays_equal(arrays, {"learner": {"w": np.ones(3, np.float32)}})
    assert save(tmp_path, 1000, _arrays(), {"v": 3}).name == "step_000001000-2"
    assert _step_dirs(tmp_path) == ["step_000001000-2"]


def test_only_the_newest_checkpoint_keeps_the_replay(tmp_path):
    """Older checkpoints of a run lose their newest_only groups; they still verify and load."""
    for step in (10, 20, 30, 40):
        save(tmp_path, step, _arrays(offset=step), {"step": step}, keep=3, newest_only=("replay",))
    assert _step_dirs(tmp_path) == ["step_000000020", "step_000000030", "step_000000040"]
    root = tmp_path / "checkpoints"
    assert (root / "step_000000040" / "replay.npz").exists()
    for old in ("step_000000020", "step_000000030"):
        assert not (root / old / "replay.npz").exists()
        manifest = json.loads((root / old / "manifest.json").read_text())
        assert manifest["dropped"] == ["replay.npz"] and "replay.npz" not in manifest["files"]
        arrays, meta = load_checkpoint(root / old)
        assert set(arrays) == {"learner"} and meta == {"step": int(old[-2:])}
        np.testing.assert_array_equal(arrays["learner"]["w"], _arrays(offset=meta["step"])["learner"]["w"])
    _assert_arrays_equal(load_checkpoint(tmp_path)[0], _arrays(offset=40))


def test_another_runs_directory_is_refused_and_untouched(tmp_path):
    """A save by another run into a directory holding this run's checkpoints is refused; nothing changes,
    also when LATEST or run.json are missing."""
    save(tmp_path, 1600, _arrays(), META, keep=3)
    save(tmp_path, 1800, _arrays(), META, keep=3)
    before = _step_dirs(tmp_path)
    with pytest.raises(checkpoint.RunDirInUseError, match=f"another run .*{RUN}") as excinfo:
        save_checkpoint(tmp_path, 20, _arrays(), META, run_id="run-b")
    assert "dpgkit resume" in str(excinfo.value)
    assert _step_dirs(tmp_path) == before
    (tmp_path / "checkpoints" / "LATEST").unlink()
    (tmp_path / "run.json").unlink()
    with pytest.raises(checkpoint.RunDirInUseError):
        save_checkpoint(tmp_path, 20, _arrays(), META, run_id="run-b")
    assert _step_dirs(tmp_path) == before
    save_checkpoint(tmp_path / "elsewhere", 20, _arrays(), META, run_id="run-b")


def test_a_run_without_checkpoints_does_not_hold_its_directory(tmp_path):
    """run.json of a run killed before its first save does not block a new run, which takes it over."""
    checkpoint.claim_run_dir(tmp_path, "run-killed-early")
    assert json.loads((tmp_path / "run.json").read_text()) == {"run_id": "run-killed-early"}
    save(tmp_path, 10, _arrays(), META)
    assert json.loads((tmp_path / "run.json").read_text()) == {"run_id": RUN}
    with pytest.raises(checkpoint.RunDirInUseError):
        checkpoint.claim_run_dir(tmp_path, "run-killed-early")


def test_leftovers_are_removed_by_the_next_save_or_load(tmp_path):
    """Hidden temp/aside folders and files of interrupted saves go at the next save or load, not while
    another process holds the run's lock."""
    save(tmp_path, 10, _arrays(), META, keep=2)
    root = tmp_path / "checkpoints"

    def leave_leftovers():
        (root / ".tmp-step_000000020-0badc0de").mkdir()
        (root / ".tmp-step_000000020-0badc0de" / "learner.npz").write_bytes(b"x" * 1000)
        (root / ".old-step_000000005-0badc0de").mkdir()
        (root / ".LATEST-0badc0de").write_bytes(b"step_000000020\n")

    leave_leftovers()
    with open(root / ".lock") as lock:  # a save under way elsewhere: load must not touch its temp folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        load_checkpoint(tmp_path)
        assert len(_step_dirs(tmp_path)) == 4
    load_checkpoint(tmp_path)
    assert _step_dirs(tmp_path) == ["step_000000010"]
    leave_leftovers()
    save(tmp_path, 30, _arrays(), META, keep=2)
    assert _step_dirs(tmp_path) == ["step_000000010", "step_000000030"]


def test_free_space_is_checked_before_writing(tmp_path, monkeypatch):
    """Too little free space: an error naming the bytes and the path, before anything is written."""
    good = save(tmp_path, 10, _arrays(), META)
    monkeypatch.setattr(
        checkpoint.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 100)
    )
    with pytest.raises(checkpoint.CheckpointSpaceError, match=r"needs [\d,]+ bytes, 100 free") as excinfo:
        save(tmp_path, 20, _arrays(), META)
    assert str(tmp_path / "checkpoints") in str(excinfo.value)
    monkeypatch.undo()
    assert _step_dirs(tmp_path) == ["step_000000010"] and latest_checkpoint(tmp_path) == good


def test_a_full_filesystem_keeps_the_previous_checkpoint(tmp_path):
    """On a real 1 MiB tmpfs the disk fills during a save: the previous checkpoint is intact and loads."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=False, capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}")
    try:
        good = save(mount, 10, _arrays(), META)
        big = {"learner": {"w": np.ones(200_000, np.float32)}, "replay": {"x": np.ones(200_000, np.float32)}}
        real_check = checkpoint._check_space
        checkpoint._check_space = lambda root, needed: None  # let the write itself meet ENOSPC
        try:
            with pytest.raises(checkpoint.CheckpointSpaceError, match="needs") as excinfo:
                save(mount, 20, big, META)
        finally:
            checkpoint._check_space = real_check
        assert excinfo.value.__cause__.errno == errno.ENOSPC
        assert _step_dirs(mount) == ["step_000000010"] and latest_checkpoint(mount) == good
        _assert_arrays_equal(load_checkpoint(mount)[0], _arrays())
        with pytest.raises(checkpoint.CheckpointSpaceError, match="needs"):
            save(mount, 20, big, META)  # and the check before writing catches it too
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_unsupported_format_names_it_and_the_supported_ones(tmp_path):
    """A manifest of an unknown format number fails with both numbers in the message."""
    step_dir = save(tmp_path, 10, _arrays(), META)
    manifest = json.loads((step_dir / "manifest.json").read_text())
    (step_dir / "manifest.json").write_text(json.dumps(manifest | {"format": 99}))
    with pytest.raises(CheckpointCorruptError, match=r"format 99 is not supported .*formats 1, 2"):
        load_checkpoint(tmp_path)


class Pair(NamedTuple):
    """A small NamedTuple pytree node."""

    a: jnp.ndarray
    b: float


def _tree():
    """Nested pytree with a FrozenDict, an optax adam state, a NamedTuple and scalars."""
    params = {"dense": {"kernel": jnp.arange(6.0).reshape(2, 3), "bias": jnp.zeros(3)}}
    opt_state = optax.adam(1e-3).init(params)
    return {
        "params": FrozenDict(params),
        "opt": opt_state,
        "pair": Pair(a=jnp.array([1, 2], dtype=jnp.int32), b=0.5),
        "half": jnp.ones(2, dtype=jnp.bfloat16),
        "steps": (7, np.uint8(3)),
    }


def test_flatten_unflatten_round_trip(tmp_path):
    """A pytree survives flatten -> save -> load -> unflatten with structure and dtypes intact."""
    tree = _tree()
    flat = flatten_tree(tree)
    assert "['opt'][0].mu['dense']['kernel']" in flat
    assert "['pair'].a" in flat
    assert all(isinstance(v, np.ndarray) for v in flat.values())

    save(tmp_path, 3, {"state": flat}, {})
    restored = unflatten_tree(tree, load_checkpoint(tmp_path)[0]["state"])

    assert type(restored["params"]) is FrozenDict
    assert type(restored["pair"]) is Pair
    assert type(restored["opt"][0]) is type(tree["opt"][0])
    want = jax.tree_util.tree_leaves(tree)
    got = jax.tree_util.tree_leaves(restored)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, np.ndarray)
        assert g.dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(g, np.asarray(w))


def test_unflatten_mismatch_errors():
    """Missing keys, extra keys and shape mismatches raise ValueError naming the key."""
    tree = _tree()
    flat = flatten_tree(tree)

    missing = dict(flat)
    del missing["['pair'].a"]
    with pytest.raises(ValueError, match=r"missing \[\"\['pair'\]\.a\"\]"):
        unflatten_tree(tree, missing)

    extra = dict(flat, bogus=np.zeros(1))
    with pytest.raises(ValueError, match="extra.*bogus"):
        unflatten_tree(tree, extra)

    wrong_shape = dict(flat)
    wrong_shape["['params']['dense']['bias']"] = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"shape mismatch for \['params'\]\['dense'\]\['bias'\]"):
        unflatten_tree(tree, wrong_shape)


def test_unflatten_casts_to_template_dtype():
    """Leaves take the template leaf's dtype."""
    template = {"x": np.zeros(2, np.float32), "n": 0}
    out = unflatten_tree(template, {"['x']": np.array([1.5, 2.5]), "['n']": np.array(4, np.int8)})
    assert out["x"].dtype == np.float32 and out["x"].tolist() == [1.5, 2.5]
    assert out["n"].dtype == np.asarray(0).dtype and out["n"] == 4


PROTOCOL_STEPS = ("_write_durable", "_rename", "_remove_tree", "_remove_file", "_fsync_dir")
"""The checkpoint module's primitive file operations: every change a save makes on disk goes through them."""


def _instrument(monkeypatch, on_operation):
    """Call on_operation(index, name, when) before and after each primitive operation of the save protocol."""
    count = {"n": 0}
    for name in PROTOCOL_STEPS:
        real = getattr(checkpoint, name)

        def wrapped(*args, _real=real, _name=name, **kwargs):
            index = count["n"]
            count["n"] += 1
            on_operation(index, _name, "before")
            result = _real(*args, **kwargs)
            on_operation(index, _name, "after")
            return result

        monkeypatch.setattr(checkpoint, name, wrapped)
    return count


def _prepared_run(run):
    """A run with two checkpoints at steps 10 and 20 (keep 2, the replay only in the newest)."""
    for step in (10, 20):
        save(run, step, _arrays(offset=step), {"step": step}, keep=2, newest_only=("replay",))


def _assert_clean(run):
    """Only step folders, LATEST and the lock file are left under checkpoints/."""
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert all(n in ("LATEST", ".lock") or n.startswith("step_") for n in names), names


@pytest.mark.parametrize("new_step", [30, 20], ids=["new-step", "re-save-same-step"])
def test_a_kill_at_any_instant_of_a_save_leaves_a_loadable_run(tmp_path, monkeypatch, new_step):
    """Snapshot the run directory before and after every file operation of a save (what a SIGKILL at that
    instant leaves on disk): each snapshot loads the old or the new checkpoint, with its replay, and the next
    save of the run leaves no leftover."""
    run = tmp_path / "run"
    _prepared_run(run)
    snapshots = []

    def snapshot(index, name, when):
        target = tmp_path / "snapshots" / f"{index:03d}-{name}-{when}"
        shutil.copytree(run, target)
        snapshots.append(target)

    count = _instrument(monkeypatch, snapshot)
    save(
        run,
        new_step,
        _arrays(offset=new_step + 1),
        {"step": new_step, "new": True},
        keep=2,
        newest_only=("replay",),
    )
    monkeypatch.undo()
    assert count["n"] >= 10 and len(snapshots) == 2 * count["n"]
    outcomes = set()
    for snap in snapshots:
        arrays, meta = load_checkpoint(snap)
        assert set(arrays) == {"learner", "replay"}, snap.name
        expected = _arrays(offset=new_step + 1) if meta.get("new") else _arrays(offset=20)
        _assert_arrays_equal(arrays, expected)
        outcomes.add(bool(meta.get("new")))
        save(snap, 40, _arrays(), {"step": 40}, keep=2, newest_only=("replay",))
        _assert_clean(snap)
        assert load_checkpoint(snap)[1] == {"step": 40}
    assert outcomes == {False, True}


@pytest.mark.parametrize("new_step", [30, 20], ids=["new-step", "re-save-same-step"])
def test_an_error_at_any_step_of_a_save_leaves_a_loadable_run(tmp_path, monkeypatch, new_step):
    """Raise at each file operation of a save in turn: the run still loads (old or new checkpoint), and the
    next save cleans up."""
    run = tmp_path / "probe"
    _prepared_run(run)
    total = _instrument(monkeypatch, lambda *args: None)
    save(run, new_step, _arrays(), {"step": new_step}, keep=2, newest_only=("replay",))
    monkeypatch.undo()
    for fail_at in range(total["n"]):
        run = tmp_path / f"run-{fail_at}"
        _prepared_run(run)

        def fail(index, name, when, fail_at=fail_at):
            if index == fail_at and when == "before":
                raise OSError(f"injected failure in {name}")

        _instrument(monkeypatch, fail)
        try:
            save(
                run,
                new_step,
                _arrays(offset=new_step + 1),
                {"step": new_step, "new": True},
                keep=2,
                newest_only=("replay",),
            )
        except OSError as error:
            assert "injected failure" in str(error)
        monkeypatch.undo()
        arrays, meta = load_checkpoint(run)
        assert set(arrays) == {"learner", "replay"}
        _assert_arrays_equal(arrays, _arrays(offset=new_step + 1) if meta.get("new") else _arrays(offset=20))
        save(run, 40, _arrays(), {"step": 40}, keep=2, newest_only=("replay",))
        _assert_clean(run)
