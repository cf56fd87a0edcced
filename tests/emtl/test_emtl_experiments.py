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
    fig = ex.figure_delta_m(fake)  # best method on top, its per-metric row beside it
    bars, heat = fig.axes[0], fig.axes[1]
    order = sorted(rows, key=lambda r: r["delta_m"])
    assert [t.get_text() for t in bars.get_yticklabels()][::-1] == [r["method"] for r in order]
    top = heat.get_images()[0].get_array()[-1]
    assert list(top) == pytest.approx(order[0]["per_metric"])
    assert [t.get_text() for t in heat.get_xticklabels()] == ["acc left", "acc right"]
    claim = ex._check_inequity({"per_seed": [out, out]})
    assert claim.ours.startswith("mean CV²(r)")
    assert ex._check_inequity_si({"per_seed": [out]}).ours.startswith("mean Var(log r)")


def test_check_scenes_compares_emtl_with_the_best_baseline():
    """emtl.scenes-best on hand-made per-seed Δm%: EMTL-SI and STL rows are not baselines; paired differences."""
    def res(**dm):
        return {"per_seed": [{"methods": {n: {"delta_m": v[s]} for n, v in dm.items()}} for s in range(2)]}

    out = ex._check_scenes(res(EW=[0.0, 0.0], GradNorm=[-1.2, -1.4], EMTL=[-1.0, -2.0], **{"EMTL-SI": [-9.0, -9.0]},
                               **{"STL-0": [-50.0, -50.0]}))
    assert out.holds and out.detail["best_baseline"] == "GradNorm"
    assert "paired EMTL − GradNorm = -0.2 ± 0.4 (n=2), EMTL − EW = -1.5 ± 0.5 (n=2)" in out.ours
    assert "EMTL-SI − GradNorm = -7.7 ± 0.1 (n=2)" in out.ours
    out = ex._check_scenes(res(EW=[0.0, 0.0], GradNorm=[-1.2, -1.4], EMTL=[-1.0, -1.5]))
    assert not out.holds and "EMTL −" in out.ours
    one = ex._check_scenes({"per_seed": res(EW=[0.0, 0.0], EMTL=[-1.0, -1.0])["per_seed"][:1]})
    assert one.holds and "paired" not in one.ours and one.detail["best_baseline"] == "EW"


def test_check_inequity_scenes_needs_both_parts_and_two_se():
    def res(emtl_cv2, ew_cv2, si_logvar, ew_logvar):
        return {"per_seed": [{"methods": {"EMTL": {"mean_cv2_r": a}, "EW": {"mean_cv2_r": b, "mean_var_log_r": d},
                                          "EMTL-SI": {"mean_var_log_r": c}}}
                             for a, b, c, d in zip(emtl_cv2, ew_cv2, si_logvar, ew_logvar)]}

    assert ex._check_inequity_scenes(res([0.22, 0.23, 0.25], [0.26, 0.28, 0.30], [0.25, 0.26, 0.27],
                                         [0.31, 0.36, 0.43])).holds
    noisy = ex._check_inequity_scenes(res([0.22, 0.29, 0.25], [0.26, 0.28, 0.30], [0.25, 0.26, 0.27],
                                          [0.31, 0.36, 0.43]))  # EMTL lower on average, not by 2 se
    assert not noisy.holds and noisy.detail["parts"][1]["holds"]
    one = ex._check_inequity_scenes(res([0.1], [0.3], [0.1], [0.3]))  # one seed: no se, cannot hold
    assert not one.holds and "(n=1)" in one.ours


def test_run_scenes_tiny(tmp_path):
    cfg = {**ex._SCENES_QUICK, "methods": ["EW", "EMTL-rep", "STL-0", "STL-1", "STL-2"], "n_train": 8, "n_val": 2,
           "n_test": 4, "size": 16, "channels": [4, 4, 4], "epochs": 1, "batch_size": 4, "probe_every": 1,
           "probe_size": 4}
    out = ex.run_scenes(cfg, 0, RunContext(workdir=tmp_path, progress=False))
    assert len(out["stl"]) == 9
    assert math.isfinite(out["methods"]["EMTL-rep"]["delta_m"]) and "mean_rank" in out["methods"]["EW"]


