r"""MT2O's population trainer: K scalarised subproblems trained together with parameter transfer.

Bai, Gupta & Ong, "Multi-Task Learning with Multi-Task Optimization", arXiv 2403.16162 (labelled
"MT2O (reconstruction)": only the abstract is available; see ``specs/mt2o.md`` §0). Per step [predecessor:
Bai et al., Memetic Computing 2020, MSGD semantics]:

.. math::
   \theta_k^{t+1} = \sum_j M^t_{kj}\theta_j^t - \eta_t\, d_k^t,\qquad d_k^t = \mathrm{opt}(\nabla g_k(\theta_k^t)),

i.e. the gradient is taken at the **un-mixed** point, the parameter *values* are mixed under ``no_grad`` from one
snapshot, then the stock optimiser steps from the mixed point with its own per-model state (never mixed
[decision]); weight decay therefore acts on the mixed values [decision]. Rules with ``timing == "epoch"``
(elitist, validation losses) are applied between epochs, so the next gradient is taken at the transferred point.

The baselines (LS, Pareto MTL, EPO, MGDA-UB) run in the same trainer as :class:`DirectionRule`s with
:class:`~methods.mt2o.transfer.Identity` transfer, so data order, inits, evaluation and timing are shared.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from .directions import DirectionRule, Scalarized
from .population import LossFn, Population
from .scalarize import Linear, Scalarization
from .transfer import Identity, TransferRule

__all__ = ["EpochRecord", "History", "MT2OTrainer", "time_to_fraction"]

Batches = Iterable[tuple[Tensor, Any]]
EvalFn = Callable[[Population], dict[str, Tensor]]       # population -> {"val": L[K,m], "test": L[K,m], ...}
HVFn = Callable[[Tensor], dict[str, float]]               # L[K,m] -> {ref_id: hv}


@dataclass
class EpochRecord:
    """One epoch: cumulative training-only seconds, loss matrices, HV per id and split, diagnostics.

    ``seconds`` is wall-clock time (``time.perf_counter``); ``cpu_seconds`` is this process's CPU time over the same
    spans (``time.process_time``), which does not grow while the process is paused or waiting for a core that
    another job holds. On a single-threaded CPU run the two agree on an idle machine; on a GPU only ``seconds``
    measures the work.
    """

    epoch: int
    seconds: float
    losses: dict[str, list[list[float]]]
    hv: dict[str, dict[str, float]]
    offdiag_mass: float
    pairwise_distance: float
    extra: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0


@dataclass
class History:
    """JSON-able per-epoch log (``records``) plus the run's settings (``meta``)."""

    records: list[EpochRecord] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "records": [asdict(r) for r in self.records]}

    def curve(self, split: str, ref_id: str) -> tuple[list[int], list[float], list[float]]:
        """(epochs, seconds, HV) for one split and reference id."""
        rs = [r for r in self.records if split in r.hv and ref_id in r.hv[split]]
        return [r.epoch for r in rs], [r.seconds for r in rs], [r.hv[split][ref_id] for r in rs]


def time_to_fraction(epochs: list[int], seconds: list[float], hv: list[float], target: float
                     ) -> tuple[int, float] | None:
    """First (epoch, training-second) at which ``hv ≥ target`` (e.g. 0.95·HV*); ``None`` if never reached."""
    for e, s, h in zip(epochs, seconds, hv):
        if h >= target:
            return e, s
    return None


