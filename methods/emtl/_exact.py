r"""R3, the exact (second-order) gradient of the inequity, for theory toys only (spec §3.6) [derived].

Without stop-gradient, :math:`\nabla r_i = g_i/n_i - L_i H_i g_i/n_i^3` and
:math:`\nabla \mathrm{Var}_T(r) = \frac2T\sum_i (r_i - \bar r)\nabla r_i`. Computed by double backprop
(``create_graph=True``): about 2–3× the cost of R1; not the paper's "efficient" method [reconstructed].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from .._core import check_losses

__all__ = ["exact_variance_grad"]


def exact_variance_grad(losses: Tensor, shared_parameters: Sequence[Tensor],
                        kind: Literal["var", "cv2", "logvar"] = "var", eps: float = 0.0) -> Tensor:
    r"""Flat gradient of the inequity of :math:`r_i = L_i/(\|\nabla L_i\| + \varepsilon)` w.r.t. ``shared_parameters``,
    differentiating through the norms (double backprop).

    ``kind``: ``"var"`` (:math:`\mathrm{Var}_T(r)`), ``"cv2"`` (:math:`\mathrm{Var}_T(r)/\bar r^2`, with
    :math:`\bar r` differentiated too) or ``"logvar"`` (:math:`\mathrm{Var}_T(\log r)`).

    :param losses: ``(T,)`` losses whose graph reaches ``shared_parameters`` twice-differentiably.
    :returns: ``(P,)`` tensor, parameters flattened in order.
    """
    check_losses(losses)
    params = list(shared_parameters)
    if not params:
        raise ValueError("Parameter `shared_parameters` should hold at least one tensor. Found none.")
    norms = []
    for i in range(losses.numel()):
        gs = torch.autograd.grad(losses[i], params, create_graph=True, allow_unused=True, materialize_grads=True)
        norms.append(torch.sqrt(sum((g**2).sum() for g in gs)))
    n = torch.stack(norms) + eps
    r = losses / n
    if kind == "var":
        reg = ((r - r.mean()) ** 2).mean()
    elif kind == "cv2":
        reg = ((r - r.mean()) ** 2).mean() / r.mean() ** 2
    elif kind == "logvar":
        lr = r.log()
        reg = ((lr - lr.mean()) ** 2).mean()
    else:
        raise ValueError(f"Parameter `kind` should be 'var', 'cv2' or 'logvar'. Found `kind = {kind!r}`.")
    grads = torch.autograd.grad(reg, params, allow_unused=True, materialize_grads=True)
    return torch.cat([g.reshape(-1) for g in grads])
