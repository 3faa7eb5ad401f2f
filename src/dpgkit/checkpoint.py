"""Atomic, hash-verified checkpoints of numpy array groups plus JSON metadata, owned by one run.

A run directory holds `run.json` (the id of the run that owns it) and `checkpoints/`:

    checkpoints/LATEST                 names the newest complete checkpoint
    checkpoints/step_000001000/        manifest.json (sha256 and size of each file), meta.json, <group>.npz
    checkpoints/step_000001000-1/      a later save at the same step (names are never reused)

A save writes a hidden temporary folder, syncs it, renames it to a fresh name, then points LATEST at it;
only then are this run's superseded checkpoints pruned. So at every instant LATEST names a complete
checkpoint, and a kill at any point leaves a run that loads. Leftovers of interrupted saves are removed by
the next save or load of the run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
import zipfile
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, BinaryIO

import jax
import numpy as np

FORMAT_VERSION = 2
SUPPORTED_FORMATS = (1, 2)
"""Format 1 (dpgkit 0.1.0 up to bfff4b2): no run id. Format 2: run ids, older checkpoints may omit groups."""
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "LATEST"
MANIFEST_FILE = "manifest.json"
META_FILE = "meta.json"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"

_STEP_DIR_RE = re.compile(r"step_(\d+)(?:-(\d+))?")
_LEFTOVER_RE = re.compile(r"\.(tmp|old|LATEST|manifest)-.*")
_GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HASH_CHUNK = 1 << 20
_ZIP_OVERHEAD = 4096
"""Bytes of zip and npy headers allowed per array when estimating a checkpoint's size."""


class CheckpointCorruptError(ValueError):
    """A checkpoint file is missing, truncated, unreadable or fails its manifest hash."""

    def __init__(self, path: os.PathLike | str, reason: str):
        """Build the message from the offending file path and the reason."""
        self.path = pathlib.Path(path)
        super().__init__(f"checkpoint file {self.path} is corrupt: {reason}")


class CheckpointSpaceError(OSError):
    """The disk holding a checkpoint has too little free space for it."""

    def __init__(self, path: pathlib.Path, needed: int, free: int | None):
        """Build the message from the checkpoint folder, the bytes it needs and the bytes free."""
        have = "" if free is None else f", {free:,} free"
        super().__init__(
            errno.ENOSPC,
            f"not enough disk space to save a checkpoint in {path}: it needs {needed:,} bytes{have}; the "
            "previous checkpoint is intact. Free some space (or save elsewhere) and save again",
        )


class RunDirInUseError(ValueError):
    """A run directory holds the checkpoints of another run."""