# ---------------------------------------------------------------------------------------------
# ablations (R2, R1 + imtl) and the Multi-MNIST full profile of emtl.digits
# ---------------------------------------------------------------------------------------------
def test_build_method_ablations():
    from methods import JointStep
    from methods.emtl import EMTLR2

    s, c, f = ex.build_method("EMTL-R2", 2)
    assert type(s) is JointStep and isinstance(c, EMTLR2) and not f
    assert (c.lam, c.normalize, c.grad_on, c.head_weighting) == (1.0, True, "shared", "weighted")
    assert s.head_grads == "weighted"  # heads weighted like EMTL's
    s, c, f = ex.build_method("EMTL-R2-rep@5", 3, emtl_options={"eps": 0.0, "lam": 9.0})
    assert f and s.use_features and (c.lam, c.grad_on, c.eps) == (5.0, "rep", 0.0)
    s, c, f = ex.build_method("EMTL-IMTL", 2)
    assert isinstance(s, EMTLStep) and isinstance(c, EMTL) and not f
    assert (c.base, c.variant, c.lam, c.grad_on) == ("imtl", "cv", 0.1, "shared")
    assert ex.build_method("EMTL-IMTL@0.5", 2)[1].lam == 0.5
    with pytest.raises(ValueError, match="no '-rep' mode"):
        ex.build_method("EMTL-IMTL-rep", 2)


def test_digits_profiles():
    quick, full = ex._DIGITS_QUICK, ex._DIGITS_FULL
    for cfg in (quick, full):
        assert set(ex.DIGITS_ABLATIONS) <= set(cfg["methods"]) and {"STL-0", "STL-1"} <= set(cfg["methods"])
    assert quick["dataset"] == "multidigits"
    assert full["dataset"] == "multimnist" and full["batch_size"] == 256 and full["lr"] == 1e-3
    assert len(full["seeds"]) >= 3
    with pytest.raises(ValueError, match="dataset"):
        ex._digits_data({**quick, "dataset": "mnist"})


def test_run_digits_multimnist_tiny(tmp_path):
    from paper_repro.models.lenet import MultiLeNet

    cfg = {**ex._DIGITS_FULL, "n_train": 300, "n_test": 100, "epochs": 1, "batch_size": 64, "probe_every": 2,
           "probe_size": 32, "methods": ["EW", *ex.DIGITS_ABLATIONS, "STL-0", "STL-1"]}
    out = ex.run_digits(cfg, 0, RunContext(workdir=tmp_path, progress=False))
    assert out["sizes"] == {"train": 270, "test": 100}
    assert isinstance(ex._digits_model(cfg, torch.zeros(2, 1, 28, 28)), MultiLeNet)
    for name in ex.DIGITS_ABLATIONS:
        res = out["methods"][name]
        assert math.isfinite(res["delta_m"]) and len(res["test_acc"]) == 2
        w = [t["weights"] for t in res["weight_trace"]]
        assert w and all(len(x) == 2 and min(x) >= 0 for x in w)
    # R2's weights are normalised to sum to T; R1 + imtl's are not (alpha sums to 1, plus the regulariser)
    assert all(sum(t["weights"]) == pytest.approx(2.0) for t in out["methods"]["EMTL-R2"]["weight_trace"])


# ---------------------------------------------------------------------------------------------
# single-task runs, Δm against them, recsys table
# ---------------------------------------------------------------------------------------------
def _snapshot(params):
    return [p.detach().clone() for p in params]


def _changed(before, params):
    return [not torch.equal(b, p.detach()) for b, p in zip(before, params)]


@pytest.mark.parametrize("arch", ["SharedBottom", "MMoE"])
def test_stl_run_trains_one_task_only(tmp_path, arch):
    from paper_repro.models import MMoE, SharedBottom
    from paper_repro.models.losses import bce_with_logits

    g = torch.Generator().manual_seed(0)
    cat, dense = torch.randint(0, 5, (64, 2), generator=g), torch.randn(64, 3, generator=g)
    labels = (torch.rand(64, 2, generator=g) < 0.3).float()
    torch.manual_seed(0)
    cls = SharedBottom if arch == "SharedBottom" else MMoE
    model = cls(2, vocab_sizes=[5, 5], n_dense=3, embed_dim=4, **({"bottom": (8, 4)} if arch == "SharedBottom" else
                                                                   {"expert": (8, 4), "n_experts": 2}))
    fns = [lambda o, y: bce_with_logits(o.reshape(-1), y)] * 2
    batches = ex._Batches([cat, dense, labels], 16, torch.Generator().manual_seed(0),
                          lambda b: (((b[0], b[1]),), b[2]), torch.float32)
    shared, heads = model.shared_parameters(), model.task_parameters()
    before = [_snapshot(shared), _snapshot(heads[0]), _snapshot(heads[1])]
    res = ex._train(model, "STL-0", fns, batches, epochs=1, lr=1e-2, probe_x=((cat[:8], dense[:8]),),
                    probe_y=labels[:8], probe_every=2, ctx=RunContext(workdir=tmp_path, progress=False), tag="stl")
    assert res["steps"] == 4
    assert all(_changed(before[0], shared)) and all(_changed(before[1], heads[0]))
    assert not any(_changed(before[2], heads[1]))  # the other task's head never moves


