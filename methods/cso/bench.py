"""Timing script (not a test): median step time of CSO phase 2 vs PCGrad on the same per-task-BN model.

``python -m methods.cso.bench`` — a SegNet-like conv trunk with per-task BN, K = 3, 32×32 inputs, batch 16;
both run ``mtl_backward`` (one batched Jacobian) and differ only in the combiner, so the difference is the
combiner's own cost. Prints JSON via logging-free ``sys.stdout.write``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch
from torch import nn

from methods import mtl_backward
from methods.cso import CSOCombiner, TaskBNModel, connection_map


def _trunk() -> nn.Module:
    layers: list[nn.Module] = []
    c = 3
    for w in (16, 32, 64, 64):
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def bench(n_steps: int = 30, k: int = 3, threads: int = 1) -> dict[str, float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from methods.baselines import PCGrad

    model = TaskBNModel(_trunk(), [nn.Linear(64, 1) for _ in range(k)])
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
    x, y = torch.randn(16, 3, 32, 32), torch.randn(16, k)
    cmap = connection_map(model, x[:2], forward=lambda m, z: m.trunk(z))
    shared = model.shared_parameters()
    out: dict[str, float] = {}
    for name, comb in (("cso_phase2", CSOCombiner(cmap, shared)), ("pcgrad", PCGrad())):
        times, comb_times = [], []
        for _ in range(n_steps):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            losses = torch.stack([((model.forward_task(x, t)[:, 0] - y[:, t]) ** 2).mean() for t in range(k)])
            mtl_backward(losses, comb, shared_params=shared, task_params=model.task_parameters())
            times.append(time.perf_counter() - t0)
        # the combiner alone on a fixed Jacobian
        from methods import GradientStats, task_jacobian
        losses = torch.stack([((model.forward_task(x, t)[:, 0] - y[:, t]) ** 2).mean() for t in range(k)])
        jac, _ = task_jacobian(losses, shared)
        stats = GradientStats(jac, losses.detach(), shapes=[p.shape for p in shared])
        for _ in range(n_steps):
            t0 = time.perf_counter()
            comb.aggregate(stats) if name == "cso_phase2" else jac.T @ comb.weights(stats)
            comb_times.append(time.perf_counter() - t0)
        out[f"{name}_step_median_ms"] = 1e3 * statistics.median(times[3:])
        out[f"{name}_combiner_median_ms"] = 1e3 * statistics.median(comb_times[3:])
    out["shared_params"] = float(sum(p.numel() for p in shared))
    out["threads"] = float(threads)
    return out


if __name__ == "__main__":
    sys.stdout.write(json.dumps(bench(), indent=1) + "\n")
