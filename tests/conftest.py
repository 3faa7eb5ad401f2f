"""Test session setup: one XLA compilation cache per session, so a program that many tests build compiles once."""

import os

import jax
import pytest

CACHE_SETTINGS = {
    "jax_compilation_cache_dir": None,
    "jax_persistent_cache_min_compile_time_secs": 0.2,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """JAX's persistent cache in this session's temporary folder (shared by xdist workers and CLI subprocesses)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "xla-cache"
    for name, value in {**CACHE_SETTINGS, "jax_compilation_cache_dir": str(folder)}.items():
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)
    yield
