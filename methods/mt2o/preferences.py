"""Preference-vector generators (``specs/conventions.md`` §6) with the MT2O ``shrink`` option.

Every generator returns a float64 tensor ``W`` of shape ``(K, m)`` with non-negative rows; the caller
converts dtype/device. Meaning of a row depends on the method that consumes it (conventions §6):

- *weights* (linear scalarisation, Tchebycheff, smooth Tchebycheff, MT2O, EPO's ``r``): rows on the
  simplex Δ_m; a larger ``w_i`` favours task ``i`` (its loss ends up smaller);
- *rays* (Pareto MTL): unit directions ``u`` in loss space; a larger ``u_i`` *allows* a larger loss ``i``.

:func:`to_weights` L1-normalises rays into weights; :func:`weights_to_rays` gives Pareto MTL the rays that
aim at the same region as a weight set (``specs/mt2o.md`` §1.1).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

__all__ = [
    "GENERATORS",
    "circle",
    "circle_trimmed",
    "das_dennis",
    "dirichlet",
    "make_preferences",
    "shrink",
    "simplex_uniform",
    "to_weights",
    "weights_to_rays",
]


def _check_int(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"Parameter `{name}` should be an integer ≥ {low}. Found `{name} = {value!r}`.")


def circle(n: int, *, inset: float = 0.0) -> Tensor:
    r"""PMTL's ``circle_points``: unit rays :math:`(\cos\theta_k, \sin\theta_k)`,
    :math:`\theta_k = \epsilon + (\pi/2 - 2\epsilon)\,k/(K-1)`, k = 0..K−1 (both axes when ``inset = 0``).

    :param n: number of rays K ≥ 2.
    :param inset: the angular inset ε in radians (``circle_trimmed`` uses 0.1).
    :returns: ``(K, 2)`` unit rays (not weights: see :func:`to_weights`).
    """
    _check_int("n", n, 2)
    if not 0.0 <= inset < math.pi / 4:
        raise ValueError(f"Parameter `inset` should be in [0, π/4). Found `inset = {inset}`.")
    theta = inset + (math.pi / 2 - 2 * inset) * torch.arange(n, dtype=torch.float64) / (n - 1)
    return torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)


def circle_trimmed(n: int = 5) -> Tensor:
    """``circle`` with a 0.1 rad inset (PHN's test rays)."""
    return circle(n, inset=0.1)


def simplex_uniform(n: int, *, eps: float = 1e-3) -> Tensor:
    """Two objectives: ``w1 = linspace(eps, 1 − eps, K)``, ``w2 = 1 − w1`` (LibMOON's ``uniform_pref`` semantics)."""
    _check_int("n", n, 2)
    if not 0.0 <= eps < 0.5:
        raise ValueError(f"Parameter `eps` should be in [0, 0.5). Found `eps = {eps}`.")
    w1 = torch.linspace(eps, 1 - eps, n, dtype=torch.float64)
    return torch.stack([w1, 1 - w1], dim=1)


def das_dennis(n_obj: int, divisions: int) -> Tensor:
    """All vectors with entries in {0, 1/H, …, 1} summing to 1: C(H+m−1, m−1) rows (lexicographic order)."""
    _check_int("n_obj", n_obj, 2)
    _check_int("divisions", divisions, 1)
    rows = []
    for c in itertools.product(range(divisions + 1), repeat=n_obj - 1):
        if sum(c) <= divisions:
            rows.append([*c, divisions - sum(c)])
    w = torch.tensor(sorted(rows, reverse=True), dtype=torch.float64) / divisions
    return w


def dirichlet(n: int, n_obj: int, *, alpha: float = 1.0, generator: torch.Generator) -> Tensor:
    """``n`` draws from Dirichlet(α·𝟙_m) with an explicit ``generator`` (via normalised Gamma draws)."""
    _check_int("n", n, 1)
    _check_int("n_obj", n_obj, 2)
    if not alpha > 0:
        raise ValueError(f"Parameter `alpha` should be positive. Found `alpha = {alpha}`.")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"Parameter `generator` should be a torch.Generator. Found {type(generator).__name__}.")
    # Gamma(α) by inverse transform is not available in torch; use the Marsaglia–Tsang-free route:
    # for the exponential case α = 1 use −log U; otherwise draw Gamma via torch's sampler seeded from the generator.
    if alpha == 1.0:
        g = -torch.log(torch.rand(n, n_obj, generator=generator, dtype=torch.float64).clamp_min(1e-300))
    else:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            g = torch.distributions.Gamma(torch.full((n, n_obj), float(alpha), dtype=torch.float64),
                                          torch.ones(n, n_obj, dtype=torch.float64)).sample()
    return g / g.sum(dim=1, keepdim=True)


