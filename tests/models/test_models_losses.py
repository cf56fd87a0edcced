"""Per-task loss helpers: golden values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from paper_repro.models.losses import (bce_with_logits, cross_entropy, dense_task_loss, depth_l1_loss,
                                       normal_cosine_loss, normal_l1_loss)


def test_depth_l1_ignores_invalid_pixels() -> None:
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 4.0], [0.0, 2.0]]]], dtype=torch.float64)  # (0,1)=0 is invalid
    assert depth_l1_loss(pred, target).item() == pytest.approx(4.0 / 3.0)
    mask = torch.tensor([[[True, False], [False, False]]])
    assert depth_l1_loss(pred, target, mask).item() == 0.0


def test_normal_losses() -> None:
    target = torch.zeros(1, 3, 1, 3, dtype=torch.float64)
    target[:, 2, :, :2] = 1.0  # third pixel invalid
    pred = torch.zeros_like(target)
    pred[0, :, 0, 0] = torch.tensor([0.0, 0.0, 5.0])  # aligned after normalisation
    pred[0, :, 0, 1] = torch.tensor([1.0, 0.0, 0.0])  # 90 degrees
    pred[0, :, 0, 2] = torch.tensor([1.0, 0.0, 0.0])  # ignored
    assert normal_cosine_loss(pred, target).item() == pytest.approx(0.5)
    assert normal_l1_loss(pred, target).item() == pytest.approx(1.0)


def test_cross_entropy_ignore_and_empty() -> None:
    logits = torch.zeros(1, 4, 2, 2, requires_grad=True)
    target = torch.tensor([[[0, -1], [3, 2]]])
    assert cross_entropy(logits, target).item() == pytest.approx(math.log(4))
    empty = cross_entropy(logits, torch.full((1, 2, 2), -1))
    empty.backward()
    assert empty.item() == 0.0 and logits.grad is not None


def test_bce_and_dispatch() -> None:
    assert bce_with_logits(torch.zeros(3), torch.tensor([0, 1, 1])).item() == pytest.approx(math.log(2))
    assert dense_task_loss("depth") is depth_l1_loss
    with pytest.raises(ValueError, match="task"):
        dense_task_loss("edges")
