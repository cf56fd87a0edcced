"""NMT ablation experiment (``nmt.ablation``, spec §4.3): the variants change exactly what they claim, stage 1 is
trained once per stage-1 setting and shared, the per-seed schema, divergence handling, the table and the figure."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from methods.nmt import NMTConfig, PriorityLagrangian
from paper_repro.experiments import nmt as E
from paper_repro.registry import RunContext, get

_BASE = {"rho": 0.0, "delta": 0.0, "violation": "relative", "eta_lambda": 1.0, "rescale": True, "single_run": False}


def _variants() -> dict[str, E.AblationVariant]:
    return {v.name: v for v in E.ablation_variants(E._ABLATION_QUICK)}


def _diff(v: E.AblationVariant, ref: E.AblationVariant) -> set[str]:
    """Every setting in which variant ``v`` differs from ``ref``."""
    a, b = v.nmt_config.to_dict(), ref.nmt_config.to_dict()
    out = {k for k in a if a[k] != b[k]}
    for k in ("stage1_lr", "optimizer", "lr", "weight_decay"):
        if getattr(v, k) != getattr(ref, k):
            out.add(k)
    return out


def test_registered_and_profiles():
    exp = get("nmt.ablation")
    assert exp.paper == "NMT" and "ablation" in exp.figures
    quick, full = exp.config("quick"), exp.config("full")
    assert len(quick["seeds"]) in (1, 2) and full["seeds"] == [0, 1, 2]
    assert full["sizes"]["e2"] == [200_000, 100_000] and full["epochs"]["e2"] == 20
    assert quick["setting"]["backbone"] == full["setting"]["backbone"] == "mmoe"
    assert quick["setting"]["rho_c"] == 0.5 and quick["orders"] == ["0>1"]


def test_default_variant_is_the_recsys_nmt_run():
    d = _variants()[E.DEFAULT_VARIANT]
    cfg = d.nmt_config.to_dict()
    assert {k: cfg[k] for k in _BASE} == _BASE
    assert cfg["stage_start"] == "warm" and cfg["ascent"] == "sgd" and cfg["tol_sel"] == 0.0
    assert d.optimizer == "adam" and d.lr == d.stage1_lr == 1e-3 and not d.extension
    # the same NMT settings as nmt.recsys
    assert E._ABLATION_QUICK["nmt"] == E._QUICK["nmt"]


def test_each_variant_changes_exactly_its_factor():
    vs = _variants()
    d = vs[E.DEFAULT_VARIANT]
    expected = {
        "rho=0.01": {"rho"},
        "rescale off": {"rescale"},
        "SGD θ (lr 0.05)": {"optimizer", "lr"},
        "SGD θ, rescale off": {"optimizer", "lr", "rescale"},
        "eta=tied": {"eta_lambda"},
        "eta=0.1": {"eta_lambda"},
        "eta=10": {"eta_lambda"},
        "absolute violations": {"violation"},
        "cold start (NMT-1R, ext.)": {"single_run"},
        "lr=3e-4": {"stage1_lr", "lr"},
        "lr=3e-3": {"stage1_lr", "lr"},
        "tol_sel=0.003": {"tol_sel"},
    }
    assert set(vs) == set(expected) | {E.DEFAULT_VARIANT}
    for name, keys in expected.items():
        assert _diff(vs[name], d) == keys, name
    assert vs["rho=0.01"].nmt_config.rho == 0.01
    assert [vs[f"eta={x}"].nmt_config.eta_lambda for x in ("tied", "0.1", "10")] == ["tied", 0.1, 10.0]
    assert vs["lr=3e-4"].stage1_lr == vs["lr=3e-4"].lr == 3e-4
    assert vs["tol_sel=0.003"].nmt_config.tol_sel == E.TAU and d.nmt_config.tol_sel == 0.0
    # only the learning-rate variants change stage 1
    assert {v.stage1_key for v in vs.values()} == {"lr=0.001", "lr=0.0003", "lr=0.003"}
    assert [v.name for v in vs.values() if v.extension] == ["cold start (NMT-1R, ext.)"]
    cold = vs["cold start (NMT-1R, ext.)"].nmt_config
    assert cold.single_run and cold.rho_1r == 0.02


def test_sgd_variant_uses_sgd_and_default_adam():
    vs = _variants()
    p = [torch.nn.Parameter(torch.zeros(3))]
    sgd = vs["SGD θ (lr 0.05)"].make_optimizer(p)
    assert type(sgd) is torch.optim.SGD
    assert sgd.param_groups[0]["lr"] == 0.05 and sgd.param_groups[0]["momentum"] == 0
    assert sgd.param_groups[0]["weight_decay"] == 1e-6
    adam = vs[E.DEFAULT_VARIANT].make_optimizer(p)
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["lr"] == 1e-3
    assert vs["lr=3e-3"].make_optimizer(p).param_groups[0]["lr"] == 3e-3


def _multiplier(v: E.AblationVariant, eps: float = 0.5) -> PriorityLagrangian:
    return PriorityLagrangian(1, thresholds=[eps], dtype=torch.float64, **v.nmt_config.multiplier_kwargs(theta_lr=v.lr))


def test_rescale_off_objective_has_no_normalisation():
    vs = _variants()
    l_obj, l_con = torch.tensor(0.7, dtype=torch.float64), torch.tensor(0.9, dtype=torch.float64)
    j = {}
    for name in (E.DEFAULT_VARIANT, "rescale off", "SGD θ, rescale off"):
        mult = _multiplier(vs[name])
        mult.set_lambdas([3.0])
        j[name], _ = mult.objective(l_obj, [l_con])
    plain = 0.7 + 3.0 * (0.9 - 0.5)
    assert float(j["rescale off"]) == pytest.approx(plain, abs=1e-12)
    assert float(j["SGD θ, rescale off"]) == pytest.approx(plain, abs=1e-12)
    assert float(j[E.DEFAULT_VARIANT]) == pytest.approx(plain / 4.0, abs=1e-12)


def test_multiplier_steps_of_the_eta_and_violation_variants():
    vs = _variants()
    eps, v = 0.5, 0.05
    steps = {}
    for name in (E.DEFAULT_VARIANT, "eta=tied", "eta=0.1", "eta=10", "absolute violations"):
        mult = _multiplier(vs[name], eps)
        steps[name] = float(mult.update(torch.tensor([v]))[0])
    assert steps[E.DEFAULT_VARIANT] == pytest.approx(1.0 * v / eps)  # relative: η_λ·v/|ε|
    assert steps["eta=tied"] == pytest.approx(1e-3 * v / eps)  # tied to the stage-2 θ lr
    assert steps["eta=0.1"] == pytest.approx(0.1 * v / eps)
    assert steps["eta=10"] == pytest.approx(10 * v / eps)
    assert steps["absolute violations"] == pytest.approx(1.0 * v)


def test_variant_validation():
    def cfg(variants):
        return {**E._ABLATION_QUICK, "variants": variants}

    ok = {"name": E.DEFAULT_VARIANT}
    with pytest.raises(ValueError, match="unknown keys"):
        E.ablation_variants(cfg([ok, {"name": "x", "nmt_rho": 0.1}]))
    with pytest.raises(ValueError, match="unique"):
        E.ablation_variants(cfg([ok, ok]))
    with pytest.raises(ValueError, match="default"):
        E.ablation_variants(cfg([{"name": "x"}]))
    with pytest.raises(ValueError, match="stage2_optimizer"):
        E.ablation_variants(cfg([ok, {"name": "x", "stage2_optimizer": {"name": "rmsprop"}}]))
    with pytest.raises(ValueError, match="rho"):
        E.ablation_variants(cfg([ok, {"name": "x", "nmt": {"rho": -1.0}}]))
    with pytest.raises(ValueError, match="non-empty"):
        E.ablation_variants(cfg([]))


# ------------------------------------------------------------------------------ a tiny real run
_TINY_VARIANTS = [
    {"name": E.DEFAULT_VARIANT, "factor": "default"},
    {"name": "rho=0.01", "factor": "slack ρ", "nmt": {"rho": 0.01}},
    {"name": "rescale off", "factor": "re-scaling", "nmt": {"rescale": False}},
    {"name": "SGD θ (lr 0.05)", "factor": "θ optimizer", "stage2_optimizer": {"name": "sgd", "lr": 0.05}},
    {"name": "lr=3e-3", "factor": "θ lr", "lr": 3e-3},
]


@pytest.fixture(scope="module")
def tiny_run():
    cfg = {**E._ABLATION_QUICK, "sizes": {"e2": [2000, 1000]}, "epochs": {"e2": 1}, "variants": _TINY_VARIANTS}
    calls = {"st": [], "nmt": []}
    orig_st, orig_tp = E._train_st, E.train_prioritized

    def st_spy(fresh, t, loaders, c, seed, family):
        calls["st"].append((t, c["lr"], c.get("optimizer", "adam")))
        return orig_st(fresh, t, loaders, c, seed, family)

    def tp_spy(model, priority, *args, **kw):
        cfg_ = args[5]
        calls["nmt"].append((cfg_.to_dict(), kw.get("stage1_state") is not None))
        if not cfg_.rescale:  # pretend this variant diverged: it must be recorded, not dropped
            raise ValueError("Non-finite loss at NMT stage 2, step 3: [nan, 0.1].")
        return orig_tp(model, priority, *args, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(E, "_train_st", st_spy)
    mp.setattr(E, "train_prioritized", tp_spy)
    try:
        out = E.run_ablation_seed(cfg, 0, RunContext(progress=False))
    finally:
        mp.undo()
    return cfg, out, calls


def test_stage1_is_trained_once_per_stage1_setting(tiny_run):
    cfg, out, calls = tiny_run
    # default, rho, rescale off and SGD share the lr-1e-3 stage 1; only the lr variant trains its own
    assert calls["st"] == [(0, 1e-3, "adam"), (0, 3e-3, "adam")]
    assert out["n_stage1_trainings"] == 2
    assert set(out["stage1"]) == {"task0@lr=0.001", "task0@lr=0.003"}
    assert len(calls["nmt"]) == len(_TINY_VARIANTS) and all(reused for _, reused in calls["nmt"])
    v = out["variants"]["0>1"]
    # the shared stage 1 gives the same measured threshold: ρ = 0.01 scales it by exactly 1.01
    assert v["rho=0.01"]["eps1"] == pytest.approx(1.01 * v[E.DEFAULT_VARIANT]["eps1"], rel=1e-12)
    assert v["SGD θ (lr 0.05)"]["eps1"] == v[E.DEFAULT_VARIANT]["eps1"]
    assert v["lr=3e-3"]["eps1"] != v[E.DEFAULT_VARIANT]["eps1"]
    assert v[E.DEFAULT_VARIANT]["eps1"] == pytest.approx(out["stage1"]["task0@lr=0.001"]["threshold"])


def test_ablation_result_schema(tiny_run):
    cfg, out, _ = tiny_run
    assert out["setting"] == "E2-rc0.5-mmoe" and list(out["variants"]) == ["0>1"]
    assert out["ew"] is not None and len(out["ew"]["auc"]) == 2
    v = out["variants"]["0>1"]
    assert list(v) == [s["name"] for s in _TINY_VARIANTS]
    for name, e in v.items():
        for key in ("auc_h", "auc_l", "logloss", "lambda_final", "lambda_max", "violation_last_epoch_rel",
                    "eps1", "diverged", "stage1_key", "factor", "extension", "selected_epoch"):
            assert key in e, (name, key)
        assert "trace" not in e  # traces are not kept for the ablation
    ok = v[E.DEFAULT_VARIANT]
    assert not ok["diverged"] and 0.3 < ok["auc_h"] < 1 and 0.3 < ok["auc_l"] < 1
    assert ok["auc_h"] == ok["auc"][0] and ok["auc_l"] == ok["auc"][1]
    assert ok["lambda_max"] >= ok["lambda_final"] >= 0 and math.isfinite(ok["violation_last_epoch_rel"])
    bad = v["rescale off"]
    assert bad["diverged"] and "Non-finite" in bad["error"] and math.isnan(bad["auc_h"])


def test_other_value_errors_are_not_swallowed(monkeypatch):
    cfg = {**E._ABLATION_QUICK, "sizes": {"e2": [600, 300]}, "epochs": {"e2": 1},
           "variants": [{"name": E.DEFAULT_VARIANT}], "reference_ew": False}

    def boom(*a, **k):
        raise ValueError("Parameter `priority` should hold ...")

    monkeypatch.setattr(E, "train_prioritized", boom)
    with pytest.raises(ValueError, match="priority"):
        E.run_ablation_seed(cfg, 0, RunContext(progress=False))


def test_table_markdown_and_figure_on_the_tiny_run(tiny_run):
    cfg, out, _ = tiny_run
    other = copy.deepcopy(out)
    for e in other["variants"]["0>1"].values():
        if not e["diverged"]:
            e["auc_h"] += 0.01
    results = {"per_seed": [out, other], "config": cfg, "profile": "test", "seeds": [0, 1], "experiment": "nmt.ablation"}
    rows = E.ablation_table(results)
    assert [r["variant"] for r in rows] == [s["name"] for s in _TINY_VARIANTS]
    assert rows[2]["n_diverged"] == 2 and math.isnan(rows[2]["auc_h"][0])
    md = E.ablation_markdown(results)
    assert md.count("\n| 0>1 |") == len(_TINY_VARIANTS) and "ST-h (0>1, lr=0.003)" in md
    fig = E.fig_ablation(results)
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def _entry(auc_h: float, auc_l: float, lam: float = 1.0, viol: float = 0.0, key: str = "lr=0.001") -> dict:
    return {"auc_h": auc_h, "auc_l": auc_l, "auc": [auc_h, auc_l], "logloss": [0.3, 0.1], "lambda_final": lam,
            "lambda_max": 2 * lam, "violation_last_epoch_rel": viol, "diverged": False, "stage1_key": key,
            "factor": "f", "extension": False}


def test_ablation_table_statistics_on_hand_built_numbers():
    seeds = []
    for s, (dh, dl) in enumerate([(0.70, 0.60), (0.72, 0.64)]):
        seeds.append({
            "variants": {"0>1": {E.DEFAULT_VARIANT: _entry(dh, dl), "x": _entry(dh + 0.01 * (s + 1), dl - 0.02)}},
            "stage1": {"task0@lr=0.001": {"auc": [0.71 + 0.01 * s, 0.5]}},
            "ew": {"auc": [0.69, 0.65]},
        })
    cfg = {"variants": [{"name": E.DEFAULT_VARIANT}, {"name": "x"}]}
    rows = E.ablation_table({"per_seed": seeds, "config": cfg})
    d, x = rows
    assert d["auc_h"][0] == pytest.approx(0.71) and d["auc_h"][1] == pytest.approx(0.01)  # sd 0.0141 / sqrt 2
    assert d["d_auc_h"] == (0.0, 0.0)
    assert x["d_auc_h"][0] == pytest.approx(0.015)  # paired diffs 0.01, 0.02
    assert x["d_auc_h"][1] == pytest.approx(0.005)  # sd 0.00707 / sqrt 2
    assert x["d_auc_l"][0] == pytest.approx(-0.02) and x["d_auc_l"][1] == pytest.approx(0.0, abs=1e-12)
    assert x["st_h"][0] == pytest.approx(0.715) and x["ew_l"] == (pytest.approx(0.65), pytest.approx(0.0))
    assert x["lambda_max"][0] == 2.0 and x["n"] == 2 and x["n_diverged"] == 0
    one = E.ablation_table({"per_seed": seeds[:1], "config": cfg})
    assert math.isnan(one[1]["d_auc_h"][1])  # one seed: no standard error
