"""tests/recorded.py: the kind of CPU that keys recorded results, and a clear error where none can be recorded."""

from pathlib import Path

import pytest

from recorded import cpu_kind, recorded

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni
processor\t: 1
vendor_id\t: GenuineIntel
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni
"""


def test_the_kind_names_the_vendor_and_the_simd_extensions():
    kind = cpu_kind(CPUINFO)
    assert kind.endswith("-GenuineIntel-avx-avx2-fma-avx512f-avx512bw-avx512vl")
    assert cpu_kind(CPUINFO.replace(" avx512f avx512bw avx512vl", "")).endswith("-GenuineIntel-avx-avx2-fma")


def test_a_committed_folder_for_this_kind_is_used_as_it_is(tmp_path):
    (tmp_path / "recorded" / cpu_kind()).mkdir(parents=True)
    assert recorded(tmp_path / "recorded", "no-such-commit", Path("unused.py"), tmp_path) == (
        tmp_path / "recorded" / cpu_kind()
    )


def test_a_commit_git_cannot_give_is_named(tmp_path):
    with pytest.raises(RuntimeError, match="no-such-commit"):
        recorded(tmp_path / "recorded", "no-such-commit", Path("unused.py"), tmp_path / "scratch")
