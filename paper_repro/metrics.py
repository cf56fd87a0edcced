"""Evaluation metrics (``specs/conventions.md``: §1 Δm%, §3 mean rank, §4 mean ± s.e., §5 hypervolume).

Inputs are numpy arrays or tensors on any device; dense metrics compute in torch (float64) where the tensors
live, the others in numpy float64. Every function returns plain Python floats (JSON-able) or small dataclasses.

Valid-pixel rules follow the MTAN / Nash-MTL NYUv2 code: depth and normal pixels whose target is all zero over
the channel axis are invalid (or pass ``mask``); segmentation pixels equal to ``ignore_index`` (-1) are ignored.
Unlike Nash-MTL's per-batch averaging, dense errors here are pooled over every valid pixel given.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import moocore
import numpy as np
import torch
from torch import Tensor

from .hv_refs import get_entry
from .models.losses import valid_mask

__all__ = [
    "auc", "logloss", "accuracy", "confusion_matrix", "segmentation_scores", "segmentation_metrics",
    "depth_errors", "normal_errors", "DeltaM", "delta_m", "DELTA_M_LABELS", "mean_rank", "mean_se",
    "HVResult", "hypervolume",
]

_log = logging.getLogger(__name__)
ArrayLike = Any  # numpy array, tensor (any device), or nested sequence of numbers


def _np(x: ArrayLike) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """1-based ascending ranks of a 1-D array, ties sharing the average of the ranks they span."""
    uniq, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def _binary_inputs(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s, y = _np(scores).ravel(), _np(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"Parameter `labels` should have the shape of `scores` {s.shape}. "
                         f"Found `labels.shape = {y.shape}`.")
    if not np.all(np.isfinite(s)):
        raise ValueError("Parameter `scores` should be finite. Found NaN or inf.")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"Parameter `labels` should hold only 0 and 1. Found `labels` values {np.unique(y)[:5]}.")
    return s, y


def auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """ROC AUC by the rank (Mann–Whitney) formula, ties counted one half.

    ``AUC = (Σ_{i: y_i=1} r_i − n₊(n₊+1)/2) / (n₊·n₋)`` with ``r_i`` the average ascending rank of score i.
    Shapes: ``scores``, ``labels`` ``(N,)`` (any shape, flattened); equals ``sklearn.metrics.roc_auc_score``.
    """
    s, y = _binary_inputs(scores, labels)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"Parameter `labels` should contain both classes. "
                         f"Found {n_pos} positives and {n_neg} negatives.")
    r = _average_ranks(s)
    return float((r[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def logloss(scores: ArrayLike, labels: ArrayLike, *, from_logits: bool = True) -> float:
    """Mean binary cross-entropy ``−(1/N)·Σ [y log p + (1−y) log(1−p)]``.

    With ``from_logits`` the scores are logits s and the loss is computed stably as ``log(1 + e^s) − y·s``;
    otherwise they are probabilities, clipped to ``[ε, 1 − ε]`` with ε the float64 machine epsilon (as
    ``sklearn.metrics.log_loss``).
    """
    s, y = _binary_inputs(scores, labels)
    if from_logits:
        return float(np.mean(np.logaddexp(0.0, s) - y * s))
    eps = np.finfo(np.float64).eps
    p = np.clip(s, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def _as_labels(pred: ArrayLike, target: ArrayLike) -> tuple[Tensor, Tensor]:
    """Integer predictions and targets; ``pred`` with one more axis than ``target`` is argmaxed on axis 1."""
    p, t = torch.as_tensor(pred), torch.as_tensor(target)
    if p.ndim == t.ndim + 1:
        p = p.argmax(dim=1)
    if p.shape != t.shape:
        raise ValueError(f"Parameter `pred` should have the shape of `target` {tuple(t.shape)} (or one more class "
                         f"axis at 1). Found `pred.shape = {tuple(torch.as_tensor(pred).shape)}`.")
    return p.long(), t.to(p.device).long()


def accuracy(pred: ArrayLike, target: ArrayLike) -> float:
    """Fraction of correct labels ``(1/N)·Σ 1[ŷ_i = y_i]``; ``pred`` logits ``(N, C)`` or labels ``(N,)``."""
    p, t = _as_labels(pred, target)
    if t.numel() == 0:
        raise ValueError("Parameter `target` should be non-empty. Found 0 elements.")
    return float((p == t).double().mean())


def confusion_matrix(pred: ArrayLike, target: ArrayLike, n_classes: int, *, ignore_index: int = -1) -> Tensor:
    """Confusion counts ``cm[i, j]`` = #pixels of true class i predicted j, int64 ``(C, C)``, ignored pixels dropped.

    ``pred``: logits ``(N, C, H, W)`` or labels ``(N, H, W)``; ``target`` ``(N, H, W)`` in ``[0, C) ∪ {ignore}``.
    Sum the matrices of several batches to evaluate a whole split.
    """
    p, t = _as_labels(pred, target)
    keep = t != ignore_index
    p, t = p[keep], t[keep]
    if t.numel() and (t.min() < 0 or t.max() >= n_classes or p.min() < 0 or p.max() >= n_classes):
        raise ValueError(f"Parameter `target` should hold classes in [0, {n_classes}) or {ignore_index}. "
                         f"Found values in [{int(t.min())}, {int(t.max())}] (pred [{int(p.min())}, {int(p.max())}]).")
    return torch.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def segmentation_scores(cm: ArrayLike) -> dict[str, float]:
    """mIoU and pixel accuracy from a confusion matrix (fractions in [0, 1], ``conventions.md`` §2).

    ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``; ``mIoU`` averages over the classes with a non-empty union
    (classes absent from both target and prediction are skipped); ``pixel_accuracy = Σ_c TP_c / Σ cm``.
    """
    m = torch.as_tensor(cm).double()
    tp = m.diagonal()
    union = m.sum(0) + m.sum(1) - tp
    total = m.sum()
    if total == 0:
        raise ValueError("Parameter `cm` should count at least one valid pixel. Found an all-zero matrix.")
    present = union > 0
    return {"miou": float((tp[present] / union[present]).mean()), "pixel_accuracy": float(tp.sum() / total)}


def segmentation_metrics(pred: ArrayLike, target: ArrayLike, n_classes: int, *,
                         ignore_index: int = -1) -> dict[str, float]:
    """``segmentation_scores(confusion_matrix(pred, target, n_classes, ignore_index=ignore_index))``."""
    return segmentation_scores(confusion_matrix(pred, target, n_classes, ignore_index=ignore_index))


def _dense(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None) -> tuple[Tensor, Tensor, Tensor]:
    t = torch.as_tensor(target).double()
    p = torch.as_tensor(pred).to(device=t.device, dtype=torch.float64)
    if p.shape != t.shape or p.ndim != 4:
        raise ValueError(f"Parameter `pred` should be (N, C, H, W) like `target` {tuple(t.shape)}. "
                         f"Found `pred.shape = {tuple(p.shape)}`.")
    valid = valid_mask(t, None if mask is None else torch.as_tensor(mask, device=t.device))
    if not valid.any():
        raise ValueError("Parameter `target` should have at least one valid pixel. Found none.")
    return p, t, valid


def depth_errors(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> dict[str, float]:
    """Depth errors over valid pixels V, pred and target ``(N, 1, H, W)``, mask ``(N, H, W)``:

    ``abs_err = mean_V |d̂ − d|``, ``rel_err = mean_V |d̂ − d| / d``, ``rmse = sqrt(mean_V (d̂ − d)²)``.
    """
    p, t, valid = _dense(pred, target, mask)
    d, g = p[:, 0][valid], t[:, 0][valid]
    err = (d - g).abs()
    return {"abs_err": float(err.mean()), "rel_err": float((err / g.abs()).mean()),
            "rmse": float(err.square().mean().sqrt())}


def normal_errors(pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None = None) -> dict[str, float]:
    """Angular errors of surface normals over valid pixels, in degrees; pred and unit target ``(N, 3, H, W)``.

    ``θ_p = (180/π)·acos(clip(⟨n̂_p/‖n̂_p‖, n_p⟩, −1, 1))``; returns ``mean``, ``median`` (numpy median) and the
    fractions ``within_11.25``, ``within_22.5``, ``within_30`` of pixels with ``θ_p < threshold`` (in [0, 1]).
    """
    p, t, valid = _dense(pred, target, mask)
    cos = (torch.nn.functional.normalize(p, dim=1) * t).sum(dim=1)[valid].clamp(-1.0, 1.0)
    theta = torch.rad2deg(torch.acos(cos))
    out = {"mean": float(theta.mean()), "median": float(np.median(theta.cpu().numpy()))}
    for thr in (11.25, 22.5, 30.0):
        out[f"within_{thr:g}"] = float((theta < thr).double().mean())
    return out


DELTA_M_LABELS = {"A": "Δ_MTL% ↑ (A)", "B": "Δm% ↓ (B)", "C": "Δp% ↑ (C, LibMTL)"}


@dataclass(frozen=True)
class DeltaM:
    """A labelled relative multi-task performance: ``value`` (%) under ``convention`` (``label`` says which).

    ``per_metric`` and ``per_task`` are the signed relative changes (%) under the same sign as ``value``
    (published next to any aggregate, ``conventions.md`` §1).
    """

    value: float
    convention: Literal["A", "B", "C"]
    label: str
    per_metric: tuple[float, ...]
    per_task: dict[str, float] = field(default_factory=dict)

    def __float__(self) -> float:
        return self.value

    def __str__(self) -> str:
        return f"{self.label} = {self.value:+.2f}"


def delta_m(values: Sequence[float], baseline: Sequence[float], directions: Sequence[str], *,
            average: Literal["metrics", "tasks"] = "metrics",
            sign: Literal["lower_is_better", "higher_is_better"] = "lower_is_better",
            tasks: Sequence[str] | None = None) -> DeltaM:
    """Relative multi-task performance against a baseline, ``conventions.md`` §1 (one function, three conventions).

    With ``r_k = (M_m,k − M_b,k)/M_b,k`` and ``s_k = +1`` for a ``"max"`` metric, ``−1`` for ``"min"``:

    - **B** (``average="metrics"``, ``sign="lower_is_better"``, the default): ``Δm% = −(100/K)·Σ_k s_k r_k``
      over all K metrics (CAGrad, Nash-MTL, FAMO); ↓, negative = better than the baseline.
    - **C** (``average="tasks"``, ``sign="higher_is_better"``): ``Δp = (100/T)·Σ_t (1/M_t)·Σ_{m∈t} s_m r_m``
      (LibMTL ``count_improvement``); ↑.
    - **A** (``sign="higher_is_better"`` with one metric per task): ``Δ_MTL = (100/T)·Σ_t s_t r_t`` (Maninis et
      al.); ↑. Here ``average`` makes no difference.

    ``tasks`` names the task of each metric (``None``: every metric is its own task). With one metric per task,
    ``"lower_is_better"`` is B whatever ``average``. Combinations that match no convention (``"tasks"`` with
    ``"lower_is_better"``, or ``"metrics"`` with ``"higher_is_better"``, when some task has several metrics)
    raise ``ValueError``, so an unlabelled number cannot be produced.
    """
    v, b = _np(values).ravel(), _np(baseline).ravel()
    dirs = list(directions)
    k = v.size
    if b.size != k or len(dirs) != k or k == 0:
        raise ValueError(f"Parameters `values`, `baseline` and `directions` should have the same non-zero length. "
                         f"Found lengths {k}, {b.size} and {len(dirs)}.")
    if any(d not in ("max", "min") for d in dirs):
        raise ValueError(f"Parameter `directions` should hold only 'max' or 'min'. Found `directions = {dirs}`.")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(b))) or np.any(b == 0):
        raise ValueError(f"Parameters `values` and `baseline` should be finite with a non-zero baseline. "
                         f"Found `values = {v.tolist()}`, `baseline = {b.tolist()}`.")
    if average not in ("metrics", "tasks"):
        raise ValueError(f"Parameter `average` should be 'metrics' or 'tasks'. Found `average = {average!r}`.")
    if sign not in ("lower_is_better", "higher_is_better"):
        raise ValueError(f"Parameter `sign` should be 'lower_is_better' or 'higher_is_better'. "
                         f"Found `sign = {sign!r}`.")
    names = [str(i) for i in range(k)] if tasks is None else [str(t) for t in tasks]
    if len(names) != k:
        raise ValueError(f"Parameter `tasks` should name the task of each of the {k} metrics. Found `tasks = {tasks}`.")
    one_per_task = len(set(names)) == k
    if one_per_task:
        convention: Literal["A", "B", "C"] = "B" if sign == "lower_is_better" else "A"
    elif average == "metrics" and sign == "lower_is_better":
        convention = "B"
    elif average == "tasks" and sign == "higher_is_better":
        convention = "C"
    else:
        raise ValueError(f"Parameters `average` and `sign` should be ('metrics', 'lower_is_better') for convention B "
                         f"or ('tasks', 'higher_is_better') for C when a task has several metrics. "
                         f"Found `average = {average!r}`, `sign = {sign!r}`.")
    s = np.array([1.0 if d == "max" else -1.0 for d in dirs])
    per_metric = 100.0 * s * (v - b) / b * (-1.0 if sign == "lower_is_better" else 1.0)
    order = list(dict.fromkeys(names))
    per_task = {t: float(np.mean([x for x, n in zip(per_metric, names) if n == t])) for t in order}
    value = float(np.mean(per_metric)) if average == "metrics" else float(np.mean(list(per_task.values())))
    return DeltaM(value, convention, DELTA_M_LABELS[convention], tuple(float(x) for x in per_metric), per_task)


def mean_rank(table: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Mean rank per method, ``conventions.md`` §3: ``MR_j = (1/K)·Σ_k rank_j,k``.

    ``table`` is ``(n_methods, K)``; rank 1 is the best method on metric k (largest for ``"max"``, smallest for
    ``"min"``), ties share the average rank. Returns float64 ``(n_methods,)``; lower is better.
    """
    t = _np(table)
    if t.ndim != 2 or t.shape[1] != len(directions) or not np.all(np.isfinite(t)):
        raise ValueError(f"Parameter `table` should be a finite (n_methods, {len(directions)}) array. "
                         f"Found `table.shape = {t.shape}`.")
    if any(d not in ("max", "min") for d in directions):
        raise ValueError(f"Parameter `directions` should hold only 'max' or 'min'. "
                         f"Found `directions = {list(directions)}`.")
    ranks = [_average_ranks(-t[:, k] if d == "max" else t[:, k]) for k, d in enumerate(directions)]
    return np.mean(ranks, axis=0)


