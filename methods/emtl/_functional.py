r"""Pure functions of EMTL (arXiv 2306.09373) on detached tensors: no autograd inside.

Notation (spec ``emtl.md`` §1). T tasks, losses :math:`L_i \ge 0`, raw gradient norms
:math:`n_i = \|g_i\|_2` of the task gradients on the shared parameters (or on the representation).

* relative contribution [paper/reconstructed, reading A]: :math:`r_i = L_i / (n_i + \varepsilon)`;
* normalised contribution [derived]: :math:`\rho_i = r_i / \bar r`, :math:`\bar r = \frac1T\sum_j r_j`;
* inequity [reconstructed]: :math:`\mathrm{Var}_T(r) = \frac1T\sum_i (r_i-\bar r)^2`, and the
  scale-free companions [decision] :math:`\mathrm{CV}^2(r) = \mathrm{Var}_T(r)/\bar r^2` and
  :math:`\mathrm{Var}_T(\log r)`.

Every computation runs in float64 on the inputs' device; results come back in the input dtype.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = [
    "Variant",
    "Base",
    "InequityKind",
    "relative_contributions",
    "inequity",
    "regularizer_weights",
    "emtl_weights",
    "imtl_weights",
    "r2_weights",
]

Variant = Literal["raw", "cv", "log"]
Base = Literal["sum", "mean", "log", "imtl"]
InequityKind = Literal["var", "cv2", "logvar"]

VARIANTS: tuple[str, ...] = ("raw", "cv", "log")
BASES: tuple[str, ...] = ("sum", "mean", "log", "imtl")


def _vector(x: Tensor, name: str, n: int | None = None) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"Parameter `{name}` should be a Tensor of shape (T,). Found `{type(x).__name__}`.")
    if x.dim() != 1 or x.numel() == 0:
        raise ValueError(f"Parameter `{name}` should be a non-empty 1-D tensor. Found `{name}.shape = {tuple(x.shape)}`.")
    if n is not None and x.numel() != n:
        raise ValueError(f"Parameter `{name}` should have {n} entries (one per task). Found `{name}.shape = {tuple(x.shape)}`.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"Parameter `{name}` should be finite. Found `{name} = {x.tolist()}`.")
    return x


def _nonneg(x: float, name: str) -> float:
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x) or x < 0:
        raise ValueError(f"Parameter `{name}` should be a finite non-negative number. Found `{name} = {x!r}`.")
    return float(x)


def relative_contributions(losses: Tensor, grad_norms: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Relative contributions :math:`r_i = L_i / (n_i + \varepsilon)` (reading A, spec §1) [reconstructed].

    :param losses: ``(T,)`` non-negative finite losses (detached or not; the result is detached).
    :param grad_norms: ``(T,)`` non-negative finite raw gradient norms.
    :param eps: :math:`\varepsilon \ge 0` keeping :math:`n_i = 0` finite (default 1e-8, spec §3.4).
    :raises ValueError: on shape mismatch, non-finite or negative entries, or a zero norm with ``eps = 0``.
    """
    losses = _vector(losses.detach() if isinstance(losses, Tensor) else losses, "losses")
    grad_norms = _vector(grad_norms.detach() if isinstance(grad_norms, Tensor) else grad_norms, "grad_norms", losses.numel())
    eps = _nonneg(eps, "eps")
    if bool((losses < 0).any()):
        raise ValueError(
            f"Relative contributions need non-negative losses (shift each loss by its lower bound). "
            f"Found `losses = {losses.tolist()}`."
        )
    if bool((grad_norms < 0).any()):
        raise ValueError(f"Parameter `grad_norms` should be non-negative. Found `grad_norms = {grad_norms.tolist()}`.")
    den = grad_norms.double() + eps
    if bool((den == 0).any()):
        raise ValueError(f"A gradient norm is 0 and `eps = 0`: r = L/n is undefined. Found `grad_norms = {grad_norms.tolist()}`.")
    return (losses.double() / den).to(losses.dtype)


