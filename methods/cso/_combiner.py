r"""CSO phase 2 as a :class:`~methods.StructureCombiner` (arXiv 2406.02996, Alg. 1 lines 5–15; ``specs/cso.md`` §2).

At every phase-2 step, for each paired layer l (a shared conv weight feeding per-task BNs):

1. strengths :math:`S^\tau_p = \gamma_{\tau,p}^2/(\mathrm{Var}_{\tau,p}+\epsilon)\sum_{q,m,n}W_l[p,q,m,n]^2`
   (Eq. 4, 6; :math:`1/k^2` dropped, it cancels), normalised per task over the layer (Eq. 7);
2. owners :math:`\nu(p)=\arg\max_\tau \hat S^\tau_p` (Eq. 10, ties → lowest index), groups
   :math:`CG_i=\{p:\nu(p)=i\}` rebuilt at every step;
3. per group, the owner's gradient is the reference and every conflicting task gradient is projected onto its
   normal plane (:func:`~methods.cso.project_by_owner`); the update is the sum over tasks.

Every other shared parameter (conv biases, convs that feed no per-task BN, linear layers, ...) gets the plain
**sum** of the task gradients (the paper is silent; the sum follows [official-code]); these are listed once in the
log and always in ``last_info["unpaired"]``. Task heads and task BNs receive their own task's gradient
(``mtl_backward(head_grads="raw")``). Loss weights, if any, are inside the task losses ([decision] §3 #6).

Flags (paper vs official code, ``specs/cso.md`` §3): ``degenerate`` ("sum" default, as [official-code];
"project" = Alg. 1 read literally), ``unit`` ("group" default as both; "channel"), ``variance`` ("running"
default, task BN ``running_var`` as [official-code]; "batch" = the last train-mode batch variance of each task BN,
recorded by a forward hook, closer to the paper's :math:`\mathrm{Var}[y]`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .._core import GradientStats, StructureCombiner
from ._connection import ConnectionEntry, ConnectionMap
from ._projection import project_by_owner
from ._strength import channel_strength, normalized_strength, ownership_shares, owners

__all__ = ["CSOCombiner"]

logger = logging.getLogger(__name__)


class CSOCombiner(StructureCombiner):
    """Phase 2 of CSO: per-channel-group, priority-preserving projection of the task gradients.

    :param connection_map: the paired layers (:func:`~methods.cso.connection_map`).
    :param shared_params: the shared parameters, **in the order** the blocks will arrive (the order given to
        ``mtl_backward``/the trainer, e.g. ``model.shared_parameters()``).
    :param degenerate: ``"sum"`` or ``"project"`` (one owner for the whole layer).
    :param unit: ``"group"`` or ``"channel"`` (projection unit).
    :param variance: ``"running"`` or ``"batch"``.

    >>> import torch
    >>> from torch import nn
    >>> from methods.cso import CSOCombiner, TaskBNModel, connection_map
    >>> model = TaskBNModel(nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4)), [nn.Identity()] * 2)
    >>> cmap = connection_map(model, torch.zeros(2, 1, 8, 8), forward=lambda m, x: m.trunk(x))
    >>> comb = CSOCombiner(cmap, model.shared_parameters())
    >>> comb.ownership()["pooled"]   # per-task BNs start as copies: every channel is a tie
    [0.5, 0.5]
    >>> cmap.entries[0].bns[0].weight.data[0] = 2.0   # task 0's gain on channel 0: 4x its strength there
    >>> comb.ownership()["pooled"]   # Eq. 7 normalizes per task: task 0 owns channel 0, task 1 the other 3
    [0.25, 0.75]
    """

    def __init__(self, connection_map: ConnectionMap, shared_params: Sequence[Tensor], *,
                 degenerate: Literal["sum", "project"] = "sum", unit: Literal["group", "channel"] = "group",
                 variance: Literal["running", "batch"] = "running") -> None:
        if not isinstance(connection_map, ConnectionMap):
            raise TypeError(f"Parameter `connection_map` should be a ConnectionMap. Found `{type(connection_map).__name__}`.")
        super().__init__(connection_map.n_tasks)
        if degenerate not in ("sum", "project"):
            raise ValueError(f"Parameter `degenerate` should be 'sum' or 'project'. Found `degenerate = {degenerate!r}`.")
        if unit not in ("group", "channel"):
            raise ValueError(f"Parameter `unit` should be 'group' or 'channel'. Found `unit = {unit!r}`.")
        if variance not in ("running", "batch"):
            raise ValueError(f"Parameter `variance` should be 'running' or 'batch'. Found `variance = {variance!r}`.")
        self.cmap, self.degenerate, self.unit, self.variance = connection_map, degenerate, unit, variance
        params = list(shared_params)
        if not params:
            raise ValueError("Parameter `shared_params` should be non-empty. Found an empty list.")
        index = {id(p): i for i, p in enumerate(params)}
        self._paired: dict[int, ConnectionEntry] = {}
        outside = []
        for e in connection_map.entries:
            if id(e.param) in index:
                self._paired[index[id(e.param)]] = e
            else:
                outside.append(e.name)
        self._n_params = len(params)
        self._shapes = [p.shape for p in params]
        names = {**connection_map.param_names, **{id(e.param): e.name for e in connection_map.entries}}
        self.unpaired = [names.get(id(p), f"shared[{i}]{tuple(p.shape)}") for i, p in enumerate(params)
                         if i not in self._paired]
        self.unpaired_convs = list(connection_map.unpaired_convs)
        if outside:
            logger.warning("CSO: paired conv weights not among `shared_params` are ignored: %s", outside)
        self._logged = False
        self._batch_var: dict[int, Tensor] = {}
        self._hooks: list[Any] = []
        if variance == "batch":
            for e in connection_map.entries:
                for bn in e.bns:
                    self._hooks.append(bn.register_forward_pre_hook(self._record_var))

    def _record_var(self, module: nn.Module, inp: Any) -> None:
        if module.training and isinstance(inp, tuple) and inp and isinstance(inp[0], Tensor) and inp[0].dim() >= 2:
            x = inp[0].detach()
            dims = [d for d in range(x.dim()) if d != 1]
            self._batch_var[id(module)] = x.var(dim=dims, unbiased=False)

    def _strengths(self, e: ConnectionEntry, dtype: torch.dtype) -> Tensor | None:
        rows = []
        for bn in e.bns:
            var = self._batch_var.get(id(bn)) if self.variance == "batch" else bn.running_var
            if var is None:
                return None
            gamma = bn.weight if bn.affine else None
            rows.append(channel_strength(e.param.to(dtype), gamma, var, float(bn.eps), out_axis=e.out_axis))
        return torch.stack(rows)

    def layer_state(self, entry: ConnectionEntry, dtype: torch.dtype = torch.float32) -> dict[str, Tensor] | None:
        """Ŝ ``(K, C)`` and owners ``(C,)`` of one paired layer now, or ``None`` if a variance is unavailable."""
        s = self._strengths(entry, dtype)
        if s is None:
            return None
        shat = normalized_strength(s)
        return {"shat": shat, "owners": owners(shat)}

    def ownership(self) -> dict[str, Any]:
        """Fig. 4 data: per layer and pooled (weighted by channel count) share of channels owned by each task,
        exact ties split equally (so copied BNs give 1/K each)."""
        per_layer, pooled, total = {}, None, 0
        for e in self.cmap.entries:
            st = self.layer_state(e, torch.float64)
            if st is None:
                continue
            counts = ownership_shares(st["shat"])
            per_layer[e.name] = (counts / counts.sum()).tolist()
            pooled = counts if pooled is None else pooled + counts
            total += e.channels
        return {"per_layer": per_layer, "pooled": [] if pooled is None else (pooled / total).tolist()}

    def _combine_layer(self, e: ConnectionEntry, block: Tensor) -> tuple[Tensor, dict[str, Any]]:
        k = block.shape[0]
        shape = e.param.shape
        st = self.layer_state(e, block.dtype)
        if st is None:
            return block.sum(dim=0), {"fallback": "no_variance"}
        g = block.reshape(k, *shape).movedim(e.out_axis + 1, 1)
        moved_shape = g.shape[1:]
        out, stats = project_by_owner(g.reshape(k, e.channels, -1), st["owners"].to(block.device),
                                      degenerate=self.degenerate, unit=self.unit)
        out = out.reshape(moved_shape).movedim(0, e.out_axis).reshape(-1)
        return out, {"conflicts": stats.conflicts, "projections": stats.projections, "degenerate": stats.degenerate,
                     "group_sizes": stats.group_sizes}

    def aggregate_blocks(self, blocks: list[Tensor], stats: GradientStats, /) -> list[Tensor]:
        if len(blocks) != self._n_params:
            raise ValueError(f"CSOCombiner was bound to {self._n_params} shared parameters. Found {len(blocks)} blocks.")
        if not self._logged:
            self._logged = True
            if self.unpaired:
                logger.info("CSO phase 2: plain summed gradients (not paired with per-task BNs) for %s", self.unpaired)
        out, layers, n_proj, n_degen = [], {}, 0, 0
        for b, block in enumerate(blocks):
            e = self._paired.get(b)
            if e is None:
                out.append(block.sum(dim=0))
                continue
            combined, info = self._combine_layer(e, block)
            out.append(combined)
            layers[e.name] = info
            n_proj += int(info.get("projections", 0))
            n_degen += int(bool(info.get("degenerate", False)))
        self.last_info = {"method": "cso.phase2", "projections": n_proj, "degenerate_layers": n_degen,
                          "layers": layers, "unpaired": list(self.unpaired)}
        return out

    def combine_named(self, grads: Sequence[Mapping[str, Tensor | None]]) -> dict[str, Tensor]:
        """Dictionary form for custom loops: ``grads[t][name]`` is task t's gradient (or ``None``) of a shared
        parameter; paired conv weights get COMBINE, everything else the sum of the available gradients. A paired
        layer where some task has no gradient falls back to the sum."""
        if len(grads) != self.n_tasks:
            raise ValueError(f"Parameter `grads` should hold one mapping per task ({self.n_tasks}). Found {len(grads)}.")
        by_name = {e.name: e for e in self.cmap.entries}
        out: dict[str, Tensor] = {}
        for name in {n for g in grads for n in g}:
            avail = [g[name] for g in grads if g.get(name) is not None]
            if not avail:
                continue
            e = by_name.get(name)
            if e is None or len(avail) < self.n_tasks:
                out[name] = torch.stack(avail).sum(dim=0)
                continue
            block = torch.stack([a.reshape(-1) for a in avail])
            out[name] = self._combine_layer(e, block)[0].reshape(avail[0].shape)
        return out

    def reset(self) -> None:
        self._batch_var.clear()
        self.last_info = {}

    def extra_repr(self) -> str:
        return (f"paired={len(self._paired)}, n_tasks={self.n_tasks}, degenerate={self.degenerate!r}, "
                f"unit={self.unit!r}, variance={self.variance!r}")
