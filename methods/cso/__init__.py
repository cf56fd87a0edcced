r"""CSO: connection-strength-based optimization (Jeong & Yoon, CVPR 2024, arXiv 2406.02996).

Task priority per output channel of each shared conv is read from connection strength (Eq. 4–7, 10: per-task
BN gain² × filter energy, normalised per layer); training mixes phase 1 (one optimizer step per task, Eq. 9)
with phase 2 (per-channel-group projection that keeps the owner's gradient, Alg. 1), phase 1 with probability
1 − e/E. Any CNN and any number of tasks: convert its BNs to per-task BNs, pair convs structurally, train.

>>> import torch
>>> from torch import nn
>>> from methods.cso import TaskBNModel, connection_map, CSOCombiner, CSOStep
>>> trunk = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
...                       nn.AdaptiveAvgPool2d(1), nn.Flatten())
>>> model = TaskBNModel(trunk, [nn.Linear(4, 1), nn.Linear(4, 1)])
>>> cmap = connection_map(model, torch.zeros(2, 1, 8, 8), forward=lambda m, x: m.trunk(x))
>>> strategy = CSOStep(CSOCombiner(cmap, model.shared_parameters()), num_epochs=4, seed=0)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> x, y = torch.randn(8, 1, 8, 8), torch.randn(8, 2)
>>> from methods import ForwardResult
>>> def closure(tasks=None):
...     ts = range(2) if tasks is None else tasks
...     return ForwardResult(torch.stack([((model.forward_task(x, t)[:, 0] - y[:, t]) ** 2).mean() for t in ts]))
>>> strategy.on_epoch_start(0)
>>> info = strategy.step(closure, opt, shared_params=model.shared_parameters(), task_params=model.task_parameters())
>>> info["phase"], info["optimizer_steps"]
(1, 2)
"""

from ._combiner import CSOCombiner
from ._connection import ConnectionEntry, ConnectionMap, connection_map
from ._projection import ProjStats, project_by_owner
from ._schedule import CSOStep, PhaseSchedule, phase1_probability
from ._strength import channel_strength, is_degenerate, normalized_strength, owners, ownership_shares
from ._task_bn import TaskBatchNorm2d, TaskBNModel, active_task, is_task_bn, task_bn_modules, to_task_bn

__all__ = [
    "CSOCombiner", "CSOStep", "PhaseSchedule", "phase1_probability",
    "ConnectionEntry", "ConnectionMap", "connection_map",
    "ProjStats", "project_by_owner",
    "channel_strength", "normalized_strength", "owners", "is_degenerate", "ownership_shares",
    "TaskBatchNorm2d", "TaskBNModel", "active_task", "is_task_bn", "task_bn_modules", "to_task_bn",
]