def inequity(r: Tensor, kind: InequityKind = "var") -> Tensor:
    r"""Inequity of the relative contributions ``r`` (population statistics over the T tasks).

    * ``"var"``: :math:`\mathrm{Var}_T(r) = \frac1T\sum_i (r_i - \bar r)^2` [reconstructed];
    * ``"cv2"``: :math:`\mathrm{Var}_T(r) / \bar r^2` [decision] (0 when :math:`\bar r = 0`);
    * ``"logvar"``: :math:`\mathrm{Var}_T(\log r)` [decision] (needs :math:`r > 0`).

    :returns: a 0-d tensor in ``r``'s dtype.
    """
    r = _vector(r.detach(), "r")
    x = r.double()
    if kind == "var":
        out = ((x - x.mean()) ** 2).mean()
    elif kind == "cv2":
        m = x.mean()
        out = ((x - m) ** 2).mean() / (m**2) if float(m) != 0.0 else torch.zeros((), dtype=x.dtype, device=x.device)
    elif kind == "logvar":
        if bool((x <= 0).any()):
            raise ValueError(f"`kind='logvar'` needs positive relative contributions. Found `r = {r.tolist()}`.")
        lx = x.log()
        out = ((lx - lx.mean()) ** 2).mean()
    else:
        raise ValueError(f"Parameter `kind` should be 'var', 'cv2' or 'logvar'. Found `kind = {kind!r}`.")
    return out.to(r.dtype)


def regularizer_weights(losses: Tensor, grad_norms: Tensor, variant: Variant = "cv", *, eps: float = 1e-8,
                        r: Tensor | None = None) -> Tensor:
    r"""Weights :math:`\partial \mathrm{Reg}/\partial L_i` of the stop-gradient regulariser (spec §3.1) [derived].

    With :math:`\tilde r_i = L_i/\mathrm{sg}(n_i)` the gradient of Reg is :math:`\sum_i v_i \nabla L_i`,
    where (the factor :math:`2/T` included, :math:`\nu_i = n_i + \varepsilon`):

    * ``raw``, Reg :math:`= \mathrm{Var}_T(\tilde r)`: :math:`v_i = \frac2T (r_i - \bar r)/\nu_i
      = \frac2T \bar r^2 \rho_i(\rho_i-1)/L_i`;
    * ``cv``, Reg :math:`= \mathrm{Var}_T(\tilde r)/\mathrm{sg}(\bar r)^2`: :math:`v_i = \frac2T
      (\rho_i-1)/(\nu_i \bar r) = \frac2T \rho_i(\rho_i-1)/L_i`;
    * ``log``, Reg :math:`= \mathrm{Var}_T(\log L_i - \log \mathrm{sg}(\nu_i))`: :math:`v_i = \frac2T
      (\log\rho_i - \overline{\log\rho})/L_i`.

    The ``raw``/``cv`` forms use :math:`\nu_i` in the denominator, so a zero loss stays finite. ``cv``
    gives 0 when :math:`\bar r = 0`; ``log`` needs every :math:`L_i > 0`.

    :param r: optional relative contributions to use instead of :math:`L/\nu` (EMA-smoothed r); the
        regulariser is then evaluated at these r, divided by the current :math:`\nu_i` / :math:`L_i`.
    :returns: ``(T,)`` float64 tensor.
    """
    losses = _vector(losses.detach(), "losses").double()
    nu = _vector(grad_norms.detach(), "grad_norms", losses.numel()).double() + _nonneg(eps, "eps")
    t = losses.numel()
    rr = relative_contributions(losses, nu - eps, eps).double() if r is None else _vector(r.detach(), "r", t).double()
    mean = rr.mean()
    if variant == "raw":
        return (2.0 / t) * (rr - mean) / nu
    if variant == "cv":
        if float(mean) == 0.0:
            return torch.zeros_like(rr)
        return (2.0 / t) * (rr / mean - 1.0) / (nu * mean)
    if variant == "log":
        if bool((losses <= 0).any()) or bool((rr <= 0).any()):
            raise ValueError(f"Variant 'log' needs positive losses. Found `losses = {losses.tolist()}`.")
        lr = rr.log()
        return (2.0 / t) * (lr - lr.mean()) / losses
    raise ValueError(f"Parameter `variant` should be 'raw', 'cv' or 'log'. Found `variant = {variant!r}`.")