class MT2OTrainer:
    """Train a :class:`Population` on K subproblems (see module docstring).

    :param population: the K stacked models.
    :param weights: ``(K, m)`` weight vectors on the simplex (a larger w_i favours task i).
    :param direction: a :class:`DirectionRule` (default :class:`Scalarized` with ``scalarization``).
    :param scalarization: s for the subproblems and the elitist rule (default :class:`Linear`).
    :param rule: transfer rule (default :class:`Identity`; MT2O uses :class:`FixedSimilarity`).
    :param opt_factory: ``(params) -> Optimizer``; must be elementwise (no global-norm optimisers or clipping).
    :param sched_factory: ``(optimizer) -> scheduler`` stepped once per epoch, or ``None``.
    :param transfer_params: ``"all"`` (parameters + float buffers), ``"trunk"`` (shared parameters only) or a
        name filter.
    :param loss_fn: ``(outputs of one model, target) -> Tensor[m]``.

    >>> import torch
    >>> from torch import nn
    >>> from methods.mt2o import MT2OTrainer, Population
    >>> class Two(nn.Module):   # a two-task model: forward returns one output per task
    ...     def __init__(self): super().__init__(); self.lin = nn.Linear(3, 2)
    ...     def forward(self, x): return list(self.lin(x).unbind(1))
    >>> pop = Population(Two, 2); before = pop.stacked()["lin.weight"].clone()
    >>> mse = lambda outs, t: torch.stack([((o - t[:, i]) ** 2).mean() for i, o in enumerate(outs)])
    >>> tr = MT2OTrainer(pop, torch.eye(2), loss_fn=mse, opt_factory=lambda p: torch.optim.SGD(p, lr=0.1))
    >>> losses = tr.train_step(torch.randn(8, 3), torch.randn(8, 2))   # (K, m) = (2, 2) losses
    >>> changed = (pop.stacked()["lin.weight"] != before).any(dim=2)   # model k has weights w_k = e_k
    >>> tuple(losses.shape), changed.tolist()   # so model k only moves task k's output row
    ((2, 2), [[True, False], [False, True]])
    """

    def __init__(self, population: Population, weights: Tensor, *, loss_fn: LossFn,
                 opt_factory: Callable[[list[Tensor]], torch.optim.Optimizer],
                 direction: DirectionRule | None = None, scalarization: Scalarization | None = None,
                 rule: TransferRule | None = None,
                 sched_factory: Callable[[torch.optim.Optimizer], Any] | None = None,
                 transfer_params: Literal["all", "trunk"] | Callable[[str], bool] = "all") -> None:
        if weights.ndim != 2 or weights.shape[0] != population.n_models:
            raise ValueError(f"Parameter `weights` should be (K = {population.n_models}, m). "
                             f"Found shape {tuple(weights.shape)}.")
        if bool((weights < 0).any()) or not torch.allclose(weights.sum(1), torch.ones_like(weights[:, 0]),
                                                           atol=1e-6):
            raise ValueError(f"Parameter `weights` should have rows on the simplex. Found {weights.tolist()}.")
        if transfer_params not in ("all", "trunk") and not callable(transfer_params):
            raise ValueError(f"Parameter `transfer_params` should be 'all', 'trunk' or a callable. "
                             f"Found {transfer_params!r}.")
        self.pop = population
        first = population.parameters()[0]
        self.weights = weights.to(device=first.device, dtype=first.dtype)
        self.scalarization = scalarization if scalarization is not None else Linear()
        self.direction = direction if direction is not None else Scalarized(self.scalarization)
        self.rule = rule if rule is not None else Identity()
        self.loss_fn = loss_fn
        self.opt = opt_factory(population.parameters())
        self.sched = sched_factory(self.opt) if sched_factory is not None else None
        self.lr0 = float(self.opt.param_groups[0]["lr"])
        self.names: Callable[[str], bool] | None
        if transfer_params == "all":
            self.names = None
        elif transfer_params == "trunk":
            shared = set(population.shared_names)
            self.names = shared.__contains__
        else:
            self.names = transfer_params  # type: ignore[assignment]
        self.step_count = 0
        self.step_times: list[float] = []
        self._offdiag: list[float] = []

    def _mix(self, m: Tensor) -> None:
        k = m.shape[0]
        self._offdiag.append(float((m.sum() - m.diagonal().sum()) / k))
        self.pop.mix(m, self.names)

    def train_step(self, x: Tensor, target: Any, *, epoch: int = 0, progress: float = 0.0) -> Tensor:
        """One optimiser step of all K models on one batch; returns the detached ``[K, m]`` batch losses."""
        self.pop.train()
        self.opt.zero_grad(set_to_none=True)
        losses = self.direction.backward(self.pop, x, target, self.loss_fn, self.weights, step=self.step_count)
        if self.rule.timing == "step" and self.rule.due(self.step_count, epoch):
            m = self.rule.matrix(self.weights, losses, lr=float(self.opt.param_groups[0]["lr"]), lr0=self.lr0,
                                 progress=progress, scalarization=self.scalarization)
            self._mix(m)
        self.opt.step()
        self.step_count += 1
        return losses

    def epoch_transfer(self, epoch: int, val_losses: Tensor) -> None:
        """Apply an epoch-level rule (elitist on validation losses), between optimiser steps."""
        if self.rule.timing == "epoch" and self.rule.due(self.step_count, epoch):
            m = self.rule.matrix(self.weights, val_losses.to(self.weights), lr=float(self.opt.param_groups[0]["lr"]),
                                 lr0=self.lr0, scalarization=self.scalarization)
            self._mix(m)

    def fit(self, batches: Callable[[int], Batches], epochs: int, *, evaluate: EvalFn,
            hv: HVFn | None = None, sync: Callable[[], None] | None = None,
            progress_bar: bool = False) -> History:
        """Train for ``epochs`` epochs; evaluate after every epoch (and before the first, epoch 0).

        :param batches: ``epoch -> iterable of (x, target)``, the same batches for all K models.
        :param evaluate: ``population -> {split: L[K, m]}`` (e.g. ``"val"``, ``"test"``); ``"val"`` feeds the
            elitist rule.
        :param hv: ``L[K, m] -> {ref_id: HV}`` (from ``paper_repro.metrics``; the library imports no registry).
        :param sync: called before reading the clock (e.g. ``torch.cuda.synchronize``).
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"Parameter `epochs` should be a non-negative integer. Found `epochs = {epochs!r}`.")
        hist = History(meta={"direction": repr(self.direction), "rule": repr(self.rule),
                             "scalarization": repr(self.scalarization), "K": self.pop.n_models,
                             "weights": self.weights.tolist(), "lr0": self.lr0})
        seconds = cpu_seconds = 0.0
        self._record(hist, 0, seconds, cpu_seconds, evaluate, hv)
        it = range(1, epochs + 1)
        if progress_bar:
            from tqdm.auto import tqdm
            it = tqdm(it, desc="MT2O", leave=False)
        for epoch in it:
            self._offdiag = []
            start, cpu_start = time.perf_counter(), time.process_time()
            batch_list = batches(epoch)
            n_batches = len(batch_list) if hasattr(batch_list, "__len__") else None  # type: ignore[arg-type]
            for b, (x, target) in enumerate(batch_list):
                t0 = time.perf_counter()
                frac = (epoch - 1 + (b / n_batches if n_batches else 0.0)) / max(epochs, 1)
                self.train_step(x, target, epoch=epoch - 1, progress=frac)
                if sync is not None:
                    sync()
                self.step_times.append(time.perf_counter() - t0)
            if self.sched is not None:
                self.sched.step()
            if sync is not None:
                sync()
            seconds += time.perf_counter() - start
            cpu_seconds += time.process_time() - cpu_start
            evals = self._record(hist, epoch, seconds, cpu_seconds, evaluate, hv)
            if self.rule.timing == "epoch" and "val" in evals:
                self.epoch_transfer(epoch - 1, evals["val"])
        return hist

    @torch.no_grad()
    def _record(self, hist: History, epoch: int, seconds: float, cpu_seconds: float, evaluate: EvalFn,
                hv: HVFn | None) -> dict[str, Tensor]:
        self.pop.eval()
        evals = evaluate(self.pop)
        self.pop.train()
        rec = EpochRecord(
            epoch=epoch, seconds=seconds, cpu_seconds=cpu_seconds,
            losses={s: v.detach().double().cpu().tolist() for s, v in evals.items()},
            hv={s: (hv(v.detach()) if hv is not None else {}) for s, v in evals.items()},
            offdiag_mass=float(sum(self._offdiag) / len(self._offdiag)) if self._offdiag else 0.0,
            pairwise_distance=self.pop.mean_pairwise_distance(),
        )
        if any(not math.isfinite(float(x)) for v in evals.values() for x in v.reshape(-1)):
            rec.extra["non_finite"] = True
        hist.records.append(rec)
        return evals

    def __repr__(self) -> str:
        return f"MT2OTrainer(K={self.pop.n_models}, direction={self.direction!r}, rule={self.rule!r})"
