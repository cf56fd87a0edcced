"""NMT theory checks T-1..T-8 (theory/nmt.py) as tests: each must hold (spec specs/nmt.md §3)."""

from __future__ import annotations

import pytest

from theory.registry import all_checks

_CHECKS = all_checks("NMT")


def test_all_eight_checks_registered():
    names = [c.name for c in _CHECKS]
    assert [n.split()[0] for n in names] == [f"T-{i}" for i in range(1, 9)]


@pytest.mark.parametrize("chk", _CHECKS, ids=[c.name.split()[0] for c in _CHECKS])
def test_check_holds(chk):
    out = chk.run()
    assert out.holds, f"{chk.name}: {out.result}"
