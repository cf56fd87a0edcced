"""NMT experiments (arXiv 2412.12092; spec ``specs/nmt.md`` §4): synthetic recsys data, claims C1–C5, figures F4–F7.

The paper's data (AliExpress, Ali-CCP, Taobao logs) and A/B test cannot be reproduced; we use the spec's
synthetic analogues [decision]: E2, the click → purchase cascade (CTR / CTCVR, ESMM task definitions) and
E1, the MMoE generator with controllable task correlation p. Backbones: Shared-Bottom, MMoE, PLE
(``paper_repro.models.recsys``).

Per setting (data × backbone) and training seed, one ``run_seed`` trains (§4.3):

- **ST-0, ST-1**: each task alone (shared parameters + its own head); ST of the high-priority task is NMT's
  stage 1 and is reused;
- **grid**: ``(r·L_0 + L_1)/(1+r)`` for log₂ r in ``grid_log2`` (r = 1 is **EW**); selected on mean val AUC
  (MTReclib convention); independent of the priority order;
- **NMT** in both priority orders ``0≻1`` and ``1≻0``: stage 2 warm-started from the ST checkpoint of the
  high-priority task, "relative" violations, η_λ = 1, ρ = δ = 0, §2.1 selection (:func:`methods.nmt.train_prioritized`).

All runs of a seed share the initial weights and the batch order (paired comparisons). Test-split AUC and
logloss per task at the selected checkpoint. Adam lr 1e-3, wd 1e-6 [decision, spec §4.3].

Profiles: ``quick`` (what the claims test runs): E2 ρ_c = 0.5 on Shared-Bottom and MMoE only, 12k train (10 %
of it validation) / 20k test, ≤ 6 epochs per stage (patience 2), 5 grid points (r ∈ {1/4, 1/2, 1, 2, 4}),
seeds 0–2. E1 is left out of quick: at the smoke size (4k) the models barely learn within a CPU-minute budget
(val AUC ≈ 0.5–0.6 and early stopping at epoch 0–4 in a pilot), so F7 needs the full profile.
Caveat of quick: NMT's stage 2 trains up to 6 more epochs from the ST-h checkpoint, so when the 6-epoch
baselines are not converged NMT has a larger training budget. ``full``: spec sizes, E1 and E2 at p, ρ_c ∈ {−0.5, 0, 0.5, 0.9} on all three
backbones, 20 epochs, patience 2, 9 grid points (hours on CPU; not run here).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from methods.nmt import NMTConfig, measure_threshold, train_prioritized
from paper_repro.claims import Claim, ClaimOutcome, register_claim
from paper_repro.data.recsys import click_purchase, mmoe_synthetic
from paper_repro.metrics import auc, logloss
from paper_repro.models.recsys import MMoE, PLE, SharedBottom
from paper_repro.registry import Experiment, RunContext, register

__all__ = [
    "EXPERIMENT",
    "TAU",
    "run_seed",
    "setting_table",
    "fig_multiplier_traces",
    "fig_violation",
    "fig_frontier",
    "fig_sweep",
]

log = logging.getLogger(__name__)

#: Claim tolerance in AUC units (spec §4.4, [decision]).
TAU = 0.003
ORDERS = ("0>1", "1>0")

_QUICK: dict[str, Any] = {
    "seeds": [0, 1, 2],
    "data_seed": 0,
    "settings": [
        {"id": "E2-rc0.5-sb", "data": "e2", "rho_c": 0.5, "backbone": "shared_bottom", "narrow": False},
        {"id": "E2-rc0.5-mmoe", "data": "e2", "rho_c": 0.5, "backbone": "mmoe", "narrow": False},
    ],
    "sizes": {"e2": [12_000, 20_000], "e1": [4_000, 4_000]},
    "batch": {"e2": 512, "e1": 256},
    "epochs": {"e2": 6, "e1": 20},
    "patience": 2,
    "lr": 1e-3,
    "weight_decay": 1e-6,
    "grid_log2": [-2, -1, 0, 1, 2],
    "nmt": {"violation": "relative", "eta_lambda": 1.0, "rho": 0.0, "delta": 0.0},
    "trace_every": 1,
}

_FULL_SETTINGS = [
    {"id": f"E2-rc{rc}-{bb}", "data": "e2", "rho_c": rc, "backbone": bb, "narrow": False}
    for rc in (-0.5, 0.0, 0.5, 0.9) for bb in ("shared_bottom", "mmoe", "ple")
] + [
    {"id": f"E1-p{p}-{bb}", "data": "e1", "p": p, "backbone": bb, "narrow": False}
    for p in (-0.5, 0.0, 0.5, 0.9) for bb in ("shared_bottom", "mmoe", "ple")
]

_FULL: dict[str, Any] = {
    **_QUICK,
    "settings": _FULL_SETTINGS,
    "sizes": {"e2": [200_000, 100_000], "e1": [20_000, 20_000]},
    "epochs": {"e2": 20, "e1": 20},
    "grid_log2": [-4, -3, -2, -1, 0, 1, 2, 3, 4],
    "trace_every": 10,
}


# ----------------------------------------------------------------------------------------- data
class _Batches:
    """Re-iterable mini-batches ``(x, labels)``; shuffled with an explicit generator (reset per run)."""

    def __init__(self, x: Any, labels: Tensor, batch_size: int, *, shuffle: bool, seed: int = 0) -> None:
        self.x, self.labels, self.batch_size, self.shuffle = x, labels, batch_size, shuffle
        self.n = labels.shape[0]
        self.gen = torch.Generator().manual_seed(seed)

    def reseed(self, seed: int) -> None:
        self.gen.manual_seed(seed)

    def __iter__(self) -> Iterator[tuple[Any, Tensor]]:
        idx = torch.randperm(self.n, generator=self.gen) if self.shuffle else torch.arange(self.n)
        for s in range(0, self.n, self.batch_size):
            i = idx[s : s + self.batch_size]
            x = tuple(t[i] for t in self.x) if isinstance(self.x, tuple) else self.x[i]
            yield x, self.labels[i]

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)


def _load_data(setting: dict[str, Any], cfg: dict[str, Any], dtype: torch.dtype) -> tuple[Any, dict[str, Any]]:
    kind = setting["data"]
    n_train, n_test = cfg["sizes"][kind]
    if kind == "e2":
        splits = click_purchase(n_train, n_test, rho_c=float(setting["rho_c"]), seed=cfg["data_seed"])
    elif kind == "e1":
        splits = mmoe_synthetic(n_train, n_test, p=float(setting["p"]), seed=cfg["data_seed"])
    else:
        raise ValueError(f"Setting `data` should be 'e1' or 'e2'. Found `data = {kind!r}`.")

    def inputs(part: Any) -> Any:
        dense = part.dense.to(dtype)
        return (part.categorical, dense) if part.categorical.shape[1] > 0 else dense

    bs = int(cfg["batch"][kind])
    loaders = {
        "train": _Batches(inputs(splits.train), splits.train.labels.to(dtype), bs, shuffle=True),
        "val": _Batches(inputs(splits.val), splits.val.labels.to(dtype), 4096, shuffle=False),
        "test": _Batches(inputs(splits.test), splits.test.labels.to(dtype), 4096, shuffle=False),
        "kind": kind,
        "vocab_sizes": splits.train.vocab_sizes,
        "n_dense": splits.train.dense.shape[1],
    }
    meta = {k: v for k, v in splits.meta.items() if k not in ("alpha", "beta")}
    return loaders, meta


def _make_model(setting: dict[str, Any], loaders: dict[str, Any], seed: int, dtype: torch.dtype,
                device: torch.device) -> nn.Module:
    kw = {"vocab_sizes": loaders["vocab_sizes"], "n_dense": loaders["n_dense"]}
    div = 4 if setting.get("narrow") else 1
    bb = setting["backbone"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # same initial weights for every method of a seed (paired comparisons)
        if bb == "shared_bottom":
            model: nn.Module = SharedBottom(2, bottom=(128 // div, 64 // div), tower=(32 // div,), **kw)
        elif bb == "mmoe":
            model = MMoE(2, expert=(128 // div, 64 // div), tower=(32 // div,), **kw)
        elif bb == "ple":
            model = PLE(2, expert=(64 // div,), tower=(32 // div,), **kw)
        else:
            raise ValueError(f"Setting `backbone` should be shared_bottom, mmoe or ple. Found {bb!r}.")
    return model.to(device=device, dtype=dtype)


def _bce(out: Tensor, y: Tensor) -> Tensor:
    return nn.functional.binary_cross_entropy_with_logits(out.reshape(-1), y.reshape(-1))


def _auc_metric(out: Tensor, y: Tensor) -> float:
    return auc(out.double(), y.double())


@torch.no_grad()
def _test_metrics(model: nn.Module, loader: _Batches) -> dict[str, list[float]]:
    ref = next(model.parameters())
    model.eval()
    outs: list[list[Tensor]] = [[], []]
    ys: list[list[Tensor]] = [[], []]
    for x, y in loader:
        x = tuple(t.to(ref.device) for t in x) if isinstance(x, tuple) else x.to(ref.device)
        o = model(x)
        for t in range(2):
            outs[t].append(o[t].reshape(-1).double().cpu())
            ys[t].append(y[:, t].double().cpu())
    model.train()
    s = [torch.cat(o).numpy() for o in outs]
    yy = [torch.cat(v).numpy() for v in ys]
    return {"auc": [auc(s[t], yy[t]) for t in range(2)], "logloss": [logloss(s[t], yy[t]) for t in range(2)]}


def _optimizer(cfg: dict[str, Any]):
    def make(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    return make


def _params(model: nn.Module, tasks: Sequence[int]) -> list[nn.Parameter]:
    per_task = list(model.task_parameters())
    return list(model.shared_parameters()) + [p for t in tasks for p in per_task[t]]


def _train_weighted(model: nn.Module, weights: Sequence[float], loaders: dict[str, Any], cfg: dict[str, Any],
                    seed: int, select: str) -> dict[str, Any]:
    """Fixed-weight training Σ w_t L_t (ST when one weight is zero: that head stays out of the optimizer).

    ``select``: ``"mean"`` (mean val AUC over the tasks, MTReclib) or ``"task<t>"`` (task t's val AUC).
    """
    tasks = [t for t in range(2) if weights[t] > 0]
    opt = _optimizer(cfg)(_params(model, tasks))
    loaders["train"].reseed(seed)
    ref = next(model.parameters())
    w = torch.tensor(weights, dtype=ref.dtype, device=ref.device)
    best, best_state, best_epoch, since, epochs = -math.inf, None, 0, 0, []
    steps, t0 = 0, time.perf_counter()
    for epoch in range(int(cfg["epochs"][loaders["kind"]])):
        model.train()
        tot = [0.0, 0.0]
        nb = 0
        for x, y in loaders["train"]:
            out = model(x)
            losses = torch.stack([_bce(out[t], y[:, t]) for t in range(2)])
            opt.zero_grad(set_to_none=True)
            (w * losses).sum().backward()
            opt.step()
            for t in range(2):
                tot[t] += float(losses[t].detach())
            nb += 1
            steps += 1
        val = _eval_auc(model, loaders["val"], tasks)
        score = float(np.mean([val[t] for t in tasks])) if select == "mean" else val[int(select[4:])]
        epochs.append({"epoch": epoch, "val": [val.get(0, float("nan")), val.get(1, float("nan"))],
                       "train_loss": [v / nb for v in tot]})
        if score > best:
            best, best_state, best_epoch, since = score, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            since += 1
            if since >= int(cfg["patience"]):
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    return {"state": best_state, "epoch": best_epoch, "val_score": best, "epochs": epochs, "steps": steps,
            "wall_s": time.perf_counter() - t0}


@torch.no_grad()
def _eval_auc(model: nn.Module, loader: _Batches, tasks: Sequence[int]) -> dict[int, float]:
    m = _test_metrics(model, loader)
    return {t: m["auc"][t] for t in tasks}


def _ema(values: Sequence[float], beta: float = 0.9) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else beta * acc + (1 - beta) * v
        out.append(acc)
    return out


def _run_setting(setting: dict[str, Any], cfg: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    loaders, meta = _load_data(setting, cfg, ctx.dtype)

    def fresh() -> nn.Module:
        return _make_model(setting, loaders, seed, ctx.dtype, ctx.device)

    res: dict[str, Any] = {"data_meta": meta}
    # single-task runs (ST-h of each order = NMT stage 1)
    st: dict[int, dict[str, Any]] = {}
    for t in range(2):
        model = fresh()
        fit = _train_weighted(model, [1.0 if u == t else 0.0 for u in range(2)], loaders, cfg, seed, f"task{t}")
        p_hat = measure_threshold(model, loaders["train"], t, _bce)
        st[t] = {**fit, "measured": p_hat, "test": _test_metrics(model, loaders["test"])}
        res[f"st{t}"] = {**st[t]["test"], "epoch": fit["epoch"], "val": fit["val_score"], "threshold": p_hat,
                         "step_s": fit["wall_s"] / max(fit["steps"], 1)}
    # fixed-weight grid; r = 1 is EW
    grid = {}
    for k in cfg["grid_log2"]:
        r = 2.0 ** k
        model = fresh()
        fit = _train_weighted(model, [r / (1 + r), 1 / (1 + r)], loaders, cfg, seed, "mean")
        grid[str(k)] = {**_test_metrics(model, loaders["test"]), "log2_r": k, "epoch": fit["epoch"],
                        "step_s": fit["wall_s"] / max(fit["steps"], 1)}
    res["grid"] = grid
    res["ew"] = grid["0"] if "0" in grid else None
    # NMT in both priority orders
    nmt_cfg = NMTConfig(max_epochs=int(cfg["epochs"][setting["data"]]), patience=int(cfg["patience"]),
                        trace_every=int(cfg["trace_every"]), **cfg["nmt"])
    res["nmt"] = {}
    for order in ORDERS:
        h, lo = (0, 1) if order == "0>1" else (1, 0)
        model = fresh()
        loaders["train"].reseed(seed)
        out = train_prioritized(
            model, [h, lo], loaders["train"], loaders["val"], [_bce, _bce], [_auc_metric, _auc_metric],
            _optimizer(cfg), nmt_cfg,
            stage1_state=st[h]["state"],
            stage1_info={"reference": st[h]["val_score"], "measured": st[h]["measured"], "epoch": st[h]["epoch"],
                         "wall_s": st[h]["wall_s"], "steps": st[h]["steps"]},
        )
        test = _test_metrics(model, loaders["test"])
        tr = out.traces[1]
        eps1 = out.thresholds[0]
        lam = [row[0] for row in tr["lambdas"]]
        rel_v = [row[0] / abs(eps1) for row in tr["violations"]]
        last = out.epochs[1][-1]
        res["nmt"][order] = {
            **test,
            "auc_h": test["auc"][h], "auc_l": test["auc"][lo],
            "eps1": eps1, "lambda_final": lam[-1] if lam else 0.0, "lambda_max": max(lam) if lam else 0.0,
            "lambda_min": min(lam) if lam else 0.0,
            "lambda_finite": bool(all(math.isfinite(v) for v in lam)),
            "violation_last_epoch": last["violation"][0],
            "violation_last_epoch_rel": last["violation"][0] / abs(eps1),
            "selected_epoch": out.selected_epoch[1], "selected_feasible": out.selected_feasible[1],
            "val_epochs_h": [e["val"][0] for e in out.epochs[1]],
            "val_st_h": out.references[0],
            "trace": {"step": tr["step"], "lambda": lam, "violation_rel_ema": _ema(rel_v)},
            "stage2_step_s": out.wall_s[1] / max(out.steps[1], 1),
            "stage2_wall_s": out.wall_s[1],
        }
    return res


def run_seed(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """All settings of ``config`` for one training seed (see the module docstring)."""
    out: dict[str, Any] = {"settings": {}}
    for setting in config["settings"]:
        t0 = time.perf_counter()
        out["settings"][setting["id"]] = _run_setting(setting, config, seed, ctx)
        out["settings"][setting["id"]]["wall_s"] = time.perf_counter() - t0
        ctx.logger.info("nmt.recsys seed %d setting %s: %.1fs", seed, setting["id"], time.perf_counter() - t0)
    return out


EXPERIMENT = register(Experiment(
    name="nmt.recsys",
    paper="NMT",
    description=(
        "NMT vs single-task, equal weighting and a fixed-weight grid on synthetic recsys data (E2 click→purchase "
        "cascade, E1 MMoE generator) with Shared-Bottom / MMoE / PLE, both priority orders.\n"
        "Quick: E2 ρ_c=0.5 (SB, MMoE), 12k/20k, ≤ 6 epochs per stage, r ∈ {1/4..4}, seeds 0–2."
    ),
    profiles={"quick": _QUICK, "full": _FULL},
    run_seed=run_seed,
))


# ------------------------------------------------------------------------------------- analysis
def _per_seed(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["settings"] for r in results["per_seed"]]


def setting_table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per setting × order with seed-mean test AUCs: ST-h, ST-l, EW, NMT, the grid, C5 numbers."""
    runs = _per_seed(results)
    rows = []
    for sid in runs[0]:
        for order in ORDERS:
            h, lo = (0, 1) if order == "0>1" else (1, 0)

            def mean(get) -> float:
                return float(np.mean([get(r[sid]) for r in runs]))

            grid = {k: (mean(lambda s, k=k: s["grid"][k]["auc"][h]), mean(lambda s, k=k: s["grid"][k]["auc"][lo]))
                    for k in runs[0][sid]["grid"]}
            rows.append({
                "setting": sid, "order": order, "h": h, "l": lo, "n_seeds": len(runs),
                "st_h": mean(lambda s: s[f"st{h}"]["auc"][h]), "st_l": mean(lambda s: s[f"st{lo}"]["auc"][lo]),
                "ew_h": mean(lambda s: s["ew"]["auc"][h]), "ew_l": mean(lambda s: s["ew"]["auc"][lo]),
                "nmt_h": mean(lambda s: s["nmt"][order]["auc_h"]), "nmt_l": mean(lambda s: s["nmt"][order]["auc_l"]),
                "nmt_h_sd": float(np.std([r[sid]["nmt"][order]["auc_h"] for r in runs], ddof=1)) if len(runs) > 1 else float("nan"),
                "nmt_logloss_h": mean(lambda s: s["nmt"][order]["logloss"][h]),
                "ew_logloss_h": mean(lambda s: s["ew"]["logloss"][h]),
                "grid": grid,
                "viol_rel": mean(lambda s: s["nmt"][order]["violation_last_epoch_rel"]),
                "lambda_final": mean(lambda s: s["nmt"][order]["lambda_final"]),
                "lambda_ok": all(r[sid]["nmt"][order]["lambda_finite"] and r[sid]["nmt"][order]["lambda_min"] >= 0 for r in runs),
            })
    return rows


def _fmt_rows(items: list[str], limit: int = 6) -> str:
    return "; ".join(items[:limit]) + (f"; … ({len(items) - limit} more)" if len(items) > limit else "")


def _min_diff(results: dict[str, Any], ours: str, ref: str, label: str, note: str = "") -> ClaimOutcome:
    """Holds when ``ours − ref`` ≥ −τ in every (setting, order) case; reports the worst case."""
    d = {f"{r['setting']} {r['order']}": r[ours] - r[ref] for r in setting_table(results)}
    worst = min(d, key=d.get)
    holds = all(v >= -TAU for v in d.values())
    return ClaimOutcome(holds, f"min {label} = {d[worst]:+.4f} ({worst}); {note}"
                               f"{sum(v >= -TAU for v in d.values())}/{len(d)} cases within τ", {"diff": d})


def _c1(results: dict[str, Any]) -> ClaimOutcome:
    return _min_diff(results, "nmt_h", "st_h", "AUC_h(NMT) − AUC_h(ST-h)", note=f"τ = {TAU}; ")


def _c2(results: dict[str, Any]) -> ClaimOutcome:
    return _min_diff(results, "nmt_l", "ew_l", "AUC_l(NMT) − AUC_l(EW)")


def _c3(results: dict[str, Any]) -> ClaimOutcome:
    rows = setting_table(results)
    cases = {f"{r['setting']} {r['order']}": (r["ew_h"] - r["st_h"], r["nmt_h"] - r["ew_h"])
             for r in rows if r["ew_h"] < r["st_h"] - TAU}
    if not cases:
        return ClaimOutcome(False, "no setting shows interference (AUC_h(EW) < AUC_h(ST-h) − τ): not testable here",
                            {"cases": {}})
    ok = {k: v[1] > 0 for k, v in cases.items()}
    parts = [f"{k}: EW−ST {v[0]:+.4f}, NMT−EW {v[1]:+.4f}" for k, v in cases.items()]
    return ClaimOutcome(all(ok.values()), f"{sum(ok.values())}/{len(ok)} interference cases improved: " + _fmt_rows(parts),
                        {"cases": {k: list(v) for k, v in cases.items()}})


def _c4(results: dict[str, Any]) -> ClaimOutcome:
    rows = setting_table(results)
    fails, info = [], {}
    for r in rows:
        key = f"{r['setting']} {r['order']}"
        dominating = [k for k, (gh, gl) in r["grid"].items() if gh > r["nmt_h"] + TAU and gl > r["nmt_l"] + TAU]
        comparable = [gh for k, (gh, gl) in r["grid"].items() if gl >= r["nmt_l"] - TAU]
        best_h = max(comparable) if comparable else float("-inf")
        ok = not dominating and best_h <= r["nmt_h"] + TAU
        info[key] = {"dominating_log2_r": dominating, "best_comparable_auc_h": best_h, "nmt_h": r["nmt_h"]}
        if not ok:
            fails.append(f"{key}: dominated by log2 r {dominating}, best comparable AUC_h {best_h:.4f} vs NMT {r['nmt_h']:.4f}")
    n_grid = len(rows[0]["grid"]) if rows else 0
    ours = (f"{len(rows) - len(fails)}/{len(rows)} cases: no grid point better by > τ; NMT = 2 trainings "
            f"(stage 1 shared with ST-h) vs {n_grid} for the grid")
    if fails:
        ours += ". Fails: " + _fmt_rows(fails, 3)
    return ClaimOutcome(not fails, ours, info)


def _c5(results: dict[str, Any]) -> ClaimOutcome:
    rows = setting_table(results)
    d = {f"{r['setting']} {r['order']}": (r["viol_rel"], r["lambda_ok"], r["lambda_final"]) for r in rows}
    worst = max(d, key=lambda k: d[k][0])
    holds = all(v[0] <= 0.01 and v[1] for v in d.values())
    return ClaimOutcome(
        holds,
        f"max mean last-epoch violation / ε_1 = {d[worst][0]:+.4f} ({worst}; claim ≤ 0.01); λ finite and ≥ 0: "
        f"{all(v[1] for v in d.values())}; final λ in [{min(v[2] for v in d.values()):.2f}, {max(v[2] for v in d.values()):.2f}]",
        {"cases": {k: list(v) for k, v in d.items()}},
    )


_CLAIM_SPECS = [
    ("nmt.C1-high-priority-protected", "High-priority AUC is protected: AUC_h(NMT) ≥ AUC_h(ST-h) − τ", "abstract", _c1, True),
    # C2 does not hold on the quick profile (NMT's low-priority AUC is 0.4–1.9 pt below EW's in 3 of 4 cases):
    # pinned as expected-not-holding, never tuned away.
    ("nmt.C2-low-priority-preserved", "Low-priority AUC is preserved: AUC_l(NMT) ≥ AUC_l(EW) − τ", "abstract + summary", _c2, False),
    ("nmt.C3-interference-removed", "Where EW hurts the high-priority task (by > τ), NMT beats EW on it", "abstract", _c3, True),
    ("nmt.C4-no-weight-grid", "No fixed-weight grid point beats NMT by > τ on both AUCs / on AUC_h at equal AUC_l", "abstract (no tuning)", _c4, True),
    ("nmt.C5-constraint-behaviour", "λ stays finite and ≥ 0; last stage-2 epoch mean violation ≤ 0.01·ε_1", "summary (convergence)", _c5, True),
]

for _cid, _stmt, _fig, _fn, _exp in _CLAIM_SPECS:
    register_claim(Claim(id=_cid, paper="NMT", statement=_stmt, paper_figure=_fig, experiment="nmt.recsys",
                         check=_fn, expect_holds=_exp))


# ------------------------------------------------------------------------------------- figures
def _caption(results: dict[str, Any]) -> str:
    return f"synthetic recsys (our proxy), profile {results.get('profile', '?')}, seeds {results.get('seeds', '?')}"


def fig_multiplier_traces(results: dict[str, Any]):
    """F4: λ(t) over stage-2 steps, mean ± min/max band over seeds, per setting × order."""
    import matplotlib.pyplot as plt

    runs = _per_seed(results)
    sids = list(runs[0])
    fig, axes = plt.subplots(1, len(sids), figsize=(4.2 * len(sids), 3.2), squeeze=False)
    for ax, sid in zip(axes[0], sids):
        for order in ORDERS:
            traces = [r[sid]["nmt"][order]["trace"]["lambda"] for r in runs]
            n = min(len(t) for t in traces)
            arr = np.array([t[:n] for t in traces])
            steps = runs[0][sid]["nmt"][order]["trace"]["step"][:n]
            ax.plot(steps, arr.mean(0), label=f"order {order}")
            ax.fill_between(steps, arr.min(0), arr.max(0), alpha=0.25)
        ax.set_title(sid, fontsize=9)
        ax.set_xlabel("stage-2 step")
        ax.set_ylabel("λ")
        ax.legend(fontsize=8)
    fig.suptitle(f"F4 multiplier traces — {_caption(results)}", fontsize=9)
    fig.tight_layout()
    return fig


def fig_violation(results: dict[str, Any]):
    """F5: EMA-smoothed (L_h(batch) − ε_h)/ε_h over stage-2 steps (seed 0), val AUC_h − AUC_h(ST-h) per epoch."""
    import matplotlib.pyplot as plt

    runs = _per_seed(results)
    sids = list(runs[0])
    fig, axes = plt.subplots(1, len(sids), figsize=(4.2 * len(sids), 3.2), squeeze=False)
    for ax, sid in zip(axes[0], sids):
        ax2 = ax.twinx()
        for i, order in enumerate(ORDERS):
            r = runs[0][sid]["nmt"][order]
            ax.plot(r["trace"]["step"], r["trace"]["violation_rel_ema"], color=f"C{i}", label=f"{order} violation")
            n_ep = len(r["val_epochs_h"])
            steps = r["trace"]["step"]
            xs = [steps[-1] * (e + 1) / n_ep for e in range(n_ep)] if steps else list(range(n_ep))
            ax2.plot(xs, [v - r["val_st_h"] for v in r["val_epochs_h"]], "o--", color=f"C{i}", alpha=0.6)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(sid, fontsize=9)
        ax.set_xlabel("stage-2 step")
        ax.set_ylabel("(L_h − ε_h)/ε_h, EMA 0.9")
        ax2.set_ylabel("val AUC_h − ST-h (dashed)")
        ax.legend(fontsize=7)
    fig.suptitle(f"F5 constraint violation (seed {results.get('seeds', [0])[0]}) — {_caption(results)}", fontsize=9)
    fig.tight_layout()
    return fig


def _pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    pts = sorted(points, key=lambda p: -p[0])
    front, best = [], -math.inf
    for x, y in pts:
        if y > best:
            front.append((x, y))
            best = y
    return front


def fig_frontier(results: dict[str, Any]):
    """F6: AUC_h against AUC_l per setting × order: grid points coloured by log₂ r with their Pareto front,
    EW, ST-h (horizontal line), NMT ± std over seeds, and the grid point nearest r = λ_final."""
    import matplotlib.pyplot as plt

    rows = setting_table(results)
    runs = _per_seed(results)
    fig, axes = plt.subplots(2, len(rows) // 2, figsize=(4.2 * (len(rows) // 2), 6.4), squeeze=False)
    for idx, r in enumerate(rows):
        ax = axes[idx % 2][idx // 2]
        ks = sorted(r["grid"], key=float)
        # the grid ratio r weights task 0; for order 1>0 the high-priority ratio is 1/r
        sign = 1 if r["order"] == "0>1" else -1
        xs = [r["grid"][k][1] for k in ks]
        ys = [r["grid"][k][0] for k in ks]
        sc = ax.scatter(xs, ys, c=[sign * float(k) for k in ks], cmap="viridis", zorder=3)
        front = sorted(_pareto(list(zip(xs, ys))))
        ax.plot([p[0] for p in front], [p[1] for p in front], color="gray", lw=1)
        ax.scatter([r["ew_l"]], [r["ew_h"]], marker="s", facecolors="none", edgecolors="k", s=80, label="EW", zorder=4)
        ax.axhline(r["st_h"], color="C3", ls="--", lw=1, label="ST-h")
        nl = [s[r["setting"]]["nmt"][r["order"]]["auc_l"] for s in runs]
        nh = [s[r["setting"]]["nmt"][r["order"]]["auc_h"] for s in runs]
        ax.errorbar(np.mean(nl), np.mean(nh), xerr=np.std(nl, ddof=1) if len(nl) > 1 else 0,
                    yerr=np.std(nh, ddof=1) if len(nh) > 1 else 0, fmt="*", color="C1", ms=12, label="NMT", zorder=5)
        lam = max(r["lambda_final"], 1e-12)
        near = min(ks, key=lambda k: abs(sign * float(k) - math.log2(lam)))
        ax.scatter([r["grid"][near][1]], [r["grid"][near][0]], marker="x", color="C3", s=60, zorder=6,
                   label=f"grid nearest r=λ ({lam:.2g})")
        ax.set_title(f"{r['setting']} order {r['order']}", fontsize=9)
        ax.set_xlabel("AUC_l")
        ax.set_ylabel("AUC_h")
        ax.legend(fontsize=6)
        fig.colorbar(sc, ax=ax, label="log₂ r (high/low)")
    fig.suptitle(f"F6 high-priority AUC vs the fixed-weight frontier — {_caption(results)}", fontsize=9)
    fig.tight_layout()
    return fig


def fig_sweep(results: dict[str, Any]):
    """F7: NMT − EW differences in AUC_h and AUC_l against the E1 correlation p (order 0>1 and 1>0)."""
    import matplotlib.pyplot as plt

    rows = [r for r in setting_table(results) if r["setting"].startswith("E1")]
    settings = {s["id"]: s for s in results["config"]["settings"]}
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for i, order in enumerate(ORDERS):
        rs = sorted((r for r in rows if r["order"] == order), key=lambda r: settings[r["setting"]]["p"])
        ps = [settings[r["setting"]]["p"] for r in rs]
        ax.plot(ps, [r["nmt_h"] - r["ew_h"] for r in rs], "o-", color=f"C{i}", label=f"AUC_h, {order}")
        ax.plot(ps, [r["nmt_l"] - r["ew_l"] for r in rs], "s--", color=f"C{i}", label=f"AUC_l, {order}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("E1 correlation p")
    ax.set_ylabel("NMT − EW (test AUC)")
    ax.legend(fontsize=7)
    ax.set_title(f"F7 E1 sweep — {_caption(results)}", fontsize=9)
    fig.tight_layout()
    return fig


EXPERIMENT.figures.update({"F4": fig_multiplier_traces, "F5": fig_violation, "F6": fig_frontier, "F7": fig_sweep})
