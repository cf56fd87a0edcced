"""Where a result came from: commit, machine, versions, settings. Used by the trainer and the runner."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["git_info", "provenance", "write_json"]


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(path: str | Path | None = None) -> dict[str, Any]:
    """Commit hash and dirty flag of the git tree holding ``path`` (default: this package's checkout).

    :returns: ``{"commit": sha | "unknown", "dirty": bool | None}``; ``"unknown"``/``None`` outside
        git or before the first commit.
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    commit = _git(["rev-parse", "HEAD"], where) or "unknown"
    status = _git(["status", "--porcelain"], where)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def provenance(settings: dict[str, Any] | None = None, device: str | torch.device = "cpu", *,
               git: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-able record of where and how a result was produced.

    :param settings: the run's settings (experiment, profile, config, seeds, ...), stored verbatim.
    :param device: the device the run used.
    :param git: the :func:`git_info` taken when the run *started* (the code that ran); default: now.
        A long run should pass it, or a commit made while it ran would be recorded instead.
    :returns: dict with ``commit``, ``dirty``, ``timestamp_utc`` (ISO 8601), ``hostname``,
        ``platform``, ``processor``, ``cpu_count``, ``python``, ``torch``, ``numpy``,
        ``torch_threads``, ``device`` (and ``device_name`` for CUDA) and ``settings``.
    """
    dev = torch.device(device)
    record: dict[str, Any] = {
        **(git if git is not None else git_info()),
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
        "settings": settings or {},
    }
    if dev.type == "cuda" and torch.cuda.is_available():
        record["device_name"] = torch.cuda.get_device_name(dev)
    return record


def _default(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=_default, allow_nan=True))
    os.replace(tmp, path)
    return path
