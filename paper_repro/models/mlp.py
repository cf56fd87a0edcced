"""Multi-head MLP: a shared MLP trunk and one small head per task (regression or classification).

MT2O E4 (``specs/mt2o.md`` §4): ``MultiHeadMLP(21, (256, 256, 256, b), n_tasks=m, activate_last=False)`` gives the
21-256-256-256 network with a shared *linear* bottleneck of width b and m linear heads.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .base import EncoderHeadsModel, check_positive_int, mlp

__all__ = ["MultiHeadMLP"]


class MultiHeadMLP(EncoderHeadsModel):
    """Shared MLP trunk → per-task heads. Input ``(N, ...)`` is flattened to ``(N, in_features)``.

    Task t outputs ``(N, out_features[t])`` (``(N, 1)`` for a regression target).

    :param in_features: number of input features after flattening.
    :param hidden: widths of the shared trunk (``Linear → ReLU`` each).
    :param n_tasks: number of heads.
    :param out_features: outputs per head, one int for all or one per task.
    :param head_hidden: hidden widths inside each head.
    :param activate_last: whether the trunk's last layer has a ReLU (``False``: linear bottleneck).
    :param batch_norm, dropout: options of the trunk's blocks.
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (256, 256), n_tasks: int = 2, *,
                 out_features: int | Sequence[int] = 1, head_hidden: Sequence[int] = (),
                 activate_last: bool = True, batch_norm: bool = False, dropout: float = 0.0) -> None:
        check_positive_int("in_features", in_features)
        check_positive_int("n_tasks", n_tasks)
        outs = [out_features] * n_tasks if isinstance(out_features, int) else list(out_features)
        if len(outs) != n_tasks:
            raise ValueError(f"Parameter `out_features` should have {n_tasks} entries. "
                             f"Found `out_features = {out_features}`.")
        if not hidden:
            raise ValueError(f"Parameter `hidden` should have at least one width. Found `hidden = {hidden}`.")
        trunk = mlp(in_features, hidden, batch_norm=batch_norm, dropout=dropout, activate_last=activate_last)
        heads = [mlp(hidden[-1], head_hidden, out_features=o) for o in outs]
        super().__init__(nn.Sequential(nn.Flatten(), trunk), heads)
