"""Multi-head LeNet for the Multi-MNIST family (PMTL / PHN / MT2O E1 style).

Default for inputs of side ≥ 28 (``Xi-L/ParetoMTL:multiMNIST`` as described in ``specs/mt2o.md`` §4 E1):
conv 1→10 k9, ReLU, max-pool 2, conv 10→20 k5, ReLU, max-pool 2, fc → 50, ReLU; one ``50 → 10`` head per task.
With 36×36 inputs the flattened size is 20·5·5 = 500 exactly as in PMTL; 28×28 gives 20·3·3 = 180. Inputs of
side < 28 (Multi-Digits 10×10) use 3×3 kernels with padding 1 instead (10 → 5 → 2).
``batch_norm=True`` inserts a BatchNorm2d after each conv (CSO's "LeNet with 2 shared conv–BN layers",
``specs/cso.md`` §9), which :func:`~paper_repro.models.task_bn.convert_to_task_bn` can make per-task.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .base import ConvNormAct, EncoderHeadsModel, check_positive_int, mlp

__all__ = ["MultiLeNet"]


class MultiLeNet(EncoderHeadsModel):
    """LeNet trunk + ``n_tasks`` classification heads; outputs logits ``(N, n_classes)`` per task.

    :param n_tasks: number of heads.
    :param input_size: ``H`` or ``(H, W)`` of the ``(N, in_channels, H, W)`` input (28, 36, 10, ...).
    :param in_channels: input channels.
    :param channels: output channels of the two convs (default ``(10, 20)``).
    :param kernel_sizes: kernel sizes of the two convs; default ``(9, 5)`` without padding for side ≥ 28,
        else ``(3, 3)`` with padding 1.
    :param hidden: width of the shared fully connected layer (default 50).
    :param head_hidden: hidden widths of each head (``()``: a single linear layer, as PMTL; ``(50,)``: MGDA).
    :param n_classes: classes per task.
    :param batch_norm: conv–BN–ReLU blocks instead of conv(+bias)–ReLU.
    """

    def __init__(self, n_tasks: int = 2, input_size: int | tuple[int, int] = 36, *, in_channels: int = 1,
                 channels: tuple[int, int] = (10, 20), kernel_sizes: tuple[int, int] | None = None,
                 hidden: int = 50, head_hidden: Sequence[int] = (), n_classes: int = 10,
                 batch_norm: bool = False) -> None:
        check_positive_int("n_tasks", n_tasks)
        h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
        small = min(h, w) < 28
        ks = kernel_sizes if kernel_sizes is not None else ((3, 3) if small else (9, 5))
        pad = [k // 2 for k in ks] if (small and kernel_sizes is None) else [0, 0]
        norm = "batch" if batch_norm else "none"
        layers: list[nn.Module] = []
        c = in_channels
        for c_out, k, p in zip(channels, ks, pad):
            layers += [ConvNormAct(c, c_out, k, padding=p, norm=norm), nn.MaxPool2d(2)]
            h, w = (h + 2 * p - k + 1) // 2, (w + 2 * p - k + 1) // 2
            if h < 1 or w < 1:
                raise ValueError(f"Parameter `input_size` should leave a positive feature map for kernels {ks}. "
                                 f"Found `input_size = {input_size}`.")
            c = c_out
        encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU())
        heads = [mlp(hidden, head_hidden, out_features=n_classes) for _ in range(n_tasks)]
        super().__init__(encoder, heads)
        self.flat_features = c * h * w
