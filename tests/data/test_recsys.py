"""Tests of the synthetic recommendation generators (nmt.md §4.1 E1, E2)."""

from __future__ import annotations

import pytest
import torch

from paper_repro.data import CASCADE_VOCABS, click_purchase, mmoe_synthetic


def _rows(t: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(r) for r in t.tolist()}


def test_mmoe_shapes_determinism_and_splits() -> None:
    a = mmoe_synthetic(2000, 1000, p=0.5, seed=0)
    assert a.sizes() == {"train": 1800, "val": 200, "test": 1000}
    assert a.train.dense.shape == (1800, 100) and a.train.dense.dtype == torch.float32
    assert a.train.categorical.shape == (1800, 0) and a.train.categorical.dtype == torch.int64
    assert a.train.labels.shape == (1800, 2) and set(a.train.labels.unique().tolist()) == {0.0, 1.0}
    b = mmoe_synthetic(2000, 1000, p=0.5, seed=0)
    assert torch.equal(a.train.dense, b.train.dense) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.train.dense, mmoe_synthetic(2000, 1000, p=0.5, seed=1).train.dense)
    rows = _rows(a.train.dense[:, :3])
    assert not rows & _rows(a.val.dense[:, :3]) and not rows & _rows(a.test.dense[:, :3])
    reg = mmoe_synthetic(2000, 1000, regression=True, seed=0)
    assert abs(reg.train.labels.mean()) < 0.1 and reg.meta["positive_rate"] is None
    with pytest.raises(ValueError, match="`p`"):
        mmoe_synthetic(10, 10, p=1.5)


def test_mmoe_correlation_follows_p() -> None:
    corr = {p: mmoe_synthetic(4000, 100, p=p, seed=0).meta["label_correlation"] for p in (-0.5, 0.0, 0.5, 0.9)}
    assert corr[0.9] > corr[0.5] > 0.02 and abs(corr[0.0]) < 0.05 and corr[-0.5] < 0
    assert corr[0.9] > 0.2


@pytest.mark.parametrize("preset, rho_c", [("default", 0.5), ("realistic", -0.5)])
def test_cascade_rates_and_structure(preset: str, rho_c: float) -> None:
    s = click_purchase(20_000, 2_000, rho_c=rho_c, preset=preset, seed=0)
    m = s.meta
    n_clicks = m["click_rate"] * 20_000

    def sd(p: float, n: float) -> float:  # binomial standard error of a rate
        return (p * (1 - p) / n) ** 0.5

    assert abs(m["click_rate"] - m["target_click_rate"]) < 4 * sd(m["target_click_rate"], 20_000)
    assert abs(m["buy_given_click"] - m["target_buy_given_click"]) < 4 * sd(m["target_buy_given_click"], n_clicks)
    assert abs(m["ctcvr_rate"] - m["target_click_rate"] * m["target_buy_given_click"]) < 0.01
    assert abs(m["latent_correlation"] - rho_c) < 0.05
    tr = s.train
    assert tr.categorical.shape == (18_000, 8) and tr.categorical.dtype == torch.int64
    assert tr.dense.shape == (18_000, 8) and tr.labels.dtype == torch.float32
    assert tr.vocab_sizes == CASCADE_VOCABS
    assert (tr.categorical.min(0).values >= 0).all() and (tr.categorical.max(0).values < torch.tensor(CASCADE_VOCABS)).all()
    click, buy = tr.labels[:, 0], tr.labels[:, 1]
    assert (buy <= click).all()  # a purchase requires a click
    # Zipf ids: id 0 is the most frequent value of the first field
    assert torch.bincount(tr.categorical[:, 0]).argmax() == 0


def test_cascade_determinism() -> None:
    a, b = click_purchase(3000, 500, seed=4), click_purchase(3000, 500, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.test.tensors(), b.test.tensors()))
    assert not torch.equal(a.train.dense, click_purchase(3000, 500, seed=5).train.dense)
    with pytest.raises(ValueError, match="preset"):
        click_purchase(10, 10, preset="huge")
