r"""Loss-level baselines: a scalar built from the loss vector, one ordinary backward pass.

All but :class:`Tchebycheff` come from ``torchjd.scalarization`` (0.18.0) through the adapter; the
docstrings state the formula each computes, the convention (sum or mean) and the source of every
default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .._core import LossCombiner
from ._torchjd import TorchJDScalarizer, require_torchjd

__all__ = [
    "EqualWeighting",
    "LinearScalarization",
    "Tchebycheff",
    "SmoothTchebycheff",
    "UncertaintyWeighting",
    "DWA",
    "FAMO",
]


def _as_vector(value: Sequence[float] | Tensor, name: str, n: int | None = None) -> Tensor:
    t = value.detach().clone() if isinstance(value, Tensor) else torch.as_tensor(list(value), dtype=torch.get_default_dtype())
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(f"Parameter `{name}` should be a non-empty 1-D sequence. Found `{name}.shape = {tuple(t.shape)}`.")
    if n is not None and t.numel() != n:
        raise ValueError(f"Parameter `{name}` should have {n} entries. Found `{name}.shape = {tuple(t.shape)}`.")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"Parameter `{name}` should be finite. Found `{name} = {t.tolist()}`.")
    return t


def _fmt(t: Tensor) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in t.tolist()) + "]"


class EqualWeighting(TorchJDScalarizer):
    r"""Equal weighting (EW): :math:`\ell = \frac{1}{K} \sum_{i=1}^K L_i` (TorchJD's ``Mean``).

    The **mean** convention: the update is the average task gradient, so the learning rate does not
    scale with K. Some paper code (e.g. MTAN's and DWA's "equal" baseline) uses the sum
    :math:`\sum_i L_i`, which is K times larger: multiply the learning rate by K to compare.

    :param n_tasks: optional; if given, the number of losses is checked on every call.

    >>> import torch
    >>> from methods import EqualWeighting
    >>> ew = EqualWeighting()
    >>> ew(torch.tensor([1.0, 3.0])).item(), ew.last_info["weights"]   # (1 + 3) / 2
    (2.0, [0.5, 0.5])
    """

    def __init__(self, n_tasks: int | None = None) -> None:
        super().__init__(n_tasks)
        self.inner = require_torchjd(type(self).__name__, "scalarization").Mean()


class LinearScalarization(TorchJDScalarizer):
    r"""Linear scalarization: :math:`\ell = \sum_i w_i L_i` with fixed weights (TorchJD's ``Constant``).

    :param weights: the K weights :math:`w_i` (no normalization is applied: ``[1, 1]`` is the sum,
        ``[0.5, 0.5]`` the mean).

    >>> import torch
    >>> from methods import LinearScalarization
    >>> LinearScalarization([0.25, 0.75])(torch.tensor([1.0, 3.0])).item()   # 0.25 * 1 + 0.75 * 3
    2.5
    """

    weights: Tensor

    def __init__(self, weights: Sequence[float] | Tensor) -> None:
        w = _as_vector(weights, "weights")
        super().__init__(w.numel())
        self.register_buffer("weights", w)
        self.inner = require_torchjd(type(self).__name__, "scalarization").Constant(w)

    def combine(self, losses: Tensor, /) -> Tensor:
        # the scalarizer reads the buffer, so .to(device/dtype) of the combiner is honoured
        self.inner.weights = self.weights.to(losses)
        return super().combine(losses)

    def _weights(self, losses: Tensor) -> Tensor:
        return self.weights

    def extra_repr(self) -> str:
        return f"weights={_fmt(self.weights)}"


class Tchebycheff(LossCombiner):
    r"""Weighted Tchebycheff scalarization: :math:`\ell = \max_i w_i (L_i - z_i)`.

    Minimizing it for every positive weight vector reaches every (weakly) Pareto-optimal point,
    including those on non-convex parts of the front that linear scalarization misses (Miettinen,
    *Nonlinear Multiobjective Optimization*, 1999, §3.4). Written here (TorchJD has only the smooth
    version, :class:`SmoothTchebycheff`).

    The gradient flows to the task(s) attaining the maximum; ties share it equally
    (``torch.amax``).

    :param weights: the preference :math:`w` (K positive values); default ``1/K`` for each task.
    :param ideal: the ideal (utopia) point :math:`z`; default zeros (losses bounded below by 0).

    >>> import torch
    >>> from methods import Tchebycheff
    >>> Tchebycheff()(torch.tensor([1.0, 3.0])).item()   # max(1/2 * 1, 1/2 * 3)
    1.5
    >>> tch = Tchebycheff(weights=[0.5, 0.5], ideal=[0.0, 2.5])
    >>> tch(torch.tensor([1.0, 3.0])).item(), tch.last_info["argmax"]   # max(0.5 * 1, 0.5 * 0.5): task 0
    (0.5, 0)
    """

    def __init__(self, weights: Sequence[float] | Tensor | None = None, ideal: Sequence[float] | Tensor | None = None) -> None:
        w = None if weights is None else _as_vector(weights, "weights")
        z = None if ideal is None else _as_vector(ideal, "ideal")
        if w is not None and bool((w < 0).any()):
            raise ValueError(f"Parameter `weights` should be non-negative. Found `weights = {w.tolist()}`.")
        if w is not None and z is not None and w.numel() != z.numel():
            raise ValueError(f"Parameters `weights` and `ideal` should have the same length. Found {w.numel()} and {z.numel()}.")
        n = w.numel() if w is not None else (z.numel() if z is not None else None)
        super().__init__(n)
        self.register_buffer("weights", w)
        self.register_buffer("ideal", z)

    def combine(self, losses: Tensor, /) -> Tensor:
        k = losses.numel()
        w = torch.full_like(losses, 1.0 / k) if self.weights is None else self.weights.to(losses)
        z = torch.zeros_like(losses) if self.ideal is None else self.ideal.to(losses)
        terms = w * (losses - z)
        out = terms.amax()
        t = terms.detach()
        active = (t == t.max()).to(t.dtype)
        self.last_info = {"weights": (w * active / active.sum()).tolist(), "argmax": int(t.argmax())}
        return out

    def extra_repr(self) -> str:
        parts = []
        if self.weights is not None:
            parts.append(f"weights={_fmt(self.weights)}")
        if self.ideal is not None:
            parts.append(f"ideal={_fmt(self.ideal)}")
        return ", ".join(parts)


class SmoothTchebycheff(TorchJDScalarizer):
    r"""Smooth Tchebycheff scalarization (STCH, Lin et al., arXiv 2402.19078, eq. 8; TorchJD's ``STCH``).

    .. math:: \ell = \mu \log \sum_i \exp\big(w_i (L_i - z_i) / \mu\big),

    a smooth upper bound of :class:`Tchebycheff` that is tight as :math:`\mu \to 0`
    (:math:`\max \le \ell \le \max + \mu \log K`).

    :param mu: the smoothing :math:`\mu > 0`. Default ``0.1``: our choice; the paper evaluates
        :math:`\mu \in \{0.01, 0.1, 0.5, 1\}` and names no single best value (TorchJD has no default).
    :param weights: the preference :math:`w`; default ``1/K`` each.
    :param ideal: the ideal point :math:`z`; default none (zero).

    >>> import math, torch
    >>> from methods import SmoothTchebycheff
    >>> value = SmoothTchebycheff(mu=1.0)(torch.tensor([1.0, 3.0])).item()   # log(e^0.5 + e^1.5)
    >>> round(value, 4), round(1.5 + math.log(1 + math.exp(-1)), 4)   # max + mu log(1 + e^-1), within mu log 2
    (1.8133, 1.8133)
    """

    def __init__(self, mu: float = 0.1, weights: Sequence[float] | Tensor | None = None,
                 ideal: Sequence[float] | Tensor | None = None) -> None:
        if not mu > 0:
            raise ValueError(f"Parameter `mu` should be strictly positive. Found `mu = {mu}`.")
        w = None if weights is None else _as_vector(weights, "weights")
        z = None if ideal is None else _as_vector(ideal, "ideal")
        n = w.numel() if w is not None else (z.numel() if z is not None else None)
        super().__init__(n)
        self.mu = float(mu)
        self.register_buffer("weights", w)
        self.register_buffer("ideal", z)
        self.inner = require_torchjd(type(self).__name__, "scalarization").STCH(self.mu)

    def combine(self, losses: Tensor, /) -> Tensor:
        self.inner.weights = None if self.weights is None else self.weights.to(losses)
        self.inner.reference = None if self.ideal is None else self.ideal.to(losses)
        return super().combine(losses)

    def _weights(self, losses: Tensor) -> Tensor:
        k = losses.numel()
        w = torch.full_like(losses, 1.0 / k) if self.weights is None else self.weights.to(losses)
        z = torch.zeros_like(losses) if self.ideal is None else self.ideal.to(losses)
        return w * torch.softmax(w * (losses - z) / self.mu, dim=0)

    def extra_repr(self) -> str:
        parts = [f"mu={self.mu:g}"]
        if self.weights is not None:
            parts.append(f"weights={_fmt(self.weights)}")
        if self.ideal is not None:
            parts.append(f"ideal={_fmt(self.ideal)}")
        return ", ".join(parts)


class UncertaintyWeighting(TorchJDScalarizer):
    r"""Uncertainty weighting (UW, Kendall et al., arXiv 1705.07115, eq. 7; TorchJD's ``UW``).

    .. math:: \ell = \sum_i \tfrac12 e^{-s_i} L_i + \tfrac12 s_i, \qquad s_i = \log \sigma_i^2,

    with learnable log-variances :math:`s` (initialized to 0: TorchJD's and the Nash-MTL code's
    default; LibMTL uses -0.5). The :math:`s_i` are an ``nn.Parameter`` of this combiner: **add
    ``combiner.parameters()`` to your optimizer**, otherwise they never change and UW is the sum of
    the losses scaled by 1/2::

        uw = UncertaintyWeighting(n_tasks=2)
        opt = torch.optim.Adam([*model.parameters(), *uw.parameters()], lr=1e-3)

    ``last_info["weights"]`` holds :math:`\tfrac12 e^{-s_i}` and ``last_info["log_var"]`` the :math:`s_i`.

    :param n_tasks: K (required: one log-variance per task).

    >>> import torch
    >>> from methods import UncertaintyWeighting
    >>> uw = UncertaintyWeighting(n_tasks=2)
    >>> uw(torch.tensor([1.0, 3.0])).item(), [tuple(p.shape) for p in uw.parameters()]   # s = 0: (1 + 3) / 2
    (2.0, [(2,)])
    """

    def __init__(self, n_tasks: int) -> None:
        if not isinstance(n_tasks, int) or n_tasks < 1:
            raise ValueError(f"Parameter `n_tasks` should be a positive int. Found `n_tasks = {n_tasks!r}`.")
        super().__init__(n_tasks)
        self.inner = require_torchjd(type(self).__name__, "scalarization").UW(n_tasks)

    @property
    def log_var(self) -> Tensor:
        """The learnable log-variances :math:`s` (a view of the parameter)."""
        return self.inner.log_var

    def combine(self, losses: Tensor, /) -> Tensor:
        out = super().combine(losses)
        self.last_info["log_var"] = self.inner.log_var.detach().tolist()
        return out

    def _weights(self, losses: Tensor) -> Tensor:
        return 0.5 * torch.exp(-self.inner.log_var.detach())


class DWA(TorchJDScalarizer):
    r"""Dynamic Weight Average (Liu et al., arXiv 1803.10704, eq. 7; TorchJD's ``DWA``).

    .. math:: \ell = \sum_k \lambda_k L_k, \quad
        \lambda_k = \frac{K \exp(r_k / T)}{\sum_i \exp(r_i / T)}, \quad r_k = \frac{\bar L_k(t-1)}{\bar L_k(t-2)},

    where :math:`\bar L_k(t)` is task k's loss averaged over period t. The weights sum to K (the
    paper's **sum** convention: K times :class:`EqualWeighting` while fewer than two periods are
    complete). Default ``T = 2`` (the paper).

    A *period* is what the paper calls an epoch. With ``history="epoch"`` (the paper; default) call
    :meth:`end_epoch` at the end of each epoch (``methods.trainer.Trainer`` does so for every combiner
    that defines it). With ``history="step"`` every optimizer step is a period: :meth:`after_step`
    rolls the history, so :math:`r_k` is the ratio of the last two steps' losses (noisier; use it only
    when there is no epoch structure).

    :param temperature: T > 0.
    :param history: ``"epoch"`` or ``"step"``.

    >>> import torch
    >>> from methods import DWA
    >>> dwa = DWA(temperature=2.0)
    >>> for epoch_losses in ([1.0, 3.0], [0.5, 3.0]):   # task 0 halves its loss, task 1 stalls
    ...     _ = dwa(torch.tensor(epoch_losses)); dwa.end_epoch()
    >>> _ = dwa(torch.tensor([0.5, 3.0]))
    >>> [round(w, 4) for w in dwa.last_info["weights"]]   # 2 softmax([0.5, 1] / 2)
    [0.8756, 1.1244]
    """

    def __init__(self, temperature: float = 2.0, *, history: str = "epoch", n_tasks: int | None = None) -> None:
        if history not in ("epoch", "step"):
            raise ValueError(f"Parameter `history` should be 'epoch' or 'step'. Found `history = {history!r}`.")
        super().__init__(n_tasks)
        self.history = history
        self.inner = require_torchjd(type(self).__name__, "scalarization").DWA(temperature)
        self.temperature = float(temperature)

    def _weights(self, losses: Tensor) -> Tensor:
        return self.inner._compute_weights(losses)  # pure (TorchJD 0.18 internal)

    def end_epoch(self) -> None:
        """Finish the current period: its average loss enters the history (TorchJD's ``DWA.step``)."""
        self.inner.step()

    def after_step(self, recompute: Callable[[], Tensor]) -> None:
        if self.history == "step":
            self.inner.step()

    def get_extra_state(self) -> dict[str, Any]:
        d = self.inner
        return {"loss_sum": d._loss_sum, "n_batches": d._n_batches, "previous_averages": list(d._previous_averages)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        d = self.inner
        d._loss_sum, d._n_batches = state["loss_sum"], int(state["n_batches"])
        d._previous_averages = list(state["previous_averages"])

    def extra_repr(self) -> str:
        return f"temperature={self.temperature:g}, history={self.history!r}"


class FAMO(TorchJDScalarizer):
    r"""Fast Adaptive Multitask Optimization (Liu et al., arXiv 2306.03792, Alg. 1; TorchJD's ``FAMO``).

    .. math:: \ell = c \sum_i z_i \log(L_i - b_i + \epsilon), \quad z = \mathrm{softmax}(\xi), \quad
        c = \Big(\sum_i \frac{z_i}{L_i - b_i + \epsilon}\Big)^{-1} \text{ (a constant)},

    so the update is the convex combination :math:`\sum_i c z_i / (L_i - b_i + \epsilon)\, g_i` (these
    are ``last_info["weights"]``). After the optimizer step, :meth:`after_step` recomputes the losses
    of the same batch and takes one Adam step on the logits :math:`\xi` along
    :math:`\delta_i = \log(L_i^{\text{before}} - b_i + \epsilon) - \log(L_i^{\text{after}} - b_i + \epsilon)`
    (paper eq. 9; :class:`~methods.JointStep` calls the hook). Losses must stay above :math:`b`.

    Defaults (TorchJD's): ``lr = 0.025`` (paper); ``weight_decay = 1e-3`` (paper Alg. 2 and LibMTL, per
    TorchJD's docs; ``Cranial-XIX/FAMO:famo.py`` uses a different γ: the spec notes 0.01, TorchJD's
    docs say 1e-5 — ports drift, set it explicitly to reproduce a given code base).

    The logits are a parameter of this combiner only so that they are saved and moved with it; FAMO
    steps them itself (do not add ``combiner.parameters()`` to the model's optimizer: their gradient is
    always ``None``, so it would be harmless but pointless).

    :param n_tasks: K.
    :param min_losses: the lower bounds :math:`b` (default zeros).

    >>> import math, torch
    >>> from methods import FAMO
    >>> famo = FAMO(n_tasks=2)   # first step: xi = 0, z = (1/2, 1/2), c = 1 / (1/2 + 1/6) = 3/2
    >>> value = famo(torch.tensor([1.0, 3.0])).item()
    >>> round(value, 4), round(0.75 * math.log(3), 4), [round(w, 4) for w in famo.last_info["weights"]]
    (0.824, 0.824, [0.75, 0.25])
    """

    def __init__(self, n_tasks: int, *, min_losses: Sequence[float] | Tensor | None = None,
                 lr: float = 0.025, weight_decay: float = 1e-3) -> None:
        if not isinstance(n_tasks, int) or n_tasks < 1:
            raise ValueError(f"Parameter `n_tasks` should be a positive int. Found `n_tasks = {n_tasks!r}`.")
        super().__init__(n_tasks)
        b = None if min_losses is None else _as_vector(min_losses, "min_losses", n_tasks)
        self.inner = require_torchjd(type(self).__name__, "scalarization").FAMO(
            n_tasks, min_losses=b, lr=lr, weight_decay=weight_decay)
        self.lr, self.weight_decay = float(lr), float(weight_decay)

    def _weights(self, losses: Tensor) -> Tensor:
        z = torch.softmax(self.inner._w.detach().flatten(), dim=0).to(losses.dtype)
        shifted = losses - self.inner.min_losses.to(losses.dtype) + 1e-8
        return z / shifted / (z / shifted).sum()

    def after_step(self, recompute: Callable[[], Tensor]) -> None:
        if self.inner._prev_losses is None:
            return
        new = recompute()
        self.inner.update(new.detach())
        self.last_info["logits"] = self.inner._w.detach().tolist()

    def get_extra_state(self) -> dict[str, Any]:
        f = self.inner
        return {"prev_losses": f._prev_losses,
                "adam": None if f._optimizer is None else f._optimizer.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        f = self.inner
        f._prev_losses = state["prev_losses"]
        f._optimizer = None
        if state["adam"] is not None:
            f._optimizer = torch.optim.Adam([f._w], lr=f.lr, weight_decay=f.weight_decay)
            f._optimizer.load_state_dict(state["adam"])

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}, lr={self.lr:g}, weight_decay={self.weight_decay:g}"
