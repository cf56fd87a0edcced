r"""Connection strength (CSO, Jeong & Yoon, CVPR 2024, arXiv 2406.02996, Eq. 4–7 and 10). Pure functions.

For a conv weight :math:`W \in \mathbb{R}^{C_{out} \times C_{in} \times k \times k}` followed by task
:math:`\tau`'s BatchNorm :math:`(\gamma_\tau, \mathrm{Var}_\tau, \epsilon)`:

* Eq. 4: :math:`s_{p,q} = \frac{1}{k^2} \sum_{m,n} W[p,q,m,n]^2`;
* Eq. 6: :math:`S^{\tau}_p = \frac{\gamma_{\tau,p}^2}{\mathrm{Var}_{\tau,p} + \epsilon} \sum_q s_{p,q}`;
* Eq. 7: :math:`\hat S^{\tau}_p = S^{\tau}_p / \sum_{p'} S^{\tau}_{p'}` (per layer, per task);
* Eq. 10: :math:`\nu(p) = \arg\max_\tau \hat S^\tau_p`, the top-priority task of channel p.

Choices: the :math:`1/k^2` of Eq. 4 is dropped by default (it cancels in Eq. 7, fact F2; as in
[official-code]); ``Var`` is the task BN's detached ``running_var`` ([official-code]; ``specs/cso.md``
§3 #3); argmax ties go to the lowest task index ([decision], §3 #10). [derived] F1: :math:`S^\tau_p =
\|W'_p\|_F^2 / k^2` with :math:`W'_p = \gamma_p/\sqrt{\mathrm{Var}_p+\epsilon}\, W_p` the BN-folded filter.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["channel_strength", "normalized_strength", "owners", "is_degenerate", "ownership_shares"]


def channel_strength(weight: Tensor, gamma: Tensor | None, running_var: Tensor, eps: float, *, out_axis: int = 0,
                     kernel_average: bool = False) -> Tensor:
    r"""Eq. 4 + 6: :math:`S_p = \gamma_p^2/(\mathrm{Var}_p+\epsilon)\cdot\sum_{q,m,n} W[p,q,m,n]^2` (shape ``(C,)``).

    :param weight: conv weight, output channels on ``out_axis`` (0 for ``Conv2d``, 1 for ``ConvTranspose2d``).
    :param gamma: BN scale ``(C,)``, or ``None`` for a non-affine BN (γ = 1).
    :param running_var: BN variance ``(C,)``.
    :param eps: BN epsilon (≥ 0).
    :param kernel_average: keep the paper's :math:`1/k^2` (divides by the product of the kernel sizes).
    """
    if weight.dim() < 2:
        raise ValueError(f"Parameter `weight` should have at least 2 dims. Found `weight.shape = {tuple(weight.shape)}`.")
    if not -weight.dim() <= out_axis < weight.dim():
        raise ValueError(f"Parameter `out_axis` should index a dim of `weight`. Found `out_axis = {out_axis}`.")
    w = weight.detach().movedim(out_axis, 0)
    c = w.shape[0]
    if running_var.shape != (c,) or (gamma is not None and gamma.shape != (c,)):
        raise ValueError(f"BN statistics should have shape ({c},). Found `running_var.shape = {tuple(running_var.shape)}`"
                         f", `gamma.shape = {None if gamma is None else tuple(gamma.shape)}`.")
    if eps < 0:
        raise ValueError(f"Parameter `eps` should be non-negative. Found `eps = {eps}`.")
    energy = w.reshape(c, -1).pow(2).sum(dim=1)
    if kernel_average:
        energy = energy / max(1, int(torch.tensor(w.shape[2:]).prod()))
    gain = 1.0 / (running_var.detach().to(energy.dtype) + eps)
    if gamma is not None:
        gain = gamma.detach().to(energy.dtype).pow(2) * gain
    return gain * energy


def normalized_strength(strength: Tensor) -> Tensor:
    r"""Eq. 7: :math:`\hat S_p = S_p / \sum_{p'} S_{p'}` along the last axis (``(C,)`` or ``(K, C)``).

    A row summing to 0 (an all-zero layer) gives the uniform vector 1/C, so that no task wins by accident.
    """
    total = strength.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(strength, 1.0 / strength.shape[-1])
    return torch.where(total > 0, strength / torch.where(total > 0, total, torch.ones_like(total)), uniform)


def owners(shat: Tensor) -> Tensor:
    r"""Eq. 10: :math:`\nu(p) = \arg\max_\tau \hat S^\tau_p` for ``shat`` of shape ``(K, C)``; ties → lowest index."""
    if shat.dim() != 2:
        raise ValueError(f"Parameter `shat` should have shape (K, C). Found `shat.shape = {tuple(shat.shape)}`.")
    return torch.argmax(shat, dim=0)  # torch returns the first maximal index: the lowest task


def is_degenerate(owner: Tensor) -> bool:
    """Whether one task owns every channel of the layer (by F4: iff all :math:`\\hat S^\\tau` are identical)."""
    return bool((owner == owner[0]).all())


def ownership_shares(shat: Tensor) -> Tensor:
    """Channel counts owned by each task ``(K,)`` with exact ties split equally among the tied tasks (Fig. 4)."""
    top = shat.max(dim=0, keepdim=True).values
    tied = (shat == top).to(shat.dtype)
    return (tied / tied.sum(dim=0, keepdim=True)).sum(dim=1)
