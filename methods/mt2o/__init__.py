"""MT2O (reconstruction): multi-task learning as K scalarised subproblems solved jointly with parameter transfer.

Bai, Gupta & Ong, arXiv 2403.16162; transfer rule reconstructed from the authors' multi-task gradient descent
(Memetic Computing 2020). See ``specs/mt2o.md``. Shortest useful run (two tasks, K = 5 stacked models)::

    >>> import torch
    >>> from torch import nn
    >>> from methods.mt2o import FixedSimilarity, MT2OTrainer, Population, make_preferences
    >>> class Two(nn.Module):
    ...     n_tasks = 2
    ...     def __init__(self): super().__init__(); self.lin = nn.Linear(3, 2)
    ...     def forward(self, x): out = self.lin(x); return [out[:, 0], out[:, 1]]
    >>> pop = Population(Two, 5)
    >>> w = make_preferences("circle", 2, n=5).float()
    >>> x, y = torch.randn(8, 3), torch.randn(8, 2)
    >>> mse = lambda outs, t: torch.stack([((o - t[:, i]) ** 2).mean() for i, o in enumerate(outs)])
    >>> tr = MT2OTrainer(pop, w, loss_fn=mse, rule=FixedSimilarity(alpha=1.0),
    ...                  opt_factory=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    >>> tr.train_step(x, y).shape
    torch.Size([5, 2])
"""

from .directions import EPO, MGDAUB, DirectionRule, ParetoMTL, Scalarized, epo_weights, min_norm_simplex, pmtl_weights
from .population import Population, init_seeds
from .preferences import (
    circle,
    circle_trimmed,
    das_dennis,
    dirichlet,
    make_preferences,
    shrink,
    simplex_uniform,
    to_weights,
    weights_to_rays,
)
from .scalarize import Linear, Scalarization, SmoothTchebycheff, Tchebycheff, make_scalarization
from .trainer import EpochRecord, History, MT2OTrainer, time_to_fraction
from .transfer import Elitist, FixedSimilarity, Identity, TransferRule, apply_transfer, check_transfer_matrix, similarity_matrix

__all__ = [
    "EPO", "MGDAUB", "DirectionRule", "Elitist", "EpochRecord", "FixedSimilarity", "History", "Identity",
    "Linear", "MT2OTrainer", "ParetoMTL", "Population", "Scalarization", "Scalarized", "SmoothTchebycheff",
    "Tchebycheff", "TransferRule", "apply_transfer", "check_transfer_matrix", "circle", "circle_trimmed",
    "das_dennis", "dirichlet", "epo_weights", "init_seeds", "make_preferences", "make_scalarization",
    "min_norm_simplex", "pmtl_weights", "shrink", "similarity_matrix", "simplex_uniform", "time_to_fraction",
    "to_weights", "weights_to_rays",
]