def imtl_weights(gramian: Tensor) -> Tensor:
    r"""IMTL-G weights :math:`\alpha` from the Gramian :math:`G = JJ^\top` (Liu et al., ICLR 2021) [reconstructed].

    The direction :math:`d = \sum_j \alpha_j g_j` with :math:`\sum_j \alpha_j = 1` has equal
    projections :math:`u_i \cdot d` on every unit task gradient :math:`u_i = g_i/n_i`. With task T as
    the reference, :math:`d = g_T + \sum_{j<T} \alpha_j (g_j - g_T)` and the conditions
    :math:`(u_i - u_T)\cdot d = 0`, :math:`i < T`, form a (T-1)×(T-1) linear system, all of whose
    entries are
    expressed through G and the norms :math:`n_i = \sqrt{G_{ii}}` (float64; least squares if singular).
    """
    if gramian.dim() != 2 or gramian.shape[0] != gramian.shape[1]:
        raise ValueError(f"Parameter `gramian` should be square (T, T). Found `gramian.shape = {tuple(gramian.shape)}`.")
    g = gramian.detach().double()
    t = g.shape[0]
    if t == 1:
        return torch.ones(1, dtype=gramian.dtype, device=gramian.device)
    n = g.diagonal().clamp_min(0).sqrt().clamp_min(1e-30)
    gu = g / n.unsqueeze(0)  # gu[a, b] = g_a · u_b
    # D U^T [a, b] = (g_a - g_T) · (u_b - u_T), a, b < T-1
    du = gu[:-1, :-1] - gu[:-1, -1:] - gu[-1:, :-1] + gu[-1, -1]
    rhs = gu[-1, :-1] - gu[-1, -1]  # g_T · (u_b - u_T)
    # alpha_{<T}^T (D U^T) = -rhs^T  <=>  (D U^T)^T alpha = -rhs  (the equal-projection condition)
    sol = torch.linalg.lstsq(du.T, -rhs.unsqueeze(1)).solution.squeeze(1)
    alpha = torch.cat([sol, (1.0 - sol.sum()).reshape(1)])
    return alpha.to(gramian.dtype)


