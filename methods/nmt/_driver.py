r"""NMT's stage-wise driver: thresholds, per-stage training, priority-respecting checkpoint selection.

Implements the loop of ``specs/nmt.md`` §2.1 for arXiv 2412.12092 (No More Tuning). Stage 1 trains the
highest-priority task alone; stage k = 2..K warm-starts from the stage-(k−1) checkpoint and minimizes
:math:`L_k` subject to :math:`L_i \le \varepsilon_i` (i < k) with a fresh :class:`PriorityLagrangian`
[paper: stages and constraints; reconstructed: the exact loop]. The threshold of stage i is
:math:`\varepsilon_i = (1+\rho)\,\hat p_i + \delta` with :math:`\hat p_i` measured by
:func:`measure_threshold` [decision] at the checkpoint that :func:`select_checkpoint` picks [decision].

The driver owns one θ-optimizer per stage, so it has its own small loop instead of ``methods.trainer``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ._lagrangian import NMTConfig, PriorityLagrangian

__all__ = ["NMTResult", "measure_threshold", "select_checkpoint", "train_prioritized", "default_unpack"]

logger = logging.getLogger(__name__)

LossFn = Callable[[Tensor, Tensor], Tensor]
MetricFn = Callable[[Tensor, Tensor], float]
Unpack = Callable[[Any], tuple[Any, Any]]


def default_unpack(batch: Any) -> tuple[Any, Any]:
    """``(x, y)`` → ``(x, y)``; ``(x_1, …, x_n, y)`` → ``((x_1, …, x_n), y)``."""
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise ValueError(f"A batch should be a tuple (inputs..., targets). Found `{type(batch).__name__}`.")
    if len(batch) == 2:
        return batch[0], batch[1]
    return tuple(batch[:-1]), batch[-1]


def _target(y: Any, task: int) -> Tensor:
    if isinstance(y, (list, tuple)):
        return y[task]
    if isinstance(y, Tensor) and y.dim() >= 2:
        return y[:, task]
    raise ValueError(f"Targets should be a (N, K) tensor or a per-task sequence. Found `{type(y).__name__}`.")


def _to(x: Any, device: torch.device, dtype: torch.dtype) -> Any:
    if isinstance(x, Tensor):
        return x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)
    if isinstance(x, (list, tuple)):
        return type(x)(_to(v, device, dtype) for v in x)
    return x


def _ref_param(model: nn.Module) -> Tensor:
    for p in model.parameters():
        return p
    raise ValueError("Parameter `model` should have at least one parameter.")


@torch.no_grad()
def measure_threshold(
    model: nn.Module,
    loader: Iterable[Any],
    task: int,
    loss_fn: LossFn,
    mode: str = "train_pass",
    *,
    unpack: Unpack = default_unpack,
) -> float:
    r"""Measure :math:`\hat p_i`: the mean mini-batch loss of head ``task`` over ``loader``.

    ``mode="train_pass"`` [decision, spec §2.1]: one no-grad pass in **train mode** (dropout on, BatchNorm
    on batch statistics) so the threshold has the scale of the stage-k batch losses it is compared with;
    every buffer (BatchNorm running statistics) and the model's train/eval flags are restored afterwards.
    Never an eval-mode or validation threshold. (The ``"epoch_mean"`` option of :class:`NMTConfig` is
    handled by :func:`train_prioritized`, which logs the epoch losses.)

    :returns: the mean over mini-batches (not over samples) of ``loss_fn(output[task], y[task])``.
    """
    if mode != "train_pass":
        raise ValueError(f"Parameter `mode` should be 'train_pass'. Found `mode = {mode!r}`.")
    n_tasks = getattr(model, "n_tasks", None)
    if isinstance(n_tasks, int) and not 0 <= task < n_tasks:
        raise ValueError(f"Parameter `task` should be in [0, {n_tasks}). Found `task = {task}`.")
    ref = _ref_param(model)
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    flags = {name: m.training for name, m in model.named_modules()}
    model.train()
    total, n = 0.0, 0
    try:
        for batch in loader:
            x, y = unpack(batch)
            x = _to(x, ref.device, ref.dtype)
            out = model(x)[task]
            t = _to(_target(y, task), ref.device, ref.dtype)
            total += float(loss_fn(out, t))
            n += 1
    finally:
        for k, v in model.named_buffers():
            v.copy_(buffers[k])
        for name, m in model.named_modules():
            m.training = flags[name]
    if n == 0:
        raise ValueError("Parameter `loader` should yield at least one batch. Found none.")
    return total / n


def select_checkpoint(
    metrics: Sequence[Sequence[float]], references: Sequence[float], tol_sel: float = 0.0
) -> tuple[int, bool]:
    r"""The §2.1 selection rule [decision] for one stage with k tasks (priority order).

    ``metrics[e]`` holds the val metrics :math:`(m_1, \dots, m_k)` (higher is better) of epoch e's
    checkpoint and ``references`` the :math:`m_i^{(i)}` (i < k) of the earlier stages. Among checkpoints
    with :math:`m_i \ge m_i^{(i)} - \text{tol}` for all i < k, take the best :math:`m_k`; if none
    qualifies, take the one maximizing :math:`\min_i (m_i - m_i^{(i)})`. Ties go to the earliest.
    Never select on the mean metric: it undoes the priority.

    :returns: ``(index, feasible)``.
    """
    if not metrics:
        raise ValueError("Parameter `metrics` should hold at least one checkpoint. Found none.")
    scores = [_selection_score(m, references, tol_sel) for m in metrics]
    best = max(range(len(scores)), key=lambda e: (scores[e], -e))
    return best, scores[best][0] == 1


def _selection_score(m: Sequence[float], refs: Sequence[float], tol: float) -> tuple[int, float]:
    k = len(m)
    if len(refs) != k - 1:
        raise ValueError(f"Expected {k - 1} reference metrics for {k} tasks. Found {len(refs)}.")
    gaps = [m[i] - refs[i] for i in range(k - 1)]
    if all(g >= -tol for g in gaps):
        return (1, m[-1])
    return (0, min(gaps))


@dataclass
class NMTResult:
    """What :func:`train_prioritized` returns (all JSON-able except the state dicts).

    :ivar priority: head indices, highest priority first.
    :ivar thresholds: ε_i of every stage but the last (priority order).
    :ivar measured: the measured p̂_i behind each threshold.
    :ivar references: m_i^(i), task i's val metric at its own stage's selected checkpoint.
    :ivar selected_epoch: per stage, the selected epoch (0-based).
    :ivar selected_feasible: per stage, whether the selected checkpoint met the selection constraints.
    :ivar state_dicts: per stage, the selected model state dict (CPU copies).
    :ivar traces: per stage, dict of lists: ``step``, ``lambdas`` (stage ≥ 2), ``violations``, ``losses``.
    :ivar epochs: per stage, a list of per-epoch dicts: ``val`` metrics (priority order), ``train_loss``
        means, ``violation`` means (stage ≥ 2) and ``lambdas`` at the epoch's end.
    :ivar wall_s: per stage wall-clock seconds.
    :ivar steps: per stage, number of θ steps.
    :ivar extension: ``"NMT-1R"`` when the single-run extension (not in the paper) produced the result.
    """

    priority: list[int]
    thresholds: list[float] = field(default_factory=list)
    measured: list[float] = field(default_factory=list)
    references: list[float] = field(default_factory=list)
    selected_epoch: list[int] = field(default_factory=list)
    selected_feasible: list[bool] = field(default_factory=list)
    state_dicts: list[dict[str, Tensor]] = field(default_factory=list)
    traces: list[dict[str, list[Any]]] = field(default_factory=list)
    epochs: list[list[dict[str, Any]]] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    extension: str | None = None

    @property
    def final_state_dict(self) -> dict[str, Tensor]:
        """The selected state dict of the last stage."""
        return self.state_dicts[-1]

    def to_json(self) -> dict[str, Any]:
        """Everything but the state dicts."""
        return {
            "priority": self.priority, "thresholds": self.thresholds, "measured": self.measured,
            "references": self.references, "selected_epoch": self.selected_epoch,
            "selected_feasible": self.selected_feasible, "traces": self.traces, "epochs": self.epochs,
            "wall_s": self.wall_s, "steps": self.steps, "extension": self.extension,
        }


def _stage_params(model: nn.Module, tasks: Sequence[int]) -> list[nn.Parameter]:
    """Parameters used by ``tasks``: shared ones + those tasks' heads (heads of other tasks left out [decision])."""
    if hasattr(model, "shared_parameters") and hasattr(model, "task_parameters"):
        shared = list(model.shared_parameters())
        per_task = list(model.task_parameters())
        out = shared + [p for t in tasks for p in per_task[t]]
    else:
        out = [p for p in model.parameters() if p.requires_grad]
    seen: set[int] = set()
    return [p for p in out if not (id(p) in seen or seen.add(id(p)))]  # type: ignore[func-returns-value]


