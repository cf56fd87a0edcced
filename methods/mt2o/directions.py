r"""Per-model update directions for a :class:`~methods.mt2o.population.Population` (``DirectionRule``s).

Every rule fills ``.grad`` of the stacked parameters so that slice k holds model k's direction, and returns the
detached ``[K, m]`` loss matrix of the batch. The stock optimiser then steps.

- :class:`Scalarized`: :math:`\nabla g_k` with :math:`g_k = s(L_k; w^k)` (MT2O's subproblems and, with no transfer,
  linear scalarisation = LS). One backward of :math:`\sum_k g_k` (model k's parameters appear only in :math:`g_k`).
- :class:`ParetoMTL` (Lin et al., NeurIPS 2019, arXiv 1912.12854, eqs. 14–19). Rays :math:`u^1..u^K` in loss
  space (a larger :math:`u_i` *allows* a larger loss i). Subproblem k: min F(θ) s.t.
  :math:`\mathcal G_j(\theta) = (u^j-u^k)^\top F(\theta)\le 0`, j ≠ k. Direction
  :math:`d^* = \arg\min_{d,\alpha}\ \alpha + \tfrac12\|d\|^2` s.t. :math:`\nabla L_i^\top d\le\alpha` (all i),
  :math:`\nabla\mathcal G_j^\top d\le\alpha` (j with :math:`\mathcal G_j \ge -\epsilon`). Its dual is a min-norm
  point over :math:`\{\nabla L_i\}\cup\{\nabla\mathcal G_j\}`, so :math:`d^*=-J^\top w` with task weights
  :math:`w = \lambda + \sum_j\beta_j(u^j-u^k)`. Warm-up (the paper's initial-solution phase): while some
  :math:`\mathcal G_j>0`, only the violated constraints' gradients enter. PMTL's training script rescales the
  weights to :math:`\sum_i|w_i| = m` (``normalize=True``) [decision: kept].
- :class:`EPO` (Mahapatra & Rajan, ICML 2020, arXiv 2010.06313, §4). Preference r (= MT2O's w^k: EPO equalises
  :math:`r_iL_i`, so a larger :math:`r_i` favours task i). With :math:`\hat l = r\odot L/\sum r\odot L`,
  non-uniformity :math:`\mu = \sum_i \hat l_i\log(m\hat l_i)` and adjustment
  :math:`a = r\odot(\log(m\hat l) - \mu)`, C = JJᵀ: if :math:`\mu>\epsilon` ("balance"):
  :math:`\max_{\beta\in\Delta}\beta^\top Ca` s.t. :math:`(C\beta)_i\ge (Ca)_i` for i with :math:`(Ca)_i\le0`,
  :math:`(C\beta)_{i}\ge0` for :math:`i\in\arg\max \hat l`; else ("descent"):
  :math:`\max_{\beta\in\Delta}\mathbf 1^\top C\beta` s.t. :math:`C\beta\ge0`,
  :math:`\beta^\top Ca\ge\min(\max_i (Ca)_i, 0)`. Direction :math:`-J^\top\beta`, weights rescaled by m as in
  the EPO training scripts [decision]. LP solved by ``scipy.optimize.linprog`` (HiGHS), lazily imported.
- :class:`MGDAUB` (Sener & Koltun, arXiv 1810.04650): min-norm weights of the gradients w.r.t. the shared
  representation z (``Population.encode``), then one backward of :math:`\sum_i w_i L_i`.

Min-norm points on the simplex are computed by :func:`min_norm_simplex` (accelerated projected gradient, batched
over models, in torch); tests compare every direction with the defining problem solved by cvxpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .population import LossFn, Population
from .scalarize import Linear, Scalarization

__all__ = [
    "EPO",
    "DirectionRule",
    "MGDAUB",
    "ParetoMTL",
    "Scalarized",
    "epo_weights",
    "min_norm_simplex",
    "pmtl_weights",
    "project_simplex",
]


def project_simplex(v: Tensor) -> Tensor:
    """Euclidean projection of each row of ``v[..., n]`` onto the probability simplex (sort-based)."""
    n = v.shape[-1]
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = u.cumsum(-1) - 1
    idx = torch.arange(1, n + 1, dtype=v.dtype, device=v.device)
    cond = (u - css / idx) > 0
    rho = cond.to(v.dtype).mul(idx).argmax(-1, keepdim=True)
    theta = css.gather(-1, rho) / (rho + 1).to(v.dtype)
    return (v - theta).clamp_min(0)


def min_norm_simplex(gram: Tensor, iters: int = 400, mask: Tensor | None = None) -> Tensor:
    r""":math:`\arg\min_{\lambda\in\Delta}\lambda^\top G\lambda` for a batch ``gram[..., n, n]`` (PSD).

    FISTA with step 1/(2λ_max) (λ_max by power iteration). ``mask[..., n]`` (bool)
    restricts the support (entries outside get weight 0); every row of the mask needs a True entry.
    """
    g = 0.5 * (gram + gram.transpose(-1, -2))
    n = g.shape[-1]
    if mask is None:
        mask = torch.ones(g.shape[:-1], dtype=torch.bool, device=g.device)
    big = torch.finfo(g.dtype).max ** 0.25
    lam = mask.to(g.dtype) / mask.sum(-1, keepdim=True).to(g.dtype)
    v = torch.ones_like(lam)
    for _ in range(30):
        v = (g @ v.unsqueeze(-1)).squeeze(-1)
        v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    lmax = (v.unsqueeze(-2) @ g @ v.unsqueeze(-1)).squeeze(-1).squeeze(-1)
    step = 1.0 / (2.02 * lmax.clamp_min(torch.finfo(g.dtype).tiny)).unsqueeze(-1)  # ∇ = 2Gλ is 2λ_max-Lipschitz
    y, t = lam.clone(), 1.0
    penalty = torch.where(mask, torch.zeros_like(lam), torch.full_like(lam, big))
    for _ in range(iters):
        grad = 2 * (g @ y.unsqueeze(-1)).squeeze(-1)
        new = project_simplex(y - step * grad - penalty)
        t_new = 0.5 * (1 + (1 + 4 * t * t) ** 0.5)
        y = new + ((t - 1) / t_new) * (new - lam)
        lam, t = new, t_new
    del n
    return lam


class DirectionRule:
    """Fills ``.grad`` of the population's parameters for one batch; returns the detached ``[K, m]`` losses."""

    name = "base"
    needs_transfer_free = False

    def backward(self, pop: Population, x: Tensor, target: Any, loss_fn: LossFn, weights: Tensor,
                 *, step: int = 0) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Scalarized(DirectionRule):
    """``backward(Σ_k s(L_k; w^k))``: the MT2O subproblem gradients (with Identity transfer: K scalarised runs)."""

    def __init__(self, scalarization: Scalarization | None = None) -> None:
        self.scalarization = scalarization if scalarization is not None else Linear()
        self.name = self.scalarization.name

    def backward(self, pop: Population, x: Tensor, target: Any, loss_fn: LossFn, weights: Tensor,
                 *, step: int = 0) -> Tensor:
        losses = pop.task_losses(x, target, loss_fn)
        self.scalarization(losses, weights).sum().backward()
        return losses.detach()

    def __repr__(self) -> str:
        return f"Scalarized({self.scalarization!r})"


