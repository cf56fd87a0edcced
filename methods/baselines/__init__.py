r"""Baselines: loss-level and gradient-level multi-task combiners.

Each is usable in three lines from your own training loop:

>>> import torch
>>> from methods import mtl_backward
>>> from methods.baselines import MGDA
>>> trunk, heads = torch.nn.Linear(4, 8), torch.nn.ModuleList([torch.nn.Linear(8, 1) for _ in range(2)])
>>> opt = torch.optim.SGD([*trunk.parameters(), *heads.parameters()], lr=0.1)
>>> x, y = torch.randn(16, 4), torch.randn(16, 2)
>>> z = trunk(x).relu()
>>> losses = torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)])
>>> info = mtl_backward(losses, MGDA(), shared_params=trunk.parameters(), task_params=heads.parameters())
>>> opt.step()

Loss-level (:class:`~methods.LossCombiner`): :class:`EqualWeighting`, :class:`LinearScalarization`,
:class:`Tchebycheff`, :class:`SmoothTchebycheff`, :class:`UncertaintyWeighting`, :class:`DWA`,
:class:`FAMO`. Gradient-level (:class:`~methods.GradientCombiner`): :class:`MGDA` (MGDA-UB with
``features=``), :class:`PCGrad`, :class:`CAGrad`, :class:`IMTLG`, :class:`NashMTL`,
:class:`AlignedMTL`, :class:`UPGrad`, :class:`GradNorm`.

Everything that TorchJD (``torchjd==0.18.0``) has is taken from it through one adapter
(``methods/baselines/_torchjd.py``); :class:`Tchebycheff` and :class:`GradNorm` are written here and
tested against independent references.
"""

from ._gradient import MGDA, AlignedMTL, CAGrad, IMTLG, NashMTL, PCGrad, UPGrad
from ._gradnorm import GradNorm
from ._scalarization import (
    DWA,
    FAMO,
    EqualWeighting,
    LinearScalarization,
    SmoothTchebycheff,
    Tchebycheff,
    UncertaintyWeighting,
)
from ._torchjd import TORCHJD_VERSION, WeightingCombiner

__all__ = [
    "EqualWeighting", "LinearScalarization", "Tchebycheff", "SmoothTchebycheff", "UncertaintyWeighting",
    "DWA", "FAMO",
    "MGDA", "PCGrad", "CAGrad", "IMTLG", "NashMTL", "AlignedMTL", "UPGrad", "GradNorm",
    "WeightingCombiner", "TORCHJD_VERSION",
]
