r"""Numerical checks for CSO (Jeong & Yoon, CVPR 2024, arXiv 2406.02996), ``specs/cso.md`` §8.

* T1 (sympy): Theorem 1 to first order — the owner step's gain over the weighted-sum step is a sum of squares;
* T2 (sympy): its breakdown at finite η on quadratics (golden cases η* = 2/3 and 22/39);
* T3: the equal-step-length caveat (500 random quadratics; owner step vs GD at the same η and at equal norm);
* T4: phase-2 invariant ⟨G_ii,u_i⟩ ≥ ‖G_ii‖² and order independence (random + sympy, K = 2 in ℝ³);
* T5: S (Eq. 6) equals the BN-folded filter energy ‖W'_p‖²/k² (F1);
* T6: convex toy: exact Pareto front (theory.pareto), Pareto gap t* of GD/MGDA/PCGrad/CAGrad/phase 1/phase 2/mixed,
  for K = 2 (201 scalarisations, closed form) and K = 3 (231 simplex points, cvxpy);
* T7: connection-strength owners vs exact Def.-3 owners on a small CNN (a finding, reported either way).

Everything in float64, deterministic (seeded numpy/torch generators), a few minutes in total (T6 for K = 3: 70 s alone,
about 150 s on a loaded 2-core machine).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from methods.cso import (CSOCombiner, CSOStep, TaskBNModel, channel_strength, connection_map,
                         project_by_owner)
from theory.registry import CheckOutcome, check

__all__ = ["convex_toy", "t7_probe"]

_SEED = 2406_02996


# --------------------------------------------------------------------------------------------- T1, T2 (sympy)
@check(paper="CSO", claim="Thm 1 (first order) [derived]: owner-per-block step beats the weighted-sum step by "
                          "Σ_b Σ_k w_k (a_{b,o(b)} − a_{b,k}) ≥ 0", name="T1_theorem1_first_order")
def t1_theorem1_first_order() -> CheckOutcome:
    import sympy as sp

    B, K = 2, 3
    M = sp.symbols(f"M0:{B}", real=True)
    s = [[sp.Symbol(f"s{b}{k}", real=True) for k in range(K)] for b in range(B)]
    v = sp.symbols(f"v0:{K}", positive=True)
    w = [vk**2 / sum(vi**2 for vi in v) for vk in v]
    # owner o(b) = 0 w.l.o.g.: a_{b,0} = M_b (s_{b,0} = 0), a_{b,k} = M_b − s_{b,k}² ≤ M_b
    a = [[M[b] - (0 if k == 0 else s[b][k] ** 2) for k in range(K)] for b in range(B)]
    gain = sum(w[k] * (a[b][0] - a[b][k]) for b in range(B) for k in range(K))
    sos = sum(w[k] * s[b][k] ** 2 for b in range(B) for k in range(1, K))
    identity = sp.simplify(gain - sos) == 0
    # the first-order terms themselves: d/dη F(θ − η d)|₀ = −⟨∇F, d⟩ for generic smooth losses (2 blocks, 2 tasks)
    x, y, eta = sp.symbols("x y eta", real=True)
    f1, f2 = sp.Function("f1")(x, y), sp.Function("f2")(x, y)
    wa, wb = sp.symbols("w_a w_b", positive=True)
    F = wa * f1 + wb * f2
    g1 = [sp.diff(f1, x), sp.diff(f1, y)]
    g2 = [sp.diff(f2, x), sp.diff(f2, y)]
    dA = [g1[0], g2[1]]                        # block x owned by task 1, block y by task 2
    dB = [sp.diff(F, x), sp.diff(F, y)]
    def slope(d: list[Any]) -> Any:
        moved = F.subs({x: x - eta * d[0], y: y - eta * d[1]}, simultaneous=True)
        return sp.diff(moved, eta).subs(eta, 0).doit()
    fo_gain = sp.simplify(slope(dB) - slope(dA))
    expected = (dB[0] * (g1[0] - dB[0]) + dB[1] * (g2[1] - dB[1]))    # Σ_b (a_{b,o(b)} − ‖∇_b F‖²)
    fo_ok = sp.simplify(fo_gain - expected) == 0
    # with w_a + w_b = 1: Σ_b(a_{b,o}−‖∇_bF‖²) = Σ_b Σ_k w_k (a_{b,o} − a_{b,k}) (the form of the gain above)
    a11, a12 = dB[0] * g1[0], dB[0] * g2[0]
    a21, a22 = dB[1] * g1[1], dB[1] * g2[1]
    form = wa * (a11 - a11) + wb * (a11 - a12) + wa * (a22 - a21) + wb * (a22 - a22)
    form_ok = sp.simplify((expected - form).subs(wb, 1 - wa)) == 0
    holds = identity and fo_ok and form_ok
    return CheckOutcome(holds, f"gain = Σ w_k s_bk² (sum of squares): {identity}; first-order slopes: {fo_ok}; "
                               f"simplex form: {form_ok}", {"gain_sos": str(sos)})


@check(paper="CSO", claim="Thm 1 at finite η [derived]: Δ(η) = −c₁η + c₂η², so the owner step wins only for η < c₁/c₂",
       name="T2_finite_step_breakdown")
def t2_finite_step_breakdown() -> CheckOutcome:
    import sympy as sp

    eta = sp.Symbol("eta", positive=True)
    half = sp.Rational(1, 2)

    def delta(a1: tuple[int, int], a2: tuple[int, int]) -> tuple[Any, Any]:
        th = sp.Matrix([0, 0])
        A = [sp.Matrix(a1), sp.Matrix(a2)]
        L = lambda t, k: half * (t - A[k]).dot(t - A[k])          # noqa: E731  H_k = I
        F = lambda t: half * L(t, 0) + half * L(t, 1)               # noqa: E731
        g = [th - A[0], th - A[1]]
        gF = half * g[0] + half * g[1]
        own = [max(range(2), key=lambda k: (gF[b] * g[k][b], -k)) for b in range(2)]
        dA = sp.Matrix([g[own[b]][b] for b in range(2)])
        d = sp.expand(F(th - eta * dA) - F(th - eta * gF))
        return d, sp.solve(sp.Eq(d / eta, 0), eta)
    d1, r1 = delta((2, 0), (0, 2))
    d2, r2 = delta((3, 1), (-1, 2))
    ok1 = sp.simplify(d1 - (3 * eta**2 - 2 * eta)) == 0 and r1 == [sp.Rational(2, 3)]
    ok2 = sp.simplify(d2 - (sp.Rational(39, 8) * eta**2 - sp.Rational(11, 4) * eta)) == 0 and r2 == [sp.Rational(22, 39)]
    return CheckOutcome(ok1 and ok2, f"Δ₁ = {d1}, η* = {r1}; Δ₂ = {d2}, η* = {r2}",
                        {"delta1": str(d1), "eta1": str(r1), "delta2": str(d2), "eta2": str(r2)})


# --------------------------------------------------------------------------------------------- T3
@check(paper="CSO", claim="Thm 1 caveat [derived]: the owner step's advantage over GD comes from its length "
                          "(it loses to GD rescaled to the same norm)", name="T3_equal_step_length")
def t3_equal_step_length(n_cases: int = 500) -> CheckOutcome:
    rng = np.random.default_rng(_SEED)
    d, nb, eta, w = 40, 8, 0.05, np.array([0.5, 0.5])
    blocks = np.array_split(np.arange(d), nb)
    beats_same, beats_norm = 0, 0
    for _ in range(n_cases):
        H, a = [], []
        for _k in range(2):
            m = rng.standard_normal((d, d)) / math.sqrt(d)
            H.append(m @ m.T + 0.05 * np.eye(d))
            a.append(rng.standard_normal(d))
        th = rng.standard_normal(d)
        L = lambda t, k: 0.5 * (t - a[k]) @ H[k] @ (t - a[k])      # noqa: E731
        F = lambda t: w[0] * L(t, 0) + w[1] * L(t, 1)               # noqa: E731
        g = [H[k] @ (th - a[k]) for k in range(2)]
        gF = w[0] * g[0] + w[1] * g[1]
        dA = np.zeros(d)
        for b in blocks:                                           # exact Def.-3 owner per block
            vals = []
            for k in range(2):
                t = th.copy()
                t[b] -= eta * g[k][b]
                vals.append(F(t))
            dA[b] = g[int(np.argmin(vals))][b]
        fa, fb = F(th - eta * dA), F(th - eta * gF)
        fn = F(th - eta * np.linalg.norm(dA) / np.linalg.norm(gF) * gF)
        beats_same += fa < fb
        beats_norm += fa < fn
    holds = beats_same >= 0.95 * n_cases and beats_norm <= 0.05 * n_cases
    return CheckOutcome(holds, f"owner step beats GD at same η in {beats_same}/{n_cases}; beats GD rescaled to "
                               f"‖d_A‖ in {beats_norm}/{n_cases}",
                        {"beats_same_eta": int(beats_same), "beats_equal_norm": int(beats_norm), "n": n_cases})


# --------------------------------------------------------------------------------------------- T4, T5
@check(paper="CSO", claim="Alg. 1 phase 2 [derived]: ⟨G_ii,u_i⟩ = ‖G_ii‖² + Σ_j max(0, G_ii·G_ij) ≥ ‖G_ii‖², "
                          "independent of task order", name="T4_phase2_invariant")
def t4_phase2_invariant() -> CheckOutcome:
    import sympy as sp

    gi = sp.Matrix(sp.symbols("a0:3", real=True))
    gj = sp.Matrix(sp.symbols("b0:3", real=True))
    proj = gj - (gi.dot(gj) / gi.dot(gi)) * gi
    sym_ok = sp.simplify(gi.dot(gi + proj) - gi.dot(gi)) == 0
    gen = torch.Generator().manual_seed(_SEED % 2**31)
    worst_i1, worst_i2 = 0.0, 0.0
    for case in range(200):
        k = 2 + case % 3
        G = torch.randn(k, 7, 4, generator=gen, dtype=torch.float64)
        own = torch.randint(0, k, (7,), generator=gen)
        own[0], own[1] = 0, 1
        out, _ = project_by_owner(G, own)
        for i in range(k):
            m = own == i
            if not m.any():
                continue
            a = G[i][m].reshape(-1)
            exp = a @ a + sum(torch.clamp(a @ G[j][m].reshape(-1), min=0) for j in range(k) if j != i)
            worst_i1 = max(worst_i1, float(abs(a @ out[m].reshape(-1) - exp) / exp))
        perm = torch.randperm(k, generator=gen)
        inv = torch.argsort(perm)
        out_p, _ = project_by_owner(G[perm], inv[own])                  # relabel the tasks
        worst_i2 = max(worst_i2, float((out_p - out).abs().max()))
    holds = sym_ok and worst_i1 <= 1e-9 and worst_i2 <= 1e-9
    return CheckOutcome(holds, f"sympy K=2: {sym_ok}; I1 max rel. error {worst_i1:.1e}; order/label change {worst_i2:.1e}",
                        {"sympy": sym_ok, "i1": worst_i1, "i2": worst_i2})


@check(paper="CSO", claim="Eq. 6 (F1) [derived]: S_p = ‖W'_p‖²/k² for the BN-folded filter W' = γ/√(Var+ε)·W",
       name="T5_folded_filter_energy")
def t5_folded_filter_energy() -> CheckOutcome:
    torch.manual_seed(0)
    worst = 0.0
    for transpose in (False, True):
        conv = (nn.ConvTranspose2d(5, 6, 3) if transpose else nn.Conv2d(5, 6, 3)).double()
        for _t in range(3):
            bn = nn.BatchNorm2d(6).double().eval()
            with torch.no_grad():
                bn.weight.uniform_(-2, 2)
                bn.running_var.uniform_(0.1, 3)
                bn.running_mean.normal_()
            axis = 1 if transpose else 0
            shape = [1] * 4
            shape[axis] = 6
            scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().reshape(shape)
            folded = copy.deepcopy(conv)
            with torch.no_grad():
                folded.weight.mul_(scale)
                folded.bias.copy_((conv.bias - bn.running_mean) * scale.reshape(-1) + bn.bias)
                x = torch.randn(2, 5, 7, 7, dtype=torch.float64)
                fold_err = float((folded(x) - bn(conv(x))).abs().max())
            energy = folded.weight.detach().movedim(axis, 0).reshape(6, -1).pow(2).sum(1) / 9
            s = channel_strength(conv.weight, bn.weight, bn.running_var, bn.eps, out_axis=axis, kernel_average=True)
            worst = max(worst, float(((energy - s).abs() / energy).max()), fold_err * 0)
            if fold_err > 1e-10:
                return CheckOutcome(False, f"the fold itself is wrong (error {fold_err:.1e})", {})
    return CheckOutcome(worst <= 1e-12, f"max relative error {worst:.1e}", {"max_rel_error": worst})


# --------------------------------------------------------------------------------------------- T6
def _cagrad_k2(G: np.ndarray, c: float) -> np.ndarray:
    """CAGrad direction for K = 2 (arXiv 2110.14048, Alg. 1): min_t g_tᵀg0 + c‖g0‖‖g_t‖, g_t = tG₀ + (1−t)G₁,
    by golden-section search on t ∈ [0, 1] using only the 2×2 Gramian."""
    gram = G @ G.T
    g0n2 = max(0.25 * float(gram.sum()), 0.0)
    phi = c * math.sqrt(g0n2)
    dd = gram[0, 0] - 2 * gram[0, 1] + gram[1, 1]              # ‖G₀ − G₁‖²
    d1 = gram[0, 1] - gram[1, 1]                               # (G₀ − G₁)·G₁
    v0, v1 = 0.5 * (gram[0, 0] + gram[0, 1]), 0.5 * (gram[0, 1] + gram[1, 1])   # G_i·g0

    def f(t: float) -> float:
        return t * v0 + (1 - t) * v1 + phi * math.sqrt(max(t * t * dd + 2 * t * d1 + gram[1, 1], 0.0))
    lo, hi, r = 0.0, 1.0, (math.sqrt(5) - 1) / 2
    for _ in range(40):
        m1, m2 = hi - r * (hi - lo), lo + r * (hi - lo)
        lo, hi = (lo, m2) if f(m1) < f(m2) else (m1, hi)
    t = 0.5 * (lo + hi)
    gw = t * G[0] + (1 - t) * G[1]
    return G.mean(0) + phi / max(float(np.linalg.norm(gw)), 1e-12) * gw


def _phase2_oracle(G: np.ndarray, gF: np.ndarray, blocks: list[np.ndarray]) -> np.ndarray:
    out = G.sum(0)
    for b in blocks:
        own = int(np.argmax([gF[b] @ G[k, b] for k in range(G.shape[0])]))
        a = G[own, b]
        aa = a @ a
        for j in range(G.shape[0]):
            if j != own and aa > 1e-30 and (d := a @ G[j, b]) < 0:
                out[b] -= d / aa * a
    return out


def convex_toy(n_iters: int = 20_000, seed: int = _SEED, k: int = 2) -> dict[str, Any]:
    """T6: L_i = ‖Xθ_s + Z_iθ_i − y_i‖², K = ``k`` ∈ {2, 3}, n = 60, d_s = 40 in 8 blocks, d_i = 5, w = 1/K.

    Front: K = 2, 201 scalarisations in closed form; K = 3, the 231-point simplex lattice (20 divisions) solved
    with cvxpy (Clarabel), cross-checked against the closed form on the interior weights (``front_check``).
    Methods (``specs/cso.md`` §8 T6): GD, MGDA (exact min-norm point), PCGrad (K = 3: a seeded random projection
    order per task and step), CAGrad (c = 0.4, exact inner problem), phase 1 only, phase 2 only and mixed with
    exact first-order Def.-3 owners per block ("oracle CSO"); all with η_t = η₀/√(1 + t/500).

    Returns the front losses, each method's end losses, Pareto gap t* (relative to max ℓ), the dominance lists,
    and the w-scalarised optimum's losses. The K = 2 path is unchanged (same draws and solvers as before)."""
    import cvxpy as cp

    from theory.pareto import least_squares_front, scalarization_weights

    if k not in (2, 3):
        raise ValueError(f"Parameter `k` should be 2 or 3. Found `k = {k!r}`.")
    rng = np.random.default_rng(seed)
    n, ds, di, K = 60, 40, 5, k
    X = rng.standard_normal((n, ds))
    Z = [rng.standard_normal((n, di)) for _ in range(K)]
    Y = [rng.standard_normal(n) + X @ rng.standard_normal(ds) * 0.3 for _ in range(K)]
    w = np.full(K, 1.0 / K)
    blocks = np.array_split(np.arange(ds), 8)
    A = [np.hstack([X] + [Z[j] if j == i else np.zeros((n, di)) for j in range(K)]) for i in range(K)]
    front_check = None
    if K == 2:
        W = np.stack([np.linspace(0, 1, 201), 1 - np.linspace(0, 1, 201)], 1)
        front = least_squares_front(A, Y, weights=W, method="closed_form")
    else:
        W = scalarization_weights(K, 21)                       # 231 lattice points for K = 3
        front = least_squares_front(A, Y, weights=W, method="cvxpy")
        inner = np.all(W > 0, axis=1)                           # vertices/edges: minimiser not unique
        closed = least_squares_front(A, Y, weights=W[inner], method="closed_form").losses
        front_check = float(np.max(np.abs(front.losses[inner] - closed) / closed))
    lip = 2 * np.linalg.eigvalsh(sum(w[i] * A[i].T @ A[i] for i in range(K))).max()
    eta0 = 0.5 / lip

    def losses(th: np.ndarray) -> np.ndarray:
        return np.array([np.sum((A[i] @ th - Y[i]) ** 2) for i in range(K)])

    AtA = np.stack([2 * w[i] * A[i].T @ A[i] for i in range(K)])
    Aty = np.stack([2 * w[i] * A[i].T @ Y[i] for i in range(K)])

    def grads(th: np.ndarray) -> np.ndarray:                   # weighted task gradients w_i ∇L_i (K, P)
        return AtA @ th - Aty

    def run(method: str) -> np.ndarray:
        th = np.zeros(ds + K * di)
        mix = np.random.default_rng(seed + 7919)
        order_rng = np.random.default_rng(seed + 1)            # PCGrad's projection order (K ≥ 3 only)
        for t in range(n_iters):
            eta = eta0 / math.sqrt(1 + t / 500)
            phase = 1 if method == "phase1" else 2 if method == "phase2" else 0
            if method == "mixed":
                phase = 1 if mix.uniform() >= t / n_iters else 2
            if phase == 1:                                     # one step per task, shared + own head
                for i in range(K):
                    th = th - eta * grads(th)[i]
                continue
            G = grads(th)
            gs, head = G[:, :ds], G[:, ds:].sum(0)
            if method == "gd":
                d = gs.sum(0)
            elif method == "mgda":
                d = _min_norm_k2(gs) if K == 2 else _min_norm(gs) * K
            elif method == "pcgrad":
                d = _pcgrad_k2(gs) if K == 2 else _pcgrad(gs, order_rng)
            elif method == "cagrad":                           # CAGrad on the mean; ×K for the sum scale
                d = (_cagrad_k2(gs, 0.4) if K == 2 else _cagrad(gs, 0.4)) * K
            else:
                d = _phase2_oracle(gs, gs.sum(0), blocks)
            th = th - eta * np.concatenate([d, head])
        return losses(th)

    methods = ["gd", "mgda", "pcgrad", "cagrad", "phase1", "phase2", "mixed"]
    ends = {m: run(m) for m in methods}

    def gap(ell: np.ndarray) -> float:                         # t*/max ℓ, solved on O(1) numbers
        sc = float(np.max(ell))
        th, t = cp.Variable(ds + K * di), cp.Variable()
        cons = [cp.sum_squares(A[i] @ th - Y[i]) / sc <= ell[i] / sc - t for i in range(K)]
        cp.Problem(cp.Maximize(t), cons).solve(solver="CLARABEL")
        return float(t.value)

    gaps = {m: gap(e) for m, e in ends.items()}
    dom = {a: [b for b in methods if b != a and np.all(ends[a] <= ends[b]) and np.any(ends[a] < ends[b] - 1e-9)]
           for a in methods}
    if K == 2:
        opt = front.losses[100]  # w = (½, ½)
    else:                        # w = 1/K is not on the 20-division lattice: solve it directly
        opt = least_squares_front(A, Y, weights=w[None], method="closed_form").losses[0]
    return {"front": front.losses.tolist(), "ends": {m: e.tolist() for m, e in ends.items()},
            "gap_rel": gaps, "dominates": dom, "scalarised_optimum": opt.tolist(), "n_iters": n_iters, "k": K,
            "front_weights": front.weights.tolist(), "front_check": front_check}


