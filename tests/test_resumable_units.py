"""Experiments whose seeds run for hours store each training as a resumable unit (``RunContext.unit``).

For each one: a seed resumed with only some units stored re-runs exactly the missing ones and returns what an
uninterrupted run returns (timings aside), so each unit seeds itself and reads no state left by another.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from paper_repro import registry
from paper_repro.registry import RunContext


def _no_timings(x: Any) -> Any:
    """``x`` without timings (keys ending in ``_s``, or naming seconds, wall or time), NaN as a string (so that
    equal results compare equal), recursively."""
    if isinstance(x, dict):
        return {k: _no_timings(v) for k, v in x.items() if not _is_timing(k)}
    if isinstance(x, list):
        return [_no_timings(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return x


def _is_timing(key: str) -> bool:
    return key.endswith("_s") or key.startswith("s_per") or any(w in key for w in ("seconds", "wall", "time"))


CASES: dict[str, dict[str, Any]] = {
    "nmt.recsys": {"sizes": {"e2": [2000, 2000], "e1": [500, 500]}, "epochs": {"e2": 1, "e1": 1}, "grid_log2": [0]},
    "mt2o.regression": {"n_train": 200, "n_test": 100, "epochs": 1, "methods": ["ls", "mt2o_a1"], "threads": 1},
    "cso.digits": {"subset": 128, "epochs": 1, "batch_size": 64, "methods": ["CSO", "PCGrad-tbn"]},
    "emtl.digits": {"epochs": 1, "methods": ["EMTL@1", "STL-0", "STL-1"]},
    "emtl.recsys": {"n_train": 4000, "n_test": 2000, "methods": ["EMTL"], "models": ["MMoE"]},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_resumed_seed_equals_uninterrupted(name: str, tmp_path: Path) -> None:
    exp = registry.get(name)
    cfg = {**exp.profiles["quick"], **CASES[name]}
    torch.set_num_threads(1)
    udir = tmp_path / "units"
    first = RunContext(progress=False, units_dir=udir, workdir=tmp_path / "work")
    straight = exp.run_seed(dict(cfg), 0, first)
    units = sorted(udir.glob("*.json"))
    assert len(units) >= 2 and first.units_resumed == []
    keep, drop = units[0], units[1:]
    for f in drop:
        f.unlink()  # as if the seed had been interrupted after its first unit
    again = RunContext(progress=False, units_dir=udir, workdir=tmp_path / "work2")
    resumed = exp.run_seed(dict(cfg), 0, again)
    assert again.units_resumed == [keep.stem]
    assert sorted(p.name for p in udir.glob("*.json")) == [p.name for p in units]
    assert _no_timings(resumed) == _no_timings(straight)


def test_direct_run_seed_writes_nothing_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a workdir (a test or notebook calling ``run_seed``) no checkpoint is written, so none is resumed."""
    monkeypatch.chdir(tmp_path)
    exp = registry.get("emtl.digits")
    torch.set_num_threads(1)
    exp.run_seed({**exp.profiles["quick"], **CASES["emtl.digits"]}, 0, RunContext(progress=False))
    assert list(tmp_path.iterdir()) == []
