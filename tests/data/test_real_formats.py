"""Tests of the real-format loaders on tiny files written to ``tmp_path`` (conventions §9)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from paper_repro.data import NYUv2MTAN, load_aliexpress_csv, load_census_income, load_nyuv2_mtan, load_pmtl_multimnist

from ._files import write_aliexpress, write_census, write_nyuv2, write_pmtl


def test_nyuv2_mtan(tmp_path: Path) -> None:
    root = write_nyuv2(tmp_path / "nyuv2")
    ds = NYUv2MTAN(root, "val")
    assert len(ds) == 3
    image, seg, depth, normal = ds[0]
    assert image.shape == (3, 6, 8) and seg.shape == (6, 8) and depth.shape == (1, 6, 8) and normal.shape == (3, 6, 8)
    assert seg.dtype == torch.int64 and seg.min() >= -1
    data = load_nyuv2_mtan(root, "train", max_samples=2)
    assert len(data) == 2 and data.image.dtype == torch.float32
    np.save(root / "train" / "depth" / "1.npy", np.zeros((6, 8, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 1\)"):
        NYUv2MTAN(root, "train")[1]
    (root / "train" / "normal" / "2.npy").unlink()
    with pytest.raises(ValueError, match="different files"):
        NYUv2MTAN(root, "train")
    with pytest.raises(FileNotFoundError, match="MTAN"):
        NYUv2MTAN(tmp_path / "nowhere", "train")


def test_aliexpress_csv(tmp_path: Path) -> None:
    data = load_aliexpress_csv(write_aliexpress(tmp_path / "train.csv"))
    assert data.categorical.shape == (20, 16) and data.categorical.dtype == torch.int64
    assert data.dense.shape == (20, 3) and data.labels.shape == (20, 2) and data.labels.dtype == torch.float32
    assert len(data.vocab_sizes) == 16 and all(v <= 5 for v in data.vocab_sizes)
    assert (data.labels[:, 1] <= data.labels[:, 0]).all()
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    with pytest.raises(ValueError, match="only numbers"):
        load_aliexpress_csv(bad)
    with pytest.raises(FileNotFoundError, match="categorical"):
        load_aliexpress_csv(tmp_path / "missing.csv")


def test_pmtl_pickle(tmp_path: Path) -> None:
    train, test = load_pmtl_multimnist(write_pmtl(tmp_path / "multi_mnist.pickle"))
    assert train.x.shape == (10, 1, 36, 36) and test.x.shape == (4, 1, 36, 36)
    assert train.y.dtype == torch.int64 and train.y.shape == (10, 2)
    wrong = tmp_path / "wrong.pickle"
    wrong.write_bytes(pickle.dumps((np.zeros((3, 28, 28)), np.zeros((3, 2)), np.zeros((1, 28, 28)), np.zeros((1, 2)))))
    with pytest.raises(ValueError, match="36x36"):
        load_pmtl_multimnist(wrong)


def test_census_income(tmp_path: Path) -> None:
    train, vocabs = load_census_income(write_census(tmp_path / "census-income.data"))
    assert train.labels.shape == (12, 2)
    assert train.labels[:, 0].tolist() == [1.0 if i % 3 == 0 else 0.0 for i in range(12)]
    assert train.labels[:, 1].tolist() == [float(i % 2) for i in range(12)]
    assert train.dense.shape == (12, 7) and train.categorical.shape == (12, 42 - 7 - 3)
    assert (train.categorical >= 1).all() and (train.categorical.max(0).values < torch.tensor(train.vocab_sizes)).all()
    test, _ = load_census_income(write_census(tmp_path / "census-income.test", n=5), vocabularies=vocabs)
    assert test.vocab_sizes == train.vocab_sizes
    ragged = tmp_path / "ragged.data"
    ragged.write_text("1,2,3\n1,2\n")
    with pytest.raises(ValueError, match="row 1"):
        load_census_income(ragged)
