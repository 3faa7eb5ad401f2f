"""Atomic, hash-verified checkpoints of numpy array groups plus JSON metadata."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import jax
import numpy as np

FORMAT_VERSION = 1
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "LATEST"
MANIFEST_FILE = "manifest.json"
META_FILE = "meta.json"

_STEP_DIR_RE = re.compile(r"step_(\d+)")
_GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HASH_CHUNK = 1 << 20


class CheckpointCorruptError(ValueError):
    """A checkpoint file is missing, truncated, unreadable or fails its manifest hash."""

    def __init__(self, path: os.PathLike | str, reason: str):
        """Build the message from the offending file path and the reason."""
        self.path = pathlib.Path(path)
        super().__init__(f"checkpoint file {self.path} is corrupt: {reason}")


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


def _write_npz(f: BinaryIO, group: Mapping[str, Any]) -> None:
    """Write arrays as an uncompressed npz (np.savez layout) that loads without pickle."""
    # Same layout as np.savez, written directly so that array names such as "file" or
    # "allow_pickle" cannot collide with np.savez's own parameters.
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


def _move_aside(path: pathlib.Path) -> pathlib.Path:
    """Rename a directory to a hidden sibling so it can be deleted without looking valid."""
    aside = path.with_name(f".old-{path.name}-{secrets.token_hex(4)}")
    os.rename(path, aside)
    return aside


def _step_of(path: pathlib.Path) -> int:
    """Step number encoded in a `step_*` directory name."""
    return int(_STEP_DIR_RE.fullmatch(path.name).group(1))


def _write_latest(root: pathlib.Path, name: str) -> None:
    """Atomically point `root/LATEST` at step directory `name`."""
    tmp = root / f".{LATEST_FILE}-{secrets.token_hex(4)}"
    try:
        _write_durable(tmp, lambda f: f.write(f"{name}\n".encode()))
        os.replace(tmp, root / LATEST_FILE)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(root)


def save_checkpoint(
    directory: os.PathLike | str,
    step: int,
    arrays: Mapping[str, Mapping[str, Any]],
    meta: Mapping[str, Any],
    keep: int = 1,
) -> pathlib.Path:
    """Atomically write `arrays` and `meta` to `directory/checkpoints/step_{step:09d}` and return it."""
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    for group in arrays:
        if not isinstance(group, str) or not _GROUP_RE.fullmatch(group):
            raise ValueError(f"array group name {group!r} is not a plain file name")

    root = pathlib.Path(directory) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{int(step):09d}"
    final = root / name
    tmp = root / f".tmp-{name}-{secrets.token_hex(4)}"
    os.mkdir(tmp)
    replaced = None
    try:
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
        }
        _write_durable(tmp / MANIFEST_FILE, lambda f: f.write(_json_bytes(manifest)))
        _fsync_dir(tmp)
        if final.exists():
            replaced = _move_aside(final)
        try:
            os.rename(tmp, final)
        except BaseException:
            if replaced is not None:
                os.rename(replaced, final)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(root)
    _write_latest(root, name)

    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    older = sorted(
        (p for p in root.iterdir() if p != final and p.is_dir() and _STEP_DIR_RE.fullmatch(p.name)),
        key=_step_of,
    )
    for stale in older[: max(len(older) - (keep - 1), 0)]:
        shutil.rmtree(_move_aside(stale), ignore_errors=True)
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


def _read_manifest(step_dir: pathlib.Path) -> dict[str, dict[str, Any]]:
    """Parse and validate `manifest.json`, returning its "files" table."""
    path = step_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError as e:
        raise CheckpointCorruptError(path, "manifest is missing") from e
    except (OSError, ValueError) as e:
        raise CheckpointCorruptError(path, f"manifest is unreadable ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise CheckpointCorruptError(path, f"manifest is not a format-{FORMAT_VERSION} object")
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
    return files


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


def _resolve_step_dir(path: pathlib.Path) -> pathlib.Path:
    """Map a run directory or a step directory to the step directory to load."""
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
    """Verify and load a checkpoint from a run directory or a step directory."""
    step_dir = _resolve_step_dir(pathlib.Path(path))
    files = _read_manifest(step_dir)
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
