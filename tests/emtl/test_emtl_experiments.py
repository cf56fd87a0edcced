"""Smoke tests of paper_repro.experiments.emtl: method names, a tiny run of each experiment, figures, claims."""

from __future__ import annotations

import math

import pytest
import torch

from methods.emtl import EMTL, EMTLStep
from paper_repro.experiments import emtl as ex
from paper_repro.registry import RunContext


def test_build_method_names():
    s, c, f = ex.build_method("EMTL-SI-rep@0.5", 3)
    assert isinstance(s, EMTLStep) and isinstance(c, EMTL) and f
    assert (c.base, c.variant, c.lam, c.grad_on) == ("log", "log", 0.5, "rep")
    s, c, f = ex.build_method("EMTL", 2, emtl_options={"eps": 0.0})
    assert c.eps == 0.0 and not f and str(c) == "EMTL"
    _, c, _ = ex.build_method("STL-1", 2)
    assert type(c).__name__ == "EqualWeighting"
    with pytest.raises(KeyError):
        ex.build_method("NoSuchMethod", 2)


def _ctx(tmp_path):
    return RunContext(workdir=tmp_path, progress=False, dtype=torch.float64)


def test_run_scale_tiny(tmp_path):
    cfg = {**ex._SCALE_QUICK, "methods": ["EW", "EMTL-SI"], "ks": [-1, 0, 1], "epochs": 1, "hidden": [16]}
    out = ex.run_scale(cfg, 0, _ctx(tmp_path))
    si, ew = out["methods"]["EMTL-SI"], out["methods"]["EW"]
    assert si["max_divergence"] < 1e-10 and si["spread"] == 0.0
    assert ew["max_divergence"] > 1e-3


def test_run_digits_tiny(tmp_path):
    cfg = {**ex._DIGITS_QUICK, "methods": ["EW", "EMTL", "EMTL-SI", "STL-0", "STL-1"], "epochs": 1, "hidden": [16],
           "probe_every": 5}
    out = ex.run_digits(cfg, 0, _ctx(tmp_path))
    res = out["methods"]["EMTL"]
    assert math.isfinite(res["delta_m"]) and len(res["per_metric"]) == 2
    assert res["inequity"] and {"r", "cv2_r", "cos", "step"} <= set(res["inequity"][0])
    assert res["weight_trace"][0]["weights"] is not None
    fake = {"experiment": "emtl.digits", "profile": "test", "seeds": [0], "per_seed": [out],
            "summary": {f"methods.{m}.{k}": {"mean": v[k], "se": float("nan"), "n": 1}
                        for m, v in out["methods"].items() for k in ("delta_m", "mean_cv2_r", "per_metric", "spread_std")
                        if k in v}}
    for fig in (ex.figure_inequity(fake), ex.figure_weights(fake), ex.figure_lambda(fake)):
        assert fig.axes
    rows = ex.delta_m_table(fake)
    assert {r["method"] for r in rows} == {"EW", "EMTL", "EMTL-SI"}
    claim = ex._check_inequity({"per_seed": [out, out]})
    assert claim.ours.startswith("mean CV²(r)")
    assert ex._check_inequity_si({"per_seed": [out]}).ours.startswith("mean Var(log r)")


def test_run_scenes_tiny(tmp_path):
    cfg = {**ex._SCENES_QUICK, "methods": ["EW", "EMTL-rep", "STL-0", "STL-1", "STL-2"], "n_train": 8, "n_val": 2,
           "n_test": 4, "size": 16, "channels": [4, 4, 4], "epochs": 1, "batch_size": 4, "probe_every": 1,
           "probe_size": 4}
    out = ex.run_scenes(cfg, 0, RunContext(workdir=tmp_path, progress=False))
    assert len(out["stl"]) == 9
    assert math.isfinite(out["methods"]["EMTL-rep"]["delta_m"]) and "mean_rank" in out["methods"]["EW"]
