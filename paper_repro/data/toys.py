"""Synthetic optimization problems in torch (conventions §8): toys, benchmark suites, regression.

All problem functions take a tensor ``x (..., n_var)`` of any floating dtype and device and return
``(..., n_obj)`` in the same dtype and device; they are differentiable (except ZDT5, which is binary).

- :func:`cagrad_toy` (§8.1; ``Cranial-XIX/CAGrad:toy.py``, ``AvivNavon/nash-mtl:experiments/toy/problem.py``);
- :func:`vlmop1` (convex) and :func:`vlmop2` (concave, PMTL's toy), with analytic fronts (§8.2, §8.3);
- ZDT1-6 and DTLZ1-7 (§8.4) as :class:`BenchmarkProblem` (torch ports of the formulas in pymoo 0.6.2,
  tested against ``pymoo.problems.get_problem(...).evaluate`` to 1e-10 in float64);
- :func:`conflict_regression` (§8.5, ours) and :func:`multitarget_regression` (MT2O E4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._common import RegressionData, SeedLike, Splits, as_generator, check_fraction, check_positive, split_fractions

__all__ = [
    "LOWER",
    "cagrad_toy",
    "vlmop1",
    "vlmop2",
    "vlmop1_front",
    "vlmop2_front",
    "vlmop_pareto_set",
    "BenchmarkProblem",
    "benchmark_problem",
    "BENCHMARK_NAMES",
    "conflict_regression",
    "multitarget_regression",
]

#: Lower clamp inside the logarithms of the CAGrad toy (§8.1); zero gradient below it.
LOWER = 5e-6


def _check_last_dim(x: Tensor, size: int | None, what: str) -> None:
    if not torch.is_floating_point(x):
        raise ValueError(f"Parameter `x` should be a floating-point tensor. Found `x.dtype = {x.dtype}`.")
    if size is not None and x.shape[-1] != size:
        raise ValueError(
            f"Parameter `x` should have last dimension {size} for {what}. Found `x.shape = {tuple(x.shape)}`."
        )


# ----------------------------------------------------------------------------------------------
# §8.1 CAGrad toy
# ----------------------------------------------------------------------------------------------


def cagrad_toy(x: Tensor, scale: float = 1.0) -> Tensor:
    """The CAGrad 2-D toy: ``x (..., 2) → (L1, L2) (..., 2)``, with L1 multiplied by ``scale``.

    g1 = log(max(|0.5(−x1 − 7) − tanh(−x2)|, LOWER)) + 6, g2 = log(max(|0.5(−x1 + 3) + tanh(−x2) + 2|,
    LOWER)) + 6, q1 = ((−x1 + 7)² + 0.1(−x2 − 8)²)/10 − 20,
    q2 = ((−x1 − 7)² + 0.1(−x2 − 8)²)/10 − 20,
    c1 = max(tanh(x2/2), 0), c2 = max(tanh(−x2/2), 0); L1 = s·(c1·g1 + c2·q1), L2 = c1·g2 + c2·q2.
    ``scale`` s is 1 in CAGrad and 0.1 in Nash-MTL and FAMO (§8.1 table).
    """
    _check_last_dim(x, 2, "the CAGrad toy")
    x1, x2 = x[..., 0], x[..., 1]
    g1 = torch.log(torch.abs(0.5 * (-x1 - 7) - torch.tanh(-x2)).clamp_min(LOWER)) + 6
    g2 = torch.log(torch.abs(0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).clamp_min(LOWER)) + 6
    q1 = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    q2 = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    c1 = torch.tanh(x2 / 2).clamp_min(0)
    c2 = torch.tanh(-x2 / 2).clamp_min(0)
    return torch.stack([scale * (c1 * g1 + c2 * q1), c1 * g2 + c2 * q2], dim=-1)


# ----------------------------------------------------------------------------------------------
# §8.2-8.3 VLMOP1 / VLMOP2
# ----------------------------------------------------------------------------------------------


def vlmop1(x: Tensor) -> Tensor:
    """VLMOP1 (convex): f1 = ‖x − 1/√n‖²/4, f2 = ‖x + 1/√n‖²/4.

    ``x (..., n) → (..., 2)``, x ∈ [−1, 1]^n.
    """
    _check_last_dim(x, None, "VLMOP1")
    c = 1.0 / math.sqrt(x.shape[-1])
    return torch.stack([((x - c) ** 2).sum(-1) / 4, ((x + c) ** 2).sum(-1) / 4], dim=-1)


def vlmop2(x: Tensor) -> Tensor:
    """VLMOP2 (concave, PMTL's toy): f1 = 1 − exp(−‖x − 1/√n‖²), f2 = 1 − exp(−‖x + 1/√n‖²)."""
    _check_last_dim(x, None, "VLMOP2")
    c = 1.0 / math.sqrt(x.shape[-1])
    return torch.stack([1 - torch.exp(-((x - c) ** 2).sum(-1)), 1 - torch.exp(-((x + c) ** 2).sum(-1))], dim=-1)


def _front_s(n_points: int, dtype: torch.dtype, device: torch.device | str | None) -> Tensor:
    check_positive("n_points", n_points, integer=True)
    return torch.linspace(-1.0, 1.0, n_points, dtype=dtype, device=device)


def vlmop_pareto_set(
    n_points: int,
    n_var: int,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """Pareto set of VLMOP1 and VLMOP2: x = (s/√n)·𝟙 for s = linspace(−1, 1), shape ``(n_points, n_var)``."""
    check_positive("n_var", n_var, integer=True)
    s = _front_s(n_points, dtype, device)
    return (s / math.sqrt(n_var))[:, None].expand(n_points, n_var).clone()


def vlmop1_front(
    n_points: int = 100,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """Analytic VLMOP1 front ((1 − s)²/4, (1 + s)²/4), s ∈ [−1, 1], for any n: ``(n_points, 2)``."""
    s = _front_s(n_points, dtype, device)
    return torch.stack([(1 - s) ** 2 / 4, (1 + s) ** 2 / 4], dim=-1)


def vlmop2_front(
    n_points: int = 100,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """Analytic VLMOP2 front (1 − e^{−(s−1)²}, 1 − e^{−(s+1)²}), s ∈ [−1, 1], for any n.

    Shape ``(n_points, 2)``.
    """
    s = _front_s(n_points, dtype, device)
    return torch.stack([1 - torch.exp(-((s - 1) ** 2)), 1 - torch.exp(-((s + 1) ** 2))], dim=-1)


# ----------------------------------------------------------------------------------------------
# §8.4 ZDT and DTLZ
# ----------------------------------------------------------------------------------------------


def _zdt_g(x: Tensor) -> Tensor:
    return 1 + 9.0 / (x.shape[-1] - 1) * x[..., 1:].sum(-1)


def _zdt1(x: Tensor) -> Tensor:
    f1, g = x[..., 0], _zdt_g(x)
    return torch.stack([f1, g * (1 - torch.sqrt(f1 / g))], -1)


def _zdt2(x: Tensor) -> Tensor:
    f1, g = x[..., 0], _zdt_g(x)
    return torch.stack([f1, g * (1 - (f1 / g) ** 2)], -1)


def _zdt3(x: Tensor) -> Tensor:
    f1, g = x[..., 0], _zdt_g(x)
    return torch.stack([f1, g * (1 - torch.sqrt(f1 / g) - f1 / g * torch.sin(10 * math.pi * f1))], -1)


def _zdt4(x: Tensor) -> Tensor:
    f1, rest = x[..., 0], x[..., 1:]
    g = 1 + 10 * rest.shape[-1] + (rest**2 - 10 * torch.cos(4 * math.pi * rest)).sum(-1)
    return torch.stack([f1, g * (1 - torch.sqrt(f1 / g))], -1)


def _zdt5(x: Tensor, m: int = 11, n: int = 5) -> Tensor:
    """Binary ZDT5 with pymoo's normalization (f1 to [0, 1] from [1, 31], f2 from [(m−1)/31, m−1])."""
    u = torch.cat([x[..., :30].sum(-1, keepdim=True), x[..., 30:].unflatten(-1, (m - 1, n)).sum(-1)], dim=-1)
    v = torch.where(u < n, 2 + u, torch.where(u == n, torch.ones_like(u), torch.zeros_like(u)))
    f1 = 1 + u[..., 0]
    f2 = v[..., 1:].sum(-1) / f1
    lo2 = (m - 1) / 31
    return torch.stack([(f1 - 1) / 30, (f2 - lo2) / ((m - 1) - lo2)], -1)


def _zdt6(x: Tensor) -> Tensor:
    f1 = 1 - torch.exp(-4 * x[..., 0]) * torch.sin(6 * math.pi * x[..., 0]) ** 6
    g = 1 + 9.0 * (x[..., 1:].sum(-1) / (x.shape[-1] - 1.0)) ** 0.25
    return torch.stack([f1, g * (1 - (f1 / g) ** 2)], -1)


def _sphere_objectives(theta: Tensor, g: Tensor, n_obj: int) -> Tensor:
    """f_i = (1 + g)·Π_{j < M−1−i} cos(θ_j π/2)·sin(θ_{M−1−i} π/2) (no sine for i = 0)."""
    cos, sin = torch.cos(theta * math.pi / 2), torch.sin(theta * math.pi / 2)
    fs = []
    for i in range(n_obj):
        f = (1 + g) * cos[..., : n_obj - 1 - i].prod(-1)
        if i > 0:
            f = f * sin[..., n_obj - 1 - i]
        fs.append(f)
    return torch.stack(fs, -1)


def _g_rastrigin(xm: Tensor) -> Tensor:
    return 100 * (xm.shape[-1] + ((xm - 0.5) ** 2 - torch.cos(20 * math.pi * (xm - 0.5))).sum(-1))


def _g_sphere(xm: Tensor) -> Tensor:
    return ((xm - 0.5) ** 2).sum(-1)


def _dtlz1(x: Tensor, n_obj: int) -> Tensor:
    xs, g = x[..., : n_obj - 1], _g_rastrigin(x[..., n_obj - 1 :])
    fs = []
    for i in range(n_obj):
        f = 0.5 * (1 + g) * xs[..., : n_obj - 1 - i].prod(-1)
        if i > 0:
            f = f * (1 - xs[..., n_obj - 1 - i])
        fs.append(f)
    return torch.stack(fs, -1)


def _dtlz2(x: Tensor, n_obj: int) -> Tensor:
    return _sphere_objectives(x[..., : n_obj - 1], _g_sphere(x[..., n_obj - 1 :]), n_obj)


def _dtlz3(x: Tensor, n_obj: int) -> Tensor:
    return _sphere_objectives(x[..., : n_obj - 1], _g_rastrigin(x[..., n_obj - 1 :]), n_obj)


def _dtlz4(x: Tensor, n_obj: int, alpha: float = 100.0) -> Tensor:
    return _sphere_objectives(x[..., : n_obj - 1] ** alpha, _g_sphere(x[..., n_obj - 1 :]), n_obj)


def _degenerate(x: Tensor, g: Tensor, n_obj: int) -> Tensor:
    theta = (1 + 2 * g[..., None] * x[..., : n_obj - 1]) / (2 * (1 + g[..., None]))
    theta = torch.cat([x[..., :1], theta[..., 1:]], dim=-1)
    return _sphere_objectives(theta, g, n_obj)


def _dtlz5(x: Tensor, n_obj: int) -> Tensor:
    return _degenerate(x, _g_sphere(x[..., n_obj - 1 :]), n_obj)


def _dtlz6(x: Tensor, n_obj: int) -> Tensor:
    return _degenerate(x, (x[..., n_obj - 1 :] ** 0.1).sum(-1), n_obj)


def _dtlz7(x: Tensor, n_obj: int) -> Tensor:
    f = x[..., : n_obj - 1]
    k = x.shape[-1] - n_obj + 1
    g = 1 + 9.0 / k * x[..., n_obj - 1 :].sum(-1)
    h = n_obj - (f / (1 + g[..., None]) * (1 + torch.sin(3 * math.pi * f))).sum(-1)
    return torch.cat([f, ((1 + g) * h)[..., None]], dim=-1)


# name → (function taking (x, n_obj), default n_var, default n_obj, is ZDT)
_SUITE: dict[str, tuple[Callable[[Tensor, int], Tensor], int, int]] = {
    "zdt1": (lambda x, m: _zdt1(x), 30, 2),
    "zdt2": (lambda x, m: _zdt2(x), 30, 2),
    "zdt3": (lambda x, m: _zdt3(x), 30, 2),
    "zdt4": (lambda x, m: _zdt4(x), 10, 2),
    "zdt5": (lambda x, m: _zdt5(x), 80, 2),
    "zdt6": (lambda x, m: _zdt6(x), 10, 2),
    "dtlz1": (_dtlz1, 7, 3),
    "dtlz2": (_dtlz2, 10, 3),
    "dtlz3": (_dtlz3, 10, 3),
    "dtlz4": (_dtlz4, 10, 3),
    "dtlz5": (_dtlz5, 10, 3),
    "dtlz6": (_dtlz6, 10, 3),
    "dtlz7": (_dtlz7, 10, 3),
}
#: Names accepted by :func:`benchmark_problem`.
BENCHMARK_NAMES: tuple[str, ...] = tuple(_SUITE)


@dataclass(frozen=True)
class BenchmarkProblem:
    """A ZDT / DTLZ problem in torch with pymoo's defaults and bounds.

    ``problem(x)`` maps ``x (..., n_var) → (..., n_obj)``. Box constraints are the caller's job: clamp
    with :meth:`clamp` after each step (conventions §8.4). ZDT5 is binary (x ∈ {0, 1}^80).
    """

    name: str
    n_var: int
    n_obj: int
    xl: tuple[float, ...]
    xu: tuple[float, ...]

    def __call__(self, x: Tensor) -> Tensor:
        _check_last_dim(x, self.n_var, self.name)
        return _SUITE[self.name][0](x, self.n_obj)

    def bounds(self, like: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Lower and upper bounds as tensors (dtype and device of ``like``; float64 CPU by default)."""
        kw = {"dtype": like.dtype, "device": like.device} if like is not None else {"dtype": torch.float64}
        return torch.tensor(self.xl, **kw), torch.tensor(self.xu, **kw)

    def clamp(self, x: Tensor) -> Tensor:
        """Project ``x`` onto the box [xl, xu]."""
        lo, hi = self.bounds(x)
        return torch.maximum(torch.minimum(x, hi), lo)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        """``n`` uniform points in the box (0/1 draws for ZDT5), from ``generator``."""
        if self.name == "zdt5":
            return torch.randint(0, 2, (n, self.n_var), generator=generator).to(dtype)
        lo, hi = self.bounds()
        return (lo + (hi - lo) * torch.rand(n, self.n_var, generator=generator, dtype=torch.float64)).to(dtype)

    def pareto_front(self, n_points: int = 100) -> Tensor:
        """Points of the true front as float64 ``(P, n_obj)``.

        From pymoo's ``pareto_front()`` (ZDT: ``n_points`` points; DTLZ1-4: pymoo's default reference
        directions), except DTLZ5-7 where pymoo 0.6.2 downloads the 3-objective fronts: there we
        evaluate this problem on its Pareto set (DTLZ5/6: x_1 on a grid, the g-minimizing tail;
        DTLZ7: an (x_1, ..., x_{M−1}) grid with g = 1, filtered to the non-dominated points).
        """
        check_positive("n_points", n_points, integer=True)
        if self.name in ("dtlz5", "dtlz6", "dtlz7"):
            return self._own_front(n_points)
        from pymoo.problems import get_problem  # optional dependency (test / notebook extra)

        kwargs = {"n_var": self.n_var} if self.name.startswith("zdt") and self.name != "zdt5" else {}
        if self.name.startswith("dtlz"):
            kwargs = {"n_var": self.n_var, "n_obj": self.n_obj}
        problem = get_problem(self.name, **kwargs)
        front = problem.pareto_front(n_points) if self.name.startswith("zdt") else problem.pareto_front()
        return torch.as_tensor(np.asarray(front), dtype=torch.float64)

    def _own_front(self, n_points: int) -> Tensor:
        m, tail = self.n_obj, self.n_var - self.n_obj + 1
        if self.name == "dtlz7":
            side = max(2, int(round(n_points ** (1 / (m - 1)))) * 4)
            axes = [torch.linspace(0, 1, side, dtype=torch.float64)] * (m - 1)
            grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
            head = grid.reshape(-1, m - 1)
            x = torch.cat([head, torch.zeros(len(head), tail, dtype=torch.float64)], 1)
            f = self(x)
            import moocore  # required dependency (conventions §10)

            return f[torch.as_tensor(moocore.is_nondominated(f.numpy()))]
        head = torch.linspace(0, 1, n_points, dtype=torch.float64)[:, None].expand(n_points, m - 1)
        g_min = 0.5 if self.name == "dtlz5" else 0.0  # the tail that minimizes g
        x = torch.cat([head, torch.full((n_points, tail), g_min, dtype=torch.float64)], 1)
        return self(x)


def benchmark_problem(name: str, n_var: int | None = None, n_obj: int | None = None) -> BenchmarkProblem:
    """ZDT1-6 or DTLZ1-7 with pymoo's defaults (ZDT: n_var 30, 10 for ZDT4/6, 80 bits for ZDT5;
    DTLZ: n_obj 3, n_var 7 for DTLZ1 and 10 otherwise).

    ZDT4's bounds are x_1 ∈ [0, 1], x_i ∈ [−5, 5]; everything else lives in [0, 1]^n_var.
    """
    key = name.lower()
    if key not in _SUITE:
        raise ValueError(f"Parameter `name` should be one of {BENCHMARK_NAMES}. Found `name = {name!r}`.")
    _, default_var, default_obj = _SUITE[key]
    n_var = default_var if n_var is None else n_var
    n_obj = default_obj if n_obj is None else n_obj
    if key.startswith("zdt"):
        if n_obj != 2:
            raise ValueError(f"Parameter `n_obj` should be 2 for {key}. Found `n_obj = {n_obj}`.")
        if key == "zdt5" and n_var != 80:
            raise ValueError(f"Parameter `n_var` should be 80 for zdt5 (m = 11, n = 5). Found `n_var = {n_var}`.")
        check_positive("n_var", n_var - 1, integer=True)  # ZDT needs at least 2 variables
    else:
        check_positive("n_obj", n_obj - 1, integer=True)
        if n_var < n_obj:
            raise ValueError(f"Parameter `n_var` should be at least n_obj = {n_obj}. Found `n_var = {n_var}`.")
    xl, xu = [0.0] * n_var, [1.0] * n_var
    if key == "zdt4":
        xl, xu = [0.0] + [-5.0] * (n_var - 1), [1.0] + [5.0] * (n_var - 1)
    return BenchmarkProblem(key, n_var, n_obj, tuple(xl), tuple(xu))


# ----------------------------------------------------------------------------------------------
# §8.5 controllable-conflict regression
# ----------------------------------------------------------------------------------------------


def conflict_regression(
    n_train: int = 8_000,
    n_test: int = 2_000,
    *,
    d: int = 21,
    n_tasks: int = 2,
    rho: float = 0.5,
    scales: tuple[float, ...] | None = None,
    noise_std: tuple[float, ...] | float = 0.1,
    signs: tuple[int, ...] | None = None,
    standardize: bool = False,
    binarize: bool = False,
    seed: SeedLike = 0,
    val_fraction: float = 0.1,
    dtype: torch.dtype = torch.float32,
) -> Splits[RegressionData]:
    """Linear multi-task regression with controllable conflict (conventions §8.5, ours).

    x ~ N(0, I_d); u_0, ..., u_T orthonormal (QR of a Gaussian d×(T+1) matrix);
    w_t = sign_t·(√|ρ|·u_0 + √(1 − |ρ|)·u_t), so ‖w_t‖ = 1 and cos(w_s, w_t) = sign_s·sign_t·|ρ|;
    y_t = a_t·w_tᵀx + σ_t·ε. Knobs: ρ (conflict; a negative ρ with two tasks flips the second task's
    sign), a_t = ``scales`` (loss-scale imbalance), σ_t = ``noise_std`` (Bayes risk σ_t² per task,
    in ``meta["bayes_risk"]``, before standardization).

    :param standardize: standardize targets with training-pool statistics (MT2O E4).
    :param binarize: labels 1[y_t > 0] as float (the Census-Income stand-in, conventions §9).
    :returns: :class:`Splits` of :class:`RegressionData` with ``x (N, d)``, ``y (N, T)`` in ``dtype``.
    """
    check_positive("n_tasks", n_tasks, integer=True)
    check_positive("n_train", n_train, integer=True)
    check_positive("n_test", n_test, integer=True)
    if d < n_tasks + 1:
        raise ValueError(f"Parameter `d` should be at least n_tasks + 1 = {n_tasks + 1}. Found `d = {d}`.")
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"Parameter `rho` should be in [-1, 1]. Found `rho = {rho!r}`.")
    if signs is None:
        if rho < 0 and n_tasks != 2:
            raise ValueError(
                f"Parameter `rho` should be non-negative with {n_tasks} tasks (use `signs`). Found `rho = {rho!r}`."
            )
        signs = (1, -1) if rho < 0 else (1,) * n_tasks
    a = np.ones(n_tasks) if scales is None else np.asarray(scales, dtype=np.float64)
    sigma = np.broadcast_to(np.asarray(noise_std, dtype=np.float64), (n_tasks,))
    for name, arr in (("signs", np.asarray(signs)), ("scales", a)):
        if arr.shape != (n_tasks,):
            raise ValueError(f"Parameter `{name}` should have {n_tasks} entries. Found `{name} = {arr.tolist()}`.")
    if np.any(sigma < 0):
        raise ValueError(f"Parameter `noise_std` should be non-negative. Found `noise_std = {sigma.tolist()}`.")
    check_fraction("val_fraction", val_fraction)
    rng = as_generator(seed)
    u, _ = np.linalg.qr(rng.standard_normal((d, n_tasks + 1)))
    r = abs(rho)
    w = np.asarray(signs, dtype=np.float64) * (math.sqrt(r) * u[:, :1] + math.sqrt(1 - r) * u[:, 1:])  # (d, T)
    n = n_train + n_test
    x = rng.standard_normal((n, d))
    y = (x @ w) * a + sigma * rng.standard_normal((n, n_tasks))
    if standardize:
        y = (y - y[:n_train].mean(0)) / y[:n_train].std(0)
    if binarize:
        y = (y > 0).astype(np.float64)
    data = RegressionData(x=torch.from_numpy(x).to(dtype), y=torch.from_numpy(y).to(dtype))
    keep, held = split_fractions(n_train, val_fraction, rng)
    meta = {
        "recipe": "controllable-conflict regression, conventions §8.5",
        "seed": seed if isinstance(seed, int) else "generator",
        "d": d, "n_tasks": n_tasks, "rho": rho, "scales": a.tolist(), "noise_std": sigma.tolist(),
        "signs": list(signs), "standardize": standardize, "binarize": binarize,
        "bayes_risk": (sigma**2).tolist(), "cosines": (w.T @ w).tolist(), "weights": w.T.tolist(),
    }
    out = Splits(train=data.subset(keep), val=data.subset(held), test=data.subset(slice(n_train, None)), meta=meta)
    meta["sizes"] = out.sizes()
    return out


def multitarget_regression(
    n_train: int = 8_000, n_test: int = 2_000, *, n_targets: int = 3, d: int = 21, rho: float = 0.2, seed: SeedLike = 0
) -> Splits[RegressionData]:
    """Multi-target regression for MT2O E4 (specs/mt2o.md §4): :func:`conflict_regression` with
    ``d = 21``, ρ = 0.2, unit scales, σ_t = 0.1 and targets standardized on train; ``n_targets = 7``
    is the SARCOS stand-in."""
    return conflict_regression(n_train, n_test, d=d, n_tasks=n_targets, rho=rho, standardize=True, seed=seed)
