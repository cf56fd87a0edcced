"""EMTL, "Equitable Multi-task Learning" (Yuan & Zhang, arXiv 2306.09373), reconstructed (spec ``emtl.md``).

The relative contribution of task i is :math:`r_i = L_i/\\|g_i\\|`; EMTL regularises their variance.
The default R1 step adds a stop-gradient variance regulariser whose gradient is a closed-form
re-weighting of the task gradients, :math:`w_i = 1 + \\frac{2\\lambda}{T}\\rho_i(\\rho_i - 1)/L_i`.

>>> import torch
>>> from methods.emtl import EMTL
>>> trunk, heads = torch.nn.Linear(4, 8), torch.nn.ModuleList([torch.nn.Linear(8, 1) for _ in range(2)])
>>> opt = torch.optim.Adam([*trunk.parameters(), *heads.parameters()], lr=1e-2)
>>> x, y = torch.randn(32, 4), torch.randn(32, 2)
>>> z = trunk(x).relu()
>>> losses = torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)])
>>> info = EMTL(2).backward(losses, shared_params=trunk.parameters(), task_params=[h.parameters() for h in heads])
>>> opt.step()
>>> len(info["weights"]), info["cv2_r"] >= 0
(2, True)
"""

from ._emtl import EMTL, EMTLR2, EMTLStep, InequityLogger, inequity_summary, task_grad_norms
from ._exact import exact_variance_grad
from ._functional import emtl_weights, imtl_weights, inequity, r2_weights, regularizer_weights, relative_contributions

__all__ = [
    "EMTL",
    "EMTLR2",
    "EMTLStep",
    "InequityLogger",
    "task_grad_norms",
    "inequity_summary",
    "relative_contributions",
    "inequity",
    "regularizer_weights",
    "emtl_weights",
    "imtl_weights",
    "r2_weights",
    "exact_variance_grad",
]