def _fsync_dir(path: pathlib.Path) -> None:
    """Flush a directory's entries (creations, renames) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durable(path: pathlib.Path, write: Callable[[BinaryIO], Any]) -> None:
    """Create `path`, fill it with `write(fileobj)`, then flush and fsync it."""
    with open(path, "xb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _rename(src: pathlib.Path, dst: pathlib.Path) -> None:
    """Atomically rename src to dst (dst must not exist as a non-empty directory)."""
    os.replace(src, dst)


def _remove_tree(path: pathlib.Path) -> None:
    """Delete a folder and what it holds."""
    shutil.rmtree(path, ignore_errors=True)


def _remove_file(path: pathlib.Path) -> None:
    """Delete a file if it exists."""
    path.unlink(missing_ok=True)


def _write_npz(f: BinaryIO, group: Mapping[str, Any]) -> None:
    """Write arrays as an uncompressed npz (np.savez layout) that loads without pickle, streaming each array."""
    # Same layout as np.savez, written directly so that array names such as "file" or
    # "allow_pickle" cannot collide with np.savez's own parameters; write_array streams 16 MiB chunks.
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in group.items():
            with zf.open(f"{key}.npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)


def _sha256(path: pathlib.Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _json_bytes(obj: Any) -> bytes:
    """Serialise `obj` as UTF-8 JSON."""
    return json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8")


def _hidden(root: pathlib.Path, kind: str, name: str) -> pathlib.Path:
    """A fresh hidden path `root/.kind-name-<random>` (a leftover if a kill leaves it)."""
    return root / f".{kind}-{name}-{secrets.token_hex(4)}"


def _replace_file(path: pathlib.Path, data: bytes, kind: str) -> None:
    """Atomically replace `path` with `data` (written and synced under a hidden name first)."""
    tmp = _hidden(path.parent, kind, path.name)
    try:
        _write_durable(tmp, lambda f: f.write(data))
        _rename(tmp, path)
    except BaseException:
        _remove_file(tmp)
        raise
    _fsync_dir(path.parent)


def step_sort_key(path: pathlib.Path) -> tuple[int, int]:
    """(step, revision) of a `step_<n>[-<r>]` folder: the order in which a run saved them."""
    match = _STEP_DIR_RE.fullmatch(path.name)
    return int(match.group(1)), int(match.group(2) or 0)


def _step_dirs(root: pathlib.Path) -> list[pathlib.Path]:
    """The `step_*` folders under `root`, oldest first."""
    if not root.is_dir():
        return []
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and _STEP_DIR_RE.fullmatch(p.name)), key=step_sort_key
    )


def _fresh_step_name(root: pathlib.Path, step: int) -> str:
    """`step_<step>` if unused, else `step_<step>-<r>` with r one past the highest revision of that step."""
    base = f"step_{int(step):09d}"
    revisions = [step_sort_key(p)[1] for p in _step_dirs(root) if step_sort_key(p)[0] == step]
    return base if not revisions else f"{base}-{max(revisions) + 1}"


@contextlib.contextmanager
def _run_lock(root: pathlib.Path, blocking: bool) -> Iterator[bool]:
    """Hold the run's lock file (flock, released by the kernel if the process dies); yields whether it is held."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _has_leftovers(root: pathlib.Path) -> bool:
    """Whether an interrupted save left hidden temporary folders or files under `root` (a cheap listing)."""
    return any(_LEFTOVER_RE.fullmatch(p.name) for p in root.iterdir())


def _remove_leftovers(root: pathlib.Path) -> list[pathlib.Path]:
    """Delete the hidden temporary folders and files that interrupted saves left behind; returns them."""
    leftovers = [p for p in root.iterdir() if _LEFTOVER_RE.fullmatch(p.name)]
    for path in leftovers:
        _remove_tree(path) if path.is_dir() else _remove_file(path)
    for step_dir in _step_dirs(root):
        try:
            dropped = json.loads((step_dir / MANIFEST_FILE).read_bytes()).get("dropped", [])
        except (OSError, ValueError, AttributeError):
            continue
        for path in (step_dir / name for name in dropped if pathlib.PurePath(name).name == name):
            if path.exists():
                _remove_file(path)
                leftovers.append(path)
    return leftovers


def legacy_run_id(run_dir: pathlib.Path) -> str:
    """The id given to a format-1 run (saved before runs had ids): derived from its run directory."""
    return "format1-" + hashlib.sha256(str(pathlib.Path(run_dir).resolve()).encode()).hexdigest()[:16]


def _owner_of(step_dir: pathlib.Path) -> str | None:
    """The run id a checkpoint folder belongs to (format 1: its run directory's legacy id); None when its
    manifest cannot be read (not a checkpoint of anyone)."""
    try:
        manifest = json.loads((step_dir / MANIFEST_FILE).read_bytes())
        return manifest.get("run_id") or legacy_run_id(step_dir.parent.parent)
    except (OSError, ValueError, AttributeError):
        return None


