"""Shared pytest setup: determinism, the ``--runslow`` option, and a ``dtype`` fixture.

- Every test starts from seeded ``random``/numpy/torch, deterministic algorithms on, 2 torch threads
  (conventions §4); tests should still pass explicit generators to the code under test.
- ``@pytest.mark.slow`` tests run only with ``--runslow``.
- ``runs_dir``: the session's runs folder (``$MTOPT_RUNS_DIR`` or a temporary one).
- ``dtype``: parametrize a test over float32 and float64 by taking the fixture.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # make the packages importable however pytest was started
    sys.path.insert(0, str(ROOT))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _deterministic() -> Iterator[None]:
    """Seed the global RNGs, turn on deterministic algorithms, use 2 threads; restore afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One runs folder per session, shared by the claims test and the notebooks (so each quick
    experiment runs once); ``$MTOPT_RUNS_DIR`` reuses a folder across sessions."""
    env = os.environ.get("MTOPT_RUNS_DIR")
    return Path(env) if env else tmp_path_factory.mktemp("runs")


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Run the test once in float32 and once in float64."""
    return request.param