def mean_se(values: ArrayLike) -> tuple[float, float, int]:
    """``(mean, standard error, n)`` over seeds, ``conventions.md`` §4: ``se = std(ddof=1)/√n`` (NaN for n = 1)."""
    v = _np(values).ravel()
    if v.size == 0:
        raise ValueError("Parameter `values` should be non-empty. Found 0 values.")
    se = float(np.std(v, ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
    return float(np.mean(v)), se, int(v.size)


@dataclass(frozen=True)
class HVResult:
    """Hypervolume ``value`` of a point set against registry entry ``ref_id`` (``reference`` in the space the HV is
    computed in, after the entry's explicit normalisation when ``normalised``); ``n_outside`` of the ``n_points``
    did not strictly dominate the reference and contributed nothing."""

    value: float
    ref_id: str
    reference: tuple[float, ...]
    n_points: int
    n_outside: int
    normalised: bool

    def __float__(self) -> float:
        return self.value


def hypervolume(points: ArrayLike, ref_id: str, *, n_obj: int | None = None, lattice_divisions: int | None = None,
                trivial_losses: Sequence[float] | None = None) -> HVResult:
    """Exact hypervolume of minimised objective vectors, ``conventions.md`` §5.

    ``HV(P) = λ(∪_{p ∈ P, p ≺ r} [p, r])`` via ``moocore.hypervolume(points, ref=r, maximise=False)``, with the
    reference r taken **only** from :mod:`paper_repro.hv_refs` (``ref_id`` and the entry's rule arguments).
    ``points``: ``(n, m)`` (a single ``(m,)`` vector is one point). The entry's normalisation, if any, is applied
    explicitly first. Points that do not strictly dominate r are dropped, counted in ``n_outside`` and logged at DEBUG;
    an empty set (or no point inside) gives 0.
    """
    entry = get_entry(ref_id)
    p = _np(points)
    if p.ndim == 1 and p.size:
        p = p[None, :]
    if p.ndim == 1:
        p = p.reshape(0, n_obj if n_obj is not None else entry.n_obj or 0)
    if p.ndim != 2:
        raise ValueError(f"Parameter `points` should be (n, m). Found `points.shape = {p.shape}`.")
    if not np.all(np.isfinite(p)):
        raise ValueError("Parameter `points` should be finite. Found NaN or inf.")
    m = p.shape[1] if p.shape[1] else n_obj
    ref = entry.reference_point(m, lattice_divisions=lattice_divisions, trivial_losses=trivial_losses)
    normalised = entry.ideal is not None and entry.nadir is not None
    q = entry.normalise(p)
    inside = q[np.all(q < ref, axis=1)]
    n_outside = p.shape[0] - inside.shape[0]
    if n_outside:
        _log.debug("hypervolume[%s]: %d of %d points do not strictly dominate the reference %s",
                  ref_id, n_outside, p.shape[0], ref.tolist())
    value = float(moocore.hypervolume(inside, ref=ref, maximise=False)) if inside.shape[0] else 0.0
    return HVResult(value, ref_id, tuple(float(x) for x in ref), int(p.shape[0]), int(n_outside), normalised)