def claim_run_dir(directory: os.PathLike | str, run_id: str) -> None:
    """Make `directory` this run's (run.json names it), or raise RunDirInUseError if it holds checkpoints
    of another run. A directory whose run left no checkpoint (killed before its first save) is taken over."""
    run_dir = pathlib.Path(directory)
    others = sorted({_owner_of(p) for p in _step_dirs(run_dir / CHECKPOINTS_DIR)} - {run_id, None})
    if others:
        raise RunDirInUseError(
            f"{run_dir} holds the checkpoints of another run (run id {others[0]}); continue that run with "
            f"`dpgkit resume {run_dir}` (or Agent.load), or save into another directory: nothing of it is "
            "overwritten"
        )
    path = run_dir / RUN_FILE
    record = _json_bytes({"run_id": run_id})
    if not path.exists() or path.read_bytes() != record:
        run_dir.mkdir(parents=True, exist_ok=True)
        _replace_file(path, record, "tmp")


def _expected_bytes(arrays: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any]) -> int:
    """An upper estimate of a checkpoint's size on disk: array bytes plus headers, meta and manifest."""
    data = sum(np.asarray(v).nbytes + _ZIP_OVERHEAD for group in arrays.values() for v in group.values())
    return data + 2 * len(_json_bytes(meta)) + 1024 * (len(arrays) + 2)


def _check_space(root: pathlib.Path, needed: int) -> None:
    """Raise CheckpointSpaceError if the disk under `root` has fewer than `needed` bytes free."""
    free = shutil.disk_usage(root).free
    if free < needed:
        raise CheckpointSpaceError(root, needed, free)


def _write_step_dir(
    tmp: pathlib.Path,
    step: int,
    arrays: Mapping[str, Mapping[str, Any]],
    meta: Mapping[str, Any],
    run_id: str,
) -> None:
    """Write the groups, meta.json and the manifest (hash and size of each) into `tmp`, all synced."""
    files = {}
    for group, contents in arrays.items():
        _write_durable(tmp / f"{group}.npz", lambda f, contents=contents: _write_npz(f, contents))
        files[f"{group}.npz"] = tmp / f"{group}.npz"
    _write_durable(tmp / META_FILE, lambda f: f.write(_json_bytes(meta)))
    files[META_FILE] = tmp / META_FILE
    manifest = {
        "files": {
            fname: {"sha256": _sha256(fpath), "bytes": fpath.stat().st_size}
            for fname, fpath in sorted(files.items())
        },
        "step": int(step),
        "format": FORMAT_VERSION,
        "run_id": run_id,
    }
    _write_durable(tmp / MANIFEST_FILE, lambda f: f.write(_json_bytes(manifest)))
    _fsync_dir(tmp)


def _drop_groups(step_dir: pathlib.Path, groups: Collection[str]) -> None:
    """Remove array groups from a saved checkpoint: first from its manifest (atomically), then their files."""
    manifest = json.loads((step_dir / MANIFEST_FILE).read_bytes())
    dropped = [f"{g}.npz" for g in groups if f"{g}.npz" in manifest["files"]]
    if not dropped:
        return
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k not in dropped}
    manifest["dropped"] = sorted(set(manifest.get("dropped", [])) | set(dropped))
    _replace_file(step_dir / MANIFEST_FILE, _json_bytes(manifest), "manifest")
    for fname in dropped:
        _remove_file(step_dir / fname)


def _prune(root: pathlib.Path, newest: pathlib.Path, run_id: str, keep: int, newest_only: Collection[str]):
    """Of this run's checkpoints before `newest`: delete those beyond `keep` (or at newest's step), drop
    `newest_only` groups from the rest. Other runs' checkpoints are never touched."""
    older = [p for p in _step_dirs(root) if p != newest and _owner_of(p) == run_id]
    step = step_sort_key(newest)[0]
    superseded = [p for p in older if step_sort_key(p)[0] == step]
    kept = [p for p in older if p not in superseded]
    for stale in superseded + kept[: max(len(kept) - (keep - 1), 0)]:
        aside = _hidden(root, "old", stale.name)
        _rename(stale, aside)
        _remove_tree(aside)
    for step_dir in kept[max(len(kept) - (keep - 1), 0) :]:
        _drop_groups(step_dir, newest_only)


