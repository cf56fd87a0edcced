"""Experiments whose seeds run for hours store each training as a resumable unit (``RunContext.unit``).

For each one: a seed resumed with only some units stored re-runs exactly the missing ones and returns what an
uninterrupted run returns (timings aside), so each unit seeds itself and reads no state left by another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from paper_repro import registry
from paper_repro.registry import RunContext


def _no_timings(x: Any) -> Any:
    """``x`` without timings (keys ending in ``_s`` or named ``seconds``), recursively."""
    if isinstance(x, dict):
        return {k: _no_timings(v) for k, v in x.items() if not k.endswith("_s") and k != "seconds"}
    if isinstance(x, list):
        return [_no_timings(v) for v in x]
    return x


CASES: dict[str, dict[str, Any]] = {
    "mt2o.regression": {"n_train": 200, "n_test": 100, "epochs": 1, "methods": ["ls", "mt2o_a1"], "threads": 1},
    "cso.digits": {"subset": 128, "epochs": 1, "batch_size": 64, "methods": ["CSO", "PCGrad-tbn"]},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_resumed_seed_equals_uninterrupted(name: str, tmp_path: Path) -> None:
    exp = registry.get(name)
    cfg = {**exp.profiles["quick"], **CASES[name]}
    torch.set_num_threads(1)
    first = RunContext(progress=False, units_dir=tmp_path)
    straight = exp.run_seed(dict(cfg), 0, first)
    units = sorted(tmp_path.glob("*.json"))
    assert len(units) >= 2 and first.units_resumed == []
    keep, drop = units[0], units[1:]
    for f in drop:
        f.unlink()  # as if the seed had been interrupted after its first unit
    again = RunContext(progress=False, units_dir=tmp_path)
    resumed = exp.run_seed(dict(cfg), 0, again)
    assert again.units_resumed == [keep.stem]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [p.name for p in units]
    assert _no_timings(resumed) == _no_timings(straight)
