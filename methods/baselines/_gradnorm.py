r"""GradNorm (Chen et al., arXiv 1711.02257), written here: TorchJD 0.18 does not have it."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._core import GradientStats
from ._torchjd import Fallback, WeightingCombiner

__all__ = ["GradNorm"]


class GradNorm(WeightingCombiner):
    r"""GradNorm: learnable task weights that balance the task gradient norms (arXiv 1711.02257, eqs. 1–2, Alg. 1).

    At step t, with weights :math:`w(t)` (initially 1), gradient norms :math:`n_i = \|g_i\|` (rows of
    the Jacobian: on the shared parameters, or on the representation in representation mode, the
    paper's "last shared layer" choice being up to the caller), losses :math:`L_i(t)` and the first
    step's losses :math:`L_i(0)`:

    .. math::
        G_i = w_i n_i, \quad \bar G = \tfrac1K \textstyle\sum_j G_j, \quad
        \tilde L_i = L_i(t)/L_i(0), \quad r_i = \tilde L_i / \big(\tfrac1K \textstyle\sum_j \tilde L_j\big),

    .. math::
        L_{\text{grad}} = \sum_i \big| G_i - [\bar G\, r_i^{\alpha}] \big|, \qquad
        \frac{\partial L_{\text{grad}}}{\partial w_i} = \operatorname{sign}(G_i - \bar G r_i^\alpha)\, n_i,

    the bracket being a constant (the paper's target is not differentiated). The update of this
    step uses :math:`w(t)`; then :math:`w \leftarrow w - \text{lr}\, \nabla_w L_{\text{grad}}`,
    clamped at ``min_weight`` and renormalized to :math:`\sum_i w_i = K` (the paper's renormalization).
    So the shared update is :math:`\sum_i w_i g_i` (sum convention, weights summing to K).

    Defaults: :math:`\alpha = 1.5` (the paper's NYUv2 setting; it reports 0.12 for its regression
    toy); ``lr = 0.025`` for the plain gradient step on w (our choice: the paper steps w with the
    network's optimizer, whose settings vary by experiment). Losses must be positive for
    :math:`\tilde L`; :math:`L_i(0)` is guarded by ``eps``.

    Stateful: the weights and :math:`L(0)`; ``reset()`` restores ones and forgets :math:`L(0)`.
    ``last_info`` holds the weights used, the grad-norm loss, the targets and the updated weights.

    >>> import torch
    >>> from methods import GradientStats, GradNorm
    >>> gn = GradNorm(alpha=1.5, lr=0.1)
    >>> stats = GradientStats(torch.tensor([[3.0, 0.0], [0.0, 1.0]]), torch.tensor([2.0, 1.0]))   # norms 3, 1
    >>> gn.weights(stats).tolist()   # the first step uses w(0) = 1
    [1.0, 1.0]
    >>> [round(w, 4) for w in gn.last_info["next_weights"]]   # G = (3, 1), target 2: (1 - 0.3, 1 + 0.1) * 2 / 1.8
    [0.7778, 1.2222]
    """

    def __init__(self, alpha: float = 1.5, lr: float = 0.025, *, n_tasks: int | None = None,
                 min_weight: float = 1e-6, eps: float = 1e-12, fallback: Fallback = "previous") -> None:
        if not alpha >= 0:
            raise ValueError(f"Parameter `alpha` should be non-negative. Found `alpha = {alpha}`.")
        if not lr >= 0:
            raise ValueError(f"Parameter `lr` should be non-negative. Found `lr = {lr}`.")
        super().__init__(n_tasks, fallback=fallback)
        self.alpha, self.lr, self.min_weight, self.eps = float(alpha), float(lr), float(min_weight), float(eps)
        self.task_weights: Tensor | None = None
        self.initial_losses: Tensor | None = None

    def _compute(self, stats: GradientStats, /) -> Tensor:
        k = stats.jacobian.shape[0]
        dtype, device = stats.jacobian.dtype, stats.jacobian.device
        losses = stats.losses.detach().to(dtype)
        if self.task_weights is None or self.task_weights.numel() != k:
            self.task_weights = torch.ones(k, dtype=dtype, device=device)
            self.initial_losses = None
        if self.initial_losses is None:
            self.initial_losses = losses.clone()
        w = self.task_weights.to(dtype=dtype, device=device)
        norms = stats.norms.to(dtype)
        g = w * norms
        g_bar = g.mean()
        ratio = losses / self.initial_losses.to(dtype).clamp_min(self.eps)
        r = ratio / ratio.mean().clamp_min(self.eps)
        target = g_bar * r.pow(self.alpha)
        grad = torch.sign(g - target) * norms
        new = (w - self.lr * grad).clamp_min(self.min_weight)
        new = new * (k / new.sum())
        self._info = {"gradnorm_loss": float((g - target).abs().sum()), "targets": target.tolist(),
                      "next_weights": new.tolist()}
        if bool(torch.isfinite(new).all()):
            self.task_weights = new
        return w

    def _extra_info(self) -> dict[str, Any]:
        return dict(self._info)

    def _state(self) -> dict[str, Any]:
        return {"task_weights": self.task_weights, "initial_losses": self.initial_losses}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.task_weights = state.get("task_weights")
        self.initial_losses = state.get("initial_losses")

    def reset(self) -> None:
        super().reset()
        self.task_weights = None
        self.initial_losses = None

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, lr={self.lr:g}"
