"""Tests of the procedural scene set (NYUv2 stand-in)."""

from __future__ import annotations

import time

import torch

from paper_repro.data import SCENE_CLASSES, intrinsics, normals_from_depth, render_scenes, scenes


def test_shapes_ranges_and_units() -> None:
    s = render_scenes(20, size=(24, 40), seed=0, invalid_prob=0.5)
    assert s.image.shape == (20, 3, 24, 40) and s.image.dtype == torch.float32
    assert s.seg.shape == (20, 24, 40) and s.seg.dtype == torch.int64
    assert s.depth.shape == (20, 1, 24, 40) and s.normal.shape == (20, 3, 24, 40)
    assert 0 <= s.seg.min() and s.seg.max() < len(SCENE_CLASSES)
    assert 0 <= s.image.min() and s.image.max() <= 1
    valid = s.depth[:, 0] > 0
    assert 0.5 < valid.float().mean() < 1  # some holes, mostly valid
    assert s.depth[:, 0][valid].min() > 0.3 and s.depth.max() < 15
    norms = s.normal.norm(dim=1)
    assert torch.allclose(norms[valid], torch.ones(()), atol=1e-5)
    assert (norms[~valid] == 0).all()


def test_every_class_appears_and_objects_occlude() -> None:
    s = render_scenes(50, size=32, seed=1, clutter=5)
    assert set(s.seg.unique().tolist()) == set(range(len(SCENE_CLASSES)))
    empty = render_scenes(5, size=32, seed=1, clutter=0)
    assert empty.seg.max() <= 1  # walls and floor only


def test_normals_consistent_with_depth() -> None:
    size = 64
    s = render_scenes(30, size=size, seed=2)
    k = intrinsics(size, size)
    n_fd = normals_from_depth(s.depth.double(), k)
    n = s.normal.double()
    # planar pixels: the stored normal equals its 4 neighbours' (same plane), away from the border
    c = n[..., 1:-1, 1:-1]
    same = torch.ones_like(c[:, 0], dtype=torch.bool)
    for dv, du in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        nb = n[..., 1 + dv : size - 1 + dv, 1 + du : size - 1 + du]
        same &= (nb - c).abs().amax(1) < 1e-6
    cos = (n_fd[..., 1:-1, 1:-1] * c).sum(1)[same]
    assert same.float().mean() > 0.5
    assert (cos > torch.cos(torch.deg2rad(torch.tensor(2.0)))).float().mean() > 0.98
    # normals face the camera: n · ray < 0 everywhere
    from paper_repro.data.scenes import backproject

    assert ((backproject(s.depth.double(), k) * n).sum(1) < 0).all()


def test_determinism_splits_and_speed() -> None:
    a = scenes(8, 4, 4, size=16, seed=0)
    b = scenes(8, 4, 4, size=16, seed=0)
    assert all(torch.equal(x, y) for x, y in zip(a.train.tensors(), b.train.tensors()))
    assert not torch.equal(a.train.image, scenes(8, 4, 4, size=16, seed=1).train.image)
    assert not torch.equal(a.train.depth[:4], a.val.depth)
    assert a.meta["classes"] == list(SCENE_CLASSES) and a.meta["invalid_depth_value"] == 0.0
    t = time.perf_counter()
    render_scenes(1000, size=32, seed=0)
    assert time.perf_counter() - t < 20.0  # ≈ 1.5 s on an idle 2-core machine


def test_noise_knob() -> None:
    clean = render_scenes(4, size=16, seed=0, noise=0.0)
    noisy = render_scenes(4, size=16, seed=0, noise=2.0)
    assert torch.equal(clean.seg, noisy.seg) and torch.equal(clean.depth, noisy.depth)
    assert not torch.equal(clean.image, noisy.image)
