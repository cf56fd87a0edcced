"""Tests of the MNIST idx reader, Multi-MNIST and Multi-Digits (conventions §7.1-§7.3)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from paper_repro.data import load_mnist, multidigits, multimnist, multimnist36, read_idx, resize_indices
from paper_repro.data._common import overlay_pairs
from paper_repro.data.multimnist import MNIST_MEAN, MNIST_STD


def _write_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes, compress: bool = True) -> Path:
    header = np.array([magic, *dims], dtype=">u4").tobytes()
    (gzip.open if compress else open)(path, "wb").write(header + payload)
    return path


def test_read_idx_roundtrip_gz_and_raw(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    got = read_idx(_write_idx(tmp_path / "a-images.gz", 2051, (2, 3, 4), images.tobytes()))
    np.testing.assert_array_equal(got, images)
    labels = np.array([7, 1], dtype=np.uint8)
    got = read_idx(_write_idx(tmp_path / "a-labels", 2049, (2,), labels.tobytes(), compress=False))
    np.testing.assert_array_equal(got, labels)
    assert not got.flags.writeable


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="magic"):
        read_idx(_write_idx(tmp_path / "bad.gz", 1234, (2,), b"\x00\x00"))
    with pytest.raises(ValueError, match="declares shape"):
        read_idx(_write_idx(tmp_path / "short.gz", 2051, (2, 3, 4), b"\x00" * 5))
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.gz")


def test_load_mnist_from_root_and_missing(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 2051, (5, 28, 28), images.tobytes())
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, (5,), bytes(range(5)))
    x, y = load_mnist(tmp_path, "test")
    assert x.shape == (5, 28, 28) and y.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path, "validation")


def test_bundled_mnist_shapes() -> None:
    x, y = load_mnist(split="test")
    assert x.shape == (10_000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10_000,) and set(np.unique(y)) == set(range(10))


def test_resize_indices_pinned() -> None:
    expected = [0, 1, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 16, 17, 18, 19, 21, 22, 23, 25, 26, 27, 28, 30, 31, 32, 34, 35]
    assert resize_indices(36, 28).tolist() == expected
    assert resize_indices(36, 28).tolist() == [int(np.floor((k + 0.5) * 36 / 28)) for k in range(28)]


def test_overlay_pairs_recipe() -> None:
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    out = overlay_pairs(left, right, offset=6, canvas=36)
    assert out.shape == (2, 36, 36)
    np.testing.assert_array_equal(out[:, :6, :28], left[:, :6, :])
    np.testing.assert_array_equal(out[:, 28:34, 6:34], right[:, 22:, :])
    np.testing.assert_array_equal(out[:, 6:28, 6:28], np.maximum(left[:, 6:, 6:], right[:, :22, :22]))
    assert out[:, 34:].sum() == 0 and out[:, :, 34:].sum() == 0
    with pytest.raises(ValueError):
        overlay_pairs(left, right, offset=10, canvas=36)


@pytest.mark.parametrize("builder, side", [(multimnist, 28), (multimnist36, 36)])
def test_multimnist_shapes_and_determinism(builder, side: int) -> None:
    a = builder(1000, 300, seed=0)
    assert a.sizes() == {"train": 900, "val": 100, "test": 300}
    for part in (a.train, a.val, a.test):
        assert part.x.shape[1:] == (1, side, side) and part.x.dtype == torch.float32
        assert part.y.shape[1] == 2 and part.y.dtype == torch.int64
        assert part.y.min() >= 0 and part.y.max() <= 9
    # background pixels are the normalized zero
    assert torch.isclose(a.train.x.min(), torch.tensor(-MNIST_MEAN / MNIST_STD))
    b = builder(1000, 300, seed=0)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    c = builder(1000, 300, seed=1)
    assert not torch.equal(a.train.x, c.train.x)


def test_multimnist_raw_and_split_disjointness() -> None:
    s = multimnist36(600, 200, seed=3, normalize=False)
    assert s.train.x.dtype == torch.uint8
    flat = {tuple(r) for r in s.train.x.flatten(1).tolist()}
    assert not flat & {tuple(r) for r in s.val.x.flatten(1).tolist()}
    assert not flat & {tuple(r) for r in s.test.x.flatten(1).tolist()}
    with pytest.raises(ValueError, match="n_test"):
        multimnist(100, 20_001)


def test_multidigits() -> None:
    a = multidigits(seed=0)
    assert a.sizes() == {"train": 2588, "val": 288, "test": 718}
    assert a.train.x.shape[1:] == (1, 10, 10) and a.train.x.dtype == torch.float32
    assert 0 <= a.train.x.min() and a.train.x.max() <= 1
    assert a.test.y.dtype == torch.int64 and set(a.test.y.unique().tolist()) <= set(range(10))
    assert torch.equal(a.val.x, multidigits(seed=0).val.x)
    assert not torch.equal(a.train.x, multidigits(seed=1).train.x)