def _min_norm_k2(G: np.ndarray) -> np.ndarray:
    d = G[0] - G[1]
    dd = d @ d
    t = 0.5 if dd == 0 else float(np.clip((G[1] - G[0]) @ G[1] / dd, 0, 1))
    return (t * G[0] + (1 - t) * G[1]) * 2                     # convex weights ×K, sum scale


def _pcgrad_k2(G: np.ndarray) -> np.ndarray:
    out = G.copy()
    dot = G[0] @ G[1]
    if dot < 0:
        out[0] = G[0] - dot / (G[1] @ G[1]) * G[1]
        out[1] = G[1] - dot / (G[0] @ G[0]) * G[0]
    return out.sum(0)


def _faces(k: int) -> list[np.ndarray]:
    """Every non-empty subset of {0..k−1} with at least two elements (the vertices are handled apart)."""
    return [np.flatnonzero([(m >> i) & 1 for i in range(k)]) for m in range(1, 2 ** k) if bin(m).count("1") >= 2]


def _min_norm(G: np.ndarray) -> np.ndarray:
    """MGDA's min-norm point of the convex hull of the rows of G (K, P), exactly, by enumerating the simplex faces.

    On the relative interior of a face S the minimiser of wᵀAw (A = GGᵀ) is w_S ∝ A_S⁻¹1; the vertices are always
    candidates; the best non-negative candidate is the optimum (the problem is convex). Returns Gᵀw (convex weights).
    """
    gram = G @ G.T
    k = gram.shape[0]
    best_w, best = np.eye(k)[int(np.argmin(np.diag(gram)))], float(np.min(np.diag(gram)))
    for S in _faces(k):
        try:
            sol = np.linalg.solve(gram[np.ix_(S, S)], np.ones(S.size))
        except np.linalg.LinAlgError:
            continue
        tot = sol.sum()
        if not np.isfinite(tot) or tot <= 0 or np.any(sol / tot < -1e-12):
            continue
        w = np.zeros(k)
        w[S] = np.clip(sol / tot, 0, None)
        if (val := float(w @ gram @ w)) < best:
            best_w, best = w, val
    return best_w @ G


