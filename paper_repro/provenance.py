"""Provenance of a run: which code, on which machine, with which settings.

Every result file the runner writes carries :func:`provenance` so that a number can always be traced
back to a commit (and whether the tree was dirty), a machine, library versions and the thread count
(conventions §4). :func:`set_seed_everything` is for *run entry points* only (the runner, the CLI,
tests): library code never touches the global RNGs and takes explicit generators instead.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["REPO_ROOT", "git_info", "provenance", "set_seed_everything"]

#: Root of the repository (the folder holding ``paper_repro/``).
REPO_ROOT: Path = Path(__file__).resolve().parents[1]


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(path: Path = REPO_ROOT) -> dict[str, Any]:
    """Commit hash and dirty flag of the git tree holding ``path``.

    :returns: ``{"commit": sha | "unknown", "dirty": bool | None}``; ``"unknown"``/``None`` outside
        git or before the first commit (dirty is still reported when git itself works).
    """
    commit = _git(["rev-parse", "HEAD"], path) or "unknown"
    status = _git(["status", "--porcelain"], path)
    dirty = None if status is None else bool(status)
    return {"commit": commit, "dirty": dirty}


def provenance(settings: dict[str, Any], device: str | torch.device = "cpu") -> dict[str, Any]:
    """A JSON-able record of where and how a result was produced.

    :param settings: the run's settings (experiment, profile, config, seeds, ...), stored verbatim.
    :param device: the device the run used.
    :returns: dict with ``commit``, ``dirty``, ``timestamp_utc`` (ISO 8601), ``hostname``,
        ``platform``, ``processor``, ``python``, ``torch``, ``numpy``, ``torch_threads``,
        ``device`` (and ``device_name`` for CUDA) and ``settings``.
    """
    dev = torch.device(device)
    record: dict[str, Any] = {
        **git_info(),
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(dev),
        "settings": settings,
    }
    if dev.type == "cuda" and torch.cuda.is_available():
        record["device_name"] = torch.cuda.get_device_name(dev)
    return record


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