def _per_task_grads(pop: Population, losses: Tensor) -> tuple[list[tuple[Tensor, ...]], Tensor]:
    """Per-task gradients ``grads[i][p]`` (``[K, …]`` per parameter) and the Jacobian ``J[K, m, P]``."""
    params = pop.parameters()
    m = losses.shape[1]
    grads = []
    for i in range(m):
        g = torch.autograd.grad(losses[:, i].sum(), params, retain_graph=i < m - 1, allow_unused=True)
        grads.append(tuple(torch.zeros_like(p) if gi is None else gi for gi, p in zip(g, params)))
    k = pop.n_models
    if pop.vectorize:
        jac = torch.stack([torch.cat([gi.reshape(k, -1) for gi in g], 1) for g in grads], 1)
    else:  # params are the K modules' parameters in model order
        per = len(params) // k
        jac = torch.stack([torch.stack([torch.cat([gi.reshape(-1) for gi in g[j * per:(j + 1) * per]])
                                        for j in range(k)]) for g in grads], 1)
    return grads, jac


def _set_grads(pop: Population, grads: list[tuple[Tensor, ...]], w: Tensor) -> None:
    params = pop.parameters()
    k = pop.n_models
    if pop.vectorize:
        for pi, p in enumerate(params):
            shape = (k,) + (1,) * (p.ndim - 1)
            p.grad = sum(w[:, i].reshape(shape).to(p) * grads[i][pi] for i in range(len(grads)))  # type: ignore[assignment]
    else:
        per = len(params) // k
        for pi, p in enumerate(params):
            j = pi // per
            p.grad = sum(w[j, i].to(p) * grads[i][pi] for i in range(len(grads)))  # type: ignore[assignment]


