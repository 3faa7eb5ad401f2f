"""One Ray cluster for the whole test session (2 CPUs, a bounded object store), with a token of the tests' own."""

from __future__ import annotations

import os
import pathlib
import secrets
import warnings

import pytest

from dpgkit.collect.ray import FORK_WARNING

OBJECT_STORE_BYTES = 128 * 2**20


@pytest.fixture(scope="session")
def ray_session():
    """The ray module, initialised once: token authentication on, workers seeing this folder's test envs."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
    import ray

    here = str(pathlib.Path(__file__).parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", FORK_WARNING, RuntimeWarning)
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            log_to_driver=False,
            logging_level="WARNING",
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
    yield ray
    ray.shutdown()
