r"""Gradient-level baselines: weights :math:`w` from the per-task gradients, shared update :math:`J^\top w`.

Each wraps a ``torchjd.aggregation`` weighting (0.18.0) through the adapter
(:class:`~methods.baselines._torchjd.WeightingCombiner`), which adds the task-count check and the
documented solver-failure fallback. All take the Gramian :math:`G = J J^\top` except Nash-MTL, whose
TorchJD weighting takes the matrix :math:`J` itself.

Behaviour on a zero task gradient (a row of zeros in J), tested for every method: the weights stay
finite and so does the update. MGDA then returns the zero update (a zero gradient makes the point
Pareto-stationary); PCGrad never projects onto a zero gradient; Nash-MTL's solver cannot satisfy
:math:`\alpha_i (G\alpha)_i \ge 1` for that task and keeps its previous weights (TorchJD's own fallback,
reported in ``last_info["fallback"]``).

Every method works in representation mode (``mtl_backward(..., features=z)``): the weights are then
computed from :math:`\partial L_i / \partial z` (MGDA-UB, arXiv 1810.04650 §3.3, is ``MGDA`` used this
way).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from .._core import GradientStats
from ._torchjd import Fallback, GramianWeightingCombiner, WeightingCombiner, require_torchjd

__all__ = ["MGDA", "PCGrad", "CAGrad", "IMTLG", "NashMTL", "AlignedMTL", "UPGrad"]


class MGDA(GramianWeightingCombiner):
    r"""Multiple-gradient descent (Désidéri 2012; Sener & Koltun, arXiv 1810.04650, eq. 3, Alg. 2).

    .. math:: w = \arg\min_{w \in \Delta_K} \Big\| \sum_i w_i g_i \Big\|^2,

    the minimum-norm point of the convex hull of the task gradients, solved by TorchJD's
    Frank–Wolfe iteration (``MGDAWeighting``). The weights are **convex** (sum 1), as in the paper;
    Nash-MTL's code multiplies them by K. No gradient normalization (the official code's optional
    ``"l2"``/``"loss"`` normalizers are not applied; Nash-MTL's default ``"none"``).

    **MGDA-UB** is this combiner in representation mode: ``mtl_backward(losses, MGDA(),
    shared_params=..., features=z)`` computes the weights from :math:`\partial L_i/\partial z`.

    :param epsilon: stop when the Frank–Wolfe step is below it (TorchJD default ``1e-3``).
    :param max_iters: at most this many Frank–Wolfe iterations (TorchJD default 100).
    :param fallback: what to use if the solver fails (see ``WeightingCombiner``).

    >>> import torch
    >>> from methods import GradientStats, MGDA
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> stats = GradientStats(J, torch.tensor([1.0, 1.0]))
    >>> [round(float(v), 4) for v in MGDA().weights(stats)]   # the min-norm point of [g_1, g_2] is (0, 1, 1)
    [0.6, 0.4]
    >>> [round(float(v), 4) for v in MGDA().aggregate(stats)]
    [0.0, 1.0, 1.0]
    """

    def __init__(self, epsilon: float = 1e-3, max_iters: int = 100, *, n_tasks: int | None = None,
                 fallback: Fallback = "previous") -> None:
        super().__init__(n_tasks, fallback=fallback)
        agg = require_torchjd(type(self).__name__, "aggregation")
        self.inner = agg.MGDAWeighting(epsilon=epsilon, max_iters=max_iters)

    def extra_repr(self) -> str:
        return f"epsilon={self.inner.epsilon:g}, max_iters={self.inner.max_iters}"


class PCGrad(GramianWeightingCombiner):
    r"""Projecting conflicting gradients (Yu et al., arXiv 2001.06782, Alg. 1; TorchJD's ``PCGradWeighting``).

    For each task i, :math:`g_i^{PC} \leftarrow g_i`, then for each other task j in a random order,
    if :math:`\langle g_i^{PC}, g_j \rangle < 0`: :math:`g_i^{PC} \leftarrow g_i^{PC} -
    \frac{\langle g_i^{PC}, g_j\rangle}{\|g_j\|^2} g_j`. The update is :math:`\sum_i g_i^{PC}`
    (the paper's **sum**; weights sum to about K).

    Randomness: TorchJD 0.18 draws the order with ``torch.randperm`` from the **global** torch RNG
    (as in the paper, a new order per task and per step); seed torch for reproducibility. With two
    tasks the order does not matter and the result is deterministic.

    >>> import torch
    >>> from methods import GradientStats, PCGrad
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> stats = GradientStats(J, torch.tensor([1.0, 1.0]))
    >>> [round(float(v), 4) for v in PCGrad().weights(stats)]   # 1 - <g_1, g_2> / ||g_i||^2 = 1 + 22/18, 1 + 22/38
    [2.2222, 1.5789]
    >>> [round(float(v), 4) for v in PCGrad().aggregate(stats)]
    [0.5848, 3.8012, 3.8012]
    """

    def __init__(self, *, n_tasks: int | None = None, fallback: Fallback = "previous") -> None:
        super().__init__(n_tasks, fallback=fallback)
        self.inner = require_torchjd(type(self).__name__, "aggregation").PCGradWeighting()


class CAGrad(GramianWeightingCombiner):
    r"""Conflict-averse gradient descent (Liu et al., arXiv 2110.14048, eq. 4 and Alg. 1).

    With :math:`g_0 = \frac1K \sum_i g_i` and :math:`\phi = c^2 \|g_0\|^2`,

    .. math:: w^\star = \arg\min_{w \in \Delta_K} g_w^\top g_0 + \sqrt\phi\, \|g_w\|, \quad
        d = \Big(g_0 + \frac{\sqrt\phi}{\|g_w\|} g_w\Big) / s,

    with :math:`s = 1 + c^2` (``rescale=1``, the default of the official code and Nash-MTL's port),
    :math:`s = 1` (``rescale=0``: TorchJD's ``CAGradWeighting``) or :math:`s = 1 + c` (``rescale=2``).
    The returned weights are those of d (mean convention: Nash-MTL's port multiplies d by K "to match
    the sum loss"). :math:`w^\star` is solved by cvxpy/Clarabel on the trace-normalized Gramian
    (TorchJD); the official code uses scipy's SLSQP.

    :param c: the radius factor; default ``0.4`` (arXiv 2110.14048's NYUv2/Cityscapes setting and the
        Nash-MTL code's default; TorchJD has no default).
    :param rescale: 0, 1 or 2 (see above).
    :param norm_eps: TorchJD's guard for a near-zero Jacobian.

    >>> import torch
    >>> from methods import GradientStats, CAGrad
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> stats = GradientStats(J, torch.tensor([1.0, 1.0]))
    >>> [round(float(v), 4) for v in CAGrad(c=0.4).weights(stats)]   # cvxpy solve of the problem above agrees
    [0.5718, 0.431]
    >>> [round(float(v), 4) for v in CAGrad(c=0.4).aggregate(stats)]
    [0.299, 1.0028, 1.0028]
    """

    def __init__(self, c: float = 0.4, *, rescale: Literal[0, 1, 2] = 1, norm_eps: float = 1e-4,
                 n_tasks: int | None = None, fallback: Fallback = "previous") -> None:
        if not c >= 0:
            raise ValueError(f"Parameter `c` should be non-negative. Found `c = {c}`.")
        if rescale not in (0, 1, 2):
            raise ValueError(f"Parameter `rescale` should be 0, 1 or 2. Found `rescale = {rescale!r}`.")
        super().__init__(n_tasks, fallback=fallback)
        agg = require_torchjd(type(self).__name__, "aggregation", extras=("cvxpy", "clarabel"))
        self.inner = agg.CAGradWeighting(c=c, norm_eps=norm_eps)
        self.c, self.rescale = float(c), int(rescale)

    def _compute(self, stats: GradientStats, /) -> Tensor:
        w = self.inner(stats.gramian)
        return w / {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]

    def extra_repr(self) -> str:
        return f"c={self.c:g}, rescale={self.rescale}"


class IMTLG(GramianWeightingCombiner):
    r"""Impartial MTL, gradient part (Liu et al., ICLR 2021, openreview IMPnRXEWpvr, eq. 6; TorchJD's ``IMTLGWeighting``).

    The update :math:`d = \sum_i w_i g_i`, :math:`\sum_i w_i = 1`, has equal projections on every
    unit task gradient: :math:`d^\top u_i = d^\top u_j`, :math:`u_i = g_i/\|g_i\|`. TorchJD's
    generalization (arXiv 2406.16232): :math:`v = G^{+} \sqrt{\mathrm{diag}(G)}`, :math:`w = v / \sum_i v_i`
    (zero weights if :math:`\sum_i v_i = 0`), which accepts linearly dependent gradients. The
    direction of d is invariant to a positive rescaling of any task's gradient (tested).

    >>> import torch
    >>> from methods import GradientStats, IMTLG
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> stats = GradientStats(J, torch.tensor([1.0, 1.0]))
    >>> d = IMTLG().aggregate(stats)
    >>> [round(float(v), 4) for v in d], [round(float(v), 4) for v in J @ d / stats.norms]   # equal d^T u_i
    ([0.0767, 1.0, 1.0], [0.3991, 0.3991])
    """

    def __init__(self, *, n_tasks: int | None = None, fallback: Fallback = "previous") -> None:
        super().__init__(n_tasks, fallback=fallback)
        self.inner = require_torchjd(type(self).__name__, "aggregation").IMTLGWeighting()


class AlignedMTL(GramianWeightingCombiner):
    r"""Aligned-MTL (Senushkin et al., arXiv 2305.19000, Alg. 1; TorchJD's ``AlignedMTLWeighting``).

    With the eigendecomposition :math:`G = V \Lambda V^\top` (rank r), the balance transform
    :math:`B = \sqrt{\lambda_{\text{scale}}}\, V \Lambda^{-1/2} V^\top` makes the aligned Jacobian's
    singular values equal; :math:`w = B\, p` with the preference :math:`p` (default :math:`1/K`).
    Equivalently :math:`d = \sigma_{\text{scale}}\, W U^\top p` with the SVD :math:`J = U \Sigma W^\top`.

    :param pref_vector: the preference p (default uniform 1/K).
    :param scale_mode: ``"min"`` (the paper's smallest singular value; default), ``"median"`` or
        ``"rmse"`` (the original code's mean eigenvalue).

    >>> import torch
    >>> from methods import GradientStats, AlignedMTL
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> stats = GradientStats(J, torch.tensor([1.0, 1.0]))
    >>> [round(float(v), 4) for v in AlignedMTL().aggregate(stats)]   # sigma_min W U^T p from the SVD of J
    [0.2133, 0.9673, 0.9673]
    """

    def __init__(self, pref_vector: Sequence[float] | Tensor | None = None, scale_mode: str = "min", *,
                 n_tasks: int | None = None, fallback: Fallback = "previous") -> None:
        if scale_mode not in ("min", "median", "rmse"):
            raise ValueError(f"Parameter `scale_mode` should be 'min', 'median' or 'rmse'. Found `scale_mode = {scale_mode!r}`.")
        p = None if pref_vector is None else torch.as_tensor(pref_vector, dtype=torch.get_default_dtype())
        super().__init__(n_tasks if p is None else (n_tasks or p.numel()), fallback=fallback)
        agg = require_torchjd(type(self).__name__, "aggregation")
        self.inner = agg.AlignedMTLWeighting(p, scale_mode=scale_mode)
        self.scale_mode = scale_mode

    def _compute(self, stats: GradientStats, /) -> Tensor:
        if self.inner.pref_vector is not None:
            self.inner.pref_vector = self.inner.pref_vector.to(stats.gramian)
        return self.inner(stats.gramian)

    def extra_repr(self) -> str:
        return f"scale_mode={self.scale_mode!r}"


class UPGrad(GramianWeightingCombiner):
    r"""Unconflicting projection of gradients (Quinton & Rey, arXiv 2406.16232, eq. 5; TorchJD's ``UPGradWeighting``).

    Each task gradient is projected onto the dual cone :math:`\{x : J x \ge 0\}` of all task
    gradients, and the projections are averaged with the preference p (default 1/K):
    :math:`w = \sum_i v^{(i)}`, :math:`v^{(i)} = \arg\min_{v \ge p_i e_i} v^\top G v` (quadprog on the
    trace-normalized Gramian, regularized by ``reg_eps``). The update never conflicts with a task
    gradient (:math:`J d \ge 0`).

    :param pref_vector: the preference p (default uniform 1/K).

    >>> import torch
    >>> from methods import GradientStats, UPGrad
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> stats = GradientStats(J, torch.tensor([1.0, 1.0]))
    >>> w = UPGrad().weights(stats)
    >>> [round(float(v), 3) for v in w], [round(float(v), 4) for v in J.T @ w]
    ([1.111, 0.789], [0.2929, 1.9004, 1.9004])
    >>> bool((J @ (J.T @ w) >= 0).all())   # no conflict with any task
    True
    """

    def __init__(self, pref_vector: Sequence[float] | Tensor | None = None, *, n_tasks: int | None = None,
                 fallback: Fallback = "previous") -> None:
        p = None if pref_vector is None else torch.as_tensor(pref_vector, dtype=torch.get_default_dtype())
        super().__init__(n_tasks if p is None else (n_tasks or p.numel()), fallback=fallback)
        agg = require_torchjd(type(self).__name__, "aggregation", extras=("qpsolvers", "quadprog"))
        self.inner = agg.UPGradWeighting(p)

    def _compute(self, stats: GradientStats, /) -> Tensor:
        if self.inner.pref_vector is not None:
            self.inner.pref_vector = self.inner.pref_vector.to(stats.gramian)
        return self.inner(stats.gramian)


class _SolveRecorder:
    """Delegates to a cvxpy problem; records the solver's exceptions on ``owner.solver_errors``."""

    def __init__(self, problem: Any, owner: Any) -> None:
        self._problem, self._owner = problem, owner

    def solve(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._problem.solve(*args, **kwargs)
        except Exception as err:
            self._owner.solver_errors.append(f"{type(err).__name__}: {err}")
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._problem, name)


@functools.cache
def _nash_weighting_class() -> type:
    from torchjd.aggregation._nash_mtl import _NashMTLWeighting  # TorchJD 0.18 internal, pinned

    class _RecordingNashMTLWeighting(_NashMTLWeighting):
        """TorchJD's Nash-MTL weighting whose ECOS failures (caught inside TorchJD) are recorded."""

        solver_errors: list[str]

        def _init_optim_problem(self) -> None:
            super()._init_optim_problem()
            self.prob = _SolveRecorder(self.prob, self)

    return _RecordingNashMTLWeighting


class NashMTL(WeightingCombiner):
    r"""Nash-MTL (Navon et al., arXiv 2202.01017, eq. 2 and Alg. 1; TorchJD's ``NashMTL`` weighting).

    The weights solve the bargaining condition :math:`G \alpha = 1/\alpha` (elementwise),
    :math:`\alpha > 0`, by a sequence of convex problems (CCP, at most ``optim_niter`` ECOS solves,
    warm-started from the previous step's :math:`\alpha`). The update :math:`J^\top\alpha` is then
    clipped to norm ``max_norm`` (the official code clips the shared gradient norm with
    ``clip_grad_norm_``; in representation mode the clip applies to the feature-space update norm).

    Stateful: the previous :math:`\alpha` and the step counter (``update_weights_every``: recompute the
    weights every N calls and reuse them in between). ``reset()`` restores a fresh instance.

    Solver failures: TorchJD catches ECOS's ``SolverError``/``ValueError`` and keeps the previous
    :math:`\alpha` (ones on the first step); we record it as ``last_info["fallback"] = {"reason": ...,
    "used": "previous-alpha (TorchJD)"}``. Other failures use the adapter's fallback.

    Defaults are the official code's: ``max_norm=1.0``, ``update_weights_every=1``, ``optim_niter=20``.

    :param n_tasks: K (required: the convex problem is built for K tasks).

    >>> import torch
    >>> from methods import GradientStats, NashMTL
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> stats = GradientStats(J, torch.tensor([1.0, 1.0]))
    >>> w = NashMTL(2, max_norm=0.0).weights(stats)   # no clipping
    >>> [round(float(v), 3) for v in w], [round(float(v), 3) for v in w * (stats.gramian @ w)]   # alpha_i (G alpha)_i = 1
    ([0.591, 0.407], [1.0, 1.0])
    """

    def __init__(self, n_tasks: int, *, max_norm: float = 1.0, update_weights_every: int = 1,
                 optim_niter: int = 20, fallback: Fallback = "previous") -> None:
        if not isinstance(n_tasks, int) or n_tasks < 1:
            raise ValueError(f"Parameter `n_tasks` should be a positive int. Found `n_tasks = {n_tasks!r}`.")
        super().__init__(n_tasks, fallback=fallback)
        require_torchjd(type(self).__name__, "aggregation", extras=("cvxpy", "ecos"))
        self.inner = _nash_weighting_class()(n_tasks=n_tasks, max_norm=max_norm,
                                             update_weights_every=update_weights_every, optim_niter=optim_niter)
        self.inner.solver_errors = []

    def _compute(self, stats: GradientStats, /) -> Tensor:
        self.inner.solver_errors = []
        with warnings.catch_warnings():  # cvxpy: "problem is not DPP" on every solve (TorchJD's formulation)
            warnings.filterwarnings("ignore", message=".*not DPP.*")
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="cvxpy")  # 1/0 on zero rows
            return self.inner(stats.jacobian)

    def _extra_info(self) -> dict[str, Any]:
        errors = self.inner.solver_errors
        if not errors:
            return {}
        return {"fallback": {"reason": errors[0], "used": "previous-alpha (TorchJD)", "n_failed_solves": len(errors)}}

    def _state(self) -> dict[str, Any]:
        n = self.inner
        return {"step": float(n.step), "prvs_alpha": n.prvs_alpha.copy(),
                "normalization_factor": n.normalization_factor.copy()}

    def _load_state(self, state: dict[str, Any]) -> None:
        n = self.inner
        if "step" not in state:
            return
        n.reset()
        n.step, n.prvs_alpha = state["step"], state["prvs_alpha"].copy()
        n.normalization_factor = state["normalization_factor"].copy()
        if n.step > 0:  # the convex problem is built on the first call; rebuild it for the loaded state
            n._init_optim_problem()

    def extra_repr(self) -> str:
        n = self.inner
        return (f"n_tasks={self.n_tasks}, max_norm={n.max_norm:g}, update_weights_every={n.update_weights_every}, "
                f"optim_niter={n.optim_niter}")