def emtl_weights(
    losses: Tensor,
    grad_norms: Tensor,
    lam: float = 0.1,
    variant: Variant = "cv",
    base: Base = "sum",
    w_min: float | None = 0.0,
    base_weights: Tensor | None = None,
    *,
    eps: float = 1e-8,
    r: Tensor | None = None,
) -> tuple[Tensor, dict[str, Any]]:
    r"""EMTL's R1 closed-form weights (spec §3.1) [reconstructed objective, derived closed form].

    The objective :math:`J(\theta) = \mathrm{Base}(L) + \lambda\,\mathrm{Reg}(\tilde r)` with
    :math:`\tilde r_i = L_i/\mathrm{sg}(n_i)` has gradient :math:`\sum_i w_i \nabla L_i` with

    .. math:: w_i = \beta_i + \lambda\, v_i,\qquad v_i = \tfrac{2}{T}\,\varphi_i / L_i

    (:func:`regularizer_weights` gives :math:`v`), and base weights :math:`\beta_i` = 1 (``sum``),
    :math:`1/T` (``mean``), :math:`1/L_i` (``log``) or the IMTL-G :math:`\alpha_i` (``imtl``; pass
    them as ``base_weights``). Then :math:`w_i \leftarrow \max(w_i, w_{\min})` unless ``w_min`` is
    ``None`` [decision, O7]. No renormalisation [decision, O10].

    :returns: ``(w, info)``; ``w`` in the dtype/device of ``losses``; ``info`` holds JSON-able
        ``r``, ``rho``, ``phi`` (:math:`= v_i L_i T/2`), ``beta``, ``reg_weights``, ``n_clamped``.
    """
    losses = _vector(losses.detach(), "losses")
    t = losses.numel()
    grad_norms = _vector(grad_norms.detach(), "grad_norms", t)
    lam = _nonneg(lam, "lam")
    if variant not in VARIANTS:
        raise ValueError(f"Parameter `variant` should be one of {VARIANTS}. Found `variant = {variant!r}`.")
    if base not in BASES:
        raise ValueError(f"Parameter `base` should be one of {BASES}. Found `base = {base!r}`.")
    if w_min is not None and (not isinstance(w_min, (int, float)) or not math.isfinite(w_min)):
        raise ValueError(f"Parameter `w_min` should be a finite number or None. Found `w_min = {w_min!r}`.")
    l64 = losses.double()
    rr = relative_contributions(losses, grad_norms, eps).double() if r is None else _vector(r.detach(), "r", t).double()
    if base == "sum":
        beta = torch.ones_like(l64)
    elif base == "mean":
        beta = torch.full_like(l64, 1.0 / t)
    elif base == "log":
        if bool((l64 <= 0).any()):
            raise ValueError(f"Base 'log' needs positive losses. Found `losses = {losses.tolist()}`.")
        beta = 1.0 / l64
    else:
        if base_weights is None:
            raise ValueError("Base 'imtl' needs `base_weights` (the IMTL-G alpha, see `imtl_weights`). Found `None`.")
        beta = _vector(base_weights.detach(), "base_weights", t).double().to(l64.device)
    if base_weights is not None and base != "imtl":
        beta = _vector(base_weights.detach(), "base_weights", t).double().to(l64.device)
    if t == 1 or lam == 0.0:
        v = torch.zeros_like(l64)
    else:
        v = regularizer_weights(losses, grad_norms, variant, eps=eps, r=rr)
    w = beta + lam * v
    n_clamped = 0
    if w_min is not None:
        below = w < w_min
        n_clamped = int(below.sum())
        w = torch.where(below, torch.full_like(w, float(w_min)), w)
    mean_r = rr.mean()
    rho = rr / mean_r if float(mean_r) != 0.0 else torch.ones_like(rr)
    info: dict[str, Any] = {
        "r": rr.tolist(),
        "rho": rho.tolist(),
        "phi": (v * l64 * t / 2.0).tolist(),
        "beta": beta.tolist(),
        "reg_weights": (lam * v).tolist(),
        "n_clamped": n_clamped,
    }
    return w.to(dtype=losses.dtype if losses.is_floating_point() else torch.float64), info


def r2_weights(r: Tensor, lam: float, method: Literal["sherman_morrison", "solve"] = "sherman_morrison") -> Tensor:
    r"""R2, weight-level soft equalisation (spec §3.6) [reconstructed reading B; derived solution].

    Solves :math:`\min_w \|w - 1\|^2 + \lambda\,\mathrm{Var}_T(w\odot r)` s.t. :math:`1^\top w = T`:
    :math:`w = T a / 1^\top a`, :math:`a = (I + \tfrac{\lambda}{T} R P R)^{-1} 1`, :math:`R = \mathrm{diag}(r)`,
    :math:`P = I - 11^\top/T`. ``"sherman_morrison"`` uses the O(T) form with
    :math:`D_i = 1 + \lambda r_i^2/T`, :math:`\beta = \lambda/T^2`, :math:`S = \sum_j r_j/D_j`,
    :math:`Q = \sum_j r_j^2/D_j`: :math:`a_i = 1/D_i + \beta (r_i/D_i) S/(1 - \beta Q)`; ``"solve"``
    solves the T×T system. Every :math:`w_i > 0` for :math:`r \ge 0`.
    """
    r = _vector(r.detach(), "r")
    lam = _nonneg(lam, "lam")
    x = r.double()
    t = x.numel()
    if method == "sherman_morrison":
        d = 1.0 + lam * x**2 / t
        b = lam / t**2
        s = (x / d).sum()
        q = (x**2 / d).sum()
        a = 1.0 / d + b * (x / d) * s / (1.0 - b * q)
    elif method == "solve":
        eye = torch.eye(t, dtype=x.dtype, device=x.device)
        p = eye - torch.ones_like(eye) / t
        rm = torch.diag(x)
        a = torch.linalg.solve(eye + (lam / t) * rm @ p @ rm, torch.ones(t, dtype=x.dtype, device=x.device))
    else:
        raise ValueError(f"Parameter `method` should be 'sherman_morrison' or 'solve'. Found `method = {method!r}`.")
    return (t * a / a.sum()).to(r.dtype)
