"""CSO's scene tables P2 (5 tasks) and P3 (shared encoder–decoder), their data, #P. and the paper's numbers
(``specs/cso.md`` §9)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from paper_repro import registry
from paper_repro.claims import all_claims
from paper_repro.data.scenes import SCENE_CLASSES, edges_from_seg, saliency_from_seg, scenes
from paper_repro.experiments import cso as ex
from paper_repro.metrics import delta_m
from paper_repro.models.task_bn import convert_to_task_bn
from paper_repro.registry import RunContext
from paper_repro.runner import effective_config, settings_hash


# ----------------------------------------------------------------------------------------- data (additive only)
def test_scene_outputs_are_unchanged_by_the_additions() -> None:
    """Golden values recorded from ``paper_repro/data/scenes.py`` before the derived maps were added: the integer
    labels bit for bit, the float tensors to 1e-9 relative (their sums; robust to libm differences across
    machines)."""
    import hashlib

    s = scenes(6, 2, 3, size=12, seed=3)
    seg_hash = {part: hashlib.sha256(getattr(s, part).seg.numpy().tobytes()).hexdigest()[:16]
                for part in ("train", "val", "test")}
    assert seg_hash == {"train": "c6b8bdf68e9f700e", "val": "20654a5e96bae670", "test": "d5170018e9bf1edb"}
    golden = {"train": (1014.9431476655882, 2949.0138578414917, -636.4759753206745),
              "val": (372.8691707528196, 1077.953608751297, -224.1947393193841),
              "test": (479.92582331364974, 1604.8587393760681, -280.8060547687346)}
    for part, (img, dep, nor) in golden.items():
        d = getattr(s, part)
        assert float(d.image.double().sum()) == pytest.approx(img, rel=1e-9)
        assert float(d.depth.double().sum()) == pytest.approx(dep, rel=1e-9)
        assert float(d.normal.double().sum()) == pytest.approx(nor, rel=1e-9)


def test_saliency_and_edges_by_hand() -> None:
    wall, floor, sphere, box = (SCENE_CLASSES.index(c) for c in ("wall", "floor", "sphere", "box"))
    seg = torch.tensor([[[wall, wall, wall, wall],
                         [wall, sphere, sphere, wall],
                         [floor, floor, box, floor]]])
    sal = saliency_from_seg(seg)
    assert sal.shape == (1, 1, 3, 4) and sal.dtype == torch.float32
    assert sal[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0]]
    edge = edges_from_seg(seg)
    assert edge.shape == (1, 1, 3, 4) and edge.dtype == torch.float32
    # a pixel is an edge when a 4-neighbour has another label
    assert edge[0, 0].tolist() == [[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    flat = torch.zeros(2, 5, 5, dtype=torch.long)
    assert edges_from_seg(flat).sum() == 0 and saliency_from_seg(flat).sum() == 0
    with pytest.raises(ValueError, match="integer tensor"):
        edges_from_seg(torch.zeros(2, 5, 5))
    with pytest.raises(ValueError, match="integer tensor"):
        saliency_from_seg(torch.zeros(5, 5, dtype=torch.long))


def test_derived_maps_leave_the_labels_untouched() -> None:
    s = scenes(4, 1, 1, size=10, seed=0)
    before = s.train.seg.clone()
    sal, edge = saliency_from_seg(s.train.seg), edges_from_seg(s.train.seg)
    assert torch.equal(s.train.seg, before)
    obj = torch.isin(s.train.seg, torch.tensor([2, 3, 4]))
    assert torch.equal(sal[:, 0].bool(), obj)
    assert 0 < edge.mean() < 0.7  # boundaries exist but are not everywhere


# ----------------------------------------------------------------------------------------- models and #P.
def test_task_bn_overhead_and_n_params_by_hand() -> None:
    torch.manual_seed(0)
    # trunk: conv 3→4 (3·4·9 = 108, no bias) + BN(4) (8); up stage conv 4→4 (144) + BN(4) (8)
    # heads: ConvNormAct(4, 4, norm="none") (144 + 4) + 1×1 conv to 5 classes (20 + 5) = 173; depth: 148 + 5 = 153
    model = ex.scene_model(("segmentation", "depth"), 5, (4,), 1)
    assert sum(p.numel() for p in model.parameters()) == 108 + 8 + 144 + 8 + 173 + 153 == 594
    assert ex.task_bn_overhead(model) == 0
    convert_to_task_bn(model)
    assert ex.task_bn_overhead(model) == 2 * (4 + 4) * (2 - 1) == 16
    assert sum(p.numel() for p in model.parameters()) == 594 + 16


@pytest.mark.parametrize(("tasks", "channels", "n_convs", "expected"), [
    # BN channels: down 8, 16 and up 8, 8 (one conv per stage) → 40; K = 3: 2·40·2, K = 5: 2·40·4
    (("segmentation", "depth", "normals"), (8, 16), 1, 160),
    (ex.ALL_SCENE_TASKS, (8, 16), 1, 320),
    # two convs per stage: 8+8, 16+16 down, 8+8, 8+8 up = 80 channels; K = 2: 2·80·1
    (("segmentation", "depth"), (8, 16), 2, 160),
])
def test_task_bn_overhead_matches_hand_count_and_connection_map(tasks: tuple[str, ...], channels: tuple[int, ...],
                                                                 n_convs: int, expected: int) -> None:
    from methods.cso import connection_map

    model = ex.scene_model(tasks, 5, channels, n_convs)
    convert_to_task_bn(model)
    assert ex.task_bn_overhead(model) == expected
    cmap = connection_map(model, torch.zeros(2, 3, 8, 8), forward=lambda m, x: m.encoder(x))
    assert cmap.summary()["task_bn_overhead_params"] == expected
    enc = {f"encoder.{n}" for n, q in model.encoder.named_parameters() if q.dim() == 4}
    assert {e.name for e in cmap.entries} == enc                      # every trunk conv feeds a task BN
    assert all(n.startswith("heads.") for n in cmap.unpaired_convs)    # only the heads' convs are unpaired


def test_five_task_model_shapes_and_partition() -> None:
    torch.manual_seed(0)
    model = ex.scene_model(ex.ALL_SCENE_TASKS, 5, (4, 8), 1)
    outs = model(torch.randn(2, 3, 8, 8))
    assert [tuple(o.shape) for o in outs] == [(2, 5, 8, 8), (2, 1, 8, 8), (2, 3, 8, 8), (2, 1, 8, 8), (2, 1, 8, 8)]
    assert torch.allclose(outs[2].norm(dim=1), torch.ones(()), atol=1e-5)  # normals head normalises
    shared = {id(p) for p in model.shared_parameters()}
    assert shared == {id(p) for p in model.encoder.parameters()}
    own = [{id(p) for p in ps} for ps in model.task_parameters()]
    assert all(not (a & shared) for a in own) and len(own) == 5
    stl = ex.scene_model(("saliency",), 5, (4, 8), 1)
    assert [tuple(o.shape) for o in stl(torch.randn(1, 3, 8, 8))] == [(1, 1, 8, 8)]
    with pytest.raises(ValueError, match="dense tasks first"):
        ex.scene_model(("saliency", "depth"), 5, (4,), 1)
    with pytest.raises(ValueError, match="names from"):
        ex.scene_model(("parts",), 5, (4,), 1)


# ----------------------------------------------------------------------------------------- metrics
def _logit(p: list[float]) -> torch.Tensor:
    t = torch.tensor(p, dtype=torch.float64)
    return torch.log(t / (1 - t)).reshape(1, 1, 1, -1)


def test_binary_map_metrics_by_hand() -> None:
    target = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 1, -1)
    # at 0.5: fg IoU 1/2 (one of two found), bg IoU 2/3 → mIoU 7/12; best threshold in (0.33, 0.42]: F = 1
    out = ex.binary_map_metrics(_logit([0.9, 0.42, 0.33, 0.08]), target)
    assert out["mIoU"] == pytest.approx(7 / 12) and out["maxF"] == pytest.approx(1.0)
    # τ ∈ (0.08, 0.2]: P = 2/3, R = 1; τ ∈ (0.2, 0.6]: P = R = 1/2; τ ∈ (0.6, 0.9]: P = 1, R = 1/2
    p = _logit([0.9, 0.2, 0.6, 0.08])
    assert ex.binary_map_metrics(p, target, beta2=1.0)["maxF"] == pytest.approx(0.8)
    assert ex.binary_map_metrics(p, target, beta2=0.3)["maxF"] == pytest.approx(1.3 * 0.5 / (0.3 + 0.5))
    with pytest.raises(ValueError, match="shape"):
        ex.binary_map_metrics(p, target[..., :2])
    with pytest.raises(ValueError, match="beta2"):
        ex.binary_map_metrics(p, target, beta2=0.0)


# ----------------------------------------------------------------------------------------- paper numbers (golden Δm)
def test_paper_tables_recompute_with_the_repository_delta_m() -> None:
    """specs/cso.md §9 "Recomputation notes": golden tests of the Δm function (convention A)."""
    t1 = ex.PAPER_TABLE1
    base = t1["Independent"][:3]
    a1 = {m: delta_m(r[:3], base, ["min", "max", "min"], sign="higher_is_better").value for m, r in t1.items()}
    for m, r in t1.items():
        assert a1[m] == pytest.approx(10.18 if m == "Aligned-MTL" else r[3], abs=0.01), m
    t4 = {m: delta_m(r[:3], base, ["min", "max", "min"], sign="higher_is_better").value
          for m, r in ex.PAPER_TABLE4.items()}
    assert t4["mixed"] == pytest.approx(15.00, abs=0.01) and t4["phase2"] == pytest.approx(10.15, abs=0.01)
    assert t4["phase1"] == pytest.approx(13.44, abs=0.01) and t4["sequential"] == pytest.approx(13.79, abs=0.01)
    a2 = ex.paper_delta_table2()
    for m, r in ex.PAPER_TABLE2.items():
        assert a2[m] == pytest.approx(r[5], abs=0.01), m
    a3 = ex.paper_delta_table3()
    assert a3["CSO"] == pytest.approx(-8.93, abs=0.01)                 # printed −10.08
    for m in ("GD", "MGDA", "CAGrad"):
        assert a3[m] == pytest.approx(ex.PAPER_TABLE3[m][4], abs=0.1), m
    assert abs(a3["PCGrad"] - ex.PAPER_TABLE3["PCGrad"][4]) > 5          # printed AbsErr "0.02" does not give −78.39
    assert ex.paper_delta_table3(pcgrad_abs_err=0.0168)["PCGrad"] == pytest.approx(-78.39, abs=0.1)
    # #P.: CSO's task-BN overhead is +0.05 % of the baselines' parameters (95.43 → 95.48)
    assert (ex.PAPER_TABLE3["CSO"][5] / ex.PAPER_TABLE3["GD"][5] - 1) == pytest.approx(0.0005, abs=0.0001)


# ----------------------------------------------------------------------------------------- experiments
def test_existing_profiles_are_unchanged() -> None:
    """cso.scenes (full run in progress) and cso.digits (full result committed) keep their settings hashes."""
    golden = {("cso.scenes", "quick"): "750b7a16a16da866", ("cso.scenes", "full"): "d978a50f8354da72",
              ("cso.digits", "quick"): "f931741e3c49d111", ("cso.digits", "full"): "0454492d2ae13679"}
    for (name, prof), h in golden.items():
        assert settings_hash(name, prof, effective_config(registry.get(name), prof)) == h


def test_new_experiments_and_claims_are_registered() -> None:
    for name, fn, weights in [("cso.scenes5", ex.run_scenes5_seed, [1.0, 1.0, 10.0, 5.0, 50.0]),
                              ("cso.encdec", ex.run_encdec_seed, [1.0, 1.0]),
                              ("cso.scenes_equal", ex.run_scenes_seed, [1.0, 1.0, 1.0])]:
        exp = registry.get(name)
        assert exp.paper == "CSO" and exp.run_seed is fn
        for prof in ("quick", "full"):
            assert exp.config(prof)["loss_weights"] == weights
        full = exp.config("full")
        assert full["epochs"] == 40 and full["seeds"] == [0, 1, 2] and full["size"] == 32
        assert "CSO" in full["methods"] and all(f"{b}-tbn" in full["methods"] for b in ex.BASELINES)
        assert all(b in full["methods"] for b in ex.BASELINES)          # shared-BN rows too
    assert registry.get("cso.encdec").config("full")["n_convs"] == 2
    claims = {c.id: c for c in all_claims("CSO")}
    assert claims["cso.delta-m-5task"].experiment == "cso.scenes5"
    assert claims["cso.delta-m-encdec"].experiment == "cso.encdec"
    assert not any(c.experiment == "cso.scenes_equal" for c in claims.values())   # no paper number for it


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return RunContext(device=torch.device("cpu"), dtype=torch.float32, workdir=tmp_path, progress=False,
                      logger=logging.getLogger("test"))


_TINY = {"n_train": 16, "n_test": 8, "size": 8, "channels": [4, 8], "epochs": 2, "batch_size": 8, "lr": 3e-3,
         "weight_decay": 1e-4, "data_seed": 0, "probe_every": 1, "trend_window": 2}


def test_five_task_seed_runs_every_row(ctx: RunContext) -> None:
    torch.set_num_threads(1)
    cfg = {**_TINY, "loss_weights": [1.0, 1.0, 10.0, 5.0, 50.0], "methods": ["CSO", "PCGrad"]}
    out = ex.run_scenes5_seed(cfg, 0, ctx)
    assert out["setting"] == "P2"
    stl = out["methods"]["STL"]
    assert set(stl["metrics"]) == {"segmentation", "depth", "normals", "saliency"}   # no Independent edge net
    assert len(stl["final_train_loss"]) == 4
    cso, pc = out["methods"]["CSO"], out["methods"]["PCGrad"]
    assert set(cso["metrics"]) == set(ex.ALL_SCENE_TASKS) and set(cso["metrics"]["edge"]) == {"mIoU", "maxF"}
    assert len(cso["final_train_loss"]) == 5 and len(cso["ownership"][0]) == 5
    assert cso["task_bn_overhead"] == 2 * (4 + 8 + 4 + 4) * 4 and pc["task_bn_overhead"] == 0
    assert cso["n_params"] == pc["n_params"] + cso["task_bn_overhead"]
    assert stl["n_params"] == sum(sum(p.numel() for p in ex.scene_model((t,), 5, (4, 8)).parameters())
                                  for t in ex.ALL_SCENE_TASKS[:4])                # #P. of Independent: 4 nets
    assert cso["optimizer_steps_per_epoch"] >= 2 and pc["optimizer_steps_per_epoch"] == 2   # 16 / 8 batches
    # Δm (B) over the P2 metrics against STL, recomputed here
    keys = [k for k in ex.SCENE5_METRICS if f"{k[0]}.{k[1]}" not in out["excluded_metrics"]]
    flat = lambda m: [m[t][k] for t, k, _ in keys]  # noqa: E731
    b = delta_m(flat(pc["metrics"]), flat(stl["metrics"]), [d for *_, d in keys]).value
    assert pc["delta_m_B"] == pytest.approx(b)
    assert all(math.isfinite(pc[k]) for k in ("delta_m_B", "delta_mtl_A", "mean_final_train_loss"))


def test_encdec_seed_has_a_equal_minus_b_and_the_overhead(ctx: RunContext) -> None:
    torch.set_num_threads(1)
    cfg = {**_TINY, "n_convs": 2, "loss_weights": [1.0, 1.0], "methods": ["GD", "GD-tbn", "CSO"]}
    out = ex.run_encdec_seed(cfg, 0, ctx)
    assert out["setting"] == "P3" and set(out["methods"]["STL"]["metrics"]) == {"segmentation", "depth"}
    assert out["excluded_metrics"] == []
    for m in ("GD", "GD-tbn", "CSO"):
        r = out["methods"][m]
        assert set(r["metrics"]) == {"segmentation", "depth"}
        assert r["delta_mtl_A"] == pytest.approx(-r["delta_m_B"])        # P3: A = −B over the 4 metrics
    # BN channels with two convs per stage: 4+4 and 8+8 down, 4+4 and 4+4 up = 40; K = 2
    assert out["methods"]["GD-tbn"]["task_bn_overhead"] == out["methods"]["CSO"]["task_bn_overhead"] == 2 * 40
    assert out["methods"]["GD"]["task_bn_overhead"] == 0
    assert out["methods"]["GD-tbn"]["n_params"] - out["methods"]["GD"]["n_params"] == 80
    # the same seed gives the same numbers (determinism of the shared code path)
    again = ex.run_encdec_seed({**cfg, "methods": ["GD"]}, 0, ctx)
    assert again["methods"]["GD"]["metrics"] == out["methods"]["GD"]["metrics"]


def _fake_results(experiment: str, setting: ex.SceneSetting, methods: list[str]) -> dict:
    keys = list(dict.fromkeys([*setting.metrics, *setting.subset_a]))
    per_seed = []
    for seed in range(2):
        ms = {}
        for i, m in enumerate(["STL", *methods]):
            metrics: dict[str, dict[str, float]] = {}
            for t, k, _ in keys:
                metrics.setdefault(t, {})[k] = 1.0 + i + seed
            ms[m] = {"metrics": metrics, "n_params": 100 + i, "task_bn_overhead": 7 if m.endswith("-tbn") else 0}
            if m != "STL":
                ms[m].update({"delta_m_B": float(i + seed), "delta_mtl_A": float(-i - seed)})
        per_seed.append({"methods": ms, "setting": setting.name})
    return {"experiment": experiment, "profile": "quick", "config": {"methods": methods}, "per_seed": per_seed}


def test_setting_rows_means_and_paper_columns() -> None:
    res = _fake_results("cso.encdec", ex.P3, ["GD", "PCGrad", "PCGrad-tbn", "CSO"])
    rows = {r["method"]: r for r in ex.setting_rows(res)}
    assert rows["GD"]["delta_m_B"] == pytest.approx((1.5, 0.5))        # seeds 1 and 2: mean 1.5, s.e. 0.5
    assert rows["GD"]["segmentation.mIoU"] == pytest.approx((2.5, 0.5))
    assert rows["PCGrad-tbn"]["task_bn_overhead"] == 7 and rows["GD"]["n_params"] == 101
    # P3: the paper's (shared-BN) rows stand beside our shared-BN rows, not the task-BN ones
    assert rows["STL"]["paper"] == ex.PAPER_TABLE3["Independent"]
    assert rows["PCGrad"]["paper"] == ex.PAPER_TABLE3["PCGrad"]
    assert rows["PCGrad-tbn"]["paper"] is None and rows["CSO"]["paper"] == ex.PAPER_TABLE3["CSO"]
    res2 = _fake_results("cso.scenes5", ex.P2, ["PCGrad", "PCGrad-tbn", "CSO"])
    rows2 = {r["method"]: r for r in ex.setting_rows(res2)}
    assert rows2["PCGrad-tbn"]["paper"] == ex.PAPER_TABLE2["PCGrad"] and rows2["PCGrad"]["paper"] is None
    assert "saliency.maxF" in rows2["CSO"] and "depth.rmse" in rows2["CSO"]
    import matplotlib

    matplotlib.use("Agg")
    fig = ex.figure_setting_table(res)
    cells = [c.get_text().get_text() for c in fig.axes[0].tables[0].get_celld().values()]
    assert "1.50±0.50" in cells and "95.48" in " ".join(cells)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _fake_scene_results(dm: dict[str, list[float]], losses: dict[str, list[float]] | None = None) -> dict:
    """Aggregated-result shape the CSO checks read: per seed, per method, Δm (B) and final training losses."""
    n = len(next(iter(dm.values())))
    per_seed = [{"methods": {m: {"delta_m_B": v[s], "final_train_loss": (losses or {}).get(m, [1.0, 1.0, 1.0])}
                             for m, v in dm.items()}} for s in range(n)]
    return {"config": {"methods": list(dm)}, "per_seed": per_seed}


def test_delta_m_claim_reads_paired_differences() -> None:
    """cso.delta-m holds iff the mean paired difference CSO − baseline is < 0 for every task-BN baseline; the text
    names it a difference (a value of −12 next to a baseline is not that baseline's Δm)."""
    base = {"MGDA-tbn": [7.5, 8.5], "PCGrad-tbn": [-3.8, -2.2], "CAGrad-tbn": [-3.6, -3.4], "Aligned-MTL-tbn": [-2.0, -1.0]}
    out = ex._check_delta(_fake_scene_results({**base, "CSO": [-4.7, -3.3]}))
    assert out.holds
    per = out.detail["per_baseline"]
    assert per["MGDA-tbn"]["diff_mean"] == pytest.approx(-12.0)
    assert per["PCGrad-tbn"]["diff_mean"] == pytest.approx(-1.0) and per["PCGrad-tbn"]["diff_se"] == pytest.approx(0.1)
    assert "CSO − baseline" in out.ours and "PCGrad-tbn -1.00±0.10" in out.ours
    assert not out.detail["beats_all_by_2se"]          # CAGrad-tbn: differences −1.1, +0.1: −0.5 + 2 · 0.6 > 0
    assert not ex._check_delta(_fake_scene_results({**base, "CSO": [-3.0, -3.0]})).holds   # PCGrad-tbn −3.0 < CSO


def test_mixing_claim_needs_both_single_phase_rows_beaten() -> None:
    res = _fake_scene_results({"CSO": [-4.7], "phase1": [-4.6], "phase2": [-3.5]})
    assert ex._check_mixing(res).holds
    res = _fake_scene_results({"CSO": [-4.7], "phase1": [-4.8], "phase2": [-3.5]})
    assert not ex._check_mixing(res).holds
