"""Synthetic recommendation data (NMT spec §4.1; reused by EMTL §5.4).

- :func:`mmoe_synthetic` (E1): the MMoE paper's generator (Ma et al., KDD 2018) with controllable
  task correlation p; parameters per ``specs/nmt.md`` §4.1 [decision].
- :func:`click_purchase` (E2): a click → purchase cascade for CTR / CTCVR over all impressions
  (task definitions of ESMM, arXiv 1804.07931; the rest per ``specs/nmt.md`` §4.1 [decision]).

Both return :class:`Splits` of :class:`RecsysData`; validation is 10 % of the training pool drawn
with the data seed (conventions §4). Standardization statistics come from the training pool.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ._common import RecsysData, SeedLike, Splits, as_generator, check_fraction, check_positive, split_fractions

__all__ = ["mmoe_synthetic", "click_purchase", "CASCADE_VOCABS", "CASCADE_RATES"]

logger = logging.getLogger(__name__)

#: Vocabulary sizes of the 8 categorical fields of the cascade (nmt.md §4.1 E2).
CASCADE_VOCABS: tuple[int, ...] = (1000, 500, 200, 100, 50, 20, 10, 5)
#: Target (click rate, purchase-given-click rate) per preset (nmt.md §4.1 E2).
CASCADE_RATES: dict[str, tuple[float, float]] = {"default": (0.10, 0.20), "realistic": (0.04, 0.05)}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _standardize(v: np.ndarray, n_fit: int) -> np.ndarray:
    mu, sd = v[:n_fit].mean(0), v[:n_fit].std(0)
    return (v - mu) / sd


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def _split(
    categorical: np.ndarray, dense: np.ndarray, labels: np.ndarray, n_train: int, val_fraction: float,
    vocab_sizes: tuple[int, ...], rng: np.random.Generator, meta: dict,
) -> Splits[RecsysData]:
    data = RecsysData(
        categorical=torch.from_numpy(categorical.astype(np.int64)),
        dense=torch.from_numpy(dense.astype(np.float32)),
        labels=torch.from_numpy(labels.astype(np.float32)),
        vocab_sizes=vocab_sizes,
    )
    keep, held = split_fractions(n_train, val_fraction, rng)
    out = Splits(train=data.subset(keep), val=data.subset(held), test=data.subset(slice(n_train, None)), meta=meta)
    meta["sizes"] = out.sizes()
    return out


def mmoe_synthetic(
    n_train: int = 20_000,
    n_test: int = 20_000,
    *,
    p: float = 0.5,
    d: int = 100,
    c: float = 1.0,
    m: int = 10,
    noise_std: float = 0.1,
    label_scale: float = 3.0,
    regression: bool = False,
    seed: SeedLike = 0,
    val_fraction: float = 0.1,
) -> Splits[RecsysData]:
    """MMoE-style two-task data with controllable correlation (nmt.md §4.1 E1).

    u_1, u_2 orthonormal in R^d (QR of a Gaussian d×2 matrix); w_1 = c·u_1,
    w_2 = c·(p·u_1 + √(1−p²)·u_2); x ~ N(0, I_d);
    y_t = w_tᵀx + Σ_{j=1}^{m} sin(α_j·w_tᵀx + β_j) + N(0, noise_std²), with α_j, β_j ~ N(0, 1)
    drawn once per data seed and shared by both tasks. z_t is y_t standardized with the training-pool
    statistics; labels are Bernoulli(σ(label_scale·z_t)), or z_t itself when ``regression``.

    Smoke size 4k / 4k, full 20k / 20k. ``meta`` logs the empirical label correlation on the
    training pool (it is not p), the correlation of the y_t, positive rates, α and β. The sine terms
    are not odd (β ≠ 0), so for p < 0 the sign of the label correlation depends on the data seed
    (seed 0: −0.05 at p = −0.5; seed 1: +0.01); for p ≥ 0 it grows with p.

    :returns: :class:`Splits` of :class:`RecsysData` with ``categorical (N, 0)``, ``dense = x (N, d)``
        and ``labels (N, 2)`` float32.
    """
    if not -1.0 <= p <= 1.0:
        raise ValueError(f"Parameter `p` should be in [-1, 1]. Found `p = {p!r}`.")
    for name, value in (("n_train", n_train), ("n_test", n_test), ("d", d), ("m", m)):
        check_positive(name, value, integer=True)
    if d < 2:
        raise ValueError(f"Parameter `d` should be at least 2. Found `d = {d}`.")
    check_positive("c", c)
    check_fraction("val_fraction", val_fraction)
    rng = as_generator(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    u1, u2 = q[:, 0], q[:, 1]
    w = np.stack([c * u1, c * (p * u1 + np.sqrt(1.0 - p**2) * u2)], axis=1)  # (d, 2)
    alpha, beta = rng.standard_normal(m), rng.standard_normal(m)
    n = n_train + n_test
    x = rng.standard_normal((n, d))
    s = x @ w  # (n, 2)
    y = s + np.sin(s[..., None] * alpha + beta).sum(-1) + noise_std * rng.standard_normal((n, 2))
    z = _standardize(y, n_train)
    labels = z if regression else (rng.random((n, 2)) < _sigmoid(label_scale * z)).astype(np.float64)
    tr = slice(0, n_train)
    meta = {
        "recipe": "MMoE synthetic (Ma et al. 2018), specs/nmt.md §4.1 E1",
        "seed": seed if isinstance(seed, int) else "generator",
        "p": p, "d": d, "c": c, "m": m, "noise_std": noise_std, "label_scale": label_scale,
        "regression": regression, "val_fraction": val_fraction,
        "alpha": alpha.tolist(), "beta": beta.tolist(),
        "label_correlation": _corr(labels[tr, 0], labels[tr, 1]),
        "target_correlation": _corr(y[tr, 0], y[tr, 1]),
        "positive_rate": None if regression else labels[tr].mean(0).tolist(),
    }
    logger.info("MMoE synthetic p=%s: empirical label correlation %.3f", p, meta["label_correlation"])
    return _split(np.zeros((n, 0)), x, labels, n_train, val_fraction, (), rng, meta)


def _bisect_bias(score: np.ndarray, target: float, weight: np.ndarray | None = None, iters: int = 100) -> float:
    """Bias b with weighted mean of σ(score + b) equal to ``target`` (monotone in b: bisection)."""
    lo, hi = -30.0, 30.0
    w = np.ones_like(score) if weight is None else weight
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if np.average(_sigmoid(score + mid), weights=w) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def click_purchase(
    n_train: int = 200_000,
    n_test: int = 100_000,
    *,
    rho_c: float = 0.5,
    preset: str = "default",
    rates: tuple[float, float] | None = None,
    zipf_a: float = 1.1,
    logit_scale: float = 1.5,
    seed: SeedLike = 0,
    val_fraction: float = 0.1,
) -> Splits[RecsysData]:
    """Click → purchase cascade with CTR and CTCVR labels (nmt.md §4.1 E2).

    Features: 8 categorical fields with vocabularies :data:`CASCADE_VOCABS`, ids Zipf(zipf_a) − 1
    modulo the vocabulary size, each value with a fixed N(0, I_4) code; 8 dense N(0, 1) features;
    s ∈ R^40 concatenates the 32 code entries and the dense features. Two random teacher MLPs
    40 → 32 (tanh) → 1, weights N(0, 1/fan_in) and zero biases [decision], give t_1, t_2, standardized
    on the training pool. z_ctr = t_1, z_cvr = ρ_c·t_1 + √(1 − ρ_c²)·t_2.
    click ~ Bernoulli(σ(1.5·z_ctr + b_1)), buy = click·Bernoulli(σ(1.5·z_cvr + b_2)), with b_1 set by
    bisection so the expected click rate on the training pool is the target, and b_2 so the
    expected purchase rate among clicks (weighted by the click probabilities) is the target.

    :param preset: ``"default"`` (click 0.10, purchase | click 0.20, CTCVR ≈ 0.02) or ``"realistic"``
        (0.04 / 0.05); ``rates`` overrides both.
    :returns: :class:`Splits` of :class:`RecsysData`: ``categorical (N, 8)`` int64, ``dense (N, 8)``,
        ``labels (N, 2)`` = (click, buy) float32. Smoke size 20k / 10k, full 200k / 100k. ``meta``
        has the targets, realized rates, biases and label correlation.
    """
    if not -1.0 <= rho_c <= 1.0:
        raise ValueError(f"Parameter `rho_c` should be in [-1, 1]. Found `rho_c = {rho_c!r}`.")
    if preset not in CASCADE_RATES:
        raise ValueError(f"Parameter `preset` should be one of {tuple(CASCADE_RATES)}. Found `preset = {preset!r}`.")
    click_rate, buy_rate = CASCADE_RATES[preset] if rates is None else rates
    for name, value in (("rates[0]", click_rate), ("rates[1]", buy_rate)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"Parameter `{name}` should be in (0, 1). Found `{name} = {value!r}`.")
    check_positive("n_train", n_train, integer=True)
    check_positive("n_test", n_test, integer=True)
    if not zipf_a > 1.0:
        raise ValueError(f"Parameter `zipf_a` should be greater than 1. Found `zipf_a = {zipf_a!r}`.")
    check_fraction("val_fraction", val_fraction)
    rng = as_generator(seed)
    n = n_train + n_test
    codes = [rng.standard_normal((v, 4)) for v in CASCADE_VOCABS]
    ids = np.stack([(rng.zipf(zipf_a, n) - 1) % v for v in CASCADE_VOCABS], axis=1)
    dense = rng.standard_normal((n, 8))
    s = np.concatenate([codes[f][ids[:, f]] for f in range(len(CASCADE_VOCABS))] + [dense], axis=1)  # (n, 40)
    teachers = []
    for _ in range(2):
        w1 = rng.standard_normal((40, 32)) / np.sqrt(40)
        w2 = rng.standard_normal((32, 1)) / np.sqrt(32)
        teachers.append((np.tanh(s @ w1) @ w2)[:, 0])
    t = _standardize(np.stack(teachers, axis=1), n_train)
    z_ctr = t[:, 0]
    z_cvr = rho_c * t[:, 0] + np.sqrt(1.0 - rho_c**2) * t[:, 1]
    tr = slice(0, n_train)
    b1 = _bisect_bias(logit_scale * z_ctr[tr], click_rate)
    p_click = _sigmoid(logit_scale * z_ctr + b1)
    b2 = _bisect_bias(logit_scale * z_cvr[tr], buy_rate, weight=p_click[tr])
    p_buy = _sigmoid(logit_scale * z_cvr + b2)
    click = rng.random(n) < p_click
    buy = click & (rng.random(n) < p_buy)
    labels = np.stack([click, buy], axis=1).astype(np.float64)
    meta = {
        "recipe": "click → purchase cascade, specs/nmt.md §4.1 E2 (ESMM task definitions)",
        "seed": seed if isinstance(seed, int) else "generator",
        "rho_c": rho_c, "preset": preset, "zipf_a": zipf_a, "logit_scale": logit_scale,
        "val_fraction": val_fraction, "target_click_rate": click_rate, "target_buy_given_click": buy_rate,
        "bias_click": b1, "bias_buy": b2,
        "click_rate": float(click[tr].mean()),
        "buy_given_click": float(buy[tr].sum() / max(click[tr].sum(), 1)),
        "ctcvr_rate": float(buy[tr].mean()),
        "label_correlation": _corr(labels[tr, 0], labels[tr, 1]),
        "latent_correlation": _corr(z_ctr[tr], z_cvr[tr]),
    }
    logger.info("Cascade rho_c=%s: click %.4f, buy|click %.4f", rho_c, meta["click_rate"], meta["buy_given_click"])
    return _split(ids, dense, labels, n_train, val_fraction, CASCADE_VOCABS, rng, meta)