@torch.no_grad()
def _evaluate(model: nn.Module, loader: Iterable[Any], tasks: Sequence[int], metric_fns: Sequence[MetricFn],
              unpack: Unpack) -> list[float]:
    ref = _ref_param(model)
    was = model.training
    model.eval()
    outs: dict[int, list[Tensor]] = {t: [] for t in tasks}
    ys: dict[int, list[Tensor]] = {t: [] for t in tasks}
    for batch in loader:
        x, y = unpack(batch)
        out = model(_to(x, ref.device, ref.dtype))
        for t in tasks:
            o = out[t].detach()
            # one row per sample: (N,) / (N, 1) scores become (N,), (N, C) logits stay (N, C)
            o = o.flatten(1) if o.dim() > 1 else o.reshape(-1)
            outs[t].append((o.squeeze(1) if o.dim() == 2 and o.shape[1] == 1 else o).cpu())
            ys[t].append(_target(y, t).detach().reshape(-1).cpu())
    model.train(was)
    return [float(metric_fns[t](torch.cat(outs[t]), torch.cat(ys[t]))) for t in tasks]


def train_prioritized(
    model: nn.Module,
    priority: Sequence[int],
    train_loader: Iterable[Any],
    val_loader: Iterable[Any],
    loss_fns: Sequence[LossFn],
    metric_fns: Sequence[MetricFn],
    make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
    config: NMTConfig | None = None,
    *,
    unpack: Unpack = default_unpack,
    stage1_state: dict[str, Tensor] | None = None,
    stage1_info: dict[str, Any] | None = None,
    on_epoch: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> NMTResult:
    r"""Stage-wise prioritized training (NMT, arXiv 2412.12092; loop of spec §2.1).

    Stage 1 trains head ``priority[0]`` alone; stage k minimizes ``L_{priority[k-1]}`` subject to
    :math:`L_{priority[i]} \le \varepsilon_i` (i < k) with a fresh :class:`PriorityLagrangian`
    (``losses`` in priority order), a fresh optimizer from ``make_optimizer`` over the shared parameters and
    the heads of tasks 1..k (later heads stay out [decision]), warm-started from θ*_{k−1}
    (``config.stage_start``). Each epoch ends with a val evaluation and a checkpoint; early stopping
    (``config.patience``) and the final choice use :func:`select_checkpoint`. Then
    :math:`\varepsilon_k = (1+\rho)\hat p_k + \delta` with :math:`\hat p_k` from :func:`measure_threshold`
    (or the logged epoch mean). The model ends loaded with the last stage's selected state.

    With ``config.single_run`` (NMT-1R, an **extension not in the paper**, spec §2.3) each constraint task
    is trained alone from the initial θ, :math:`\varepsilon_i = (1+\rho_{1R})\hat p_i`, and the last task is
    trained once from the initial θ with every multiplier active.

    :param model: a multi-task model (``forward(x) -> list[Tensor]``; ``shared_parameters()`` and
        ``task_parameters()`` are used when present).
    :param priority: head indices, highest priority first (a permutation of a subset of the heads, ≥ 2).
    :param train_loader: re-iterable batches ``(x, y)`` or ``(x_1, …, y)``; y is (N, K) or per-task.
    :param val_loader: the same, for selection (never the test split).
    :param loss_fns: per head, ``loss_fn(output, target) -> scalar`` (mean over the batch).
    :param metric_fns: per head, ``metric(output, target) -> float``, higher is better (e.g. AUC or accuracy),
        called once on the whole val split: ``output`` is ``(N,)`` for one score per sample (``(N, 1)`` outputs
        are squeezed) and ``(N, C)`` for C scores per sample (e.g. class logits), ``target`` is ``(N,)``.
    :param make_optimizer: ``params -> optimizer``; called once per stage.
    :param config: :class:`NMTConfig`; default ``NMTConfig()``.
    :param unpack: ``batch -> (x, y)``.
    :param stage1_state: optionally a stage-1 state dict to reuse (e.g. the ST-h run), skipping stage 1;
        then ``stage1_info`` must give ``{"reference": m_1^(1), "measured": p̂_1}`` (``measured`` may be
        omitted with ``threshold_measure="train_pass"``: it is then measured here).
    :param on_epoch: optional ``(stage, epoch, epoch_dict) -> None`` callback.
    """
    cfg = config if config is not None else NMTConfig()
    if not isinstance(cfg, NMTConfig):
        raise TypeError(f"Parameter `config` should be an NMTConfig. Found `{type(cfg).__name__}`.")
    pr = [int(t) for t in priority]
    n_heads = getattr(model, "n_tasks", None)
    if len(pr) < 2 or len(set(pr)) != len(pr) or any(t < 0 for t in pr) or (
        isinstance(n_heads, int) and any(t >= n_heads for t in pr)
    ):
        raise ValueError(
            f"Parameter `priority` should hold at least two distinct head indices in [0, {n_heads}). Found `priority = {pr}`."
        )
    if max(pr) >= len(loss_fns) or max(pr) >= len(metric_fns):
        raise ValueError(
            f"Parameters `loss_fns` and `metric_fns` should have one entry per head. Found {len(loss_fns)} and {len(metric_fns)}."
        )
    if stage1_state is not None and (stage1_info is None or "reference" not in stage1_info):
        raise ValueError("Parameter `stage1_info` with key 'reference' is required when `stage1_state` is given.")
    if stage1_state is not None and cfg.threshold_measure == "epoch_mean" and "measured" not in (stage1_info or {}):
        raise ValueError("With threshold_measure='epoch_mean' and `stage1_state`, `stage1_info['measured']` is required.")
    init_state = copy.deepcopy(model.state_dict())
    result = NMTResult(priority=pr, extension="NMT-1R" if cfg.single_run else None)
    rho = cfg.rho_1r if cfg.single_run else cfg.rho
    delta = 0.0 if cfg.single_run else cfg.delta
    prev_lambdas: list[float] = []
    k_total = len(pr)
    for k in range(1, k_total + 1):
        tasks = pr[:k]
        last = k == k_total
        if k == 1 and stage1_state is not None:
            model.load_state_dict(stage1_state)
            assert stage1_info is not None
            result.references.append(float(stage1_info["reference"]))
            result.selected_epoch.append(int(stage1_info.get("epoch", -1)))
            result.selected_feasible.append(True)
            result.state_dicts.append({kk: v.detach().cpu().clone() for kk, v in stage1_state.items()})
            result.traces.append({"step": [], "violations": [], "losses": []})
            result.epochs.append(list(stage1_info.get("epochs", [])))
            result.wall_s.append(float(stage1_info.get("wall_s", 0.0)))
            result.steps.append(int(stage1_info.get("steps", 0)))
            p_hat = stage1_info.get("measured")
            if p_hat is None:
                p_hat = measure_threshold(model, train_loader, tasks[0], loss_fns[tasks[0]], unpack=unpack)
            result.measured.append(float(p_hat))
            result.thresholds.append((1 + rho) * float(p_hat) + delta)
            continue
        # stage start
        if cfg.single_run or cfg.stage_start == "cold" or k == 1:
            model.load_state_dict(init_state)
        else:
            model.load_state_dict(result.state_dicts[-1])
        if cfg.single_run and not last:
            stage_tasks, n_con = [tasks[-1]], 0  # NMT-1R: constraint tasks are trained alone
        else:
            stage_tasks, n_con = tasks, k - 1
        params = _stage_params(model, stage_tasks)
        opt = make_optimizer(params)
        mult: PriorityLagrangian | None = None
        if n_con > 0:
            ref = _ref_param(model)
            theta_lr = float(opt.param_groups[0]["lr"])
            mult = PriorityLagrangian(n_con, thresholds=result.thresholds[:n_con], device=ref.device,
                                      dtype=torch.float64, **cfg.multiplier_kwargs(theta_lr=theta_lr))
            if cfg.carry_lambda and prev_lambdas:
                mult.set_lambdas(prev_lambdas + [0.0] * (n_con - len(prev_lambdas)))
        stage = _run_stage(model, stage_tasks, mult, opt, train_loader, val_loader, loss_fns, metric_fns, cfg,
                           result.references[: len(stage_tasks) - 1], unpack, k, on_epoch)
        if mult is not None:
            prev_lambdas = mult.lambdas.tolist()
        model.load_state_dict(stage["state"])
        result.state_dicts.append({kk: v.detach().cpu().clone() for kk, v in stage["state"].items()})
        result.selected_epoch.append(stage["epoch"])
        result.selected_feasible.append(stage["feasible"])
        result.references.append(stage["epochs"][stage["epoch"]]["val"][-1])
        result.traces.append(stage["trace"])
        result.epochs.append(stage["epochs"])
        result.wall_s.append(stage["wall_s"])
        result.steps.append(stage["steps"])
        if not last:
            if cfg.threshold_measure == "train_pass":
                p_hat = measure_threshold(model, train_loader, tasks[-1], loss_fns[tasks[-1]], unpack=unpack)
            else:
                p_hat = stage["epochs"][stage["epoch"]]["train_loss"][-1]
            result.measured.append(float(p_hat))
            result.thresholds.append((1 + rho) * float(p_hat) + delta)
            logger.info("NMT stage %d: eps_%d = %.6g (measured %.6g)", k, k, result.thresholds[-1], p_hat)
    model.load_state_dict(result.state_dicts[-1])
    return result


def _run_stage(
    model: nn.Module, tasks: Sequence[int], mult: PriorityLagrangian | None, opt: torch.optim.Optimizer,
    train_loader: Iterable[Any], val_loader: Iterable[Any], loss_fns: Sequence[LossFn],
    metric_fns: Sequence[MetricFn], cfg: NMTConfig, references: Sequence[float], unpack: Unpack,
    stage: int, on_epoch: Callable[[int, int, dict[str, Any]], None] | None,
) -> dict[str, Any]:
    ref = _ref_param(model)
    t0 = time.perf_counter()
    trace: dict[str, list[Any]] = {"step": [], "violations": [], "losses": []}
    if mult is not None:
        trace["lambdas"] = []
    epochs: list[dict[str, Any]] = []
    states: list[dict[str, Tensor]] = []
    best_score: tuple[int, float] | None = None
    since_best = 0
    step = 0
    for epoch in range(cfg.max_epochs):
        model.train()
        sum_losses = [0.0] * len(tasks)
        sum_v = [0.0] * (len(tasks) - 1)
        n_batches = 0
        for batch in train_loader:
            x, y = unpack(batch)
            x = _to(x, ref.device, ref.dtype)
            out = model(x)
            losses = torch.stack([
                loss_fns[t](out[t], _to(_target(y, t), ref.device, ref.dtype)).reshape(()) for t in tasks
            ])
            if not bool(torch.isfinite(losses.detach()).all()):
                raise ValueError(f"Non-finite loss at NMT stage {stage}, step {step}: {losses.detach().tolist()}.")
            opt.zero_grad(set_to_none=True)
            if mult is None:
                objective = losses[0]
                v = None
            else:
                objective, v = mult.objective(losses[-1], losses[:-1])
            objective.backward()
            opt.step()
            if mult is not None:
                if cfg.update_order == "alternating":
                    with torch.no_grad():
                        out2 = model(x)
                        con = torch.stack([
                            loss_fns[t](out2[t], _to(_target(y, t), ref.device, ref.dtype)).reshape(()) for t in tasks[:-1]
                        ])
                    mult.update(con.detach() - mult.thresholds.to(con))
                else:
                    mult.update()
            lv = losses.detach().tolist()
            for i, val in enumerate(lv):
                sum_losses[i] += val
            if v is not None:
                for i, val in enumerate(v.tolist()):
                    sum_v[i] += val
            if step % cfg.trace_every == 0:
                trace["step"].append(step)
                trace["losses"].append(lv)
                trace["violations"].append([] if v is None else v.tolist())
                if mult is not None:
                    trace["lambdas"].append(mult.lambdas.tolist())
            step += 1
            n_batches += 1
        if n_batches == 0:
            raise ValueError("Parameter `train_loader` should yield at least one batch. Found none.")
        val = _evaluate(model, val_loader, tasks, metric_fns, unpack)
        info: dict[str, Any] = {
            "epoch": epoch, "val": val, "train_loss": [s / n_batches for s in sum_losses],
            "violation": [s / n_batches for s in sum_v],
            "lambdas": [] if mult is None else mult.lambdas.tolist(),
        }
        epochs.append(info)
        states.append({kk: vv.detach().cpu().clone() for kk, vv in model.state_dict().items()})
        if on_epoch is not None:
            on_epoch(stage, epoch, info)
        score = _selection_score(val, references, cfg.tol_sel)
        if best_score is None or score > best_score:
            best_score, since_best = score, 0
        else:
            since_best += 1
            if since_best >= cfg.patience:
                break
        if mult is not None and not all(math.isfinite(x) for x in mult.lambdas.tolist()):
            raise ValueError(f"Multipliers became non-finite at NMT stage {stage}: {mult.lambdas.tolist()}.")
    chosen, feasible = select_checkpoint([e["val"] for e in epochs], references, cfg.tol_sel)
    return {
        "state": states[chosen], "epoch": chosen, "feasible": feasible, "trace": trace, "epochs": epochs,
        "wall_s": time.perf_counter() - t0, "steps": step,
    }
