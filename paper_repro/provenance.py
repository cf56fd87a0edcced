"""Provenance of a run: which code, on which machine, with which settings.

Every result file the runner writes carries :func:`provenance` so that a number can always be traced
back to a commit (and whether the tree was dirty), a machine, library versions and the thread count
(conventions §4). :func:`set_seed_everything` is for *run entry points* only (the runner, the CLI,
tests): library code never touches the global RNGs and takes explicit generators instead.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from methods._provenance import git_info, provenance  # one implementation, shared with the trainer

__all__ = ["REPO_ROOT", "git_info", "provenance", "set_seed_everything", "torch_threads"]

#: Root of the repository (the folder holding ``paper_repro/``).
REPO_ROOT: Path = Path(__file__).resolve().parents[1]


def set_seed_everything(seed: int, *, deterministic: bool = True) -> torch.Generator:
    """Seed ``random``, numpy and torch (all devices) and turn on deterministic algorithms.

    For run entry points only. Returns a fresh CPU ``torch.Generator`` seeded with ``seed`` that the
    caller passes on explicitly (data loaders, initializers, samplers).

    :param seed: a non-negative integer.
    :param deterministic: call ``torch.use_deterministic_algorithms(True, warn_only=True)`` (ops with
        no deterministic kernel warn instead of failing, which matters on CUDA only) and set
        ``CUBLAS_WORKSPACE_CONFIG`` if unset.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Parameter `seed` should be a non-negative integer. Found `seed = {seed!r}`.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator(device="cpu").manual_seed(seed)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None``: unchanged), then restore the previous count.

    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is not None and (isinstance(n, bool) or int(n) < 1):
        raise ValueError(f"Parameter `n` should be a positive integer or None. Found `n = {n!r}`.")
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