def save_checkpoint(
    directory: os.PathLike | str,
    step: int,
    arrays: Mapping[str, Mapping[str, Any]],
    meta: Mapping[str, Any],
    *,
    run_id: str,
    keep: int = 1,
    newest_only: Collection[str] = (),
) -> pathlib.Path:
    """Atomically write `arrays` and `meta` as run `run_id`'s newest checkpoint in `directory` and return it.

    Keeps the run's `keep` newest checkpoints; groups named in `newest_only` (the replay) are dropped from
    the older ones. Refuses a directory that holds another run's checkpoints.
    """
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    for group in arrays:
        if not isinstance(group, str) or not _GROUP_RE.fullmatch(group):
            raise ValueError(f"array group name {group!r} is not a plain file name")

    claim_run_dir(directory, run_id)
    root = pathlib.Path(directory) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    with _run_lock(root, blocking=True):
        needed = _expected_bytes(arrays, meta)
        _check_space(root, needed)
        final = root / _fresh_step_name(root, step)
        tmp = _hidden(root, "tmp", final.name)
        os.mkdir(tmp)
        try:
            _write_step_dir(tmp, step, arrays, meta, run_id)
            _rename(tmp, final)
        except BaseException as error:
            _remove_tree(tmp)
            if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise CheckpointSpaceError(root, needed, None) from error
            raise
        _fsync_dir(root)
        _replace_file(root / LATEST_FILE, f"{final.name}\n".encode(), "LATEST")
        _prune(root, final, run_id, keep, newest_only)
        _remove_leftovers(root)
    return final


def latest_checkpoint(directory: os.PathLike | str) -> pathlib.Path | None:
    """Step directory named by `directory/checkpoints/LATEST`, or None if there is none."""
    latest = pathlib.Path(directory) / CHECKPOINTS_DIR / LATEST_FILE
    try:
        name = latest.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointCorruptError(latest, f"unreadable ({e})") from e
    if not name or pathlib.PurePath(name).name != name or name in (".", ".."):
        raise CheckpointCorruptError(latest, f"does not name a step directory: {name!r}")
    step_dir = latest.parent / name
    if not step_dir.is_dir():
        raise CheckpointCorruptError(latest, f"points to missing directory {step_dir}")
    return step_dir