def test_best_epoch():
    hist = [{"val": {"val_auc": v}} for v in ([0.6, 0.5], [0.7, 0.4], [0.65, 0.6])]
    assert ex._best_epoch(hist, [0, 1]) == 2 and ex._best_epoch(hist, [0]) == 1 and ex._best_epoch(hist, [1]) == 2
    nan = math.nan
    hist = [{"val": {"val_auc": v}} for v in ([0.6, nan], [0.5, nan])]
    assert ex._best_epoch(hist, [0, 1]) == 0 and ex._best_epoch(hist, [1]) == 1  # no validation AUC: last epoch


def _recsys_tiny_cfg():
    return {**ex._RECSYS_QUICK, "methods": ["EW", "EMTL"], "models": ["MMoE"], "n_train": 4000, "n_test": 3000,
            "preset": "default", "epochs": 2, "batch_size": 512, "embed_dim": 4, "probe_every": 4, "probe_size": 256}


def test_run_recsys_stl_reference_and_delta_m(tmp_path):
    out = ex.run_recsys(_recsys_tiny_cfg(), 0, RunContext(workdir=tmp_path, progress=False))
    stl = out["stl"]
    runs = stl["runs"]
    # the reference takes task t's AUC from the run trained on task t alone, at its own best validation epoch
    assert stl["auc"] == [runs["STL-0"]["auc"][0], runs["STL-1"]["auc"][1]]
    for t in range(2):
        best = runs[f"STL-{t}"]["best_epoch"]
        vals = [h["val"]["val_auc"][t] for h in runs[f"STL-{t}"]["history"]]
        assert vals[best] == max(vals)
    # a model trained on task 0 alone ranks task 1 worse than the one trained on it
    assert runs["STL-0"]["auc"][1] < runs["STL-1"]["auc"][1]
    res = out["models"]["MMoE"]["EW"]
    # AUC is higher-is-better: Δm% ↓ (B) = −(100/2) Σ_k (AUC_k − STL_k)/STL_k
    expect = -50.0 * sum((a - s) / s for a, s in zip(res["auc"], stl["auc"]))
    assert res["delta_m"] == pytest.approx(expect, rel=1e-12)
    assert res["per_metric"] == pytest.approx([-100.0 * (a - s) / s for a, s in zip(res["auc"], stl["auc"])])
    assert out["rates"]["click_rate"] > 0 and out["sizes"]["val"] > 0


def test_delta_m_sign_for_auc():
    better = ex._delta([0.72, 0.88], [0.70, 0.80], ["max", "max"])
    assert better["delta_m"] == pytest.approx(-50.0 * (0.02 / 0.70 + 0.08 / 0.80)) and better["delta_m"] < 0
    assert ex._delta([0.70, 0.80], [0.70, 0.80], ["max", "max"])["delta_m"] == 0.0


def test_recsys_table_rows():
    def seed(stl, ew, emtl):
        return {"stl": {"auc": stl}, "models": {"MMoE": {
            "EW": {"auc": ew, "mean_auc": sum(ew) / 2, "delta_m": ex._delta(ew, stl, ["max", "max"])["delta_m"]},
            "EMTL": {"auc": emtl, "mean_auc": sum(emtl) / 2, "delta_m": ex._delta(emtl, stl, ["max", "max"])["delta_m"]}}}}

    res = {"per_seed": [seed([0.70, 0.80], [0.71, 0.82], [0.72, 0.83]), seed([0.69, 0.81], [0.70, 0.82], [0.72, 0.85]),
                        seed([0.70, 0.79], [0.69, 0.80], [0.71, 0.84])]}
    rows = ex.recsys_table(res)
    assert [(r["model"], r["method"]) for r in rows] == [("Single-task", "STL"), ("MMoE", "EW"), ("MMoE", "EMTL")]
    stl, ew, emtl = rows
    assert stl["ctr"] == pytest.approx(0.6966666, abs=1e-6) and stl["delta_m"] == 0.0 and math.isnan(stl["p_vs_ref"])
    assert ew["avg"] == pytest.approx((0.71 + 0.82 + 0.70 + 0.82 + 0.69 + 0.80) / 6) and math.isnan(ew["p_vs_ref"])
    assert emtl["delta_m"] < ew["delta_m"] < 0 and emtl["n"] == 3
    from scipy.stats import ttest_rel

    assert emtl["p_vs_ref"] == pytest.approx(ttest_rel([0.775, 0.785, 0.775], [0.765, 0.76, 0.745]).pvalue)
    text = ex.format_recsys_table(rows)
    assert "Single-task" in text and "Δm% ↓ (B)" in text and len(text.splitlines()) == 4
