"""The fast CSO theory checks (T1–T5) hold; T6/T7 run in ``python -m theory --paper CSO`` (≈ 25 s)."""

from __future__ import annotations

import pytest

cso = pytest.importorskip("theory.cso")


@pytest.mark.parametrize("name", ["t1_theorem1_first_order", "t2_finite_step_breakdown", "t3_equal_step_length",
                                  "t4_phase2_invariant", "t5_folded_filter_energy"])
def test_fast_checks_hold(name: str) -> None:
    out = getattr(cso, name)()
    assert out.holds, out.result


def test_t3_counts_match_spec() -> None:
    d = cso.t3_equal_step_length(n_cases=100).detail
    assert d["beats_same_eta"] == 100 and d["beats_equal_norm"] == 0


def test_convex_toy_short_run_is_near_the_front() -> None:
    res = cso.convex_toy(n_iters=3000)
    assert max(res["gap_rel"].values()) < 1e-2
    assert set(res["ends"]) == {"gd", "mgda", "pcgrad", "cagrad", "phase1", "phase2", "mixed"}