def _read_manifest(step_dir: pathlib.Path) -> dict[str, Any]:
    """Parse and validate `manifest.json` of any supported format."""
    path = step_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError as e:
        raise CheckpointCorruptError(path, "manifest is missing") from e
    except (OSError, ValueError) as e:
        raise CheckpointCorruptError(path, f"manifest is unreadable ({e})") from e
    if not isinstance(manifest, dict):
        raise CheckpointCorruptError(path, "manifest is not a JSON object")
    if manifest.get("format") not in SUPPORTED_FORMATS:
        raise CheckpointCorruptError(
            path,
            f"checkpoint format {manifest.get('format')!r} is not supported by this dpgkit (it reads formats "
            f"{', '.join(map(str, SUPPORTED_FORMATS))}); a newer dpgkit may have written it",
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or META_FILE not in files:
        raise CheckpointCorruptError(path, f"manifest has no 'files' table listing {META_FILE}")
    for fname, entry in files.items():
        if (
            pathlib.PurePath(fname).name != fname
            or not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not isinstance(entry.get("bytes"), int)
        ):
            raise CheckpointCorruptError(path, f"malformed manifest entry {fname!r}: {entry!r}")
    return manifest


def _verify(path: pathlib.Path, entry: Mapping[str, Any]) -> None:
    """Check a file's existence, size and sha256 against its manifest entry."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as e:
        raise CheckpointCorruptError(path, "file listed in manifest is missing") from e
    if size != entry["bytes"]:
        raise CheckpointCorruptError(path, f"size {size} bytes, manifest says {entry['bytes']}")
    digest = _sha256(path)
    if digest != entry["sha256"]:
        raise CheckpointCorruptError(path, f"sha256 mismatch (got {digest}, manifest says {entry['sha256']})")


def resolve_step_dir(path: os.PathLike | str) -> pathlib.Path:
    """Map a run directory or a step directory to the step directory to load."""
    path = pathlib.Path(path)
    if (path / CHECKPOINTS_DIR).is_dir():
        step_dir = latest_checkpoint(path)
        if step_dir is None:
            raise FileNotFoundError(
                f"no checkpoint in {path}: {path / CHECKPOINTS_DIR / LATEST_FILE} is missing"
            )
        return step_dir
    if path.is_dir() and ((path / MANIFEST_FILE).exists() or _STEP_DIR_RE.fullmatch(path.name)):
        return path
    raise FileNotFoundError(
        f"no checkpoint at {path}: expected a run directory with {CHECKPOINTS_DIR}/{LATEST_FILE} "
        f"or a step directory with {MANIFEST_FILE}"
    )


def load_checkpoint(path: os.PathLike | str) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Verify and load a checkpoint from a run directory or a step directory.

    Format-1 meta gains its legacy run id. Loading from a run directory also removes the hidden leftovers of
    interrupted saves (unless a save is under way in another process; files dropped from older checkpoints go
    at the next save).
    """
    step_dir = resolve_step_dir(path)
    manifest = _read_manifest(step_dir)
    files = manifest["files"]
    for fname, entry in files.items():
        _verify(step_dir / fname, entry)

    arrays = {}
    for fname in files:
        if not fname.endswith(".npz"):
            continue
        fpath = step_dir / fname
        try:
            with np.load(fpath, allow_pickle=False) as npz:
                arrays[fname.removesuffix(".npz")] = {key: npz[key] for key in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise CheckpointCorruptError(fpath, f"unreadable npz ({e})") from e
    meta_path = step_dir / META_FILE
    try:
        meta = json.loads(meta_path.read_bytes())
    except ValueError as e:
        raise CheckpointCorruptError(meta_path, f"invalid JSON ({e})") from e
    if manifest["format"] == 1 and isinstance(meta, dict):
        meta.setdefault("run_id", legacy_run_id(step_dir.parent.parent))
    root = step_dir.parent
    if (pathlib.Path(path) / CHECKPOINTS_DIR).is_dir() and _has_leftovers(root) and os.access(root, os.W_OK):
        with _run_lock(root, blocking=False) as held:
            if held:
                _remove_leftovers(root)
    return arrays, meta


def flatten_tree(tree: Any) -> dict[str, np.ndarray]:
    """Flatten a pytree into numpy arrays keyed by `jax.tree_util.keystr` of each leaf path."""
    flat = {}
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = jax.tree_util.keystr(key_path)
        if key in flat:
            raise ValueError(f"two pytree leaves share the key {key}")
        flat[key] = np.asarray(leaf)
    return flat


def unflatten_tree(template: Any, flat: Mapping[str, np.ndarray]) -> Any:
    """Rebuild `template`'s structure from `flat`, casting leaves to the template's dtypes."""
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    keys = [jax.tree_util.keystr(key_path) for key_path, _ in leaves_with_paths]
    missing = [k for k in keys if k not in flat]
    extra = sorted(set(flat) - set(keys))
    if missing or extra:
        raise ValueError(f"pytree keys do not match the template: missing {missing}, extra {extra}")

    leaves = []
    for key, (_, ref) in zip(keys, leaves_with_paths, strict=True):
        value = np.asarray(flat[key])
        if value.shape != np.shape(ref):
            raise ValueError(f"shape mismatch for {key}: got {value.shape}, template has {np.shape(ref)}")
        dtype = np.dtype(ref.dtype if hasattr(ref, "dtype") else np.asarray(ref).dtype)
        if value.dtype.kind == "V" and value.dtype != dtype:
            # npy stores extension dtypes such as bfloat16 as raw void bytes; reinterpret them.
            value = value.view(dtype)
        leaves.append(value.astype(dtype, copy=False))
    return jax.tree_util.tree_unflatten(treedef, leaves)