def pmtl_weights(gram: Tensor, losses: Tensor, rays: Tensor, k: int, *, eps: float = 0.0, warmup: bool = False,
                 iters: int = 400) -> tuple[Tensor, bool]:
    r"""PMTL task weights w (``d = −Jᵀw``) for subproblem ``k`` from the Gramian ``gram[m, m] = JJᵀ``.

    :returns: ``(w, constrained)``; ``constrained`` is whether some constraint entered.
    """
    u = rays.to(gram)
    diff = u - u[k]                                   # rows: u^j − u^k
    gval = diff @ losses.to(gram)                     # G_j
    others = torch.arange(u.shape[0], device=gram.device) != k
    m = gram.shape[0]
    if warmup:
        active = others & (gval > 0)
        if bool(active.any()):
            c = diff[active]
            lam = min_norm_simplex(c @ gram @ c.T, iters=iters)
            return c.T @ lam, True
    active = others & (gval >= -eps)
    c = torch.cat([torch.eye(m, dtype=gram.dtype, device=gram.device), diff[active]], 0)
    lam = min_norm_simplex(c @ gram @ c.T, iters=iters)
    return c.T @ lam, bool(active.any())


class ParetoMTL(DirectionRule):
    """Pareto MTL directions for K rays (see module docstring).

    :param rays: ``(K, m)`` loss-space rays (:func:`methods.mt2o.preferences.weights_to_rays` of the weights).
    :param warmup_steps: steps of the initial-solution phase (PMTL: 2 of 100 epochs; 20 of 100 on the toy).
    :param eps: activation tolerance ε of the constraints (0: active iff G_j ≥ 0).
    :param normalize: rescale weights to Σ|w_i| = m, as PMTL's training script.
    """

    name = "pmtl"

    def __init__(self, rays: Tensor, warmup_steps: int = 0, eps: float = 0.0, normalize: bool = True,
                 iters: int = 400) -> None:
        if rays.ndim != 2 or bool((rays < 0).any()):
            raise ValueError(f"Parameter `rays` should be a non-negative (K, m) tensor. Found {rays!r}.")
        self.rays = rays.detach().double()
        self.warmup_steps = int(warmup_steps)
        self.eps = float(eps)
        self.normalize = normalize
        self.iters = iters

    def weights(self, gram: Tensor, losses: Tensor, step: int) -> Tensor:
        """Task weights ``[K, m]`` of all K subproblems from ``gram[K, m, m]``, in one batched min-norm solve.

        Row k uses the candidate set ``[I_m; u^j − u^k (j ≠ k)]`` with a support mask (the active constraints;
        in warm-up only the violated ones, when there are any) — the same problem as :func:`pmtl_weights`.
        """
        gram = gram.double()
        u = self.rays.to(gram)
        kk, m = u.shape
        diff = u.unsqueeze(0) - u.unsqueeze(1)                       # [k, j, m]: u^j − u^k
        gval = torch.einsum("kjm,km->kj", diff, losses.to(gram))
        others = ~torch.eye(kk, dtype=torch.bool, device=gram.device)
        active = others & (gval >= -self.eps)
        task = torch.ones(kk, m, dtype=torch.bool, device=gram.device)
        if step < self.warmup_steps:
            viol = others & (gval > 0)
            has = viol.any(1, keepdim=True)
            active = torch.where(has, viol, active)
            task = task & ~has
        c = torch.cat([torch.eye(m, dtype=gram.dtype, device=gram.device).expand(kk, m, m), diff], 1)
        mask = torch.cat([task, active], 1)
        lam = min_norm_simplex(c @ gram @ c.transpose(1, 2), iters=self.iters, mask=mask)
        w = torch.einsum("kn,knm->km", lam, c)
        if self.normalize:
            w = w * (m / w.abs().sum(1, keepdim=True).clamp_min(1e-30))
        return w

    def backward(self, pop: Population, x: Tensor, target: Any, loss_fn: LossFn, weights: Tensor,
                 *, step: int = 0) -> Tensor:
        if self.rays.shape != weights.shape:
            raise ValueError(f"`rays` {tuple(self.rays.shape)} and `weights` {tuple(weights.shape)} should match.")
        losses = pop.task_losses(x, target, loss_fn)
        grads, jac = _per_task_grads(pop, losses)
        w = self.weights(jac @ jac.transpose(1, 2), losses.detach(), step)
        _set_grads(pop, grads, w)
        return losses.detach()


