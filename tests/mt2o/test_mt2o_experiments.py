"""MT2O experiments added for specs/mt2o.md §4 E2 (scenes), E4 (regression) and E5 (α grid): registration, budgets,
HV references, the speed metric, the tables/figures, and tiny end-to-end runs (CPU, seconds)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from methods.mt2o import FixedSimilarity, make_preferences
from paper_repro import registry
from paper_repro.claims import all_claims
from paper_repro.experiments import mt2o as E
from paper_repro.hv_refs import get_reference
from paper_repro.metrics import hypervolume
from paper_repro.runner import run_experiment

NEW = ("mt2o.scenes", "mt2o.regression")


def _weights(cfg: dict[str, Any]) -> torch.Tensor:
    if "n_targets" in cfg:
        return make_preferences("das_dennis", cfg["n_targets"], divisions=cfg["divisions"])
    return make_preferences("circle", 2, n=cfg["K"])


# ----------------------------------------------------------------------------- registration and budgets
@pytest.mark.parametrize("name", NEW)
def test_registered_with_quick_and_full(name: str) -> None:
    exp = registry.get(name)
    assert exp.paper == "MT2O" and {"quick", "full"} <= set(exp.profiles)
    quick, full = exp.config("quick"), exp.config("full")
    assert "Quick covers" in exp.description
    assert len(quick["seeds"]) <= 2 and quick["epochs"] <= 10 and quick["n_train"] <= 2000
    assert full["seeds"] == [0, 1, 2] and full["epochs"] == 100
    for cfg in (quick, full):
        assert cfg["mt2o_default"] in cfg["methods"] and "ls" in cfg["methods"]
        assert {"pmtl", "epo", "mgda_ub"} <= set(cfg["methods"])  # the Pareto baselines that define "next best"
        assert len(_weights(cfg)) == cfg["K"]


@pytest.mark.parametrize("name", ["mt2o.digits", *NEW])
@pytest.mark.parametrize("profile", ["quick", "full"])
def test_alpha_grid_is_valid(name: str, profile: str) -> None:
    """Every α in the grid respects α·η0 ≤ 1/max_k Σ_j s_kj (else the run would raise mid-training)."""
    cfg = registry.get(name).config(profile)
    w = _weights(cfg) if name != "mt2o.digits" else make_preferences("circle", 2, n=cfg["K"])
    for m in cfg["methods"]:
        if m.startswith("mt2o_a"):
            alpha = float(m[len("mt2o_a"):])
            assert alpha * cfg["lr"] <= FixedSimilarity(alpha=alpha).bound(w) + 1e-12, (name, profile, m)


def test_regression_bound_matches_das_dennis() -> None:
    w = make_preferences("das_dennis", 3, divisions=4)
    assert FixedSimilarity().bound(w) == pytest.approx(0.1771, abs=1e-4)


def test_claims_registered_for_new_experiments() -> None:
    ids = {c.id: c for c in all_claims("MT2O")}
    for exp in ("scenes", "regression"):
        assert f"mt2o.{exp}-transfer-faster-than-no-transfer" in ids
        assert ids[f"mt2o.{exp}-about-2x-faster-than-next-best"].experiment == f"mt2o.{exp}"


# ----------------------------------------------------------------------------- HV references
def test_scene_trivial_losses_hand_computed() -> None:
    seg = torch.tensor([[0, 0], [1, 2]])  # class frequencies 1/2, 1/4, 1/4
    depth = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])  # median (lower) 2 → mean |d − 2| = (1 + 0 + 1 + 8)/4
    ce, l1 = E._scene_trivial_losses(seg, depth, n_classes=5)
    assert ce == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert l1 == pytest.approx(2.5)
    ref = get_reference("scenes.shapes", trivial_losses=[ce, l1])
    np.testing.assert_allclose(ref, [2 * ce, 5.0])
    assert hypervolume([[ce, l1]], "scenes.shapes", trivial_losses=[ce, l1]).value == pytest.approx(ce * l1)


def test_synth_regression_reference() -> None:
    np.testing.assert_allclose(get_reference("synth.regression", 3), [2.0, 2.0, 2.0])
    assert hypervolume([[1.0, 1.0, 1.0]], "synth.regression").value == pytest.approx(1.0)


# ----------------------------------------------------------------------------- speed metric and tables
def _fake_results(curves: dict[str, list[list[float]]], seconds_per_epoch: dict[str, float]) -> dict[str, Any]:
    per_seed = []
    for s in range(len(next(iter(curves.values())))):
        methods = {}
        for m, cs in curves.items():
            hv = cs[s]
            methods[m] = {"epochs": list(range(len(hv))), "seconds": [e * seconds_per_epoch[m] for e in range(len(hv))],
                          "hv": {"x": hv}, "final_hv": {"x": hv[-1]}, "final_test_losses": [[1.0, 2.0], [2.0, 1.0]],
                          "spread": [1.0, 1.0], "pairwise_distance": 1.0}
        per_seed.append({"methods": methods})
    cfg = {"hv_ids": ["x"], "mt2o_default": "mt2o_a1", "K": 2}
    return {"experiment": "mt2o.scenes", "profile": "quick", "seeds": list(range(len(per_seed))), "config": cfg,
            "per_seed": per_seed, "aggregate": E.aggregate_population(per_seed, cfg)}


def test_speed_metric_on_hand_made_curves() -> None:
    res = _fake_results({
        "ls": [[0, .5, .8, .9, 1.0]] * 2,           # T95 = epoch 4
        "mt2o_a1": [[0, .96, .97, .98, .99]] * 2,   # T95 = epoch 1 (HV* = 1.0 → target 0.95)
        "mt2o_a100": [[0, .2, .3, .4, .5]] * 2,     # never
        "pmtl": [[0, .4, .96, .97, .98]] * 2,       # T95 = epoch 2
        "epo": [[0, .1, .2, .3, .4]] * 2,
        "mgda_ub": [[0, .1, .2, .3, .4]] * 2,
    }, {"ls": 1.0, "mt2o_a1": 1.0, "mt2o_a100": 1.0, "pmtl": 2.0, "epo": 2.0, "mgda_ub": 2.0})
    sp = res["aggregate"]["speed"]["x"]
    assert sp["hv_star"] == pytest.approx(1.0) and sp["next_best"] == "ls"
    assert sp["speedup_vs_next_best_epochs"] == pytest.approx(4.0)
    assert sp["speedup_vs_ls_seconds"] == pytest.approx(4.0)
    by = res["aggregate"]["speed_by_share"]["x"]
    assert set(by) == {"0.90", "0.95", "0.99"}
    assert by["0.99"]["rows"]["mt2o_a1"]["T_epochs"] == [4, 4]
    assert by["0.90"]["rows"]["mt2o_a100"]["T_epochs"] == [None, None]
    table = E.time_to_fraction_table(res)
    assert "| mt2o_a100 | 0.5000 | — / — |" in table and "4.00×" in table
    rows = {r["method"]: r for r in E.ablation_rows(res)}
    assert [r["alpha"] for r in E.ablation_rows(res)] == [0.0, 1.0, 100.0]
    assert rows["mt2o_a1"]["T95_epochs"] == 1 and rows["mt2o_a100"]["T95_epochs"] is None
    assert "| mt2o_a100 | 100 |" in E.ablation_table(res)
    outcome = E._check_vs_next_best(res)
    assert outcome.holds and outcome.detail["verdict"] == "reproduced"
    assert E._check_transfer_vs_ls(res).holds
    assert sp["clock"] == "seconds"  # the fakes record no device and no CPU time: wall clock


def test_speedup_counts_every_seed() -> None:
    """A seed where only the baseline reaches the target is a 0 (it was dropped before), neither reaching is a tie."""
    assert E.seed_speedups([10, 10, None, None], [5, None, 4, None]) == [2.0, 0.0, math.inf, 1.0]
    assert E.median_speedup([None, 15, None], [None, 19, 88]) == 1.0   # mt2o.regression full: not "∞"
    assert E.median_speedup([None, None], [None, None]) is None
    assert E.median_speedup([10, 10, 10], [None, None, 2]) == 0.0
    with pytest.raises(ValueError):
        E.seed_speedups([1, 2], [1])


def test_speed_reads_cpu_time_on_cpu_and_wall_clock_otherwise() -> None:
    """On CPU, T95 in seconds comes from the process CPU time (a paused or core-sharing run inflates wall clock)."""
    curves = {m: [[0, .5, .96, .97]] for m in ("ls", "mt2o_a1", "pmtl", "epo", "mgda_ub")}
    res = _fake_results(curves, {m: 10.0 for m in curves})
    per_seed = res["per_seed"]
    for r in per_seed[0]["methods"].values():
        r["cpu_seconds"] = [e * 1.0 for e in r["epochs"]]     # wall clock 10 s per epoch, CPU time 1 s
    assert E.time_clock(per_seed) == "seconds"               # device not recorded: wall clock
    per_seed[0]["device"] = "cpu"
    assert E.time_clock(per_seed) == "cpu_seconds"
    cfg = res["config"]
    sp = E.aggregate_population(per_seed, cfg)["speed"]["x"]
    assert sp["clock"] == "cpu_seconds" and sp["rows"]["ls"]["T_seconds"] == [2.0]
    per_seed[0]["device"] = "cuda"
    sp = E.aggregate_population(per_seed, cfg)["speed"]["x"]
    assert sp["clock"] == "seconds" and sp["rows"]["ls"]["T_seconds"] == [20.0]
    del per_seed[0]["methods"]["epo"]["cpu_seconds"]
    per_seed[0]["device"] = "cpu"
    assert E.time_clock(per_seed) == "seconds"               # one method without CPU time: wall clock for all


# ----------------------------------------------------------------------------- tiny end-to-end runs
TINY = {
    "mt2o.scenes": {"n_train": 8, "n_val": 4, "n_test": 4, "size": 16, "channels": [4, 8], "epochs": 1,
                    "batch_size": 4, "methods": ["ls", "mt2o_a1", "pmtl", "mgda_ub"], "seeds": [0]},
    "mt2o.regression": {"n_train": 60, "n_test": 20, "hidden": [8], "epochs": 2, "batch_size": 32,
                        "methods": ["ls", "mt2o_a1", "mt2o_a100", "mt2o_elitist", "epo"], "seeds": [0]},
}


@pytest.mark.parametrize("name", NEW)
def test_tiny_run_end_to_end(name: str, tmp_path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threads = torch.get_num_threads()
    res = run_experiment(name, "quick", out_dir=tmp_path, progress=False, overrides=TINY[name])
    assert torch.get_num_threads() == threads  # the quick profile's thread setting is restored
    cfg = res["config"]
    per = res["per_seed"][0]
    hv_id = cfg["hv_ids"][0]
    assert set(per["methods"]) == set(cfg["methods"])
    m = 2 if name == "mt2o.scenes" else 3
    for r in per["methods"].values():
        assert len(r["hv"][hv_id]) == cfg["epochs"] + 1 and r["seconds"][0] == 0.0 == r["cpu_seconds"][0]
        assert r["cpu_seconds"][-1] > 0 and np.all(np.diff(r["cpu_seconds"]) >= 0)
        assert np.asarray(r["final_test_losses"]).shape == (cfg["K"], m)
        assert all(math.isfinite(h) and h >= 0 for h in r["hv"][hv_id])
    assert per["device"] == "cpu" and res["aggregate"]["speed"][hv_id]["clock"] == "cpu_seconds"
    assert per["compute"] == "loop"  # CPU default (compute_path); scenes need it on any device (GroupNorm)
    if name == "mt2o.scenes":
        assert len(per["trivial_losses"]) == 2 and all(t > 0 for t in per["trivial_losses"])
    # LS and MT2O share the inits: identical HV at epoch 0.
    assert per["methods"]["ls"]["hv"][hv_id][0] == pytest.approx(per["methods"][cfg["methods"][1]]["hv"][hv_id][0])
    assert "HV*" in E.time_to_fraction_table(res) and E.ablation_rows(res)
    for fig in (E.figure_fronts(res), E.figure_hv_curves(res)):
        assert "quick profile, seeds [0]" in fig._suptitle.get_text().replace("\n", " ")
        plt.close(fig)
    fig = E.figure_ablation([res])
    assert "quick profile, seeds [0]" in fig.subfigs[0]._suptitle.get_text() and len(fig.axes) == 2
    plt.close(fig)
    title = E.figure_title(res)
    assert "quick profile" in title and "seeds [0]" in title


def test_compute_path_choice() -> None:
    assert E.compute_path({}, torch.device("cpu")) == "loop"
    assert E.compute_path({}, torch.device("cuda", 0)) == "vmap"  # no CUDA needed: only the device type is read
    assert E.compute_path({"compute": "vmap"}, torch.device("cpu")) == "vmap"
    with pytest.raises(ValueError, match="'vmap' or 'loop'"):
        E.compute_path({"compute": "modules"}, torch.device("cpu"))


def test_regression_loop_and_vmap_runs_agree(tmp_path: Any) -> None:
    """The forward path is not a setting: both give the same training up to float32 summation order."""
    runs = {c: run_experiment("mt2o.regression", "quick", out_dir=tmp_path / c, progress=False,
                              overrides={**TINY["mt2o.regression"], "methods": ["ls", "mt2o_a1"], "compute": c})
            for c in ("loop", "vmap")}
    per = {c: r["per_seed"][0] for c, r in runs.items()}
    assert per["loop"]["compute"] == "loop" and per["vmap"]["compute"] == "vmap"
    hv_id = runs["loop"]["config"]["hv_ids"][0]
    for m in ("ls", "mt2o_a1"):
        a, b = per["loop"]["methods"][m], per["vmap"]["methods"][m]
        np.testing.assert_allclose(a["final_test_losses"], b["final_test_losses"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(a["hv"][hv_id], b["hv"][hv_id], rtol=1e-4, atol=1e-5)
