r"""EMTL, "Equitable Multi-task Learning" (Yuan & Zhang, arXiv 2306.09373): the combiner and its step.

[paper] The relative contribution of task i is its loss divided by its raw gradient norm on the shared
parameters; EMTL adds a variance regulariser that brings the tasks' relative contributions together.
The update rule below is our reconstruction (the paper's body is not available; spec ``emtl.md``).

**Default algorithm R1** [reconstructed objective; derived closed form]. With
:math:`\tilde r_i = L_i/\mathrm{sg}(n_i)` (stop-gradient norms, :math:`n_i = \|\nabla_{\theta_{sh}} L_i\|`),

.. math::
    J(\theta) = \mathrm{Base}(L) + \lambda\,\mathrm{Reg}(\tilde r),\qquad
    \nabla_\theta J = \sum_i w_i \nabla_\theta L_i,\qquad
    w_i = \beta_i + \tfrac{2\lambda}{T}\,\varphi_i / L_i,

* variant ``cv`` (default) [decision]: Reg :math:`= \mathrm{Var}_T(\tilde r)/\mathrm{sg}(\bar r)^2`,
  :math:`\varphi_i = \rho_i(\rho_i-1)`, :math:`\rho_i = r_i/\bar r`;
* variant ``log``: Reg :math:`= \mathrm{Var}_T(\log L_i - \log\mathrm{sg}(n_i))`,
  :math:`\varphi_i = \log\rho_i - \overline{\log\rho}`;
* variant ``raw`` (theory tests): Reg :math:`= \mathrm{Var}_T(\tilde r)`, :math:`\varphi_i = \bar r^2\rho_i(\rho_i-1)`;
* base ``sum`` (default, :math:`\beta_i = 1`), ``mean`` (:math:`1/T`), ``log`` (:math:`1/L_i`), ``imtl``
  (the IMTL-G :math:`\alpha_i`, an ablation).

Presets [decision]: **EMTL** = ``EMTL(T)`` (base sum, variant cv, λ = 0.1); **EMTL-SI** = ``EMTL.si(T)``
(base log, variant log): :math:`w_i = (1 + \frac{2\lambda}{T}(\log\rho_i - \overline{\log\rho}))/L_i`,
whose whole update is invariant to every per-task loss scale.

Where the norms are taken (``grad_on``, spec §3.3) [decision]: ``"shared"`` (all shared parameters,
default), ``"rep"`` (:math:`\|\partial L_i/\partial z\|` on the shared representation; pass
``features=z``, or ``JointStep(..., use_features=True)``) and ``"last"`` (a subset of the shared
parameters, e.g. the last shared layer, as GradNorm does; pass ``norm_params=`` to :meth:`EMTL.backward`
or :class:`EMTLStep`, or set ``last_blocks=k`` to slice the last k shared tensors out of a full Jacobian).
In every mode the shared update is :math:`\sum_i w_i g_i`.

Reading R2 (spec §3.6, an ablation): :class:`EMTLR2` solves for weights that make :math:`w_i\rho_i`
more equal (:func:`~methods.emtl.r2_weights`) instead of adding a regulariser to the objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from .._core import (Combiner, GradientCombiner, GradientStats, check_losses, mtl_backward, split_losses,
                     task_jacobian)
from ..strategies import Closure, JointStep, _no_grad_losses
from ._functional import (
    BASES,
    VARIANTS,
    Base,
    Variant,
    emtl_weights,
    imtl_weights,
    inequity,
    r2_weights,
    relative_contributions,
)

__all__ = ["EMTL", "EMTLR2", "EMTLStep", "GradOn", "HeadWeighting", "task_grad_norms", "inequity_summary",
           "InequityLogger"]

GradOn = Literal["shared", "rep", "last"]
HeadWeighting = Literal["weighted", "shared_only"]


def inequity_summary(r: Tensor) -> dict[str, float | None]:
    r"""``var_r`` = :math:`\mathrm{Var}_T(r)`, ``cv2_r`` = :math:`\mathrm{CV}^2(r)`, ``var_log_r`` =
    :math:`\mathrm{Var}_T(\log r)` (``None`` when some :math:`r_i \le 0`), as floats."""
    x = r.detach().double()
    return {
        "var_r": float(inequity(x, "var")),
        "cv2_r": float(inequity(x, "cv2")),
        "var_log_r": float(inequity(x, "logvar")) if bool((x > 0).all()) else None,
    }


def task_grad_norms(losses: Tensor, target: Sequence[Tensor] | Tensor, *, return_jacobian: bool = False,
                    retain_graph: bool = True) -> Tensor | tuple[Tensor, Tensor]:
    r"""Detached raw gradient norms :math:`n_i = \|\partial L_i/\partial \mathrm{target}\|_2` (float64).

    :param losses: ``(T,)`` losses attached to the graph.
    :param target: the tensors the norms are taken on: shared parameters (``shared``/``last`` modes)
        or the representation z (``rep`` mode); one batched backward pass (``methods.task_jacobian``).
    :param return_jacobian: also return the ``(T, P)`` detached Jacobian.
    """
    check_losses(losses)
    inputs = [target] if isinstance(target, Tensor) else list(target)
    if not inputs:
        raise ValueError("Parameter `target` should hold at least one tensor. Found none.")
    jac, _ = task_jacobian(losses, inputs, retain_graph=retain_graph)
    jac = jac.detach()
    norms = torch.linalg.vector_norm(jac.double(), dim=1)
    return (norms, jac) if return_jacobian else norms


class EMTL(GradientCombiner):
    r"""EMTL's R1 weighting (arXiv 2306.09373; reconstruction, spec ``emtl.md`` §3.1–3.3).

    Weights :math:`w_i = \beta_i + \frac{2\lambda}{T}\varphi_i/L_i`, computed in float64 from the
    detached losses and norms, clamped at ``w_min`` (``None``: no clamp), never renormalised. The
    update on the shared parameters is :math:`\sum_i w_i g_i` (``methods.mtl_backward`` applies it).

    :param n_tasks: T ≥ 1 (T = 1 gives :math:`w = \beta`).
    :param lam: λ ≥ 0 (default 0.1 [decision]); λ = 0 with base ``sum`` is equal weighting.
    :param variant: ``"cv"`` (default), ``"log"`` or ``"raw"``.
    :param base: ``"sum"`` (default), ``"mean"``, ``"log"`` or ``"imtl"``.
    :param grad_on: ``"shared"`` (default), ``"rep"`` or ``"last"`` (see the module docstring).
    :param eps: ε added to each norm (default 1e-8).
    :param ema_beta: EMA coefficient smoothing r across steps before φ is computed (0 = off).
    :param w_min: lower clamp of the weights (default 0 [decision O7]); ``None`` disables it.
    :param head_weighting: ``"weighted"`` (head i gets :math:`w_i\nabla_{\theta_i}L_i`, default) or
        ``"shared_only"`` (plain :math:`\nabla_{\theta_i} L_i`); used by :meth:`backward` and :class:`EMTLStep`
        (with ``JointStep`` pass ``head_grads=emtl.head_grads``).
    :param last_blocks: for ``grad_on="last"`` with a full shared Jacobian: take the norms on its last
        ``last_blocks`` parameter tensors.

    ``last_info`` holds ``weights``, ``r``, ``rho``, ``phi``, ``beta``, ``grad_norms``, ``var_r``,
    ``cv2_r``, ``var_log_r``, ``n_clamped`` (and ``r_smoothed`` with an EMA).

    >>> import torch
    >>> from methods import mtl_backward
    >>> from methods.emtl import EMTL
    >>> trunk, heads = torch.nn.Linear(4, 8), torch.nn.ModuleList([torch.nn.Linear(8, 1) for _ in range(2)])
    >>> x, y = torch.randn(16, 4), torch.randn(16, 2)
    >>> z = trunk(x).tanh()
    >>> losses = torch.stack([((h(z).squeeze(1) - 10.0 ** i * y[:, i]) ** 2).mean() for i, h in enumerate(heads)])
    >>> emtl = EMTL(2, lam=0.1)
    >>> info = emtl.backward(losses, shared_params=trunk.parameters(), task_params=[h.parameters() for h in heads])
    >>> sorted(k for k in ("weights", "r", "cv2_r") if k in info)
    ['cv2_r', 'r', 'weights']
    """

    def __init__(
        self,
        n_tasks: int,
        lam: float = 0.1,
        variant: Variant = "cv",
        base: Base = "sum",
        grad_on: GradOn = "shared",
        eps: float = 1e-8,
        ema_beta: float = 0.0,
        w_min: float | None = 0.0,
        head_weighting: HeadWeighting = "weighted",
        *,
        last_blocks: int | None = None,
    ) -> None:
        if not isinstance(n_tasks, int) or isinstance(n_tasks, bool) or n_tasks < 1:
            raise ValueError(f"Parameter `n_tasks` should be a positive int. Found `n_tasks = {n_tasks!r}`.")
        super().__init__(n_tasks)
        if not isinstance(lam, (int, float)) or isinstance(lam, bool) or not math.isfinite(lam) or lam < 0:
            raise ValueError(f"Parameter `lam` should be a finite non-negative number. Found `lam = {lam!r}`.")
        if variant not in VARIANTS:
            raise ValueError(f"Parameter `variant` should be one of {VARIANTS}. Found `variant = {variant!r}`.")
        if base not in BASES:
            raise ValueError(f"Parameter `base` should be one of {BASES}. Found `base = {base!r}`.")
        if grad_on not in ("shared", "rep", "last"):
            raise ValueError(f"Parameter `grad_on` should be 'shared', 'rep' or 'last'. Found `grad_on = {grad_on!r}`.")
        if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
            raise ValueError(f"Parameter `eps` should be a finite non-negative number. Found `eps = {eps!r}`.")
        if not isinstance(ema_beta, (int, float)) or not 0.0 <= ema_beta < 1.0:
            raise ValueError(f"Parameter `ema_beta` should be in [0, 1). Found `ema_beta = {ema_beta!r}`.")
        if w_min is not None and (not isinstance(w_min, (int, float)) or not math.isfinite(w_min)):
            raise ValueError(f"Parameter `w_min` should be a finite number or None. Found `w_min = {w_min!r}`.")
        if head_weighting not in ("weighted", "shared_only"):
            raise ValueError(
                f"Parameter `head_weighting` should be 'weighted' or 'shared_only'. Found `head_weighting = {head_weighting!r}`."
            )
        if last_blocks is not None and (not isinstance(last_blocks, int) or last_blocks < 1):
            raise ValueError(f"Parameter `last_blocks` should be a positive int or None. Found `last_blocks = {last_blocks!r}`.")
        self.lam, self.variant, self.base, self.grad_on = float(lam), variant, base, grad_on
        self.eps, self.ema_beta, self.w_min, self.head_weighting = float(eps), float(ema_beta), w_min, head_weighting
        self.last_blocks = last_blocks
        self._r_ema: Tensor | None = None

    @classmethod
    def si(cls, n_tasks: int, lam: float = 0.1, **kwargs: Any) -> EMTL:
        """The EMTL-SI preset [decision]: base ``log`` + variant ``log`` (fully loss-scale invariant)."""
        return cls(n_tasks, lam=lam, variant="log", base="log", **kwargs)

    @property
    def head_grads(self) -> Literal["weighted", "raw"]:
        """The ``head_grads`` argument of ``methods.mtl_backward`` matching ``head_weighting``."""
        return "weighted" if self.head_weighting == "weighted" else "raw"

    # -- state --------------------------------------------------------------------------------
    def reset(self) -> None:
        self._r_ema = None
        self.last_info = {}

    def get_extra_state(self) -> dict[str, Any]:
        return {"r_ema": None if self._r_ema is None else self._r_ema.tolist()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        r = state.get("r_ema") if isinstance(state, dict) else None
        self._r_ema = None if r is None else torch.tensor(r, dtype=torch.float64)

    # -- weights ------------------------------------------------------------------------------
    def _norms(self, stats: GradientStats) -> Tensor:
        space = stats.extra.get("grad_space")
        if self.grad_on == "shared":
            if stats.mode != "params":
                raise ValueError("EMTL(grad_on='shared') needs gradients on the shared parameters; got representation-mode "
                                 "statistics. Use grad_on='rep', or drop `features=`/`use_features=True`.")
        elif self.grad_on == "rep":
            if stats.mode != "features" or space == "last":
                raise ValueError("EMTL(grad_on='rep') needs representation-mode statistics: pass `features=z` to "
                                 "mtl_backward / EMTL.backward, or use JointStep(..., use_features=True).")
        else:  # last
            if space != "last":
                if stats.mode == "params" and self.last_blocks is not None:
                    blocks = stats.blocks()[-self.last_blocks:]
                    return torch.linalg.vector_norm(torch.cat(blocks, dim=1).double(), dim=1)
                raise ValueError("EMTL(grad_on='last') needs the norm parameters: call EMTL.backward(..., norm_params=...), "
                                 "use EMTLStep(emtl, norm_params=...), or set `last_blocks`.")
        return torch.linalg.vector_norm(stats.jacobian.double(), dim=1)

    def weights(self, stats: GradientStats, /) -> Tensor:
        losses = check_losses(stats.losses.detach(), self.n_tasks)
        norms = self._norms(stats)
        if not bool(torch.isfinite(norms).all()):
            raise ValueError(f"Gradient norms should be finite. Found `grad_norms = {norms.tolist()}`.")
        r = relative_contributions(losses.double(), norms, self.eps)
        r_used = r
        if self.ema_beta > 0.0:
            prev = self._r_ema
            r_used = r if prev is None else self.ema_beta * prev.to(r) + (1.0 - self.ema_beta) * r
            self._r_ema = r_used.detach().clone()
        base_w = imtl_weights(stats.gramian) if self.base == "imtl" else None
        zero = [] if (self.base != "log" and self.variant != "log") else (losses <= 0).nonzero().flatten().tolist()
        if zero:
            # [decision] a loss of exactly 0 (e.g. float underflow of a solved task) has no logarithm: that
            # task gets weight 0 (nothing left to learn) and the log forms are computed over the others.
            keep = (losses > 0).nonzero().flatten()
            w = torch.zeros(losses.numel(), dtype=torch.float64, device=losses.device)
            info = {"r": r.tolist(), "rho": [0.0] * losses.numel(), "phi": [0.0] * losses.numel(),
                    "beta": [0.0] * losses.numel(), "reg_weights": [0.0] * losses.numel(), "n_clamped": 0}
            if keep.numel():
                wk, ik = emtl_weights(losses.double()[keep], norms[keep], self.lam, self.variant, self.base, self.w_min,
                                      None if base_w is None else base_w[keep], eps=self.eps, r=r_used[keep])
                w[keep] = wk.double()
                for key in ("rho", "phi", "beta", "reg_weights"):
                    for j, v in zip(keep.tolist(), ik[key]):
                        info[key][j] = v
                info["n_clamped"] = ik["n_clamped"]
        else:
            w, info = emtl_weights(losses.double(), norms, self.lam, self.variant, self.base, self.w_min, base_w,
                                   eps=self.eps, r=r_used)
        info["zero_loss_tasks"] = zero
        info["r"] = r.tolist()
        if self.ema_beta > 0.0:
            info["r_smoothed"] = r_used.tolist()
        info.update(inequity_summary(r))
        info.update({"weights": w.tolist(), "grad_norms": norms.tolist(), "grad_on": self.grad_on})
        self.last_info = info
        return w.to(dtype=stats.jacobian.dtype, device=stats.jacobian.device)

    # -- one step -----------------------------------------------------------------------------
    def backward(
        self,
        losses: Tensor | Sequence[Tensor],
        *,
        shared_params: Iterable[Tensor],
        task_params: Iterable[Tensor] | Iterable[Iterable[Tensor]] | None = None,
        features: Tensor | None = None,
        norm_params: Iterable[Tensor] | None = None,
        retain_graph: bool = False,
    ) -> dict[str, Any]:
        """Fill ``.grad`` for one step (accumulating, like ``Tensor.backward``) and return the step info.

        ``grad_on="shared"``: one batched Jacobian on the shared parameters, update :math:`J^\\top w`.
        ``grad_on="rep"``: norms from ``features`` (required), then one backward of :math:`\\sum_i w_i L_i`.
        ``grad_on="last"``: norms on ``norm_params`` (required unless ``last_blocks`` is set), then one
        backward of :math:`\\sum_i w_i L_i`.

        ``losses`` is the ``(K,)`` loss vector or the K scalar losses before stacking. Pass the list in ``rep``
        mode: each task's pass then runs through its own head only, while from a stacked vector every pass also
        runs every other head with zero cotangents (K times the heads' backward; the result is the same).
        """
        losses, task_losses = split_losses(losses)
        if self.grad_on == "shared":
            return mtl_backward(losses, self, shared_params=shared_params, task_params=task_params,
                                head_grads=self.head_grads, retain_graph=retain_graph)
        if self.grad_on == "rep":
            if features is None:
                raise ValueError("EMTL(grad_on='rep').backward needs `features` (the shared representation z). Found `None`.")
            return _backward_rep(self, losses, shared_params, task_params, features, retain_graph, task_losses)
        if norm_params is None:
            if self.last_blocks is not None:
                return mtl_backward(losses, self, shared_params=shared_params, task_params=task_params,
                                    head_grads=self.head_grads, retain_graph=retain_graph)
            raise ValueError("EMTL(grad_on='last').backward needs `norm_params` (e.g. the last shared layer's parameters).")
        return _backward_on_subset(self, losses, shared_params, task_params, list(norm_params), retain_graph)

    def extra_repr(self) -> str:
        parts = [f"n_tasks={self.n_tasks}", f"lam={self.lam:g}", f"variant={self.variant!r}", f"base={self.base!r}",
                 f"grad_on={self.grad_on!r}"]
        if self.ema_beta:
            parts.append(f"ema_beta={self.ema_beta:g}")
        if self.w_min != 0.0:
            parts.append(f"w_min={self.w_min!r}")
        if self.head_weighting != "weighted":
            parts.append(f"head_weighting={self.head_weighting!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return "EMTL-SI" if (self.base == "log" and self.variant == "log") else "EMTL"


class EMTLR2(GradientCombiner):
    r"""EMTL's reading R2, weight-level soft equalisation (spec ``emtl.md`` §3.6): an ablation, not the default.

    [reconstructed] Reading B of the relative contribution, :math:`c_i = w_i x_i`, is made more equal by
    solving, at every step,

    .. math:: \min_w \|w - 1\|^2 + \lambda\,\mathrm{Var}_T(w \odot x) \quad\text{s.t.}\quad 1^\top w = T,

    whose solution [derived] is :func:`~methods.emtl.r2_weights` (Sherman–Morrison, O(T); every
    :math:`w_i > 0`, so nothing is clamped). The update on the shared parameters is :math:`\sum_i w_i g_i`.

    [decision] ``normalize=True`` (default) uses :math:`x = \rho = r/\bar r` instead of the spec's raw
    :math:`x = r`. Then λ is dimensionless: :math:`\lambda\,\mathrm{Var}_T(w\odot\rho) =
    (\lambda/\bar r^2)\,\mathrm{Var}_T(w\odot r)`, so the weights do not depend on the absolute size of
    r (which changes with the batch size and with where the norms are taken, P5). ``normalize=False``
    is the spec's literal form. Either way the weights are invariant to per-task loss scales (P1).
    [reconstructed] As λ → ∞, :math:`w_i \propto 1/r_i`: R2 up-weights tasks with *small* r (nearly
    solved), the opposite of R1.

    :param n_tasks: T ≥ 1.
    :param lam: λ ≥ 0 (default 1.0 [decision]; λ = 0 is equal weighting with weights 1).
    :param grad_on: ``"shared"`` (norms on all shared parameters, default) or ``"rep"`` (on the
        representation: use ``JointStep(..., use_features=True)``).
    :param eps: ε added to each norm (default 1e-8).
    :param normalize: equalise :math:`w\odot\rho` (default) or :math:`w\odot r`.
    :param head_weighting: ``"weighted"`` (head i gets :math:`w_i\nabla_{\theta_i}L_i`, default, as
        :class:`EMTL`) or ``"shared_only"``; ``JointStep`` reads :attr:`head_grads`.

    ``last_info`` holds ``weights``, ``r``, ``rho``, ``contributions`` (:math:`w_i r_i`), ``grad_norms``,
    ``var_r``, ``cv2_r``, ``var_log_r``, ``cv2_contributions`` and ``n_clamped`` (always 0).

    Two tasks with :math:`\rho = (4/3, 2/3)`: with :math:`w = (1+\delta, 1-\delta)` the objective is
    :math:`2\delta^2 + \frac{\lambda}{4}(\rho_1(1+\delta) - \rho_2(1-\delta))^2`, minimised at
    :math:`\delta = -\lambda/(6 + 3\lambda)`: :math:`w = (8/9, 10/9)` at λ = 1 and :math:`(2/3, 4/3)`
    (:math:`\propto 1/\rho`) as λ → ∞.

    >>> import torch
    >>> from methods import GradientStats
    >>> from methods.emtl import EMTLR2
    >>> J = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)   # norms 5 and 1
    >>> stats = GradientStats(J, torch.tensor([10.0, 1.0], dtype=torch.float64))   # r = (2, 1), rho = (4/3, 2/3)
    >>> [round(v, 6) for v in EMTLR2(2, lam=1.0).weights(stats).tolist()]
    [0.888889, 1.111111]
    >>> [round(v, 4) for v in EMTLR2(2, lam=1e8).weights(stats).tolist()]
    [0.6667, 1.3333]
    """

    def __init__(self, n_tasks: int, lam: float = 1.0, grad_on: Literal["shared", "rep"] = "shared", eps: float = 1e-8,
                 normalize: bool = True, head_weighting: HeadWeighting = "weighted") -> None:
        if not isinstance(n_tasks, int) or isinstance(n_tasks, bool) or n_tasks < 1:
            raise ValueError(f"Parameter `n_tasks` should be a positive int. Found `n_tasks = {n_tasks!r}`.")
        super().__init__(n_tasks)
        if not isinstance(lam, (int, float)) or isinstance(lam, bool) or not math.isfinite(lam) or lam < 0:
            raise ValueError(f"Parameter `lam` should be a finite non-negative number. Found `lam = {lam!r}`.")
        if grad_on not in ("shared", "rep"):
            raise ValueError(f"Parameter `grad_on` should be 'shared' or 'rep'. Found `grad_on = {grad_on!r}`.")
        if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
            raise ValueError(f"Parameter `eps` should be a finite non-negative number. Found `eps = {eps!r}`.")
        if not isinstance(normalize, bool):
            raise ValueError(f"Parameter `normalize` should be a bool. Found `normalize = {normalize!r}`.")
        if head_weighting not in ("weighted", "shared_only"):
            raise ValueError(
                f"Parameter `head_weighting` should be 'weighted' or 'shared_only'. Found `head_weighting = {head_weighting!r}`."
            )
        self.lam, self.grad_on, self.eps = float(lam), grad_on, float(eps)
        self.normalize, self.head_weighting = normalize, head_weighting

    @property
    def head_grads(self) -> Literal["weighted", "raw"]:
        """The ``head_grads`` argument of ``methods.mtl_backward`` matching ``head_weighting``."""
        return "weighted" if self.head_weighting == "weighted" else "raw"

    def weights(self, stats: GradientStats, /) -> Tensor:
        losses = check_losses(stats.losses.detach(), self.n_tasks)
        if self.grad_on == "shared" and stats.mode != "params":
            raise ValueError("EMTLR2(grad_on='shared') needs gradients on the shared parameters; got representation-mode "
                             "statistics. Use grad_on='rep', or drop `features=`/`use_features=True`.")
        if self.grad_on == "rep" and stats.mode != "features":
            raise ValueError("EMTLR2(grad_on='rep') needs representation-mode statistics: use "
                             "JointStep(..., use_features=True) or pass `features=z` to mtl_backward.")
        norms = torch.linalg.vector_norm(stats.jacobian.double(), dim=1)
        if not bool(torch.isfinite(norms).all()):
            raise ValueError(f"Gradient norms should be finite. Found `grad_norms = {norms.tolist()}`.")
        r = relative_contributions(losses.double(), norms, self.eps).double()
        mean = r.mean()
        rho = r / mean if float(mean) != 0.0 else torch.ones_like(r)
        w = r2_weights(rho if self.normalize else r, self.lam)
        c = w * r
        self.last_info = {
            "weights": w.tolist(), "r": r.tolist(), "rho": rho.tolist(), "contributions": c.tolist(),
            "grad_norms": norms.tolist(), "cv2_contributions": float(inequity(c, "cv2")), "n_clamped": 0,
            "grad_on": self.grad_on,
        }
        self.last_info.update(inequity_summary(r))
        return w.to(dtype=stats.jacobian.dtype, device=stats.jacobian.device)

    def extra_repr(self) -> str:
        parts = [f"n_tasks={self.n_tasks}", f"lam={self.lam:g}", f"grad_on={self.grad_on!r}"]
        if not self.normalize:
            parts.append("normalize=False")
        if self.head_weighting != "weighted":
            parts.append(f"head_weighting={self.head_weighting!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return "EMTL-R2"


def _flatten_params(params: Iterable[Tensor] | Iterable[Iterable[Tensor]] | None) -> list[Tensor]:
    out: list[Tensor] = []
    if params is None:
        return out
    for item in params:
        out.extend([item] if isinstance(item, Tensor) else list(item))
    return out


def _backward_on_subset(emtl: EMTL, losses: Tensor, shared_params: Iterable[Tensor],
                        task_params: Iterable[Tensor] | Iterable[Iterable[Tensor]] | None,
                        norm_params: list[Tensor], retain_graph: bool) -> dict[str, Any]:
    """``grad_on="last"``: norms on ``norm_params`` (a batched backward through that part of the
    graph), then one backward of :math:`\\sum_i w_i L_i` on the shared (and head) parameters."""
    check_losses(losses, emtl.n_tasks)
    shared = list(shared_params)
    heads = _flatten_params(task_params)
    if not shared:
        raise ValueError("Parameter `shared_params` should be a non-empty iterable of tensors. Found an empty list.")
    if not norm_params:
        raise ValueError("Parameter `norm_params` should be a non-empty iterable of tensors. Found an empty list.")
    jac, mode = task_jacobian(losses, norm_params, retain_graph=True)
    stats = GradientStats(jac.detach(), losses.detach(), mode="features", extra={"grad_space": "last"})
    w = emtl.weights(stats).detach().to(losses.dtype)
    if emtl.head_grads == "weighted" or not heads:
        grads = torch.autograd.grad((w * losses).sum(), shared + heads, retain_graph=retain_graph, allow_unused=True,
                                    materialize_grads=True)
    else:
        grads = torch.autograd.grad((w * losses).sum(), shared, retain_graph=True, allow_unused=True, materialize_grads=True)
        grads = grads + torch.autograd.grad(losses.sum(), heads, retain_graph=retain_graph, allow_unused=True,
                                            materialize_grads=True)
    for p, g in zip(shared + heads, grads):
        p.grad = g.clone() if p.grad is None else p.grad + g
    info: dict[str, Any] = {"level": "gradient", "losses": losses.detach().tolist(), "jacobian_mode": mode,
                            "grad_space": "last"}
    info.update(emtl.last_info)
    return info


def _backward_rep(emtl: EMTL, losses: Tensor, shared_params: Iterable[Tensor],
                  task_params: Iterable[Tensor] | Iterable[Iterable[Tensor]] | None, features: Tensor,
                  retain_graph: bool, task_losses: Sequence[Tensor] | None = None) -> dict[str, Any]:
    r"""``grad_on="rep"`` in K backward passes through the heads (one per task, each through its own head)
    plus one through the trunk.

    These passes give :math:`\partial L_i/\partial z` and the head gradients together; the trunk
    then receives :math:`\sum_i w_i\,\partial L_i/\partial z` (``z.backward``), which is exactly
    :math:`\nabla_{\theta_{sh}} \sum_i w_i L_i` without running the heads' backward a second time.
    """
    check_losses(losses, emtl.n_tasks)
    if not isinstance(features, Tensor) or not features.requires_grad:
        raise ValueError("Parameter `features` should be the shared representation z, attached to the graph.")
    shared = list(shared_params)
    heads = _flatten_params(task_params)
    if not shared:
        raise ValueError("Parameter `shared_params` should be a non-empty iterable of tensors. Found an empty list.")
    # One backward per task, each through its own head only: autograd prunes the trunk (only z and the
    # head parameters are requested) and, starting from the unstacked loss L_i, the other heads, so the K passes
    # cost about one backward through all heads. From losses[i] of a stacked vector the pass would go through
    # the stack into every head (zero cotangents), as a batched pass (vmap over an identity) would: K times.
    per_task = list(task_losses) if task_losses is not None else list(losses.unbind())
    rows = []
    for loss_i in per_task:
        gs = torch.autograd.grad(loss_i, [features] + heads, retain_graph=True, allow_unused=True,
                                 materialize_grads=True)
        rows.append(torch.cat([g.reshape(-1) for g in gs]))
    jac, mode = torch.stack(rows), "loop"
    nz = features.numel()
    jz, jh = jac[:, :nz], jac[:, nz:]
    stats = GradientStats(jz.detach(), losses.detach(), mode="features")
    w = emtl.weights(stats).detach().to(jac.dtype)
    grads = torch.autograd.grad(features, shared, grad_outputs=(w @ jz).view_as(features), retain_graph=retain_graph,
                                allow_unused=True, materialize_grads=True)
    for p, g in zip(shared, grads):
        p.grad = g.clone() if p.grad is None else p.grad + g
    if heads:
        hw = w if emtl.head_grads == "weighted" else torch.ones_like(w)
        offset = 0
        flat = jh.T @ hw
        for p in heads:
            g = flat[offset:offset + p.numel()].view_as(p).to(p.dtype)
            p.grad = g.clone() if p.grad is None else p.grad + g
            offset += p.numel()
    info: dict[str, Any] = {"level": "gradient", "losses": losses.detach().tolist(), "jacobian_mode": mode,
                            "grad_space": "features"}
    info.update(emtl.last_info)
    return info


class EMTLStep(JointStep):
    """A joint step that runs :meth:`EMTL.backward`: one forward pass, one EMTL backward, one optimizer step.

    Use it instead of ``JointStep`` for ``grad_on="last"`` with ``norm_params`` (the cheap mode on a
    parameter subset). State, ``reset`` and the combiner list are :class:`~methods.JointStep`'s.

    :param combiner: an :class:`EMTL`.
    :param norm_params: the parameters the norms are taken on when ``grad_on="last"``.

    >>> import torch
    >>> from methods import EMTLStep, ForwardResult
    >>> from methods.emtl import EMTL
    >>> w = torch.nn.Parameter(torch.tensor([1.0])); opt = torch.optim.SGD([w], lr=0.1)
    >>> closure = lambda tasks: ForwardResult(torch.stack([w[0] ** 2, 3 * w[0]]))   # gradients 2w and 3
    >>> info = EMTLStep(EMTL(2, lam=0.0)).step(closure, opt, shared_params=[w])   # lam = 0, base sum: w_i = 1
    >>> info["weights"], round(w.item(), 4)   # 1 - 0.1 * (2 + 3)
    ([1.0, 1.0], 0.5)
    """

    def __init__(self, combiner: EMTL, *, norm_params: Sequence[Tensor] | None = None) -> None:
        if not isinstance(combiner, EMTL):
            raise TypeError(f"Parameter `combiner` should be an EMTL. Found `{type(combiner).__name__}`.")
        if combiner.grad_on == "last" and norm_params is None and combiner.last_blocks is None:
            raise ValueError("EMTLStep with EMTL(grad_on='last') needs `norm_params` (or EMTL(last_blocks=...)).")
        super().__init__(combiner, use_features=combiner.grad_on == "rep")
        self.norm_params = None if norm_params is None else list(norm_params)

    def step(self, closure: Closure, optimizer: torch.optim.Optimizer, *, shared_params: Sequence[Tensor],
             task_params: Sequence[Sequence[Tensor]] | None = None) -> dict[str, Any]:
        res = closure(None)
        if self.combiner.grad_on == "rep" and res.features is None:
            raise ValueError("EMTLStep with EMTL(grad_on='rep') needs a closure that returns `features`.")
        optimizer.zero_grad(set_to_none=True)
        losses = res.task_losses if self.use_features and res.task_losses is not None else res.losses  # as JointStep
        info = self.combiner.backward(losses, shared_params=shared_params, task_params=task_params,
                                      features=res.features, norm_params=self.norm_params)
        optimizer.step()
        self.combiner.after_step(lambda: _no_grad_losses(closure))
        return info

    def __repr__(self) -> str:
        return f"EMTLStep({self.combiner!r})"


class InequityLogger:
    r"""Measures equity for **any** method, the same way for all (spec §3.7): every ``every`` steps it
    evaluates ``probe()`` (the T losses on a fixed probe batch at the current parameters), takes the
    raw gradient norms on ``params`` with :func:`task_grad_norms`, and records
    :math:`L_i`, :math:`n_i`, :math:`r_i`, :math:`\mathrm{Var}_T(r)`, :math:`\mathrm{CV}^2(r)`,
    :math:`\mathrm{Var}_T(\log r)`, the pairwise gradient cosines and the step's ``weights`` (if the
    step info has them).

    Use it as the trainer's ``step_callback``: ``callback(step, info)``. Records are in ``records``.

    :param probe: returns the ``(T,)`` losses, attached to the graph.
    :param params: the shared parameters (or representation-producing parameters) for the norms.
    :param every: measure when ``step % every == 0``.
    """

    def __init__(self, probe: Callable[[], Tensor], params: Sequence[Tensor], every: int = 50, eps: float = 1e-8) -> None:
        if not callable(probe):
            raise TypeError(f"Parameter `probe` should be callable. Found `{type(probe).__name__}`.")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"Parameter `every` should be a positive int. Found `every = {every!r}`.")
        self.probe, self.params, self.every, self.eps = probe, list(params), every, float(eps)
        if not self.params:
            raise ValueError("Parameter `params` should hold at least one tensor. Found none.")
        self.records: list[dict[str, Any]] = []

    def measure(self) -> dict[str, Any]:
        """One measurement at the current parameters (no ``.grad`` is touched)."""
        losses = self.probe()
        norms, jac = task_grad_norms(losses, self.params, return_jacobian=True, retain_graph=False)
        jd = jac.double()
        unit = jd / (norms.unsqueeze(1) + self.eps)
        r = relative_contributions(losses.detach().double(), norms, self.eps)
        rec: dict[str, Any] = {"losses": losses.detach().tolist(), "grad_norms": norms.tolist(), "r": r.tolist(),
                               "cos": (unit @ unit.T).tolist()}
        rec.update(inequity_summary(r))
        return rec

    def __call__(self, step: int, info: dict[str, Any] | None = None) -> None:
        if step % self.every:
            return
        rec = self.measure()
        rec["step"] = int(step)
        if info is not None and "weights" in info:
            rec["weights"] = list(info["weights"])
        self.records.append(rec)
