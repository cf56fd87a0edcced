"""Multi-task optimization methods, usable in three lines from your own training loop.

>>> import torch
>>> from methods import EqualWeighting, mtl_backward
>>> trunk, heads = torch.nn.Linear(4, 8), torch.nn.ModuleList([torch.nn.Linear(8, 1) for _ in range(2)])
>>> opt = torch.optim.SGD([*trunk.parameters(), *heads.parameters()], lr=0.1)
>>> x, y = torch.randn(16, 4), torch.randn(16, 2)
>>> z = trunk(x).relu()
>>> losses = torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)])
>>> info = mtl_backward(losses, EqualWeighting(), shared_params=trunk.parameters(), task_params=heads.parameters())
>>> opt.step()
"""

from ._core import (
    Combiner,
    GradientCombiner,
    GradientStats,
    LossCombiner,
    StructureCombiner,
    check_losses,
    mtl_backward,
    task_jacobian,
)
from .strategies import ForwardResult, JointStep, MixedStep, SequentialStep, StepStrategy
from .baselines import (
    DWA,
    FAMO,
    MGDA,
    AlignedMTL,
    CAGrad,
    EqualWeighting,
    GradNorm,
    IMTLG,
    LinearScalarization,
    NashMTL,
    PCGrad,
    SmoothTchebycheff,
    Tchebycheff,
    UncertaintyWeighting,
    UPGrad,
)
from .cso import CSOCombiner, CSOStep
from .emtl import EMTL, EMTLR2, EMTLStep
from .mt2o import MT2OTrainer, Population
from .nmt import NMTConfig, PriorityLagrangian, train_prioritized

__all__ = [
    "Combiner", "LossCombiner", "GradientCombiner", "StructureCombiner", "GradientStats",
    "check_losses", "mtl_backward", "task_jacobian",
    "ForwardResult", "StepStrategy", "JointStep", "SequentialStep", "MixedStep",
    "EqualWeighting", "LinearScalarization", "Tchebycheff", "SmoothTchebycheff", "UncertaintyWeighting",
    "DWA", "FAMO", "GradNorm", "MGDA", "PCGrad", "CAGrad", "IMTLG", "NashMTL", "AlignedMTL", "UPGrad",
    "PriorityLagrangian", "NMTConfig", "train_prioritized",  # NMT, arXiv 2412.12092
    "EMTL", "EMTLR2", "EMTLStep",  # EMTL, arXiv 2306.09373
    "CSOCombiner", "CSOStep",  # CSO, arXiv 2406.02996
    "MT2OTrainer", "Population",  # MT2O, arXiv 2403.16162
]
