"""Results recorded by an earlier commit's code, one folder per kind of CPU.

XLA compiles for the CPU it runs on, and its float rounding differs between instruction sets (AVX2 against
AVX-512), so a run is bit-for-bit reproducible on the same kind of CPU only. A kind with a committed folder uses
it; any other kind has the recorded commit's code (from git) write them first, into the test session's temporary
folder, so the comparison is always old code against new code on the same machine.
"""

from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIMD_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
)


def cpu_kind(cpuinfo: str | None = None) -> str:
    """The architecture, vendor and SIMD extensions of this CPU, e.g. 'x86_64-AuthenticAMD-avx-avx2-fma'."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    fields = {
        key.strip(): value.strip() for key, _, value in (line.partition(":") for line in cpuinfo.splitlines())
    }
    flags = set(fields.get("flags", "").split())
    vendor = fields.get("vendor_id", "")
    return "-".join(
        [platform.machine()] + ([vendor] if vendor else []) + [f for f in SIMD_FLAGS if f in flags]
    )


def recorded(folder: Path, commit: str, script: Path, scratch: Path) -> Path:
    """folder/<cpu kind> where committed; else a folder that `python script OUT` fills, run with commit's src."""
    kind = cpu_kind()
    if (folder / kind).is_dir():
        return folder / kind
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src"], check=False, capture_output=True
    )
    if archive.returncode:
        raise RuntimeError(
            f"{folder} has no results for this CPU ({kind}) and git cannot give commit {commit} to record them: "
            f"{archive.stderr.decode().strip()}"
        )
    source = scratch / f"src-{commit}"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(source, filter="data")
    out = scratch / kind
    out.mkdir(parents=True)
    environment = os.environ | {"PYTHONPATH": str(source / "src")}
    subprocess.run([sys.executable, str(script), str(out)], env=environment, check=True, cwd=ROOT)
    return out
