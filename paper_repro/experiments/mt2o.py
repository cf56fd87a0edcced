"""MT2O experiments (``specs/mt2o.md`` §4), claims and figures. Method labelled "MT2O (reconstruction)".

Registered experiments:

- ``mt2o.digits`` (E1/E2/E5 analogue): Multi-Digits (quick) / Multi-MNIST (full, ``multimnist36``), K = 5 ``circle``
  weights, LeNet; LS (= MT2O α = 0), MT2O fixed-similarity transfer (α from the config), MT2O elitist, Pareto MTL,
  EPO, MGDA-UB; test-loss HV per epoch (``multidigits`` / ``multimnist.cosmos`` + ``multimnist.phn``), training-only
  seconds, time to a share of HV*, and the transfer-strength ablation.
- ``mt2o.vlmop2`` (E3): PMTL's concave toy, n = 20, full-batch GD step 1, 100 iterations, ``circle`` K = 10.
- ``mt2o.scenes`` (E2 scene proxy, E5 α grid): procedural scenes, segmentation + depth, GroupNorm SegNet (stacked
  population on the ``compute="loop"`` path: GroupNorm has no vmap rule here), K = 5 ``circle``, Adam; HV (``scenes.shapes``, 2 × trivial loss).
- ``mt2o.regression`` (E4, E5 α grid): controllable-conflict regression, m = 3, width-1 bottleneck MLP, K = 15
  ``das_dennis`` H = 4, Adam; HV (``synth.regression``, 2 per task).
- ``mt2o.regression7`` (E4, m = 7, the SARCOS stand-in): the same generator with 7 targets, width-2 bottleneck, K = 7
  ``das_dennis`` H = 1 with centroid shrink 0.35 (vertex-leaning weights (0.7, 0.05, …)); HV ``synth.regression`` in
  7-D; fronts drawn as parallel coordinates (:func:`figure_parallel`).
- ``mt2o.scenes3`` (E2, the optional 3-task variant): scenes with segmentation + depth + normals (cosine loss), K = 15
  ``das_dennis`` H = 4; HV ``scenes.shapes`` with the normals' trivial loss as third coordinate.

Quick profile (claims, CI; ≈ 2.5 min on 2 cores for the first four, ≈ 1 min more for the two variants): Multi-Digits
(1,280 training composites), 2 seeds, 8 epochs, SGD lr 0.05 momentum 0.9 (a quick-scale [decision]: the spec's lr
1e-3 needs 100 epochs), VLMOP2 with 3 seeds; scenes (1 seed, 128 training images 32×32, 6 epochs, ≈ 30 s) and
regression (1 seed, 1,800 training samples, 8 epochs, ≈ 10 s), both single-threaded and far from converged
(early-phase speed only); m = 7 regression (2 seeds, 8 epochs, ≈ 30 s CPU) and 3-task scenes (1 seed, 64 training
images 16×16, 6 epochs, ≈ 30 s CPU), also single-threaded. Not covered: the coupling / neighbourhood / P_T /
shared-init ablations of E5 (only α and the elitist rule are run).

Every population is stacked (one optimiser step and one mixing product for the K models); its forward runs on the
``compute="loop"`` path on CPU and on ``vmap`` elsewhere (:func:`compute_path`; ``--set compute=vmap`` overrides;
recorded per seed). Full-profile seeds run before this switch used ``vmap`` (digits, regression) or K separate modules
(scenes).

HV* is the best *final-epoch* test HV over methods (mean over seeds) [simplification of §3: no validation-selected
checkpoint]. Speed-up = median over seeds of T_95(next-best baseline)/T_95(MT2O), in epochs and seconds (process CPU
time on CPU, wall clock on a GPU: :func:`time_clock`); a seed where only MT2O reaches 95 % counts ∞, only the
baseline 0, neither 1 (:func:`seed_speedups`). LS counts as a baseline (it is MT2O without transfer in the linear
case).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.mt2o import (
    EPO,
    MGDAUB,
    Elitist,
    FixedSimilarity,
    Identity,
    MT2OTrainer,
    ParetoMTL,
    Population,
    Scalarized,
    make_preferences,
    make_scalarization,
    time_to_fraction,
    weights_to_rays,
)
from methods.mt2o.population import init_seeds
from paper_repro.claims import Claim, ClaimOutcome, register_claim
from paper_repro.figures import stamped, subplots
from paper_repro.metrics import hypervolume
from paper_repro.provenance import torch_threads
from paper_repro.registry import Experiment, RunContext, register

__all__ = ["ablation_rows", "ablation_table", "benchmark_stacked_step", "figure_ablation", "figure_fronts",
           "figure_hv_curves", "figure_parallel", "figure_title", "speed_table", "time_to_fraction_table"]

BASELINES = ("ls", "pmtl", "epo", "mgda_ub")


# ---------------------------------------------------------------------------------------------- digits
def _ce(outputs: list[Tensor], target: Tensor) -> Tensor:
    return torch.stack([F.cross_entropy(o, target[:, i]) for i, o in enumerate(outputs)])


def _method_parts(name: str, cfg: dict[str, Any], w: Tensor, steps_per_epoch: int) -> tuple[Any, Any, Any]:
    """(direction, rule, scalarization) of a method label."""
    scal = make_scalarization("linear")
    if name == "ls":
        return Scalarized(scal), Identity(), scal
    if name.startswith("mt2o_a"):
        alpha = float(name[len("mt2o_a"):])
        return Scalarized(scal), FixedSimilarity(alpha=alpha), scal
    if name == "mt2o_elitist":
        return Scalarized(scal), Elitist(beta=1.0, every=1, source="val"), scal
    if name == "pmtl":
        return ParetoMTL(weights_to_rays(w), warmup_steps=cfg.get("pmtl_warmup_epochs", 1) * steps_per_epoch), \
            Identity(), scal
    if name == "epo":
        return EPO(), Identity(), scal
    if name == "mgda_ub":
        return MGDAUB(), Identity(), scal
    raise ValueError(f"Unknown method {name!r}.")


def _digits_data(cfg: dict[str, Any]) -> Any:
    if cfg["data"] == "multidigits":
        from paper_repro.data.digits import multidigits

        return multidigits(seed=cfg.get("data_seed", 0))
    from paper_repro.data.multimnist import multimnist36

    return multimnist36(seed=cfg.get("data_seed", 0))  # full profile only


def run_digits_seed(cfg: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    from paper_repro.models.lenet import MultiLeNet

    data = _digits_data(cfg)
    dev, dt = ctx.device, ctx.dtype
    tr_x, tr_y = data.train.x.to(dev, dt), data.train.y.to(dev)
    n_train = cfg.get("n_train")
    if n_train:
        tr_x, tr_y = tr_x[:n_train], tr_y[:n_train]
    splits = {"val": (data.val.x.to(dev, dt), data.val.y.to(dev)), "test": (data.test.x.to(dev, dt), data.test.y.to(dev))}
    side = int(tr_x.shape[-1])
    k = cfg["K"]
    w = make_preferences("circle", 2, n=k)
    bs = cfg["batch_size"]
    steps = math.ceil(len(tr_x) / bs)
    hv_ids = cfg["hv_ids"]

    def hv(lm: Tensor) -> dict[str, float]:
        return {i: hypervolume(lm.double().cpu().numpy(), i).value for i in hv_ids}

    def evaluate(pop: Population) -> dict[str, Tensor]:
        return {s: pop.task_losses(x, y, _ce) for s, (x, y) in splits.items()}

    def batches(epoch: int) -> list[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(10_000 * seed + epoch)
        perm = torch.randperm(len(tr_x), generator=g).to(dev)
        return [(tr_x[perm[i:i + bs]], tr_y[perm[i:i + bs]]) for i in range(0, len(tr_x), bs)]

    out: dict[str, Any] = {"methods": {}}
    _train_methods(cfg, seed, ctx, out, tag="mt2o.digits", make_model=lambda: MultiLeNet(2, side), loss_fn=_ce,
                   w=w, k=k, steps=steps, batches=batches, evaluate=evaluate, hv=hv,
                   opt_factory=lambda p: torch.optim.SGD(p, lr=cfg["lr"], momentum=0.9))
    return out


_CLOCK_NAME = {"seconds": "wall clock", "cpu_seconds": "process CPU time"}


def time_clock(per_seed: list[dict[str, Any]]) -> str:
    """The per-epoch time series the speed metrics read: ``"cpu_seconds"`` when every seed ran on CPU and recorded
    it, else ``"seconds"`` (wall clock).

    [decision] On CPU the background full runs share two cores and are paused while CI runs; process CPU time is
    the cost of the training itself and does not grow with either, while wall clock does (a seed of
    ``mt2o.regression`` that ran through a pause shows 15 s per epoch instead of 2.2). On a GPU the work is not on
    the CPU clock, so wall clock is used. Results written before ``cpu_seconds`` existed fall back to wall clock.
    """
    ok = all(s.get("device") == "cpu" and all("cpu_seconds" in r for r in s["methods"].values()) for s in per_seed)
    return "cpu_seconds" if ok and per_seed else "seconds"


def seed_speedups(t_base: list[float | None], t_new: list[float | None]) -> list[float]:
    """Per seed, the speed-up T(baseline) / T(new) to a HV target, where ``None`` means "never reached".

    Only the new method reaches it: ``inf``; only the baseline: ``0``; neither: ``1`` (no speed-up was measured, and
    the seed counts as a tie rather than being dropped, so a claim cannot rest on the seeds that favour it).

    >>> seed_speedups([4, None, 3, None], [2, 5, None, None])
    [2.0, inf, 0.0, 1.0]
    """
    out = []
    for b, n in zip(t_base, t_new, strict=True):
        if b is not None and n is not None:
            out.append(math.inf if n == 0 and b > 0 else (1.0 if n == 0 else b / n))
        else:
            out.append(math.inf if n is not None else (0.0 if b is not None else 1.0))
    return out


def median_speedup(t_base: list[float | None], t_new: list[float | None]) -> float | None:
    """Median over seeds of :func:`seed_speedups`; ``None`` when no seed of either method reached the target.

    >>> median_speedup([4, None, None], [2, 5, None])  # 2×, only the new method, neither
    2.0
    """
    if all(x is None for x in (*t_base, *t_new)):
        return None
    return float(statistics.median(seed_speedups(t_base, t_new)))


def _speed(results: dict[str, Any], hv_id: str, mt2o: str, share: float = 0.95) -> dict[str, Any]:
    per_seed = results["per_seed"]
    clock = time_clock(per_seed)
    methods = list(per_seed[0]["methods"])
    final = {m: float(np.mean([s["methods"][m]["final_hv"][hv_id] for s in per_seed])) for m in methods}
    hv_star = max(final.values())
    baselines = [m for m in methods if m in BASELINES]
    next_best = max(baselines, key=lambda m: final[m])
    rows: dict[str, Any] = {}
    for m in methods:
        te, ts = [], []
        for s in per_seed:
            r = s["methods"][m]
            hit = time_to_fraction(r["epochs"], r[clock], r["hv"][hv_id], share * hv_star)
            te.append(None if hit is None else hit[0])
            ts.append(None if hit is None else hit[1])
        rows[m] = {"final_hv": final[m], "T_epochs": te, "T_seconds": ts}

    return {"hv_star": hv_star, "share": share, "next_best": next_best, "rows": rows, "mt2o": mt2o, "clock": clock,
            "speedup_vs_next_best_epochs": median_speedup(rows[next_best]["T_epochs"], rows[mt2o]["T_epochs"]),
            "speedup_vs_next_best_seconds": median_speedup(rows[next_best]["T_seconds"], rows[mt2o]["T_seconds"]),
            "speedup_vs_ls_epochs": median_speedup(rows["ls"]["T_epochs"], rows[mt2o]["T_epochs"]),
            "speedup_vs_ls_seconds": median_speedup(rows["ls"]["T_seconds"], rows[mt2o]["T_seconds"]),
            "speedup_vs_next_best_epochs_per_seed": seed_speedups(rows[next_best]["T_epochs"], rows[mt2o]["T_epochs"])}


def _hv_auc(results: dict[str, Any], hv_id: str, method: str) -> list[float]:
    """Per seed, the mean test HV over epochs 1..E (area under the HV-vs-epoch curve; higher = faster)."""
    return [float(np.mean(s["methods"][method]["hv"][hv_id][1:])) for s in results["per_seed"]]


SHARES = (0.90, 0.95, 0.99)  # X of T_X (specs/mt2o.md §3): 95 is the headline, 90 and 99 are tabulated


def aggregate_digits(per_seed: list[dict[str, Any]], cfg: dict[str, Any]) -> dict[str, Any]:
    """Cross-seed speed metrics of any population experiment (``mt2o.digits``, ``mt2o.scenes``,
    ``mt2o.regression``): ``speed`` (X = 95), ``speed_by_share`` (X = 90, 95, 99) and ``hv_auc`` per HV id."""
    res = {"per_seed": per_seed}
    out = {"speed": {i: _speed(res, i, cfg["mt2o_default"]) for i in cfg["hv_ids"]}}
    out["speed_by_share"] = {i: {f"{x:.2f}": _speed(res, i, cfg["mt2o_default"], x) for x in SHARES}
                             for i in cfg["hv_ids"]}
    out["hv_auc"] = {i: {m: _hv_auc(res, i, m) for m in per_seed[0]["methods"]} for i in cfg["hv_ids"]}
    return out


aggregate_population = aggregate_digits


def speed_table(results: dict[str, Any], hv_id: str | None = None) -> list[dict[str, Any]]:
    """Rows (method, final HV mean, T_95 epochs/seconds per seed) of an aggregated population experiment."""
    hv_id = hv_id or results["config"]["hv_ids"][0]
    sp = results["aggregate"]["speed"][hv_id]
    return [{"method": m, "final_hv": r["final_hv"], "T95_epochs": r["T_epochs"], "T95_seconds": r["T_seconds"]}
            for m, r in sp["rows"].items()]


def _median_or_none(xs: list[Any]) -> float | None:
    vals = [x for x in xs if x is not None]
    return float(statistics.median(vals)) if len(vals) == len(xs) and vals else None


def time_to_fraction_table(results: dict[str, Any], hv_id: str | None = None) -> str:
    """Markdown table: per method, final test HV (mean over seeds) and T_90 / T_95 / T_99 in epochs and training
    seconds (median over seeds; "—" = not reached by some seed), then the speed-ups of the MT2O default at X = 95.

    Every number comes from ``results["aggregate"]`` (the quantities the claims read)."""
    hv_id = hv_id or results["config"]["hv_ids"][0]
    agg = results["aggregate"]
    by = agg.get("speed_by_share", {}).get(hv_id) or {"0.95": agg["speed"][hv_id]}
    shares = sorted(by)
    head = "| method | final HV | " + " | ".join(f"T{round(float(x) * 100)} ep / s" for x in shares) + " |"
    lines = [head, "|---" * (2 + len(shares)) + "|"]
    first = by[shares[0]]

    def fmt(v: float | None, digits: int) -> str:
        return "—" if v is None else f"{v:.{digits}f}"

    for m, r in first["rows"].items():
        cells = []
        for x in shares:
            row = by[x]["rows"][m]
            cells.append(f"{fmt(_median_or_none(row['T_epochs']), 1)} / {fmt(_median_or_none(row['T_seconds']), 1)}")
        lines.append(f"| {m} | {r['final_hv']:.4f} | " + " | ".join(cells) + " |")
    sp = agg["speed"][hv_id]

    def ratio(v: float | None) -> str:
        return "not reached" if v is None else f"{v:.2f}×"

    lines.append("")
    lines.append(f"HV* = {sp['hv_star']:.4f} ({hv_id}); MT2O default = {sp['mt2o']}; next-best baseline = "
                 f"{sp['next_best']}. T95 speed-up vs next best: {ratio(sp['speedup_vs_next_best_epochs'])} (epochs), "
                 f"{ratio(sp['speedup_vs_next_best_seconds'])} (seconds); vs no transfer (LS = MT2O α = 0): "
                 f"{ratio(sp['speedup_vs_ls_epochs'])} (epochs), {ratio(sp['speedup_vs_ls_seconds'])} (seconds). "
                 f"Seconds are {_CLOCK_NAME[sp.get('clock', 'seconds')]}.")
    return "\n".join(lines)


def _alpha_of(method: str) -> float | None:
    if method == "ls":
        return 0.0
    if method.startswith("mt2o_a"):
        return float(method[len("mt2o_a"):])
    return None


def ablation_rows(results: dict[str, Any], hv_id: str | None = None) -> list[dict[str, Any]]:
    """Transfer-strength ablation (``specs/mt2o.md`` §4 E5) of one population experiment: per α (LS = α 0, and the
    elitist rule when run), final test HV (mean ± s.e. over seeds), the HV mean over epochs, median T_95 epochs,
    the mean front spread (range of each test loss over the K models) and the mean pairwise parameter distance."""
    hv_id = hv_id or results["config"]["hv_ids"][0]
    per = results["per_seed"]
    sp = results["aggregate"]["speed"][hv_id]
    rows = []
    methods = [m for m in per[0]["methods"] if _alpha_of(m) is not None or m == "mt2o_elitist"]
    methods.sort(key=lambda m: (_alpha_of(m) is None, _alpha_of(m) or 0.0))
    for m in methods:
        hv = np.array([s["methods"][m]["final_hv"][hv_id] for s in per])
        rows.append({
            "method": m, "alpha": _alpha_of(m),
            "final_hv": float(hv.mean()),
            "final_hv_se": float(hv.std(ddof=1) / math.sqrt(len(hv))) if len(hv) > 1 else float("nan"),
            "hv_auc": float(np.mean(results["aggregate"]["hv_auc"][hv_id][m])),
            "T95_epochs": _median_or_none(sp["rows"][m]["T_epochs"]),
            "spread": float(np.mean([np.mean(s["methods"][m]["spread"]) if "spread" in s["methods"][m]
                                     else np.ptp(np.asarray(s["methods"][m]["final_test_losses"]), 0).mean()
                                     for s in per])),
            "pairwise_distance": float(np.mean([s["methods"][m]["pairwise_distance"] for s in per])),
        })
    return rows


def ablation_table(results: dict[str, Any], hv_id: str | None = None) -> str:
    """Markdown version of :func:`ablation_rows`."""
    lines = ["| method | α | final HV | mean HV over epochs | T95 epochs | spread | pairwise dist. |",
             "|---|---|---|---|---|---|---|"]
    for r in ablation_rows(results, hv_id):
        a = "elitist" if r["alpha"] is None else f"{r['alpha']:g}"
        se = "" if not math.isfinite(r["final_hv_se"]) else f" ± {r['final_hv_se']:.4f}"
        t = "—" if r["T95_epochs"] is None else f"{r['T95_epochs']:.0f}"
        lines.append(f"| {r['method']} | {a} | {r['final_hv']:.4f}{se} | {r['hv_auc']:.4f} | {t} | "
                     f"{r['spread']:.3f} | {r['pairwise_distance']:.2f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- shared loop
def compute_path(cfg: dict[str, Any], device: torch.device) -> str:
    """The population's forward path: ``cfg["compute"]`` when set (``--set compute=vmap``), else ``"loop"`` on CPU
    and ``"vmap"`` elsewhere.

    Both paths keep the K models stacked (one optimiser step, one mixing product) and agree to 1e-12 in float64
    (``tests/mt2o/test_mt2o_method.py``); they differ only in float32 summation order, like a different thread count,
    so the choice is recorded per seed (``"compute"``) but is not a setting (it does not enter the settings hash).
    On CPU the loop is the faster one (``python -m paper_repro bench --population``: vmap 1.4× the time of K
    separate steps, loop 1.0×); on a GPU the single vectorised call is expected to win.
    """
    if cfg.get("compute"):
        if cfg["compute"] not in ("vmap", "loop"):
            raise ValueError(f"Config key `compute` should be 'vmap' or 'loop'. Found {cfg['compute']!r}.")
        return str(cfg["compute"])
    return "vmap" if torch.device(device).type == "cuda" else "loop"


def _take(target: Any, idx: Tensor) -> Any:
    """Rows ``idx`` of a target tensor or of every tensor in a tuple of targets."""
    return tuple(t[idx] for t in target) if isinstance(target, tuple) else target[idx]


def _method_result(trainer: MT2OTrainer, hist: Any, hv_ids: list[str]) -> dict[str, Any]:
    """The per-method record every MT2O experiment stores (curves, final losses/HV, cost, diagnostics)."""
    st = trainer.step_times[len(trainer.step_times) // 5:] or trainer.step_times
    rec = hist.as_dict()
    last = rec["records"][-1]
    final = np.asarray(last["losses"]["test"])
    return {
        "epochs": [r["epoch"] for r in rec["records"]],
        "seconds": [r["seconds"] for r in rec["records"]],
        "cpu_seconds": [r["cpu_seconds"] for r in rec["records"]],
        "hv": {i: [r["hv"]["test"][i] for r in rec["records"]] for i in hv_ids},
        "hv_val": {i: [r["hv"]["val"][i] for r in rec["records"]] for i in hv_ids},
        "final_test_losses": last["losses"]["test"],
        "final_hv": {i: last["hv"]["test"][i] for i in hv_ids},
        "median_step_s": float(statistics.median(st)) if st else float("nan"),
        "pairwise_distance": last["pairwise_distance"],
        "offdiag_mass": last["offdiag_mass"],
        "spread": (final.max(0) - final.min(0)).tolist(),  # range of each test loss over the K models
    }


def _run_population_methods(cfg: dict[str, Any], seed: int, ctx: RunContext, *, tag: str,
                            make_model: Any, loss_fn: Any, w: Tensor, train: tuple[Tensor, Any],
                            splits: dict[str, tuple[Tensor, Any]], hv: Any,
                            compute: str | None = None) -> dict[str, Any]:
    """Train every method of ``cfg["methods"]`` on the same data order and inits (Adam, ``cfg["lr"]``)."""
    tr_x, tr_y = train
    n, bs, k = len(tr_x), cfg["batch_size"], w.shape[0]
    steps = math.ceil(n / bs)
    dev = ctx.device

    def evaluate(pop: Population) -> dict[str, Tensor]:
        return {s: pop.task_losses(x, y, loss_fn) for s, (x, y) in splits.items()}

    def batches(epoch: int) -> list[tuple[Tensor, Any]]:
        g = torch.Generator().manual_seed(10_000 * seed + epoch)
        perm = torch.randperm(n, generator=g).to(dev)
        return [(tr_x[perm[i:i + bs]], _take(tr_y, perm[i:i + bs])) for i in range(0, n, bs)]

    out: dict[str, Any] = {"methods": {}}
    # quick: 1 thread for every method (tiny models; robust timings on a shared machine)
    with torch_threads(int(cfg["threads"]) if cfg.get("threads") else None):
        out["threads"] = torch.get_num_threads()
        _train_methods(cfg, seed, ctx, out, tag=tag, make_model=make_model, loss_fn=loss_fn, w=w, k=k, steps=steps,
                       batches=batches, evaluate=evaluate, hv=hv, compute=compute)
    return out


def _train_methods(cfg: dict[str, Any], seed: int, ctx: RunContext, out: dict[str, Any], *, tag: str,
                   make_model: Any, loss_fn: Any, w: Tensor, k: int, steps: int, batches: Any, evaluate: Any,
                   hv: Any, compute: str | None = None, opt_factory: Any = None) -> None:
    """Train every method of ``cfg`` (each a resumable unit) into ``out["methods"]``; Adam at ``cfg["lr"]`` unless
    ``opt_factory`` (parameters → optimizer) is given. The population is stacked; its forward path is ``compute``,
    else :func:`compute_path` (recorded as ``out["compute"]``)."""
    dev, dt = ctx.device, ctx.dtype
    make_opt = opt_factory or (lambda p: torch.optim.Adam(p, lr=cfg["lr"]))
    compute = compute or compute_path(cfg, dev)
    out["compute"] = compute
    out["device"] = torch.device(dev).type

    def train(name: str) -> dict[str, Any]:
        pop = Population(make_model, k, init_seeds(seed, k), device=dev, dtype=dt, compute=compute)
        direction, rule, scal = _method_parts(name, cfg, w, steps)
        trainer = MT2OTrainer(pop, w.to(dt), loss_fn=loss_fn, direction=direction, rule=rule, scalarization=scal,
                              opt_factory=make_opt)
        hist = trainer.fit(batches, cfg["epochs"], evaluate=evaluate, hv=hv, progress_bar=False)
        return _method_result(trainer, hist, cfg["hv_ids"])

    for name in cfg["methods"]:  # each method is a resumable unit: a full seed trains for hours
        out["methods"][name] = ctx.unit(f"method-{name}", lambda name=name: train(name))
        ctx.logger.info("%s seed %d %s final HV %s", tag, seed, name, out["methods"][name]["final_hv"])


# ---------------------------------------------------------------------------------------------- scenes
#: Scene tasks of the two-task proxy (``mt2o.scenes``) and of the optional three-task variant (``mt2o.scenes3``).
SCENE_TASKS_2 = ("segmentation", "depth")
SCENE_TASKS_3 = ("segmentation", "depth", "normals")


def _scene_losses(outputs: list[Tensor], target: tuple[Tensor, ...]) -> Tensor:
    """(segmentation CE, L1 of train-standardised depth[, normals cosine loss]) of one model.

    The third loss, present when ``target`` holds a normal map ``(N, 3, H, W)``, is the MTAN cosine loss
    ``mean_{valid p} (1 − ⟨n̂_p, n_p⟩)`` (:func:`paper_repro.models.losses.normal_cosine_loss`) [decision]."""
    seg, depth = target[0], target[1]
    losses = [F.cross_entropy(outputs[0], seg), (outputs[1] - depth).abs().mean()]
    if len(target) > 2:
        from paper_repro.models.losses import normal_cosine_loss

        losses.append(normal_cosine_loss(outputs[2], target[2]))
    return torch.stack(losses)


def _scene_trivial_losses(seg: Tensor, depth: Tensor, n_classes: int, normal: Tensor | None = None) -> list[float]:
    """Losses of the best constant predictors on train: class-frequency CE (the class entropy), the L1 of the
    median depth and, when ``normal`` ``(N, 3, H, W)`` is given, the cosine loss of the normalised mean normal over
    valid pixels, ``1 − ‖mean_p n_p‖`` (``specs/mt2o.md`` §3, registry id ``scenes.shapes``; the normals entry is
    the 3-task extension of the same "2 × trivial" rule [decision]: the constant unit vector c minimising
    ``mean_p (1 − cᵀn_p)`` is ``mean_p n_p/‖mean_p n_p‖``)."""
    p = torch.bincount(seg.reshape(-1), minlength=n_classes).double()
    p = p / p.sum()
    ce = float(-(p[p > 0] * p[p > 0].log()).sum())
    d = depth.reshape(-1).double()
    out = [ce, float((d - d.median()).abs().mean())]
    if normal is not None:
        if normal.ndim != 4 or normal.shape[1] != 3:
            raise ValueError(f"Parameter `normal` should be a (N, 3, H, W) normal map. Found shape "
                             f"{tuple(normal.shape)}.")
        from paper_repro.models.losses import valid_mask

        valid = valid_mask(normal)
        if not bool(valid.any()):
            raise ValueError("Parameter `normal` should have at least one valid (non-zero) pixel. Found none.")
        mean = normal.double().permute(0, 2, 3, 1)[valid].mean(0)
        out.append(float(1.0 - mean.norm()))
    return out


def _config_weights(cfg: dict[str, Any], m: int) -> Tensor:
    """The weight set of a population config: ``das_dennis`` (``divisions`` H, optional centroid ``shrink``) when
    the config names ``divisions``, else ``circle`` with ``K`` rays (m = 2); checks that it has ``K`` rows."""
    if "divisions" in cfg:
        w = make_preferences("das_dennis", m, divisions=cfg["divisions"], shrink_amount=cfg.get("shrink", 0.0))
    else:
        w = make_preferences("circle", m, n=cfg["K"])
    if w.shape[0] != cfg["K"]:
        raise ValueError(f"Config key `K` should equal the number of weight vectors of its generator "
                         f"({w.shape[0]} for {cfg.get('generator', 'circle')!r} with m = {m}). Found `K = {cfg['K']}`.")
    return w


def run_scenes_seed(cfg: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """One seed of a scene experiment: ``cfg["tasks"]`` (default segmentation + depth, ``mt2o.scenes``; with
    normals, ``mt2o.scenes3``), weights from :func:`_config_weights`, every method of ``cfg["methods"]``."""
    from paper_repro.data import SCENE_CLASSES, scenes
    from paper_repro.models import SegNet

    tasks = tuple(cfg.get("tasks", SCENE_TASKS_2))
    if tasks not in (SCENE_TASKS_2, SCENE_TASKS_3):
        raise ValueError(f"Config key `tasks` should be {list(SCENE_TASKS_2)} or {list(SCENE_TASKS_3)}. "
                         f"Found `tasks = {list(tasks)}`.")
    data = scenes(cfg["n_train"], cfg["n_val"], cfg["n_test"], size=cfg["size"], seed=cfg.get("data_seed", 0))
    dev, dt = ctx.device, ctx.dtype
    mu, sd = float(data.train.depth.mean()), float(data.train.depth.std())  # depth standardised with train stats

    def part(p: Any) -> tuple[Tensor, tuple[Tensor, ...]]:
        target = (p.seg.to(dev), ((p.depth - mu) / sd).to(dev, dt))
        if len(tasks) > 2:
            target = target + (p.normal.to(dev, dt),)
        return p.image.to(dev, dt), target

    train = part(data.train)
    splits = {"val": part(data.val), "test": part(data.test)}
    n_classes = len(SCENE_CLASSES)
    trivial = _scene_trivial_losses(train[1][0].cpu(), train[1][1].cpu(), n_classes,
                                    normal=train[1][2].cpu() if len(tasks) > 2 else None)

    def hv(lm: Tensor) -> dict[str, float]:
        return {i: hypervolume(lm.double().cpu().numpy(), i, trivial_losses=trivial).value for i in cfg["hv_ids"]}

    w = _config_weights(cfg, len(tasks))
    out = _run_population_methods(
        cfg, seed, ctx, tag="mt2o.scenes" if len(tasks) == 2 else "mt2o.scenes3", w=w, train=train, splits=splits,
        hv=hv, loss_fn=_scene_losses,
        make_model=lambda: SegNet(tasks, n_classes=n_classes, channels=tuple(cfg["channels"]), norm="group"),
        compute="loop")  # GroupNorm has no vmap rule in torch 2.13 (is_contiguous NYI): the loop path on any device
    out["trivial_losses"] = trivial
    out["depth_standardisation"] = [mu, sd]
    return out


# ---------------------------------------------------------------------------------------------- regression
def _mse_per_target(outputs: list[Tensor], target: Tensor) -> Tensor:
    return torch.stack([((o.squeeze(-1) - target[:, i]) ** 2).mean() for i, o in enumerate(outputs)])


def run_regression_seed(cfg: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    from paper_repro.data import multitarget_regression
    from paper_repro.models import MultiHeadMLP

    m = cfg["n_targets"]
    data = multitarget_regression(cfg["n_train"], cfg["n_test"], n_targets=m, seed=cfg.get("data_seed", 0))
    dev, dt = ctx.device, ctx.dtype

    def part(p: Any) -> tuple[Tensor, Tensor]:
        return p.x.to(dev, dt), p.y.to(dev, dt)

    def hv(lm: Tensor) -> dict[str, float]:
        return {i: hypervolume(lm.double().cpu().numpy(), i).value for i in cfg["hv_ids"]}

    w = make_preferences("das_dennis", m, divisions=cfg["divisions"], shrink_amount=cfg.get("shrink", 0.0))
    d = int(data.train.x.shape[1])
    return _run_population_methods(
        cfg, seed, ctx, tag="mt2o.regression" if m == 3 else f"mt2o.regression (m = {m})", w=w,
        train=part(data.train),
        splits={"val": part(data.val), "test": part(data.test)}, hv=hv, loss_fn=_mse_per_target,
        make_model=lambda: MultiHeadMLP(d, tuple(cfg["hidden"]) + (cfg["bottleneck"],), n_tasks=m,
                                        activate_last=False))


# ---------------------------------------------------------------------------------------------- vlmop2
class _Point(nn.Module):
    """One decision vector x ∈ ℝⁿ as a 'model' whose two outputs are VLMOP2's objectives."""

    n_tasks = 2

    def __init__(self, n: int) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.rand(n) - 0.5)  # U(−0.5, 0.5)^n (PMTL's toy)

    def forward(self, inp: Tensor) -> list[Tensor]:
        from paper_repro.data.toys import vlmop2

        f = vlmop2(self.x + 0 * inp.sum())
        return [f[0].reshape(1), f[1].reshape(1)]


