r"""NMT's per-batch multiplier object: a priority-constrained, re-scaled Lagrangian scalarizer.

Paper: Z. Cheng, Y. Huang, Z. Zhang, D. Ou, Q. Liu, "No More Tuning: Prioritized Multi-Task Learning
with Lagrangian Differential Multiplier Methods", arXiv 2412.12092 (AAAI 2025). The paper's body is not
available to us: every formula below is tagged [paper], [reconstructed] or [decision] as in the project
spec ``specs/nmt.md`` (§1, §2.2, §2.4). No equation numbers can be cited.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import torch
from torch import Tensor

from .._core import LossCombiner

__all__ = ["NMTConfig", "PriorityLagrangian", "Ascent", "Violation"]

Ascent = Literal["sgd", "adam"]
Violation = Literal["absolute", "relative"]
_REL_FLOOR = 1e-8  # u_i = v_i / max(|eps_i|, 1e-8) in "relative" mode [decision]


def _check_nonneg(name: str, value: float, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"Parameter `{name}` should be a finite number. Found `{name} = {value!r}`.")
    if positive and value <= 0:
        raise ValueError(f"Parameter `{name}` should be positive. Found `{name} = {value!r}`.")
    if value < 0:
        raise ValueError(f"Parameter `{name}` should be non-negative. Found `{name} = {value!r}`.")
    return float(value)


@dataclass
class NMTConfig:
    """Every hyper-parameter of NMT (spec table §2.4), with its default and provenance tag.

    :ivar rho: relative slack ρ in ε_i = (1+ρ)·p̂_i + δ. Default 0 [paper] (summary: "not below its
        optimal value"); 0.01 is the spec's ablation.
    :ivar delta: absolute slack δ. Default 0 [decision].
    :ivar threshold_measure: ``"train_pass"`` (a no-grad train-mode pass over the train loader at the
        selected checkpoint, buffers restored) or ``"epoch_mean"`` (the mean train loss logged during the
        selected epoch). Default ``"train_pass"`` [decision].
    :ivar carry_lambda: carry the multipliers of stage k−1 into stage k (new constraint starts at 0).
        Default ``False``: λ is reset to 0 at every stage [reconstructed]/[decision].
    :ivar lambda_max: cap on every λ_i, or ``None`` (no cap). Default ``None`` [decision].
    :ivar rescale: divide the Lagrangian by 1 + Σλ. Default ``True`` [reconstructed].
    :ivar ascent: ``"sgd"`` (projected gradient ascent) or ``"adam"``. Default ``"sgd"`` [reconstructed].
    :ivar eta_lambda: multiplier step η_λ, a positive float or ``"tied"`` (= the θ learning rate, the literal
        reading of "no extra hyper-parameters"). Default 1.0 [decision], from the spec's two-task pilot.
    :ivar violation: ``"absolute"`` (u = v) or ``"relative"`` (u = v/|ε|). Default ``"absolute"``
        [decision]; the spec's §4 runs use ``"relative"``.
    :ivar damping: MDMM-style damping c ≥ 0 adding (c/2)·Σ relu(v_i)² to the objective. Default 0 [decision].
    :ivar violation_ema: EMA factor β ∈ [0, 1) applied to u before the ascent step, or ``None``. Default
        ``None`` [decision].
    :ivar update_order: ``"simultaneous"`` (λ step on the violation measured before the θ step, same batch)
        or ``"alternating"`` (λ step on the violation re-measured on the same batch after the θ step).
        Default ``"simultaneous"`` [decision].
    :ivar stage_start: ``"warm"`` (stage k starts from θ*_{k−1}) or ``"cold"`` (from the initial θ). Default
        ``"warm"`` [reconstructed]/[decision].
    :ivar tol_sel: selection tolerance in metric units (§2.1 ``select``). Default 0 [decision].
    :ivar max_epochs: epochs per stage. Default 20 (synthetic data) [decision].
    :ivar patience: early-stopping patience in epochs on the stage's selection score. Default 2 [decision].
    :ivar single_run: NMT-1R, an extension that is **not in the paper** (§2.3): every constraint task is
        trained alone from the initial θ, ε_i = (1+rho_1r)·p̂_i, and the last task is trained once from the
        initial θ with all multipliers active. Default ``False`` [decision].
    :ivar rho_1r: the slack of NMT-1R (must be > 0). Default 0.02 [decision].
    :ivar trace_every: record (stage, step, λ, v, losses) every this many steps. Default 1 [decision].

    >>> from methods.nmt import NMTConfig, PriorityLagrangian
    >>> cfg = NMTConfig(eta_lambda=0.5, violation="relative")
    >>> mult = PriorityLagrangian(1, thresholds=[0.2], **cfg.multiplier_kwargs())
    >>> mult.eta_lambda, mult.violation, NMTConfig.from_dict(cfg.to_dict()) == cfg
    (0.5, 'relative', True)
    >>> NMTConfig(patience=0)
    Traceback (most recent call last):
        ...
    ValueError: Parameter `patience` should be a positive integer. Found `patience = 0`.
    """

    rho: float = 0.0
    delta: float = 0.0
    threshold_measure: Literal["train_pass", "epoch_mean"] = "train_pass"
    carry_lambda: bool = False
    lambda_max: float | None = None
    rescale: bool = True
    ascent: Ascent = "sgd"
    eta_lambda: float | Literal["tied"] = 1.0
    violation: Violation = "absolute"
    damping: float = 0.0
    violation_ema: float | None = None
    update_order: Literal["simultaneous", "alternating"] = "simultaneous"
    stage_start: Literal["warm", "cold"] = "warm"
    tol_sel: float = 0.0
    max_epochs: int = 20
    patience: int = 2
    single_run: bool = False
    rho_1r: float = 0.02
    trace_every: int = 1

    def __post_init__(self) -> None:
        _check_nonneg("rho", self.rho)
        _check_nonneg("delta", self.delta)
        _check_nonneg("tol_sel", self.tol_sel)
        _check_nonneg("damping", self.damping)
        _check_nonneg("rho_1r", self.rho_1r, positive=True)
        if self.threshold_measure not in ("train_pass", "epoch_mean"):
            raise ValueError(
                "Parameter `threshold_measure` should be 'train_pass' or 'epoch_mean'. "
                f"Found `threshold_measure = {self.threshold_measure!r}`."
            )
        if self.update_order not in ("simultaneous", "alternating"):
            raise ValueError(
                f"Parameter `update_order` should be 'simultaneous' or 'alternating'. Found `update_order = {self.update_order!r}`."
            )
        if self.stage_start not in ("warm", "cold"):
            raise ValueError(f"Parameter `stage_start` should be 'warm' or 'cold'. Found `stage_start = {self.stage_start!r}`.")
        for name in ("max_epochs", "patience", "trace_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Parameter `{name}` should be a positive integer. Found `{name} = {value!r}`.")
        # The multiplier options are validated by PriorityLagrangian itself.
        PriorityLagrangian(1, **self.multiplier_kwargs(theta_lr=1.0))

    def multiplier_kwargs(self, *, theta_lr: float | None = None) -> dict[str, Any]:
        """The keyword arguments of :class:`PriorityLagrangian` that this config fixes."""
        return {
            "eta_lambda": self.eta_lambda, "rescale": self.rescale, "violation": self.violation,
            "damping": self.damping, "violation_ema": self.violation_ema, "lambda_max": self.lambda_max,
            "ascent": self.ascent, "theta_lr": theta_lr, "update_order": self.update_order,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NMTConfig:
        """Build from a dict, rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Unknown NMTConfig keys {unknown}; known keys are {sorted(known)}.")
        return cls(**d)


class PriorityLagrangian(LossCombiner):
    r"""Re-scaled Lagrangian of one NMT stage, with projected multiplier ascent in ``after_step``.

    Stage k of NMT (arXiv 2412.12092) minimizes the stage's own loss :math:`L_k` subject to every
    higher-priority loss staying at its optimum, :math:`L_i \le \varepsilon_i` for :math:`i<k` [paper].
    With :math:`m = k-1` constraints and multipliers :math:`\lambda \in \mathbb{R}^m_{\ge 0}`:

    .. math::

        v_i &= \ell_i - \varepsilon_i \qquad \text{(violations, detached)} \\
        J &= \ell_k + \textstyle\sum_i \lambda_i v_i
            \;+\; \tfrac{c}{2}\sum_i \operatorname{relu}(v_i)^2 \qquad [\text{reconstructed; damping } c \text{ [decision]}] \\
        \tilde J &= J / (1 + \textstyle\sum_i \lambda_i) \qquad [\text{reconstructed re-scaling, on by default}]

    so that (for :math:`c = 0`) :math:`\nabla_\theta \tilde J = \sum_j w_j \nabla \ell_j` with weights on the
    simplex :math:`w = (\lambda_1, \dots, \lambda_m, 1)/(1+\sum\lambda)` (:meth:`weights`). λ enters as a
    constant: it never holds an autograd graph. After the optimizer step the multipliers ascend on
    :math:`\partial \mathcal L/\partial\lambda_i = v_i` (never on :math:`\partial\tilde J/\partial\lambda`):

    .. math::

        u_i &= v_i \;\text{("absolute")} \quad\text{or}\quad u_i = v_i/\max(|\varepsilon_i|, 10^{-8})
            \;\text{("relative")} \qquad [\text{decision}] \\
        u &\leftarrow \beta\,u_{\text{prev}} + (1-\beta)\,u \quad\text{if an EMA } \beta \text{ is set (first value taken as is)} \\
        \lambda_i &\leftarrow \min\bigl(\max(\lambda_i + \eta_\lambda u_i, 0), \lambda_{\max}\bigr) \quad \text{("sgd")}
            \quad\text{or an Adam ascent step on } u \text{ ("adam")}

    Losses are passed **in priority order**: ``combine(losses)`` with ``losses = (ℓ_1, …, ℓ_m, ℓ_k)``,
    the constrained higher-priority losses first and the stage's objective last. ``combine`` stores the
    violations; the λ step runs in :meth:`after_step` (which the trainer and ``JointStep`` call after
    ``optimizer.step()``) or explicitly through :meth:`update`. With ``update_order="alternating"`` the
    violation is re-measured after the θ step through the hook's ``recompute()``.

    Defaults and sources (spec §2.4): η_λ = 1.0 [decision, from a two-task pilot; ``"tied"`` to the θ
    learning rate is the literal "no extra hyper-parameters" reading]; rescale on [reconstructed];
    "sgd" ascent [reconstructed]; "absolute" violations [decision]; damping 0, no EMA, no cap [decision];
    λ starts at 0 [reconstructed]. Departure from the paper: all of the above is a reconstruction; no
    public code exists.

    :param n_constraints: m ≥ 1, the number of higher-priority (constrained) tasks.
    :param thresholds: ε of shape (m,), or ``None`` to set later with :meth:`set_thresholds`.
    :param eta_lambda: η_λ > 0, or ``"tied"`` (then ``theta_lr`` is required).
    :param rescale: divide by 1 + Σλ.
    :param violation: ``"absolute"`` or ``"relative"``.
    :param damping: c ≥ 0.
    :param violation_ema: β ∈ [0, 1) or ``None``.
    :param lambda_max: cap > 0 or ``None``.
    :param ascent: ``"sgd"`` or ``"adam"``.
    :param adam_betas: Adam's (β₁, β₂) for ``ascent="adam"``; default (0.9, 0.999) (Kingma & Ba).
    :param adam_eps: Adam's ε; default 1e-8.
    :param theta_lr: the θ learning rate, used only when ``eta_lambda="tied"``.
    :param update_order: ``"simultaneous"`` or ``"alternating"`` (see above).
    :param record_history: keep λ after every update in :attr:`history`.
    :param device: device of the multiplier state (moves with ``.to``); computations follow the losses.
    :param dtype: dtype of the multiplier state; default float32.

    Example (one constraint, K = 2 tasks in priority order, loss-level step):

    >>> import torch
    >>> theta = torch.zeros(2, requires_grad=True)
    >>> a, b = torch.tensor([0.0, 0.0]), torch.tensor([2.0, 1.0])
    >>> mult = PriorityLagrangian(1, thresholds=[0.1], eta_lambda=0.1)
    >>> opt = torch.optim.SGD([theta], lr=0.1)
    >>> for _ in range(2000):
    ...     losses = torch.stack([((theta - a) ** 2).sum(), ((theta - b) ** 2).sum()])
    ...     opt.zero_grad(); mult(losses).backward(); opt.step(); _ = mult.update()
    >>> round(float(mult.lambdas[0]), 2)   # closed form d/sqrt(eps) - 1 = 6.07107
    6.07
    >>> [round(w, 2) for w in mult.weights().tolist()]   # (lambda, 1)/(1 + lambda)
    [0.86, 0.14]
    """

    def __init__(
        self,
        n_constraints: int,
        *,
        thresholds: Sequence[float] | Tensor | None = None,
        eta_lambda: float | Literal["tied"] = 1.0,
        rescale: bool = True,
        violation: Violation = "absolute",
        damping: float = 0.0,
        violation_ema: float | None = None,
        lambda_max: float | None = None,
        ascent: Ascent = "sgd",
        adam_betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        theta_lr: float | None = None,
        update_order: Literal["simultaneous", "alternating"] = "simultaneous",
        record_history: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if isinstance(n_constraints, bool) or not isinstance(n_constraints, int) or n_constraints < 1:
            raise ValueError(f"Parameter `n_constraints` should be a positive integer. Found `n_constraints = {n_constraints!r}`.")
        super().__init__(n_tasks=n_constraints + 1)
        if eta_lambda == "tied":
            if theta_lr is None:
                raise ValueError("Parameter `theta_lr` is required when `eta_lambda = 'tied'`. Found `theta_lr = None`.")
            _check_nonneg("theta_lr", theta_lr, positive=True)
            step = float(theta_lr)
        else:
            step = _check_nonneg("eta_lambda", eta_lambda, positive=True)  # type: ignore[arg-type]
        if not isinstance(rescale, bool):
            raise TypeError(f"Parameter `rescale` should be a bool. Found `rescale = {rescale!r}`.")
        if violation not in ("absolute", "relative"):
            raise ValueError(f"Parameter `violation` should be 'absolute' or 'relative'. Found `violation = {violation!r}`.")
        if ascent not in ("sgd", "adam"):
            raise ValueError(f"Parameter `ascent` should be 'sgd' or 'adam'. Found `ascent = {ascent!r}`.")
        if update_order not in ("simultaneous", "alternating"):
            raise ValueError(f"Parameter `update_order` should be 'simultaneous' or 'alternating'. Found `update_order = {update_order!r}`.")
        _check_nonneg("damping", damping)
        if violation_ema is not None:
            _check_nonneg("violation_ema", violation_ema)
            if violation_ema >= 1:
                raise ValueError(f"Parameter `violation_ema` should be in [0, 1) or None. Found `violation_ema = {violation_ema!r}`.")
        if lambda_max is not None:
            _check_nonneg("lambda_max", lambda_max, positive=True)
        b1, b2 = adam_betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Parameter `adam_betas` should lie in [0, 1)². Found `adam_betas = {adam_betas!r}`.")
        _check_nonneg("adam_eps", adam_eps, positive=True)
        if not dtype.is_floating_point:
            raise TypeError(f"Parameter `dtype` should be a floating dtype. Found `dtype = {dtype}`.")

        self.n_constraints = n_constraints
        self.eta_lambda = eta_lambda
        self.theta_lr = theta_lr
        self._step_size = step
        self.rescale = rescale
        self.violation = violation
        self.damping = float(damping)
        self.violation_ema = None if violation_ema is None else float(violation_ema)
        self.lambda_max = None if lambda_max is None else float(lambda_max)
        self.ascent = ascent
        self.adam_betas = (float(b1), float(b2))
        self.adam_eps = float(adam_eps)
        self.update_order = update_order
        self.record_history = record_history
        m = n_constraints
        kw = {"device": device, "dtype": dtype}
        self.register_buffer("lambdas_", torch.zeros(m, **kw))
        self.register_buffer("thresholds_", torch.full((m,), float("nan"), **kw))
        self.register_buffer("ema_", torch.zeros(m, **kw))
        self.register_buffer("adam_m_", torch.zeros(m, **kw))
        self.register_buffer("adam_v_", torch.zeros(m, **kw))
        self._n_updates = 0
        self._ema_started = False
        self._has_thresholds = False
        self._pending: Tensor | None = None
        self.history: list[list[float]] = []
        if thresholds is not None:
            self.set_thresholds(thresholds)

    # ------------------------------------------------------------------ state
    @property
    def lambdas(self) -> Tensor:
        """The multipliers λ (m,), detached (a copy)."""
        return self.lambdas_.detach().clone()

    @property
    def thresholds(self) -> Tensor:
        """The thresholds ε (m,); raises if none were set."""
        if not self._has_thresholds:
            raise ValueError("PriorityLagrangian has no thresholds: pass `thresholds=` or call `set_thresholds(eps)`.")
        return self.thresholds_.detach().clone()

    @property
    def n_updates(self) -> int:
        """How many multiplier updates ran since construction or the last :meth:`reset`."""
        return self._n_updates

    def set_thresholds(self, thresholds: Sequence[float] | Tensor) -> None:
        """Set ε (m,), finite; used by :meth:`combine` and the "relative" scale."""
        eps = torch.as_tensor(thresholds, dtype=self.thresholds_.dtype).reshape(-1).to(self.thresholds_.device)
        if eps.numel() != self.n_constraints:
            raise ValueError(
                f"Parameter `thresholds` should have one entry per constraint ({self.n_constraints}). "
                f"Found `thresholds = {eps.tolist()}`."
            )
        if not bool(torch.isfinite(eps).all()):
            raise ValueError(f"Parameter `thresholds` should be finite. Found `thresholds = {eps.tolist()}`.")
        self.thresholds_.copy_(eps)
        self._has_thresholds = True

    def set_lambdas(self, lambdas: Sequence[float] | Tensor) -> None:
        """Overwrite λ (m,) with non-negative finite values (e.g. to carry them across stages)."""
        lam = torch.as_tensor(lambdas, dtype=self.lambdas_.dtype).reshape(-1).to(self.lambdas_.device)
        if lam.numel() != self.n_constraints or not bool(torch.isfinite(lam).all()) or bool((lam < 0).any()):
            raise ValueError(
                f"Parameter `lambdas` should hold {self.n_constraints} finite non-negative values. Found `lambdas = {lam.tolist()}`."
            )
        self.lambdas_.copy_(lam if self.lambda_max is None else lam.clamp_max(self.lambda_max))

    def reset(self) -> None:
        """λ = 0, EMA and Adam moments cleared, history emptied (ε is configuration and is kept)."""
        for buf in (self.lambdas_, self.ema_, self.adam_m_, self.adam_v_):
            buf.zero_()
        self._n_updates = 0
        self._ema_started = False
        self._pending = None
        self.history = []
        self.last_info = {}

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "n_updates": self._n_updates, "ema_started": self._ema_started,
            "has_thresholds": self._has_thresholds, "history": [list(h) for h in self.history],
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._n_updates = int(state["n_updates"])
        self._ema_started = bool(state["ema_started"])
        self._has_thresholds = bool(state["has_thresholds"])
        self.history = [list(h) for h in state["history"]]
        self._pending = None

    # ------------------------------------------------------------ the scalar
    def weights(self) -> Tensor:
        r"""Weights :math:`(\lambda_1, \dots, \lambda_m, 1)/(1+\sum\lambda)` of the losses in ``combine``'s
        order (with ``rescale=False`` the unnormalized :math:`(\lambda, 1)`); damping not included."""
        lam = self.lambdas_.detach()
        w = torch.cat([lam, torch.ones(1, dtype=lam.dtype, device=lam.device)])
        return w / (1 + lam.sum()) if self.rescale else w

    def objective(
        self, obj_loss: Tensor, con_losses: Sequence[Tensor] | Tensor, thresholds: Sequence[float] | Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Return ``(J̃, v)``: the scalar to back-propagate and the detached violations ``v = ℓ_con − ε``.

        ``v`` is also stored for the next :meth:`update` / :meth:`after_step`.
        """
        if not isinstance(obj_loss, Tensor) or obj_loss.numel() != 1:
            raise ValueError(f"Parameter `obj_loss` should be a scalar tensor. Found `{obj_loss!r}`.")
        con = con_losses if isinstance(con_losses, Tensor) else torch.stack([torch.as_tensor(c) for c in con_losses])
        con = con.reshape(-1)
        if con.numel() != self.n_constraints:
            raise ValueError(
                f"Parameter `con_losses` should hold {self.n_constraints} losses. Found {con.numel()}."
            )
        if thresholds is not None:
            self.set_thresholds(thresholds)
        eps = self.thresholds.to(device=con.device, dtype=con.dtype)
        lam = self.lambdas_.detach().to(device=con.device, dtype=con.dtype)
        v = con - eps
        j = obj_loss.reshape(()) + (lam * v).sum()
        if self.damping > 0:
            j = j + 0.5 * self.damping * torch.relu(v).pow(2).sum()
        if self.rescale:
            j = j / (1 + lam.sum())
        v_det = v.detach().clone()
        self._pending = v_det
        self.last_info = {
            "lambdas": lam.tolist(),
            "violations": v_det.tolist(),
            "weights": self.weights().tolist(),
        }
        return j, v_det

    def combine(self, losses: Tensor, /) -> Tensor:
        """``losses = (ℓ_1, …, ℓ_m, ℓ_k)`` in priority order → J̃ (see the class docstring)."""
        j, _ = self.objective(losses[-1], losses[:-1])
        return j

    # ------------------------------------------------------------ the ascent
    def after_step(self, recompute: Callable[[], Tensor]) -> None:
        """The trainer's hook: λ step on the stored violation ("simultaneous") or on the violation
        re-measured after the θ step through ``recompute()`` ("alternating")."""
        if self.update_order == "alternating":
            losses = recompute().detach()
            self.update(losses[:-1] - self.thresholds.to(losses))
        else:
            self.update()

    @torch.no_grad()
    def update(self, v: Tensor | Sequence[float] | None = None) -> Tensor:
        """One projected ascent step on λ with violation ``v`` (default: the one stored by the last
        :meth:`objective`/:meth:`combine`). Returns the new λ (a copy)."""
        if v is None:
            if self._pending is None:
                raise ValueError("No violation to update with: call `combine`/`objective` first or pass `v`.")
            v = self._pending
        v_t = torch.as_tensor(v).detach().reshape(-1).to(device=self.lambdas_.device, dtype=self.lambdas_.dtype)
        if v_t.numel() != self.n_constraints:
            raise ValueError(f"Parameter `v` should hold {self.n_constraints} violations. Found `v = {v_t.tolist()}`.")
        if not bool(torch.isfinite(v_t).all()):
            raise ValueError(f"Violations should be finite. Found `v = {v_t.tolist()}`.")
        u = v_t
        if self.violation == "relative":
            u = u / self.thresholds_.abs().clamp_min(_REL_FLOOR)
        if self.violation_ema is not None:
            if self._ema_started:
                self.ema_.mul_(self.violation_ema).add_((1 - self.violation_ema) * u)
            else:
                self.ema_.copy_(u)
                self._ema_started = True
            u = self.ema_.clone()
        self._n_updates += 1
        if self.ascent == "sgd":
            step = self._step_size * u
        else:
            b1, b2 = self.adam_betas
            self.adam_m_.mul_(b1).add_((1 - b1) * u)
            self.adam_v_.mul_(b2).add_((1 - b2) * u * u)
            m_hat = self.adam_m_ / (1 - b1**self._n_updates)
            v_hat = self.adam_v_ / (1 - b2**self._n_updates)
            step = self._step_size * m_hat / (v_hat.sqrt() + self.adam_eps)
        lam = (self.lambdas_ + step).clamp_min(0)
        if self.lambda_max is not None:
            lam = lam.clamp_max(self.lambda_max)
        self.lambdas_.copy_(lam)
        self._pending = None
        if self.record_history:
            self.history.append(lam.tolist())
        return lam.clone()

    def extra_repr(self) -> str:
        parts = [f"n_constraints={self.n_constraints}", f"eta_lambda={self.eta_lambda!r}"]
        if not self.rescale:
            parts.append("rescale=False")
        if self.violation != "absolute":
            parts.append(f"violation={self.violation!r}")
        if self.damping:
            parts.append(f"damping={self.damping}")
        if self.violation_ema is not None:
            parts.append(f"violation_ema={self.violation_ema}")
        if self.lambda_max is not None:
            parts.append(f"lambda_max={self.lambda_max}")
        if self.ascent != "sgd":
            parts.append(f"ascent={self.ascent!r}")
        if self.update_order != "simultaneous":
            parts.append(f"update_order={self.update_order!r}")
        return ", ".join(parts)