def _pcgrad(G: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PCGrad (arXiv 2001.06782, Alg. 1) for any K: each g_i is projected off every conflicting *original* g_j, the
    j in a random order drawn from ``rng`` per task; returns the sum Σ_i g_i^PC (for K = 2 equal to `_pcgrad_k2`)."""
    k = G.shape[0]
    out = G.copy()
    for i in range(k):
        for j in rng.permutation(k):
            if j == i:
                continue
            dot = out[i] @ G[j]
            if dot < 0:
                out[i] = out[i] - dot / (G[j] @ G[j]) * G[j]
    return out.sum(0)


def _cagrad(G: np.ndarray, c: float) -> np.ndarray:
    """CAGrad direction (arXiv 2110.14048, Alg. 1; mean convention, no rescale) for any K, exactly:
    g₀ + φ/‖g_w‖·g_w with w from :func:`_cagrad_weights` (for K = 2 equal to `_cagrad_k2`)."""
    g0 = G.mean(0)
    phi = c * float(np.linalg.norm(g0))
    gw = _cagrad_weights(G, c) @ G
    return g0 + phi / max(float(np.linalg.norm(gw)), 1e-12) * gw


def _cagrad_weights(G: np.ndarray, c: float) -> np.ndarray:
    """CAGrad's inner problem for any K, exactly (the weights w* on the simplex).

    g₀ = mean of the rows, φ = c‖g₀‖; w* = argmin_{w∈Δ} wᵀb + φ‖Gᵀw‖ with b = Gg₀, A = GGᵀ. On the relative interior
    of a face S the KKT conditions give w_S = (λu − v)/(λ1ᵀu − 1ᵀv) with u = A_S⁻¹1, v = A_S⁻¹b_S and λ a root of
    (1ᵀu)λ² − 2(1ᵀv)λ + b_Sᵀv − φ² = 0 (the constraint ‖Gᵀw‖ = s); vertices are always candidates; the best
    feasible candidate is optimal (convex problem).
    """
    k = G.shape[0]
    g0 = G.mean(0)
    phi = c * float(np.linalg.norm(g0))
    gram, b = G @ G.T, G @ g0

    def f(w: np.ndarray) -> float:
        return float(w @ b + phi * math.sqrt(max(float(w @ gram @ w), 0.0)))
    cands = list(np.eye(k))
    for S in _faces(k):
        try:
            u = np.linalg.solve(gram[np.ix_(S, S)], np.ones(S.size))
            v = np.linalg.solve(gram[np.ix_(S, S)], b[S])
        except np.linalg.LinAlgError:
            continue
        a2, a1, a0 = u.sum(), v.sum(), float(b[S] @ v) - phi**2
        disc = a1 * a1 - a2 * a0
        if phi == 0 or a2 <= 0 or disc < 0:
            continue
        for lam in ((a1 + math.sqrt(disc)) / a2, (a1 - math.sqrt(disc)) / a2):
            den = lam * a2 - a1
            ws = (lam * u - v) / den if den > 0 else None
            if ws is not None and np.all(ws >= -1e-12):
                w = np.zeros(k)
                w[S] = np.clip(ws, 0, None)
                cands.append(w / w.sum())
    return min(cands, key=f)


def _t6_outcome(res: dict[str, Any]) -> CheckOutcome:
    gaps = res["gap_rel"]
    worst = max(gaps.values())
    any_dom = any(res["dominates"].values())
    opt = np.array(res["scalarised_optimum"])
    near = {m: float(np.max(np.abs(np.array(e) - opt) / opt)) for m, e in res["ends"].items()}
    holds = worst <= 1e-4 and not any_dom
    txt = "; ".join(f"{m}: t*={g:.1e}, Δ to w-opt {near[m]:.1%}" for m, g in gaps.items())
    return CheckOutcome(holds, f"{txt}; any end point dominates another: {any_dom}",
                        {"gap_rel": gaps, "dist_to_scalarised": near, "dominates": res["dominates"],
                         "ends": res["ends"]})


@check(paper="CSO", claim="Sec. 5 / Fig. 2 [derived]: on a convex toy every method's end point is (weakly) Pareto "
                          "optimal; CSO cannot expand a fixed model class's front", name="T6_convex_toy_front")
def t6_convex_toy_front() -> CheckOutcome:
    return _t6_outcome(convex_toy())


@check(paper="CSO", claim="Sec. 5 / Fig. 2 [derived], K = 3: every end point (GD, MGDA, PCGrad, CAGrad, oracle CSO "
                          "phases) is (weakly) Pareto optimal on the exact 231-point cvxpy front; none dominates "
                          "another",
       name="T6_convex_toy_front_k3")
def t6_convex_toy_front_k3(n_iters: int = 80_000) -> CheckOutcome:
    """T6 for K = 3, judged with the K = 2 criterion (t* ≤ 1e-4 relative, no end point dominates another).

    [decision] 8·10⁴ iterations (70–150 s): the spec asks for runs "to convergence, at least 2·10⁴ iterations". At 2·10⁴
    the K = 3 oracle phase 2 and mixed runs were not converged yet (t* = 1.0e-4 and 1.2e-4, down from 5.1e-4 and
    5.0e-4 at 5·10³; 3.0e-5 at 8·10⁴, falling with η_t ∝ 1/√t), so they would fail the 1e-4 tolerance for lack of
    iterations, not because they stop off the front. PCGrad's end point moves with its random projection order
    (2.0e-5 at 2·10⁴, 8.5e-5 at 8·10⁴).
    """
    res = convex_toy(n_iters=n_iters, k=3)
    out = _t6_outcome(res)
    ok = res["front_check"] is not None and res["front_check"] <= 1e-6
    return CheckOutcome(out.holds and ok, f"{n_iters} iterations: {out.result}; 231-point cvxpy front vs closed form "
                                          f"(interior weights): {res['front_check']:.1e}",
                        {**out.detail, "front_check": res["front_check"], "n_iters": n_iters})


# --------------------------------------------------------------------------------------------- T7
def _toy_cnn(dtype: torch.dtype) -> TaskBNModel:
    trunk = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten())
    return TaskBNModel(trunk, [nn.Linear(64, 4), nn.Linear(64, 4)]).to(dtype)


def _toy_data(n: int, gen: torch.Generator, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 4-class tasks on 10×10 images: task 0 reads a bar orientation in the left half, task 1 a blob position
    in the right half, plus noise."""
    x = 0.3 * torch.randn(n, 1, 10, 10, generator=gen, dtype=dtype)
    y = torch.randint(0, 4, (n, 2), generator=gen)
    for i in range(n):
        a, b = int(y[i, 0]), int(y[i, 1])
        if a % 2 == 0:
            x[i, 0, 2 + a, 0:5] += 1.0
        else:
            x[i, 0, 0:10, a] += 1.0
        x[i, 0, 2 * b: 2 * b + 3, 6:9] += 1.0
    return x, y


def _kappa(a: list[int], b: list[int], k: int) -> tuple[float, float, float]:
    n = len(a)
    agree = sum(u == v for u, v in zip(a, b)) / n
    chance = sum((a.count(i) / n) * (b.count(i) / n) for i in range(k))
    return agree, chance, (agree - chance) / (1 - chance) if chance < 1 else 0.0


def t7_probe(epochs: int = 4, seed: int = 0) -> dict[str, Any]:
    """Train the toy CNN with mixed CSO; at each epoch end compare ν_CS (Eq. 10), ν_FO (first-order Def. 3) and
    ν_EX (exact Def. 3 at η ∈ {1e-3, 1e-2}) on a fixed probe batch of 256 in train-mode BN (buffers restored)."""
    dtype = torch.float64
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = _toy_cnn(dtype)
    x, y = _toy_data(1024, gen, dtype)
    xp, yp = _toy_data(256, gen, dtype)
    cmap = connection_map(model, x[:2], forward=lambda m, z: m.trunk(z))
    comb = CSOCombiner(cmap, model.shared_parameters())
    strat = CSOStep(comb, num_epochs=epochs, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    w = (0.5, 0.5)
    ce = nn.functional.cross_entropy

    def task_loss(xb: torch.Tensor, yb: torch.Tensor, t: int) -> torch.Tensor:
        return ce(model.forward_task(xb, t), yb[:, t])

    rows = []
    for epoch in range(epochs):
        strat.on_epoch_start(epoch)
        perm = torch.randperm(1024, generator=gen)
        for i in range(0, 1024, 64):
            xb, yb = x[perm[i:i + 64]], y[perm[i:i + 64]]
            from methods import ForwardResult

            def closure(tasks=None, xb=xb, yb=yb):
                ts = range(2) if tasks is None else tasks
                return ForwardResult(torch.stack([w[t] * task_loss(xb, yb, t) for t in ts]))
            strat.step(closure, opt, shared_params=model.shared_parameters(), task_params=model.task_parameters())
        buffers = {k: v.clone() for k, v in model.state_dict().items()}

        def F() -> float:
            with torch.no_grad():
                val = sum(w[t] * float(task_loss(xp, yp, t)) for t in range(2))
            model.load_state_dict(buffers)
            return val
        row: dict[str, Any] = {"epoch": epoch, "layers": {}}
        all_cs, all_fo, all_ex = [], [], {1e-3: [], 1e-2: []}
        for e in cmap.entries:
            st = comb.layer_state(e, dtype)
            assert st is not None
            cs = st["owners"].tolist()
            g = []
            for t in range(2):
                model.zero_grad(set_to_none=True)
                task_loss(xp, yp, t).backward()
                g.append(e.param.grad.detach().clone())
            model.load_state_dict(buffers)
            gF = w[0] * g[0] + w[1] * g[1]
            fo = [int(max(range(2), key=lambda m: (float((gF[p] * g[m][p]).sum()), -m))) for p in range(e.channels)]
            ex: dict[float, list[int]] = {}
            for eta in (1e-3, 1e-2):
                ex[eta] = []
                for p in range(e.channels):
                    vals = []
                    for m in range(2):
                        with torch.no_grad():
                            old = e.param[p].clone()
                            e.param[p] -= eta * g[m][p]
                        vals.append(F())
                        with torch.no_grad():
                            e.param[p] = old
                    ex[eta].append(int(np.argmin(vals)))
            row["layers"][e.name] = {"cs_vs_ex": _kappa(cs, ex[1e-3], 2), "fo_vs_ex": _kappa(fo, ex[1e-3], 2)[0],
                                     "share_cs": [cs.count(i) / len(cs) for i in range(2)]}
            all_cs += cs
            all_fo += fo
            for eta in ex:
                all_ex[eta] += ex[eta]
        row["cs_vs_ex"] = {str(eta): _kappa(all_cs, v, 2) for eta, v in all_ex.items()}
        row["fo_vs_ex"] = {str(eta): _kappa(all_fo, v, 2)[0] for eta, v in all_ex.items()}
        rows.append(row)
    return {"rows": rows}


@check(paper="CSO", claim="Sec. 4.2 assumption (finding): connection-strength owners agree with exact Def.-3 "
                          "owners; ν_FO ≈ ν_EX (≥ 95 % at η = 1e-3) is the derived part", name="T7_cs_vs_def3")
def t7_cs_vs_def3() -> CheckOutcome:
    res = t7_probe()
    last = res["rows"][-1]
    fo = [r["fo_vs_ex"]["0.001"] for r in res["rows"]]
    kap = [r["cs_vs_ex"]["0.001"][2] for r in res["rows"]]
    agree = [r["cs_vs_ex"]["0.001"][0] for r in res["rows"]]
    holds = min(fo) >= 0.95
    return CheckOutcome(holds, f"ν_FO vs ν_EX (η=1e-3) agreement per epoch {[round(v, 3) for v in fo]}; ν_CS vs ν_EX "
                               f"agreement {[round(v, 2) for v in agree]}, Cohen κ {[round(v, 2) for v in kap]} "
                               f"(finding: κ>0.2 supports the proxy, κ≈0 refutes it)",
                        {"rows": res["rows"], "last": last})
