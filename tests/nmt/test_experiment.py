"""NMT experiment module: a tiny end-to-end run_seed and the claim checks on hand-built results."""

from __future__ import annotations

import math

import pytest
import torch

from paper_repro.experiments import nmt as E
from paper_repro.registry import RunContext


@pytest.fixture(scope="module")
def tiny_results():
    cfg = {**E._QUICK, "settings": [E._QUICK["settings"][0]], "sizes": {"e2": [2000, 2000], "e1": [500, 500]},
           "epochs": {"e2": 1, "e1": 1}, "grid_log2": [-1, 0, 1]}
    per_seed = [E.run_seed(cfg, s, RunContext(progress=False)) for s in (0, 1)]
    return {"per_seed": per_seed, "config": cfg, "profile": "test", "seeds": [0, 1]}


def test_tiny_end_to_end(tiny_results):
    r = tiny_results["per_seed"][0]["settings"]["E2-rc0.5-sb"]
    assert set(r["nmt"]) == {"0>1", "1>0"}
    for order, n in r["nmt"].items():
        assert n["lambda_finite"] and n["lambda_min"] >= 0
        assert 0.4 < n["auc_h"] < 1 and n["eps1"] > 0
        assert len(n["trace"]["lambda"]) == len(n["trace"]["step"]) > 0
    assert r["ew"] == r["grid"]["0"]
    rows = E.setting_table(tiny_results)
    assert len(rows) == 2 and rows[0]["n_seeds"] == 2
    for fn in (E._c1, E._c2, E._c3, E._c4, E._c5):
        out = fn(tiny_results)
        assert isinstance(out.holds, bool) and out.ours
    import matplotlib.pyplot as plt

    for fig in (E.fig_multiplier_traces, E.fig_violation, E.fig_frontier):
        f = fig(tiny_results)
        assert f.axes
        plt.close(f)
        f = fig(tiny_results, settings=["E2-rc0.5-sb"])  # a subset: one setting, its two orders in F6
        assert len([a for a in f.axes if a.get_visible() and a.get_title()]) == (2 if fig is E.fig_frontier else 1)
        plt.close(f)
        with pytest.raises(ValueError, match="should name some of"):
            fig(tiny_results, settings=["E9-nope"])


def _fake(nmt_h, st_h, ew_h, nmt_l=0.8, ew_l=0.8, viol=0.0, grid=None):
    """Hand-built per-seed results for one setting; the cases below use equal numbers for both tasks, so
    both priority orders see the same values."""
    grid = grid or {"0": (ew_h, ew_l)}
    s = {
        "st0": {"auc": [st_h, 0.5]}, "st1": {"auc": [0.5, st_h]},
        "ew": {"auc": [ew_h, ew_l], "logloss": [0.3, 0.3]},
        "grid": {k: {"auc": [h, l]} for k, (h, l) in grid.items()},
        "nmt": {o: {"auc_h": nmt_h, "auc_l": nmt_l, "auc": [nmt_h, nmt_l], "logloss": [0.3, 0.3],
                    "violation_last_epoch_rel": viol, "lambda_final": 1.0, "lambda_finite": True, "lambda_min": 0.0,
                    "selected_feasible": o == "0>1", "selected_epoch": 0 if o == "1>0" else 2,
                    "val_epochs_h": [nmt_h] * (3 if o == "1>0" else 5)}
                for o in E.ORDERS},
    }
    return {"per_seed": [{"settings": {"S": s}}], "config": {"settings": []}}


def test_claim_checks_on_hand_built_numbers():
    sym = _fake(nmt_h=0.80, st_h=0.80, ew_h=0.80, nmt_l=0.80, ew_l=0.80)
    assert E._c1(sym).holds and E._c2(sym).holds
    assert E._c2(sym).detail["selection"] == {"n": 2, "feasible": 1, "short": 1, "first_epoch": 1}
    assert "feasible checkpoint in 1/2 runs, its first epoch in 1/2, and stopped within 4 epochs in 1/2" in E._c2(sym).ours
    assert not E._c1(_fake(nmt_h=0.79, st_h=0.80, ew_h=0.79, ew_l=0.79, nmt_l=0.79)).holds  # 0.01 > τ below ST
    assert not E._c3(sym).holds  # no interference: not testable
    interf = _fake(nmt_h=0.80, st_h=0.80, ew_h=0.79, ew_l=0.79, nmt_l=0.79)
    assert E._c3(interf).holds
    dom = _fake(nmt_h=0.80, st_h=0.80, ew_h=0.80, ew_l=0.80, grid={"0": (0.80, 0.80), "1": (0.81, 0.81)})
    assert not E._c4(dom).holds
    assert not E._c5(_fake(0.8, 0.8, 0.8, viol=0.02)).holds
    assert E._c5(_fake(0.8, 0.8, 0.8, viol=-0.05)).holds
    assert math.isclose(E.TAU, 0.003)
