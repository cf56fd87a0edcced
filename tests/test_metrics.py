"""Metrics (conventions §1, §3, §4, §5): golden values by hand, independent references, the HV registry."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from paper_repro import metrics as M
from paper_repro.hv_refs import REGISTRY, get_entry, get_reference, known_ids

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- AUC, logloss, accuracy

@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed: int) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    scores = rng.integers(0, 6, n).astype(float)  # heavy ties
    assert M.auc(scores, y) == pytest.approx(sk.roc_auc_score(y, scores), abs=1e-12)
    cont = rng.normal(size=n) + y
    assert M.auc(torch.tensor(cont), torch.tensor(y)) == pytest.approx(sk.roc_auc_score(y, cont), abs=1e-12)


def test_auc_golden_and_errors() -> None:
    assert M.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert M.auc([1, 1, 1], [0, 1, 1]) == 0.5  # all tied
    with pytest.raises(ValueError, match="both classes"):
        M.auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels"):
        M.auc([0.1, 0.2], [0, 2])


def test_logloss_matches_sklearn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    logits = rng.normal(scale=3, size=200)
    p = 1 / (1 + np.exp(-logits))
    assert M.logloss(logits, y) == pytest.approx(sk.log_loss(y, p), rel=1e-10)
    assert M.logloss(p, y, from_logits=False) == pytest.approx(sk.log_loss(y, p), rel=1e-10)
    assert M.logloss([0.0], [1]) == pytest.approx(math.log(2))
    assert np.isfinite(M.logloss([1000.0, -1000.0], [0, 1]))


def test_accuracy() -> None:
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert M.accuracy(logits, torch.tensor([1, 1, 1])) == pytest.approx(2 / 3)
    assert M.accuracy(np.array([2, 0]), np.array([2, 1])) == 0.5


# ---------------------------------------------------------------- dense metrics

def test_segmentation_golden() -> None:
    target = torch.tensor([[[0, 0, 1], [1, 2, -1]]])
    pred = torch.tensor([[[0, 1, 1], [1, 0, 2]]])  # the last pixel is ignored
    cm = M.confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    scores = M.segmentation_scores(cm)
    # IoU: class 0: 1/(2+2-1)=1/3; class 1: 2/(2+3-2)=2/3; class 2: 0/(1+0-0)=0
    assert scores["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert scores["pixel_accuracy"] == pytest.approx(3 / 5)
    logits = torch.nn.functional.one_hot(pred, 4).permute(0, 3, 1, 2).float()  # class 3 never appears: skipped
    assert M.segmentation_metrics(logits, target, 4) == pytest.approx(scores)
    with pytest.raises(ValueError, match="classes"):
        M.confusion_matrix(pred, target + 5, 3)


def test_depth_golden() -> None:
    pred = np.array([[[[1.0, 2.0], [3.0, 0.0]]]])
    target = np.array([[[[1.0, 4.0], [0.0, 2.0]]]])  # zero target = invalid
    out = M.depth_errors(pred, target)
    assert out["abs_err"] == pytest.approx(4 / 3)
    assert out["rel_err"] == pytest.approx((0 + 2 / 4 + 2 / 2) / 3)
    assert out["rmse"] == pytest.approx(math.sqrt(8 / 3))
    with pytest.raises(ValueError, match="valid"):
        M.depth_errors(pred, np.zeros_like(target))


def test_normals_golden() -> None:
    vecs = [(0, 0, 1), (1, 0, 0), (1, 0, 1), (0.2, 0, 1), (1, 1, 1)]
    pred = torch.tensor(vecs, dtype=torch.float64).T.reshape(1, 3, 1, 5)
    target = torch.zeros_like(pred)
    target[:, 2, :, :4] = 1.0  # the fifth pixel has a zero target: invalid
    out = M.normal_errors(pred, target)
    angles = [0.0, 90.0, 45.0, math.degrees(math.atan(0.2))]  # 11.31° is just above 11.25°
    assert out["mean"] == pytest.approx(sum(angles) / 4)
    assert out["median"] == pytest.approx((angles[2] + angles[3]) / 2)
    assert (out["within_11.25"], out["within_22.5"], out["within_30"]) == (0.25, 0.5, 0.5)


# ---------------------------------------------------------------- Δm%, mean rank, mean ± s.e.

NYU_TASKS = ["seg", "seg", "depth", "depth"] + ["normal"] * 5
NYU_DIRS = ["max", "max", "min", "min", "min", "min", "max", "max", "max"]
NYU_BASE = [0.3830, 0.6376, 0.6754, 0.2780, 25.01, 19.21, 0.3014, 0.5720, 0.6915]


def _improved(base: list[float], dirs: list[str], pct: float) -> list[float]:
    return [b * (1 + pct / 100) if d == "max" else b * (1 - pct / 100) for b, d in zip(base, dirs)]


def test_delta_m_baseline_is_zero() -> None:
    for kw in ({}, {"average": "tasks", "sign": "higher_is_better", "tasks": NYU_TASKS}, {"sign": "higher_is_better"}):
        assert M.delta_m(NYU_BASE, NYU_BASE, NYU_DIRS, **kw).value == 0.0


def test_delta_m_one_percent_everywhere() -> None:
    vals = _improved(NYU_BASE, NYU_DIRS, 1.0)
    b = M.delta_m(vals, NYU_BASE, NYU_DIRS, tasks=NYU_TASKS)
    c = M.delta_m(vals, NYU_BASE, NYU_DIRS, average="tasks", sign="higher_is_better", tasks=NYU_TASKS)
    head = [0, 2, 4]  # one headline metric per task
    a = M.delta_m([vals[i] for i in head], [NYU_BASE[i] for i in head], [NYU_DIRS[i] for i in head],
                  average="tasks", sign="higher_is_better", tasks=["seg", "depth", "normal"])
    assert (b.convention, c.convention, a.convention) == ("B", "C", "A")
    assert b.value == pytest.approx(-1.0) and c.value == pytest.approx(1.0) and a.value == pytest.approx(1.0)
    assert (b.label, c.label, a.label) == ("Δm% ↓ (B)", "Δp% ↑ (C, LibMTL)", "Δ_MTL% ↑ (A)")
    assert str(b) == "Δm% ↓ (B) = -1.00"
    assert c.per_task == pytest.approx({"seg": 1.0, "depth": 1.0, "normal": 1.0})


def test_delta_m_signs() -> None:
    worse_min = M.delta_m([1.1], [1.0], ["min"])  # error up 10 %: worse, B positive
    better_max = M.delta_m([1.1], [1.0], ["max"])  # accuracy up 10 %: better, B negative
    assert worse_min.value == pytest.approx(10.0) and better_max.value == pytest.approx(-10.0)
    assert M.delta_m([1.1], [1.0], ["min"], sign="higher_is_better").value == pytest.approx(-10.0)


@pytest.mark.parametrize("seed", range(3))
def test_delta_m_relations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 2.0, 6)
    vals = base * rng.uniform(0.8, 1.2, 6)
    dirs = list(rng.choice(["max", "min"], 6))
    b = M.delta_m(vals, base, dirs).value
    a = M.delta_m(vals, base, dirs, average="tasks", sign="higher_is_better").value
    assert a == pytest.approx(-b)  # A = −B, one metric per task
    equal = ["t0", "t0", "t1", "t1", "t2", "t2"]
    c = M.delta_m(vals, base, dirs, average="tasks", sign="higher_is_better", tasks=equal).value
    assert c == pytest.approx(-b)  # C = −B with equal metric counts
    unequal = ["t0", "t1", "t1", "t1", "t1", "t1"]
    c2 = M.delta_m(vals, base, dirs, average="tasks", sign="higher_is_better", tasks=unequal)
    assert c2.value == pytest.approx(np.mean([c2.per_metric[0], np.mean(c2.per_metric[1:])]))


def test_delta_m_rejects_unlabelled_and_bad_input() -> None:
    with pytest.raises(ValueError, match="convention"):
        M.delta_m(NYU_BASE, NYU_BASE, NYU_DIRS, average="tasks", tasks=NYU_TASKS)
    with pytest.raises(ValueError, match="convention"):
        M.delta_m(NYU_BASE, NYU_BASE, NYU_DIRS, sign="higher_is_better", tasks=NYU_TASKS)
    with pytest.raises(ValueError, match="directions"):
        M.delta_m([1.0], [1.0], [1])
    with pytest.raises(ValueError, match="non-zero baseline"):
        M.delta_m([1.0], [0.0], ["max"])
    with pytest.raises(ValueError, match="same non-zero length"):
        M.delta_m([1.0, 2.0], [1.0], ["max"])


def test_mean_rank_ties_averaged() -> None:
    table = [[0.9, 1.0], [0.9, 2.0], [0.5, 2.0]]  # metric 0 max, metric 1 min
    # metric 0 ranks: 1.5, 1.5, 3; metric 1 ranks: 1, 2.5, 2.5
    assert M.mean_rank(table, ["max", "min"]).tolist() == [1.25, 2.0, 2.75]
    with pytest.raises(ValueError, match="table"):
        M.mean_rank([[1.0]], ["max", "min"])


def test_mean_se() -> None:
    mean, se, n = M.mean_se([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and se == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(M.mean_se([4.0])[1])
    with pytest.raises(ValueError, match="non-empty"):
        M.mean_se([])


# ---------------------------------------------------------------- hypervolume and its registry

def _sweep_hv_2d(points: np.ndarray, ref: np.ndarray) -> float:
    """Slow reference: sweep the points by f1, accumulating slabs under the running minimum of f2."""
    pts = sorted(tuple(p) for p in points if p[0] < ref[0] and p[1] < ref[1])
    xs = [p[0] for p in pts] + [ref[0]]
    area, best = 0.0, ref[1]
    for i, (_, y) in enumerate(pts):
        best = min(best, y)
        area += (xs[i + 1] - xs[i]) * (ref[1] - best)
    return area


def test_hv_golden_moocore_example() -> None:
    res = M.hypervolume([[5, 5], [4, 6], [2, 7], [7, 4]], "moocore.example")
    assert res.value == 38.0 and res.n_outside == 0 and res.reference == (10.0, 10.0)


def test_hv_edge_cases(caplog: pytest.LogCaptureFixture) -> None:
    assert M.hypervolume(np.zeros((0, 2)), "multidigits").value == 0.0
    assert M.hypervolume([], "multidigits").value == 0.0
    assert M.hypervolume([1.0, 2.0], "multidigits").value == 2.0  # one point: (3−1)·(3−2)
    with caplog.at_level("DEBUG", logger="paper_repro.metrics"):
        res = M.hypervolume([[1.0, 2.0], [3.0, 0.5], [4.0, 4.0]], "multidigits")  # on the boundary, outside
    assert (res.value, res.n_points, res.n_outside) == (2.0, 3, 2)
    assert "2 of 3 points" in caplog.text
    assert M.hypervolume([[5.0, 5.0]], "multidigits").value == 0.0
    with pytest.raises(KeyError, match="multimnist.phn"):
        M.hypervolume([[1.0, 1.0]], "nope")
    with pytest.raises(ValueError, match="n_obj"):
        M.hypervolume([[1.0, 1.0, 1.0]], "multidigits")


@pytest.mark.parametrize("seed", range(10))
def test_hv_matches_brute_force_sweep(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0.0, 2.5, size=(int(rng.integers(1, 30)), 2))
    pts[0, 0] = 2.0 if seed % 2 else pts[0, 0]  # a point on the reference boundary now and then
    res = M.hypervolume(torch.tensor(pts), "multimnist.cosmos")
    assert res.value == pytest.approx(_sweep_hv_2d(pts, np.array([2.0, 2.0])), abs=1e-12)


def test_hv_zdt1_front_approaches_from_below() -> None:
    values = []
    for n in (11, 101, 10001):
        f1 = np.linspace(0.0, 1.0, n)
        values.append(M.hypervolume(np.c_[f1, 1 - np.sqrt(f1)], "zdt1").value)
    exact = 0.1 + 2 / 3 + 0.11
    assert values[0] < values[1] < values[2] < exact
    assert exact - values[2] < 1e-4


def test_hv_dtlz2_front_approaches_from_below() -> None:
    theta, phi = np.meshgrid(np.linspace(0, np.pi / 2, 150), np.linspace(0, np.pi / 2, 150))
    front = np.c_[(np.cos(theta) * np.cos(phi)).ravel(), (np.cos(theta) * np.sin(phi)).ravel(), np.sin(theta).ravel()]
    value = M.hypervolume(front, "dtlz2", n_obj=3).value
    exact = 1.1 ** 3 - np.pi / 6  # specs/mt2o.md §4 E3
    assert value < exact and exact - value < 5e-3


def test_registry_entries_are_consistent() -> None:
    required = {"multimnist.phn", "multimnist.cosmos", "multidigits", "multimnist1d", "fairness.adult",
                "libmoon.regression", "tabular.solarflare", "vlmop1", "vlmop2", "zdt1", "dtlz2", "re21",
                "scenes.shapes", "synth.regression", "moocore.example"}
    assert required <= set(known_ids())
    for rid, entry in REGISTRY.items():
        assert entry.id == rid and entry.source and entry.objectives and entry.normalisation
    assert get_reference("multimnist.phn").tolist() == [3.0, 3.0]
    assert get_reference("multimnist.cosmos").tolist() == [2.0, 2.0]
    assert get_reference("tabular.solarflare").tolist() == [2.0, 2.0, 2.0]
    assert get_reference("synth.regression", 7).tolist() == [2.0] * 7
    assert get_reference("dtlz2", 3).tolist() == [1.1] * 3
    assert get_reference("dtlz2", 3, lattice_divisions=4).tolist() == [1.25] * 3
    assert get_reference("scenes.shapes", trivial_losses=[1.5, 0.25]).tolist() == [3.0, 0.5]
    with pytest.raises(ValueError, match="n_obj"):
        get_reference("dtlz2")
    with pytest.raises(ValueError, match="trivial_losses"):
        get_reference("scenes.shapes")
    with pytest.raises(ValueError, match="lattice_divisions"):
        get_reference("multimnist.phn", lattice_divisions=4)
    with pytest.raises(KeyError, match="Known ids: .*multimnist.cosmos"):
        get_entry("multimnist")
    with pytest.raises(ValueError, match="ideal/nadir"):
        M.hypervolume([[0.5, 0.5]], "re21")


@pytest.mark.parametrize("name", ["zdt1", "zdt2", "zdt3", "zdt4", "zdt6"])
def test_zdt_normalisation_constants_match_pymoo(name: str) -> None:
    problems = pytest.importorskip("pymoo.problems")
    front = problems.get_problem(name).pareto_front()
    entry = get_entry(name)
    np.testing.assert_allclose(front.min(axis=0), entry.ideal, atol=1e-3)
    np.testing.assert_allclose(front.max(axis=0), entry.nadir, atol=1e-3)
    normed = entry.normalise(front)
    assert normed.min() > -1e-3 and normed.max() < 1 + 1e-3


# ---------------------------------------------------------------- no literal reference points in the tree

_NUM = r"[-+]?\.?\d"
_CTOR = r"(?:np|numpy|torch)\.(?:array|asarray|tensor|as_tensor|full|ones)\(\s*"
_ARRAY = rf"(?:{_CTOR})?"
_LITERAL_REF = [
    re.compile(rf"\bref(?:_point)?\s*=\s*{_ARRAY}[(\[]\s*{_NUM}"),  # ref=(3, 3), ref=np.array([3, 3])
    re.compile(rf"\bref(?:_point)?\s*=\s*{_CTOR}{_NUM}"),  # ref=np.full(2, 1.1), ref=np.ones(2) * 3
    re.compile(rf"(?:hypervolume|Hypervolume|HV)\([^)]*\bref(?:_point)?\s*=\s*{_NUM}"),  # hypervolume(p, ref=3)
    re.compile(rf"hypervolume\(\s*[^,()]+,\s*{_ARRAY}[(\[]?\s*{_NUM}"),  # hypervolume(points, [3, 3])
]


def _literal_refs(text: str) -> list[str]:
    return [m.group(0) for pat in _LITERAL_REF for m in pat.finditer(text)]


def test_literal_ref_detector() -> None:
    for bad in ("moocore.hypervolume(p, ref=(3, 3))", "hv(p, ref = [1.1, 1.1])", "ref=np.array([2.0, 2.0])",
                "HV(ref_point=np.full(2, 1.1))", "hypervolume(p, ref=3)", "moocore.hypervolume(pts, [3, 3])",
                "ref = torch.ones(2) * 3", "hypervolume(p, np.array([3, 3]))"):
        assert _literal_refs(bad), bad
    for good in ("moocore.hypervolume(inside, ref=ref, maximise=False)", "ref=entry.reference_point(m)",
                 "hypervolume(points, 'multidigits')", "pref=(1, 0)", "ref=get_reference('zdt1', 2)",
                 "ref = grads.gather(0, idx)", "ref = 0.0"):
        assert not _literal_refs(good), good


def test_no_literal_reference_points_outside_the_registry() -> None:
    offenders = []
    for folder in ("methods", "paper_repro", "theory", "notebooks"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".ipynb") or path == ROOT / "paper_repro" / "hv_refs.py":
                continue
            offenders += [f"{path.relative_to(ROOT)}: {hit}" for hit in _literal_refs(path.read_text("utf-8"))]
    assert not offenders, "reference points must come from paper_repro/hv_refs.py:\n" + "\n".join(offenders)