def _toy_loss(outputs: list[Tensor], target: Tensor) -> Tensor:
    return torch.stack([o.sum() for o in outputs])


def _front_gap(x: Tensor) -> Tensor:
    """‖F(x) − F(P(x))‖ with P the projection onto the Pareto set {s·𝟙/√n : |s| ≤ 1}."""
    from paper_repro.data.toys import vlmop2

    n = x.shape[-1]
    s = (x.sum(-1) / math.sqrt(n)).clamp(-1, 1)
    proj = s[:, None] * torch.ones_like(x) / math.sqrt(n)
    return (vlmop2(x) - vlmop2(proj)).norm(dim=-1)


def run_vlmop2_seed(cfg: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    k, n = cfg["K"], cfg["n"]
    w = make_preferences("circle", 2, n=k).double()
    dummy = (torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    out: dict[str, Any] = {"methods": {}}
    for name, spec in cfg["methods"].items():
        pop = Population(lambda: _Point(n), k, init_seeds(seed, k), dtype=torch.float64)
        scal = make_scalarization(spec.get("scal", "linear"), **spec.get("scal_kwargs", {}))
        rule = FixedSimilarity(alpha=spec["alpha"]) if spec.get("alpha", 0) > 0 else Identity()
        direction = {"pmtl": lambda: ParetoMTL(weights_to_rays(w), warmup_steps=cfg["pmtl_warmup"]),
                     "epo": lambda: EPO()}.get(spec.get("dir", ""), lambda: Scalarized(scal))()
        tr = MT2OTrainer(pop, w, loss_fn=_toy_loss, direction=direction, rule=rule, scalarization=scal,
                         opt_factory=lambda p: torch.optim.SGD(p, lr=cfg["lr"]))
        for _ in range(cfg["iters"]):
            tr.train_step(*dummy)
        with torch.no_grad():
            f = pop.task_losses(*dummy, _toy_loss)
            xs = pop.params["x"].detach()
        gap = _front_gap(xs)
        s_coord = xs.sum(-1) / math.sqrt(n)
        out["methods"][name] = {
            "points": f.tolist(), "hv": hypervolume(f.numpy(), "vlmop2").value, "max_gap": float(gap.max()),
            "n_interior": int(((s_coord.abs() < 0.8) & (gap < 0.05)).sum()),
        }
    return out


# ---------------------------------------------------------------------------------------------- figures
_DATA_LABELS = {
    "multidigits": "Multi-Digits (Multi-MNIST proxy)",
    "multimnist36": "Multi-MNIST 36×36",
    "mt2o.vlmop2": "VLMOP2 (n = 20, PMTL's concave toy)",
    "mt2o.scenes": "procedural scenes 32×32, seg + depth (NYUv2 proxy)",
    "mt2o.regression": "synthetic multi-target regression",
    "mt2o.scenes3": "procedural scenes 16×16, seg + depth + normals (NYUv2 proxy, 3 tasks)",
    "mt2o.regression7": "synthetic multi-target regression, SARCOS stand-in",
}


def figure_title(results: dict[str, Any], extra: str = "") -> str:
    """Data, profile, seeds, K and preference generator of an MT2O result, for figure titles and captions."""
    cfg = results["config"]
    data = _DATA_LABELS.get(cfg.get("data", ""), _DATA_LABELS.get(results["experiment"], results["experiment"]))
    if results["experiment"].startswith("mt2o.regression"):
        data += f" (m = {cfg['n_targets']})"
    gen = cfg.get("generator", "circle")
    return (f"{data} — {results.get('profile', '?')} profile, seeds {results['seeds']}; "
            f"MT2O (reconstruction), K = {cfg['K'] if 'K' in cfg else '?'} {gen}" + (f"; {extra}" if extra else ""))


def _k_of(results: dict[str, Any]) -> Any:
    pts = next(iter(results["per_seed"][0]["methods"].values()))
    return len(pts.get("final_test_losses", pts.get("points")))


@stamped
def figure_fronts(results: dict[str, Any], seed_index: int = 0, methods: list[str] | None = None) -> Any:
    """Final test-loss fronts, one marker per model (task 1 vs task 2; every pair of tasks when m > 2), for any
    MT2O experiment; VLMOP2 adds the analytic front."""
    per = results["per_seed"][seed_index]["methods"]
    methods = [m for m in (methods or list(per)) if m in per]
    m_obj = np.asarray(per[methods[0]].get("final_test_losses", per[methods[0]].get("points"))).shape[1]
    pairs = [(0, 1)] if m_obj == 2 else [(i, j) for i in range(m_obj) for j in range(i + 1, m_obj)]
    fig, axes = subplots(1, len(pairs), figsize=(5.5 * len(pairs) if len(pairs) < 3 else 12, 4.3),
                         squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        for m in methods:
            pts = np.asarray(per[m].get("final_test_losses", per[m].get("points")))
            ax.scatter(pts[:, i], pts[:, j], label=m, s=18, alpha=0.8)
        if results["experiment"] == "mt2o.vlmop2":
            from paper_repro.data.toys import vlmop2_front

            fr = vlmop2_front(200).numpy()
            ax.plot(fr[:, 0], fr[:, 1], "k-", lw=0.8, label="true front")
        ax.set_xlabel(f"task {i + 1} test loss")
        ax.set_ylabel(f"task {j + 1} test loss")
    axes[0][0].legend(fontsize=7)
    cfg = dict(results["config"])
    cfg.setdefault("K", _k_of(results))
    import textwrap

    title = figure_title({**results, "config": cfg}, f"final models of seed {results['seeds'][seed_index]}")
    fig.suptitle("\n".join(textwrap.wrap(title, 75 if len(pairs) == 1 else 160)), fontsize=8)
    fig.tight_layout()
    return fig


@stamped
def figure_parallel(results: dict[str, Any], seed_index: int = 0, methods: list[str] | None = None) -> Any:
    """Final test losses as parallel coordinates, for fronts with many tasks (``mt2o.regression7``, m = 7): one
    panel per method, x = task, y = test loss, one line per model coloured by the task its weight vector favours
    (argmax of w^k), and the HV reference point of the first HV id as a dashed line (points above it add no HV)."""
    import textwrap

    import matplotlib

    from paper_repro.hv_refs import get_reference

    seed_res = results["per_seed"][seed_index]
    per = seed_res["methods"]
    methods = [m for m in (methods or list(per)) if m in per]
    if not methods:
        raise ValueError(f"Parameter `methods` should name methods of the results ({list(per)}). Found none.")
    cfg = results["config"]
    losses = {m: np.asarray(per[m]["final_test_losses"]) for m in methods}
    k, n_obj = losses[methods[0]].shape
    favoured = _config_weights({**cfg, "K": k}, n_obj).argmax(1).tolist()
    hv_id = cfg["hv_ids"][0]
    ref = get_reference(hv_id, n_obj, trivial_losses=seed_res.get("trivial_losses"))
    cols = min(4, len(methods))
    rows = math.ceil(len(methods) / cols)
    fig, axes = subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False, sharey=True)
    cmap = matplotlib.colormaps["tab10"]
    xs = np.arange(1, n_obj + 1)
    for ax, m in zip(axes.flat, methods):
        for j in range(k):
            ax.plot(xs, losses[m][j], marker="o", ms=3, lw=1, color=cmap(int(favoured[j]) % 10), alpha=0.85)
        ax.plot(xs, ref, "k--", lw=0.8)
        ax.set_title(m, fontsize=8)
        ax.set_xticks(xs)
        ax.set_xlabel("task")
    for ax in axes[:, 0]:
        ax.set_ylabel("test loss")
    for ax in list(axes.flat)[len(methods):]:
        ax.set_visible(False)
    title = figure_title(results, f"final models of seed {results['seeds'][seed_index]}; colour = favoured task; "
                                  f"dashed = HV reference ({hv_id})")
    fig.suptitle("\n".join(textwrap.wrap(title, 40 * cols)), fontsize=8)
    fig.tight_layout()
    return fig


@stamped
def figure_hv_curves(results: dict[str, Any], hv_id: str | None = None, methods: list[str] | None = None) -> Any:
    """Test HV vs epoch and vs training seconds (mean ± s.e. over seeds) of a population experiment."""
    hv_id = hv_id or results["config"]["hv_ids"][0]
    clock = time_clock(results["per_seed"])
    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    for m in methods or list(results["per_seed"][0]["methods"]):
        hv = np.array([s["methods"][m]["hv"][hv_id] for s in results["per_seed"]])
        sec = np.array([s["methods"][m][clock] for s in results["per_seed"]]).mean(0)
        ep = results["per_seed"][0]["methods"][m]["epochs"]
        mu = hv.mean(0)
        se = hv.std(0, ddof=1) / math.sqrt(len(hv)) if len(hv) > 1 else np.zeros_like(mu)
        for ax, xs in zip(axes, (ep, sec)):
            ax.plot(xs, mu, label=m)
            ax.fill_between(xs, mu - se, mu + se, alpha=0.2)
    axes[0].set_xlabel("epoch")
    axes[1].set_xlabel(f"training seconds, {_CLOCK_NAME[clock]} (mean over seeds)")
    for ax in axes:
        ax.set_ylabel(f"test HV ({hv_id})")
    axes[0].legend(fontsize=7)
    fig.suptitle(figure_title(results, "mean ± s.e. over seeds"), fontsize=8)
    fig.tight_layout()
    return fig


@stamped
def figure_ablation(results_list: list[dict[str, Any]]) -> Any:
    """Transfer-strength ablation: final test HV and front spread against α (LS = α 0; symlog axis), one row (a
    subfigure titled with data, profile and seeds) per population experiment (values from :func:`ablation_rows`)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.0 * len(results_list)), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(results_list), 1))
    for sf, res in zip(subfigs, results_list):
        ax_hv, ax_sp = sf.subplots(1, 2)
        rows = [r for r in ablation_rows(res) if r["alpha"] is not None]
        a = [r["alpha"] for r in rows]
        ax_hv.errorbar(a, [r["final_hv"] for r in rows], marker="o", label="final HV (± s.e.)",
                       yerr=[0 if not math.isfinite(r["final_hv_se"]) else r["final_hv_se"] for r in rows])
        ax_hv.plot(a, [r["hv_auc"] for r in rows], marker="s", ls="--", label="mean HV over epochs")
        ax_hv.legend(fontsize=7)
        ax_sp.plot(a, [r["spread"] for r in rows], marker="o")
        ax_hv.set_ylabel(f"test HV ({res['config']['hv_ids'][0]})")
        ax_sp.set_ylabel("front spread (mean loss range)")
        for ax in (ax_hv, ax_sp):
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlabel("α (transfer strength; α·η0 per step)")
        sf.suptitle(figure_title(res), fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------------- benchmark
def benchmark_stacked_step(k: int = 5, batch_size: int = 256, repeats: int = 30, warmup: int = 5,
                           side: int = 10, dtype: torch.dtype = torch.float32,
                           device: torch.device | str = "cpu") -> dict[str, Any]:
    """Median time of one LS step of K LeNets: K separate modules and optimisers, against the stacked population
    (one optimiser over ``[K, …]`` tensors) with ``compute="vmap"`` and with ``compute="loop"``.

    The three are timed in turn within each repeat (not one after the other), so a change of machine load hits
    all of them alike. The returned ratios are stacked time / separate time (< 1: the stacked step is faster).
    """
    from paper_repro.models.lenet import MultiLeNet

    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 1, side, side, generator=g, dtype=dtype).to(dev)
    y = torch.randint(0, 10, (batch_size, 2), generator=g).to(dev)
    w = make_preferences("circle", 2, n=k).to(dev, dtype)

    def opt(p: Any) -> torch.optim.Optimizer:
        return torch.optim.SGD(p, lr=0.01, momentum=0.9)

    trainers = {c: MT2OTrainer(Population(lambda: MultiLeNet(2, side), k, dtype=dtype, device=dev, compute=c), w,
                               loss_fn=_ce, opt_factory=opt) for c in ("vmap", "loop")}
    models = trainers["vmap"].pop.unstack()
    opts = [opt(m.parameters()) for m in models]

    def separate() -> None:
        for i, (m, o) in enumerate(zip(models, opts)):
            o.zero_grad()
            (w[i] * _ce(m(x), y)).sum().backward()
            o.step()

    fns = {"separate": separate, **{c: (lambda t=t: t.train_step(x, y)) for c, t in trainers.items()}}
    times: dict[str, list[float]] = {n: [] for n in fns}
    for r in range(warmup + repeats):
        for n, fn in fns.items():
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if r >= warmup:
                times[n].append(time.perf_counter() - t0)
    med = {n: float(statistics.median(v)) for n, v in times.items()}
    return {"separate_s": med["separate"], "stacked_s": med["vmap"], "loop_s": med["loop"],
            "ratio_stacked_over_separate": med["vmap"] / med["separate"],
            "ratio_loop_over_separate": med["loop"] / med["separate"],
            "K": k, "batch_size": batch_size, "side": side, "threads": torch.get_num_threads(), "device": str(dev)}


# ---------------------------------------------------------------------------------------------- registration
_DIGITS_METHODS = ["ls", "mt2o_a1", "mt2o_a10", "mt2o_elitist", "pmtl", "epo", "mgda_ub"]
register(Experiment(
    name="mt2o.digits", paper="MT2O",
    description="MT2O (reconstruction) vs LS/PMTL/EPO/MGDA-UB: HV per epoch and per second, transfer ablation "
                "(Multi-Digits quick, Multi-MNIST full), K = 5 circle",
    profiles={
        "quick": {"data": "multidigits", "K": 5, "epochs": 8, "batch_size": 256, "lr": 0.05, "seeds": [0, 1],
                  "n_train": 1280, "methods": _DIGITS_METHODS, "mt2o_default": "mt2o_a1", "hv_ids": ["multidigits"],
                  "pmtl_warmup_epochs": 1},
        "full": {"data": "multimnist36", "K": 5, "epochs": 100, "batch_size": 256, "lr": 1e-3, "seeds": [0, 1, 2],
                 "methods": ["ls", "mt2o_a1", "mt2o_a10", "mt2o_a100", "mt2o_elitist", "pmtl", "epo", "mgda_ub"],
                 "mt2o_default": "mt2o_a1", "hv_ids": ["multimnist.cosmos", "multimnist.phn"],
                 "pmtl_warmup_epochs": 2},
    },
    run_seed=run_digits_seed, aggregate=aggregate_digits,
    figures={"fronts": figure_fronts, "hv_curves": figure_hv_curves},
))

_VLMOP2_METHODS = {
    "ls": {"scal": "linear"},
    "mt2o_linear_a0.1": {"scal": "linear", "alpha": 0.1},
    "stch": {"scal": "stch", "scal_kwargs": {"mu": 0.05}},
    "mt2o_stch_a0.05": {"scal": "stch", "scal_kwargs": {"mu": 0.05}, "alpha": 0.05},
    "tcheby": {"scal": "tcheby"},
    "pmtl": {"dir": "pmtl"},
    "epo": {"dir": "epo"},
}
register(Experiment(
    name="mt2o.vlmop2", paper="MT2O",
    description="Concave VLMOP2 front (PMTL toy): LS misses the interior; Tchebycheff/STCH/PMTL/EPO reach it; "
                "MT2O-linear transfer adds off-front (biased) interior points",
    profiles={
        "quick": {"K": 10, "n": 20, "iters": 100, "lr": 1.0, "pmtl_warmup": 20, "seeds": [0, 1, 2],
                  "methods": _VLMOP2_METHODS},
        "full": {"K": 10, "n": 20, "iters": 100, "lr": 1.0, "pmtl_warmup": 20, "seeds": list(range(10)),
                 "methods": _VLMOP2_METHODS},
    },
    run_seed=run_vlmop2_seed, figures={"fronts": figure_fronts},
))


_SCENE_QUICK_METHODS = ["ls", "mt2o_a1", "mt2o_a100", "pmtl", "epo", "mgda_ub"]
register(Experiment(
    name="mt2o.scenes", paper="MT2O",
    description="E2 scene proxy (NYUv2's '≈ 2× faster' claim): procedural scenes 32×32, segmentation CE + L1 on "
                "train-standardised depth, GroupNorm SegNet, K = 5 circle, Adam; LS (= MT2O α 0, Identity transfer), "
                "MT2O fixed-similarity α ∈ {1, 100} (quick) / {1, 10, 100} + elitist (full), Pareto MTL, EPO, "
                "MGDA-UB; test HV (scenes.shapes, 2 × trivial loss) per epoch and per training second, T90/T95/T99. "
                "Quick covers 1 seed, 128/32/64 images, SegNet channels (8, 16), 6 epochs of batch 32, Adam lr 3e-3 "
                "(a quick-scale [decision]; the spec's 1e-4 needs 100 epochs): far from converged, so T_X there "
                "measures the early phase only",
    profiles={
        "quick": {"n_train": 128, "n_val": 32, "n_test": 64, "size": 32, "K": 5, "generator": "circle",
                  "channels": [8, 16], "epochs": 6, "batch_size": 32, "lr": 3e-3, "seeds": [0],
                  "methods": _SCENE_QUICK_METHODS, "mt2o_default": "mt2o_a1", "hv_ids": ["scenes.shapes"],
                  "pmtl_warmup_epochs": 1, "threads": 1},
        "full": {"n_train": 800, "n_val": 100, "n_test": 200, "size": 32, "K": 5, "generator": "circle",
                 "channels": [16, 32, 64], "epochs": 100, "batch_size": 16, "lr": 1e-4, "seeds": [0, 1, 2],
                 "methods": ["ls", "mt2o_a1", "mt2o_a10", "mt2o_a100", "mt2o_elitist", "pmtl", "epo", "mgda_ub"],
                 "mt2o_default": "mt2o_a1", "hv_ids": ["scenes.shapes"], "pmtl_warmup_epochs": 2},
    },
    run_seed=run_scenes_seed, aggregate=aggregate_population,
    figures={"fronts": figure_fronts, "hv_curves": figure_hv_curves},
))

_REGRESSION_METHODS = ["ls", "mt2o_a1", "mt2o_a10", "mt2o_a100", "mt2o_elitist", "pmtl", "epo", "mgda_ub"]
register(Experiment(
    name="mt2o.regression", paper="MT2O",
    description="E4 multi-target regression (conventions §8.5, m = 3, ρ = 0.2, d = 21, train-standardised targets): "
                "MLP trunk → width-1 linear bottleneck → 3 linear heads, K = 15 das_dennis H = 4, Adam; LS, MT2O "
                "α ∈ {1, 10, 100} (the transfer-strength ablation) and elitist, Pareto MTL, EPO, MGDA-UB; test HV "
                "(synth.regression, 2 per task) per epoch and second. Quick covers 1 seed, 1,800/200/1,000 samples, "
                "trunk 21-64-64-1, 8 epochs of batch 128, Adam lr 1e-3 (all α valid: α·η0 ≤ 0.1 < 0.177)",
    profiles={
        "quick": {"n_train": 2000, "n_test": 1000, "n_targets": 3, "divisions": 4, "generator": "das_dennis H=4",
                  "K": 15, "hidden": [64, 64], "bottleneck": 1, "epochs": 8, "batch_size": 128, "lr": 1e-3,
                  "seeds": [0], "methods": _REGRESSION_METHODS, "mt2o_default": "mt2o_a1",
                  "hv_ids": ["synth.regression"], "pmtl_warmup_epochs": 1, "threads": 1},
        "full": {"n_train": 8000, "n_test": 2000, "n_targets": 3, "divisions": 4, "generator": "das_dennis H=4",
                 "K": 15, "hidden": [256, 256, 256], "bottleneck": 1, "epochs": 100, "batch_size": 512, "lr": 1e-4,
                 "seeds": [0, 1, 2], "methods": _REGRESSION_METHODS, "mt2o_default": "mt2o_a1",
                 "hv_ids": ["synth.regression"], "pmtl_warmup_epochs": 2},
    },
    run_seed=run_regression_seed, aggregate=aggregate_population,
    figures={"fronts": figure_fronts, "hv_curves": figure_hv_curves},
))


# m = 7 (SARCOS-shaped) regression, spec §4 E4 / §1.1: das_dennis H = 1 with the recorded centroid shrink 0.35 gives
# K = 7 vertex-leaning weights (0.7, 0.05, …, 0.05); width-2 bottleneck [decision] so that 7 targets conflict (a rank-2
# linear read-out keeps ≈ 3.0 of the 7 units of standardised target variance). Quick mirrors mt2o.regression's quick
# (trunk 21-64-64, 8 epochs of batch 128, Adam lr 1e-3) with 2 seeds; all α valid (α·η0 ≤ 0.1 < 1/0.8426 = 1.187).
_REGRESSION7_COMMON = {"n_targets": 7, "divisions": 1, "shrink": 0.35, "generator": "das_dennis H=1, shrink 0.35",
                       "K": 7, "bottleneck": 2, "methods": _REGRESSION_METHODS, "mt2o_default": "mt2o_a1",
                       "hv_ids": ["synth.regression"]}
register(Experiment(
    name="mt2o.regression7", paper="MT2O",
    description="E4 multi-target regression with m = 7 (the SARCOS stand-in; conventions §8.5, ρ = 0.2, d = 21, "
                "train-standardised targets): MLP trunk → width-2 linear bottleneck → 7 linear heads, K = 7 das_dennis "
                "H = 1 with centroid shrink 0.35, Adam; LS, MT2O α ∈ {1, 10, 100} and elitist, Pareto MTL, EPO, "
                "MGDA-UB; test HV (synth.regression, 2 per task, in 7-D) per epoch and second. Quick covers 2 seeds, "
                "1,800/200/1,000 samples, trunk 21-64-64-2, 8 epochs of batch 128, Adam lr 1e-3: far from converged "
                "(early phase only)",
    profiles={
        "quick": {**_REGRESSION7_COMMON, "n_train": 2000, "n_test": 1000, "hidden": [64, 64], "epochs": 8,
                  "batch_size": 128, "lr": 1e-3, "seeds": [0, 1], "pmtl_warmup_epochs": 1, "threads": 1},
        "full": {**_REGRESSION7_COMMON, "n_train": 8000, "n_test": 2000, "hidden": [256, 256, 256], "epochs": 100,
                 "batch_size": 512, "lr": 1e-4, "seeds": [0, 1, 2], "pmtl_warmup_epochs": 2},
    },
    run_seed=run_regression_seed, aggregate=aggregate_population,
    figures={"fronts": figure_parallel, "hv_curves": figure_hv_curves},
))

# Optional 3-task scene variant (spec §4 E2): + surface normals (cosine loss), K = 15 das_dennis H = 4, HV on
# scenes.shapes with the normals' trivial loss (normalised mean normal) as the third coordinate. Quick: 16×16
# images and 64 training images so that 15 loop-path SegNets × 5 methods fit in well under a minute on 1 thread; α = 100
# is left out of quick (α·η0 = 0.3 > the das_dennis H = 4 bound 0.177).
_SCENES3_COMMON = {"tasks": list(SCENE_TASKS_3), "K": 15, "generator": "das_dennis H=4", "divisions": 4,
                   "mt2o_default": "mt2o_a1", "hv_ids": ["scenes.shapes"]}
register(Experiment(
    name="mt2o.scenes3", paper="MT2O",
    description="E2 optional 3-task scene variant: procedural scenes, segmentation CE + L1 on train-standardised "
                "depth + normals cosine loss, GroupNorm SegNet, K = 15 das_dennis H = 4, Adam; LS, MT2O α 1 "
                "(+ α 10, 100 and elitist in full), Pareto MTL, EPO, MGDA-UB; test HV (scenes.shapes, 2 × trivial "
                "loss per task, normals included) per epoch and per training second. Quick covers 1 seed, 64/16/64 "
                "images of 16×16, SegNet channels (8, 16), 6 epochs of batch 32, Adam lr 3e-3 (as mt2o.scenes' quick): "
                "far from converged, early phase only",
    profiles={
        "quick": {**_SCENES3_COMMON, "n_train": 64, "n_val": 16, "n_test": 64, "size": 16, "channels": [8, 16],
                  "epochs": 6, "batch_size": 32, "lr": 3e-3, "seeds": [0],
                  "methods": ["ls", "mt2o_a1", "pmtl", "epo", "mgda_ub"], "pmtl_warmup_epochs": 1, "threads": 1},
        "full": {**_SCENES3_COMMON, "n_train": 800, "n_val": 100, "n_test": 200, "size": 32,
                 "channels": [16, 32, 64], "epochs": 100, "batch_size": 16, "lr": 1e-4, "seeds": [0, 1, 2],
                 "methods": ["ls", "mt2o_a1", "mt2o_a10", "mt2o_a100", "mt2o_elitist", "pmtl", "epo", "mgda_ub"],
                 "pmtl_warmup_epochs": 2},
    },
    run_seed=run_scenes_seed, aggregate=aggregate_population,
    figures={"fronts": figure_fronts, "hv_curves": figure_hv_curves},
))

# ---------------------------------------------------------------------------------------------- claims
def _vals(r: dict[str, Any], method: str, key: str) -> list[float]:
    return [s["methods"][method][key] for s in r["per_seed"]]


def _check_transfer_vs_ls(r: dict[str, Any]) -> ClaimOutcome:
    hv_id = r["config"]["hv_ids"][0]
    auc = r["aggregate"]["hv_auc"][hv_id]
    m = r["config"]["mt2o_default"]
    diff = [a - b for a, b in zip(auc[m], auc["ls"])]
    sp = r["aggregate"]["speed"][hv_id]
    holds = all(d > 0 for d in diff)
    return ClaimOutcome(holds, f"mean-HV-over-epochs {m} − LS per seed {['%.4f' % d for d in diff]}; "
                               f"T95 speed-up vs LS {sp['speedup_vs_ls_epochs']} (epochs)",
                        {"diff": diff, "speedup_epochs": sp["speedup_vs_ls_epochs"],
                         "speedup_seconds": sp["speedup_vs_ls_seconds"]})


def _check_vs_next_best(r: dict[str, Any]) -> ClaimOutcome:
    hv_id = r["config"]["hv_ids"][0]
    sp = r["aggregate"]["speed"][hv_id]
    se, ss = sp["speedup_vs_next_best_epochs"], sp["speedup_vs_next_best_seconds"]
    holds = se is not None and ss is not None and se >= 1.8 and ss >= 1.8
    verdict = "reproduced" if holds else ("partial" if (se or 0) >= 1.2 and (ss or 0) >= 1.2 else "not reproduced")
    per = sp.get("speedup_vs_next_best_epochs_per_seed")
    seeds = "" if per is None else f" (epochs per seed {[round(x, 2) for x in per]}; ∞ only MT2O, 0 only the baseline, " \
                                   f"1 neither reached)"
    return ClaimOutcome(holds, f"T95 speed-up vs next best ({sp['next_best']}): "
                               f"{None if se is None else round(se, 2)} epochs, "
                               f"{None if ss is None else round(ss, 2)} s — {verdict}{seeds}",
                        {"epochs": se, "seconds": ss, "next_best": sp["next_best"], "verdict": verdict})


def _check_final_hv(r: dict[str, Any]) -> ClaimOutcome:
    hv_id = r["config"]["hv_ids"][0]
    sp = r["aggregate"]["speed"][hv_id]
    m = r["config"]["mt2o_default"]
    rows = sp["rows"]
    best_b = max(BASELINES, key=lambda b: rows[b]["final_hv"] if b in rows else -1)
    mt = _vals(r, m, "final_hv")
    se = float(np.std([x[hv_id] for x in mt], ddof=1) / math.sqrt(len(mt))) if len(mt) > 1 else 0.0
    holds = rows[m]["final_hv"] >= rows[best_b]["final_hv"] - se
    return ClaimOutcome(holds, f"final HV {m} {rows[m]['final_hv']:.4f} vs best baseline {best_b} "
                               f"{rows[best_b]['final_hv']:.4f} (margin 1 s.e. = {se:.4f})",
                        {"mt2o": rows[m]["final_hv"], "best_baseline": best_b, "baseline": rows[best_b]["final_hv"]})


def _check_vlmop2(r: dict[str, Any]) -> ClaimOutcome:
    mean = {m: float(np.mean(_vals(r, m, "hv"))) for m in r["per_seed"][0]["methods"]}
    interior = {m: float(np.mean(_vals(r, m, "n_interior"))) for m in mean}
    gap = float(np.mean(_vals(r, "mt2o_linear_a0.1", "max_gap")))
    holds = (mean["ls"] < 0.27 and mean["stch"] > 0.47 and gap > 0.05
             and all(interior[m] >= 3 for m in ("stch", "tcheby", "pmtl", "epo")))
    return ClaimOutcome(holds, "HV " + ", ".join(f"{m} {v:.3f}" for m, v in mean.items())
                        + "; on-front interior points " + ", ".join(f"{m} {v:.1f}" for m, v in interior.items()),
                        {"hv": mean, "interior": interior})


register_claim(Claim(
    id="mt2o.transfer-faster-than-no-transfer", paper="MT2O", paper_figure="abstract; Thm (faster convergence)",
    experiment="mt2o.digits",
    statement="Parameter transfer among subproblems speeds up HV convergence compared with no transfer (LS)",
    check=_check_transfer_vs_ls, expect_holds=False))  # quick run: transfer lowers HV (Prop. B bias); see report
register_claim(Claim(
    id="mt2o.about-2x-faster-than-next-best", paper="MT2O", paper_figure="abstract (NYUv2 HV convergence)",
    experiment="mt2o.digits",
    statement="HV converges about 2× faster than the next-best method (T_95, per epoch and per second)",
    check=_check_vs_next_best, expect_holds=False))
register_claim(Claim(
    id="mt2o.final-hv-not-below-best-baseline", paper="MT2O", paper_figure="abstract",
    experiment="mt2o.digits",
    statement="MT2O's final HV is not below the best baseline's (within one standard error)",
    check=_check_final_hv, expect_holds=False))
register_claim(Claim(
    id="mt2o.vlmop2-ls-misses-concave-interior", paper="MT2O", paper_figure="spec §4 E3 (PMTL toy)",
    experiment="mt2o.vlmop2",
    statement="On a concave front LS finds only the end points; Tchebycheff, STCH, PMTL and EPO reach the interior",
    check=_check_vlmop2, expect_holds=True, expect_holds_full=True))

# Scene proxy of the NYUv2 headline (spec §4 E2). Quick run (seed 0, 6 epochs, Adam lr 3e-3, α·η0 = 3e-3 at the
# spec's default α = 1): mean test HV over epochs 1–6 is 1.3441 for MT2O α 1 vs 1.3497 for LS (−0.0056), final HV
# 1.7614 vs 1.7702; both first reach 95 % of HV* (= LS's 1.7702) at epoch 6, so T95 speed-up = 1.00× in epochs
# (≈ 1× in seconds, noisy); strong transfer (α 100) collapses the population (pairwise distance 0.20 vs 7.10) and
# ends at HV 1.3725. The next-best baseline is LS itself (PMTL 1.7132, MGDA-UB 1.7214, EPO 1.5850).
register_claim(Claim(
    id="mt2o.scenes-transfer-faster-than-no-transfer", paper="MT2O",
    paper_figure="abstract; Thm (faster convergence)", experiment="mt2o.scenes",
    statement="Parameter transfer among subproblems speeds up HV convergence compared with no transfer (LS), "
              "on the scene proxy (seg + depth)",
    check=_check_transfer_vs_ls, expect_holds=False))
register_claim(Claim(
    id="mt2o.scenes-about-2x-faster-than-next-best", paper="MT2O", paper_figure="abstract (NYUv2 HV convergence)",
    experiment="mt2o.scenes",
    statement="On scene understanding (our procedural seg + depth proxy for NYUv2) HV converges about 2× faster "
              "than the next-best method (T_95, per epoch and per second)",
    check=_check_vs_next_best, expect_holds=False))
# Multi-target regression (spec §4 E4). Quick run (seed 0, 8 epochs, K = 15): mean test HV over epochs 1–8 is
# 2.5718 for MT2O α 1 vs 2.5555 for LS (+0.0163, one seed only); MT2O α 1 reaches 95 % of HV* (EPO's 3.2563) at
# epoch 6 while LS (final 3.0075) never does. Next-best baseline EPO reaches it at epoch 7: speed-up 1.17× in epochs
# (< 1.2, "not reproduced"; seconds favour MT2O, ≈ 8×, because EPO needs per-task gradients and one LP per model).
# α ≥ 10 collapses the population (final HV 1.10 / 1.22).
register_claim(Claim(
    id="mt2o.regression-transfer-faster-than-no-transfer", paper="MT2O",
    paper_figure="abstract; Thm (faster convergence)", experiment="mt2o.regression",
    statement="Parameter transfer among subproblems speeds up HV convergence compared with no transfer (LS), "
              "on multi-target regression",
    check=_check_transfer_vs_ls, expect_holds=True, expect_holds_full=True))
register_claim(Claim(
    id="mt2o.regression-about-2x-faster-than-next-best", paper="MT2O", paper_figure="abstract (NYUv2 HV convergence)",
    experiment="mt2o.regression",
    statement="On multi-target regression HV converges about 2× faster than the next-best method "
              "(T_95, per epoch and per second)",
    check=_check_vs_next_best, expect_holds=False, expect_holds_full=False))


# m = 7 regression and 3-task scenes: the two MT2O claims that apply to them (transfer vs no transfer; final HV vs
# the best baseline). The "≈ 2× faster than the next best" claim is registered on mt2o.digits/scenes/regression only.
# Quick runs (1 thread). mt2o.regression7 (seeds 0, 1, 8 epochs, K = 7): mean test HV over epochs 1–8 is higher for
# MT2O α 1 than for LS on both seeds (+0.2673, +0.1371; 3.3079 vs 3.1057 averaged), so transfer is faster than no
# transfer; but the final HV of MT2O α 1 (6.3593 ± 0.7321) is far below MGDA-UB's 10.0444 (PMTL 7.6994, LS 5.9152,
# EPO 3.2029; the elitist rule, not the default, reaches 9.3792). No method reaches 95 % of HV* in 8 epochs. With
# Adam lr 3e-3 instead of the sibling's 1e-3 (a probe, not registered) MT2O α 1 ended above every baseline (mean 21.08
# vs LS 17.98, MGDA-UB 16.41): at this scale the final-HV verdict depends on the learning rate.
# mt2o.scenes3 (seed 0, 6 epochs, K = 15): mean test HV over epochs 1–6 is 0.4577 for MT2O α 1 vs 0.4563 for LS
# (+0.0014: a tie, per-epoch differences range −0.006…+0.007; with 96 instead of 64 training images it was −0.0068);
# final HV 0.6530 vs LS 0.6517 and MGDA-UB 0.7324 (PMTL 0.5428, EPO 0.4918); only MGDA-UB reaches 95 % of HV*.
register_claim(Claim(
    id="mt2o.regression7-transfer-faster-than-no-transfer", paper="MT2O",
    paper_figure="abstract; Thm (faster convergence)", experiment="mt2o.regression7",
    statement="Parameter transfer among subproblems speeds up HV convergence compared with no transfer (LS), "
              "on 7-target regression (SARCOS stand-in)",
    check=_check_transfer_vs_ls, expect_holds=True))
register_claim(Claim(
    id="mt2o.regression7-final-hv-not-below-best-baseline", paper="MT2O", paper_figure="abstract",
    experiment="mt2o.regression7",
    statement="On 7-target regression MT2O's final HV is not below the best baseline's (within one standard error)",
    check=_check_final_hv, expect_holds=False))
register_claim(Claim(
    id="mt2o.scenes3-transfer-faster-than-no-transfer", paper="MT2O",
    paper_figure="abstract; Thm (faster convergence)", experiment="mt2o.scenes3",
    statement="Parameter transfer among subproblems speeds up HV convergence compared with no transfer (LS), "
              "on the 3-task scene proxy (seg + depth + normals)",
    check=_check_transfer_vs_ls, expect_holds=True))
register_claim(Claim(
    id="mt2o.scenes3-final-hv-not-below-best-baseline", paper="MT2O", paper_figure="abstract",
    experiment="mt2o.scenes3",
    statement="On the 3-task scene proxy MT2O's final HV is not below the best baseline's (within one standard error)",
    check=_check_final_hv, expect_holds=False))
