"""Multi-task models following the "Models" contract of ``docs/ARCHITECTURE.md``.

``forward(x) -> list[Tensor]`` (one output per task), ``shared_parameters()``, ``task_parameters()``,
``n_tasks``, and ``encode``/``decode`` where a single shared representation exists.

>>> import torch
>>> from paper_repro.models import MultiLeNet
>>> model = MultiLeNet(n_tasks=2, input_size=36)
>>> [tuple(y.shape) for y in model(torch.zeros(4, 1, 36, 36))]
[(4, 10), (4, 10)]
"""

from .base import ConvNormAct, EncoderHeadsModel, MultiTaskModel, mlp
from .lenet import MultiLeNet
from .mlp import MultiHeadMLP
from .recsys import MMoE, PLE, FeatureEmbedding, SharedBottom
from .segnet import DENSE_TASKS, SegNet, SegNetTrunk
from .task_bn import TaskBatchNorm2d, active_task, convert_to_task_bn, iter_conv_bn_pairs, set_active_task

__all__ = [
    "ConvNormAct", "EncoderHeadsModel", "MultiTaskModel", "mlp",
    "MultiLeNet", "MultiHeadMLP",
    "FeatureEmbedding", "SharedBottom", "MMoE", "PLE",
    "DENSE_TASKS", "SegNet", "SegNetTrunk",
    "TaskBatchNorm2d", "active_task", "convert_to_task_bn", "iter_conv_bn_pairs", "set_active_task",
]