def to_weights(w: Tensor) -> Tensor:
    """L1-normalise non-negative rows onto the simplex (the ``circle`` rays → weights of ``specs/mt2o.md`` §1.1)."""
    _check_rows(w)
    return w / w.sum(dim=1, keepdim=True)


def shrink(w: Tensor, amount: float) -> Tensor:
    """Centroid shrink ``w ← (1 − a)·w + a/m`` (``specs/mt2o.md`` §1.1: a = 0.35 for m = 7, ε = 0.1 for EPO)."""
    _check_rows(w)
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"Parameter `amount` should be in [0, 1]. Found `amount = {amount}`.")
    return (1 - amount) * w + amount / w.shape[1]


def weights_to_rays(w: Tensor, *, floor: float = 1e-3) -> Tensor:
    """Pareto MTL rays aiming at the region of each weight row (``specs/mt2o.md`` §1.1).

    For m = 2 with ``circle`` weights this is exactly the reversed pairing: the ray of weight ``(a, b)`` is
    ``(b, a)/‖(b, a)‖`` (a larger weight on task i means a *smaller* allowed loss i). For m > 2,
    ``u ∝ 1/max(w, floor)``, normalised to unit length.
    """
    _check_rows(w)
    if w.shape[1] == 2:
        u = w.flip(1)
    else:
        u = 1.0 / w.clamp_min(floor)
    return u / u.norm(dim=1, keepdim=True)


def _check_rows(w: Tensor) -> None:
    if not isinstance(w, Tensor) or w.ndim != 2 or w.shape[1] < 2 or w.shape[0] < 1:
        raise ValueError(f"Parameter `w` should be a (K, m) tensor with m ≥ 2. Found shape "
                         f"{tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__}.")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or bool((w.sum(dim=1) <= 0).any()):
        raise ValueError(f"Parameter `w` should have finite, non-negative, non-zero rows. Found `w = {w.tolist()}`.")


GENERATORS = ("circle", "circle_trimmed", "simplex_uniform", "das_dennis", "dirichlet")


def make_preferences(generator: str, n_obj: int, *, n: int | None = None, divisions: int | None = None,
                     shrink_amount: float = 0.0, alpha: float = 1.0, seed: int = 0) -> Tensor:
    """Build *weights* (rows on the simplex) by name, recording-friendly: ``(generator, n_obj, n|divisions, shrink)``.

    ``circle``/``circle_trimmed`` rays are L1-normalised, e.g. ``circle`` K = 5 gives (1,0), (.7071,.2929),
    (.5,.5), (.2929,.7071), (0,1).
    """
    if generator in ("circle", "circle_trimmed", "simplex_uniform") and n_obj != 2:
        raise ValueError(f"Generator {generator!r} needs `n_obj = 2`. Found `n_obj = {n_obj}`.")
    if generator == "circle":
        w = to_weights(circle(n if n is not None else 5))
    elif generator == "circle_trimmed":
        w = to_weights(circle_trimmed(n if n is not None else 5))
    elif generator == "simplex_uniform":
        w = simplex_uniform(n if n is not None else 5)
    elif generator == "das_dennis":
        w = das_dennis(n_obj, divisions if divisions is not None else 4)
    elif generator == "dirichlet":
        w = dirichlet(n if n is not None else 5, n_obj, alpha=alpha, generator=torch.Generator().manual_seed(seed))
    else:
        raise ValueError(f"Parameter `generator` should be one of {GENERATORS}. Found `generator = {generator!r}`.")
    return shrink(w, shrink_amount) if shrink_amount > 0 else w
