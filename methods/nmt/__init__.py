"""NMT: prioritized multi-task learning with Lagrangian differential multipliers (arXiv 2412.12092).

Tasks come in priority order T_1 ≻ … ≻ T_K [paper]. Stage k minimizes L_k subject to L_i ≤ ε_i for every
higher-priority task (ε_i = the optimum reached at stage i) [paper]; the multipliers λ replace hand-tuned
task weights and follow projected gradient ascent, and the Lagrangian is re-scaled by 1/(1+Σλ)
[reconstructed]. See ``specs/nmt.md`` for which parts are [paper], [reconstructed] or [decision].

* :class:`PriorityLagrangian`: the per-batch object (a loss-level combiner; λ step in ``after_step``);
* :class:`NMTConfig`: every hyper-parameter with its default and provenance;
* :func:`measure_threshold`, :func:`select_checkpoint`, :func:`train_prioritized` (+ :class:`NMTResult`):
  the stage-wise driver.

Shortest use, one constrained stage inside your own loop (losses in priority order, objective last):

>>> import torch
>>> from methods.nmt import PriorityLagrangian
>>> net = torch.nn.Linear(3, 2)
>>> opt = torch.optim.Adam(net.parameters(), lr=1e-2)
>>> mult = PriorityLagrangian(1, thresholds=[0.5])          # eps_1 = loss of the high-priority task at stage 1
>>> x, y = torch.randn(32, 3), torch.randn(32, 2)
>>> losses = ((net(x) - y) ** 2).mean(0)                     # (L_high, L_low)
>>> opt.zero_grad(); mult(losses).backward(); opt.step(); lam = mult.update()
>>> bool(lam[0] >= 0)
True
"""

from ._driver import NMTResult, default_unpack, measure_threshold, select_checkpoint, train_prioritized
from ._lagrangian import NMTConfig, PriorityLagrangian

__all__ = [
    "NMTConfig",
    "NMTResult",
    "PriorityLagrangian",
    "default_unpack",
    "measure_threshold",
    "select_checkpoint",
    "train_prioritized",
]