def epo_weights(gram: np.ndarray, losses: np.ndarray, r: np.ndarray, eps: float = 1e-4) -> tuple[np.ndarray, str]:
    """EPO's β (``d = −Jᵀβ``) and the mode (``"balance"``/``"descent"``) for one model (numpy, float64)."""
    from scipy.optimize import linprog

    m = len(losses)
    r = r / r.sum()
    rl = r * losses
    if np.any(rl < 0):
        raise ValueError(f"EPO needs non-negative losses. Found {losses.tolist()}.")
    lhat = rl / rl.sum()
    pos = lhat > np.finfo(float).eps
    mu = float(np.sum(lhat[pos] * np.log(m * lhat[pos])))
    a = r * (np.log(np.maximum(m * lhat, 1e-300)) - mu)
    c = gram
    ca = c @ a
    a_eq, b_eq = np.ones((1, m)), np.ones(1)
    if mu > eps:
        mode = "balance"
        j = ca > 0
        rhs = ca.copy()
        rhs[j] = -np.inf
        rhs[lhat == lhat.max()] = 0.0
        keep = np.isfinite(rhs)
        # maximise βᵀCa  <=>  minimise −(Ca)ᵀβ ;  Cβ ≥ rhs  <=>  −Cβ ≤ −rhs
        res = linprog(-ca, A_ub=-c[keep] if keep.any() else None, b_ub=-rhs[keep] if keep.any() else None,
                      A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * m, method="highs")
    else:
        mode = "descent"
        a_ub = np.vstack([-c, -ca[None, :]])
        b_ub = np.concatenate([np.zeros(m), [-min(float(ca.max()), 0.0)]])
        res = linprog(-c.sum(0), A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * m,
                      method="highs")
    if res.status != 0:  # infeasible restriction (rare): fall back to the relaxed problem Cβ ≥ 0 or uniform
        res = linprog(-c.sum(0), A_ub=-c, b_ub=np.zeros(m), A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * m,
                      method="highs")
        mode += "-relaxed"
        if res.status != 0:
            return np.full(m, 1.0 / m), mode + "-uniform"
    return np.asarray(res.x, dtype=float), mode


class EPO(DirectionRule):
    """Exact Pareto optimal search (see module docstring); ``r = w^k``; ``eps`` is EPO's balance tolerance."""

    name = "epo"

    def __init__(self, eps: float = 1e-4, scale: bool = True) -> None:
        self.eps = float(eps)
        self.scale = scale
        self.last_modes: list[str] = []

    def backward(self, pop: Population, x: Tensor, target: Any, loss_fn: LossFn, weights: Tensor,
                 *, step: int = 0) -> Tensor:
        losses = pop.task_losses(x, target, loss_fn)
        grads, jac = _per_task_grads(pop, losses)
        gram = (jac @ jac.transpose(1, 2)).detach().double().cpu().numpy()
        ln = losses.detach().double().cpu().numpy()
        wn = weights.detach().double().cpu().numpy()
        out, modes = [], []
        for k in range(gram.shape[0]):
            b, mode = epo_weights(gram[k], ln[k], wn[k], self.eps)
            out.append(b * (len(b) if self.scale else 1.0))
            modes.append(mode)
        self.last_modes = modes
        _set_grads(pop, grads, torch.as_tensor(np.stack(out), dtype=losses.dtype, device=losses.device))
        return losses.detach()


class MGDAUB(DirectionRule):
    """MGDA-UB: min-norm weights from ∂L_i/∂z (z = shared representation), then backward of Σ_i w_i L_i per model.

    The preference vector is ignored (MGDA finds *a* Pareto-stationary point; its K runs differ by init only).
    """

    name = "mgda_ub"

    def __init__(self, iters: int = 400) -> None:
        self.iters = iters
        self.last_weights: Tensor | None = None

    def backward(self, pop: Population, x: Tensor, target: Any, loss_fn: LossFn, weights: Tensor,
                 *, step: int = 0) -> Tensor:
        z = pop.encode(x)
        zd = z.detach().requires_grad_(True)
        losses = pop.losses_from_outputs(pop.decode(zd), target, loss_fn)
        m = losses.shape[1]
        zg = [torch.autograd.grad(losses[:, i].sum(), zd, retain_graph=True)[0].reshape(z.shape[0], -1)
              for i in range(m)]
        zj = torch.stack(zg, 1)                                   # [K, m, B·h]
        w = min_norm_simplex((zj @ zj.transpose(1, 2)).double(), iters=self.iters).to(losses)
        self.last_weights = w
        # Σ_k Σ_i w_ki L_ki through decode (heads) and, via ∂/∂z, the encoder: one backward.
        total = (w * losses).sum()
        gz = torch.autograd.grad(total, [zd] + pop.parameters(), allow_unused=True)
        for p, g in zip(pop.parameters(), gz[1:]):
            p.grad = None if g is None else g
        z.backward(gz[0])
        return losses.detach()
