"""Cost of one training step per method: ``python -m paper_repro bench``.

For each method, on the SAME model, batch and optimizer (built here: a small MLP or CNN with K heads):

* **time**: the median wall time of one full training step (zero_grad, forward, ``mtl_backward``,
  ``optimizer.step()``, ``after_step``), after ``--warmup`` untimed steps, over ``--steps`` timed steps;
  reported in ms and as a ratio to :class:`~methods.baselines.EqualWeighting` measured in the same run;
* **TorchJD**: for the gradient-level methods TorchJD has, the same step with
  ``torchjd.autojac.mtl_backward(losses, features=z, ...)`` + ``jac_to_grad(shared, aggregator)`` and the
  ratio ours / TorchJD;
* **memory** (``--memory``, default on): a fresh subprocess builds the model and batch, resets the
  kernel's peak-RSS counter (``/proc/self/clear_refs``, Linux), runs warm-up + steps and reports the
  peak RSS (``VmHWM``) minus the RSS before the steps. It counts everything the step allocates on the
  CPU (autograd graph, Jacobian, solver workspaces, lazily imported solver modules), not only
  tensors, and is coarse (allocator caching, page granularity). Without ``clear_refs`` it falls back
  to the growth of ``ru_maxrss`` (0 if setup peaked higher). On CUDA one would use
  ``torch.cuda.max_memory_allocated`` instead.

Targets (issue "The library's spine"): gradient-level methods within 1.15x of TorchJD's time for the
same method; loss-level methods within 1.1x of EW. Timings are noisy on shared machines: the thread
count and machine are printed with the table, and ``--repeat`` interleaves repeated measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from paper_repro.provenance import torch_threads

__all__ = ["main", "METHODS", "build_model", "measure"]

# name -> (level, factory(K) for ours, factory(K) for TorchJD's aggregator or None)
METHODS: dict[str, tuple[str, Callable[[int], Any], Callable[[int], Any] | None]] = {}


def _register() -> None:
    import methods.baselines as B

    def tjd(name: str, **kw: Any) -> Callable[[int], Any]:
        def make(k: int) -> Any:
            from torchjd import aggregation as A

            if name == "NashMTL":
                return A.NashMTL(n_tasks=k, **kw)
            return getattr(A, name)(**kw)

        return make

    METHODS.update({
        "EW": ("loss", lambda k: B.EqualWeighting(), None),
        "LS": ("loss", lambda k: B.LinearScalarization([1.0] * k), None),
        "Tchebycheff": ("loss", lambda k: B.Tchebycheff(), None),
        "STCH": ("loss", lambda k: B.SmoothTchebycheff(), None),
        "UW": ("loss", lambda k: B.UncertaintyWeighting(k), None),
        "DWA": ("loss", lambda k: B.DWA(), None),
        "FAMO": ("loss", lambda k: B.FAMO(k), None),
        "MGDA": ("gradient", lambda k: B.MGDA(), tjd("MGDA")),
        "PCGrad": ("gradient", lambda k: B.PCGrad(), tjd("PCGrad")),
        "CAGrad": ("gradient", lambda k: B.CAGrad(c=0.4, rescale=0), tjd("CAGrad", c=0.4)),
        "IMTLG": ("gradient", lambda k: B.IMTLG(), tjd("IMTLG")),
        "NashMTL": ("gradient", lambda k: B.NashMTL(k), tjd("NashMTL")),
        "AlignedMTL": ("gradient", lambda k: B.AlignedMTL(), tjd("AlignedMTL")),
        "UPGrad": ("gradient", lambda k: B.UPGrad(), tjd("UPGrad")),
        "GradNorm": ("gradient", lambda k: B.GradNorm(), None),
        # representation mode (gradients on the shared features z, one backward per head): MGDA-UB
        "MGDA-UB": ("gradient", lambda k: B.MGDA(), None),
        # the papers' per-step combiners (CSO's phase 2 needs a per-task-BN model and MT2O a population:
        # they have their own timing scripts, methods/cso/bench.py and paper_repro/experiments/mt2o.py)
        "NMT": ("loss", _nmt, None),
        "EMTL": ("gradient", _emtl, None),
        "EMTL-rep": ("gradient", lambda k: _emtl(k, grad_on="rep"), None),
    })


#: Methods measured in representation mode (``features=z``).
FEATURES_MODE = frozenset({"MGDA-UB", "EMTL-rep"})


def _nmt(k: int) -> Any:
    from methods.nmt import PriorityLagrangian

    # tasks in priority order, the last is the objective; thresholds below the initial CE (~2.3) so the
    # constraints are active and the multipliers move every step
    return PriorityLagrangian(k - 1, thresholds=[2.0] * (k - 1))


def _emtl(k: int, **kw: Any) -> Any:
    from methods.emtl import EMTL

    return EMTL(k, **kw)


class _MTModel(nn.Module):
    def __init__(self, trunk: nn.Module, heads: list[nn.Module]) -> None:
        super().__init__()
        self.trunk, self.heads = trunk, nn.ModuleList(heads)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        z = self.trunk(x)
        return z, [h(z) for h in self.heads]


def build_model(kind: str, k: int, batch: int, seed: int = 0) -> tuple[_MTModel, torch.Tensor, torch.Tensor]:
    """A K-head model and one fixed batch ``(x, y)``; ``y[:, i]`` is task i's class label."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if kind == "mlp":
        trunk = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
        heads = [nn.Linear(256, 10) for _ in range(k)]
        x = torch.randn(batch, 64, generator=g)
    elif kind == "cnn":  # LeNet-style, on 1x28x28 inputs (Multi-MNIST size)
        trunk = nn.Sequential(nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(10, 20, 5), nn.MaxPool2d(2),
                              nn.ReLU(), nn.Flatten(), nn.Linear(320, 50), nn.ReLU())
        heads = [nn.Linear(50, 10) for _ in range(k)]
        x = torch.randn(batch, 1, 28, 28, generator=g)
    else:
        raise ValueError(f"Parameter `model` should be 'mlp' or 'cnn'. Found `model = {kind!r}`.")
    y = torch.randint(0, 10, (batch, k), generator=g)
    return _MTModel(trunk, heads), x, y


@dataclass
class Measurement:
    method: str
    impl: str  # "ours" | "torchjd"
    median_ms: float
    times_ms: list[float]
    peak_rss_growth_mb: float | None = None


def _step_fn(method: str, impl: str, model: _MTModel, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    from methods import mtl_backward

    level, ours, theirs = METHODS[method]
    k = len(model.heads)
    shared = list(model.trunk.parameters())
    heads = [list(h.parameters()) for h in model.heads]

    def losses_of() -> tuple[torch.Tensor, list[torch.Tensor]]:
        z, outs = model(x)
        return z, [nn.functional.cross_entropy(o, y[:, i]) for i, o in enumerate(outs)]

    if impl == "ours":
        comb = ours(k)
        opt = torch.optim.SGD([*model.parameters(), *comb.parameters()], lr=1e-3)

        def recompute() -> torch.Tensor:
            with torch.no_grad():
                return torch.stack(losses_of()[1])

        use_z = method in FEATURES_MODE
        head_grads = getattr(comb, "head_grads", "raw")

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            z, ls = losses_of()
            mtl_backward(ls if use_z else torch.stack(ls), comb, shared_params=shared, task_params=heads,
                         features=z if use_z else None, head_grads=head_grads)
            opt.step()
            comb.after_step(recompute)

        return step

    from torchjd.autojac import jac_to_grad
    from torchjd.autojac import mtl_backward as tjd_mtl_backward

    assert theirs is not None
    agg = theirs(k)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step_tjd() -> None:
        opt.zero_grad(set_to_none=True)
        z, ls = losses_of()
        tjd_mtl_backward(ls, features=z, shared_params=shared, tasks_params=heads)
        jac_to_grad(shared, agg)
        opt.step()

    return step_tjd


def measure(method: str, impl: str, *, model: str, k: int, batch: int, steps: int, warmup: int) -> Measurement:
    """Median step time of one method (fresh model, same seed and batch as every other method)."""
    net, x, y = build_model(model, k, batch)
    step = _step_fn(method, impl, net, x, y)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return Measurement(method, impl, statistics.median(times), times)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _child(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    _register()
    net, x, y = build_model(args.model, args.tasks, args.batch)
    step = _step_fn(args.child_method, args.child_impl, net, x, y)
    if _reset_peak() and _status_mb("VmRSS") is not None:  # peak during the steps over the RSS before them
        before = _status_mb("VmRSS")
        for _ in range(args.warmup + args.steps):
            step()
        growth = _status_mb("VmHWM") - before
    else:  # fallback: growth of the lifetime peak (0 if setup peaked higher)
        before = _peak_rss_mb()
        for _ in range(args.warmup + args.steps):
            step()
        growth = _peak_rss_mb() - before
    print(json.dumps({"peak_rss_growth_mb": growth}))
    return 0


def _memory(method: str, impl: str, args: argparse.Namespace) -> float | None:
    cmd = [sys.executable, "-m", "paper_repro.bench", "--_child", method, impl, "--model", args.model,
           "--tasks", str(args.tasks), "--batch", str(args.batch), "--steps", str(min(args.steps, 5)),
           "--warmup", "1", "--threads", str(args.threads)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        print(f"memory measurement of {method}/{impl} failed: {out.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_growth_mb"])


def _machine(threads: int) -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "threads": threads, "python": platform.python_version(),
            "torch": torch.__version__}


def _table(rows: list[dict[str, Any]], machine: dict[str, Any], args: argparse.Namespace) -> str:
    def f(v: Any, spec: str) -> str:
        return "—" if v is None else format(v, spec)

    lines = [
        f"Step cost, model={args.model}, K={args.tasks}, batch={args.batch}, steps={args.steps} (median, after "
        f"{args.warmup} warm-up), threads={machine['threads']}, {machine['processor']} x{machine['cpu_count']}, "
        f"torch {machine['torch']}",
        "",
        "| method | level | ours ms | × EW | TorchJD ms | ours / TorchJD | target | peak ΔRSS MB (ours) |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {r['level']} | {f(r['ours_ms'], '.2f')} | {f(r['x_ew'], '.2f')} | "
                     f"{f(r['torchjd_ms'], '.2f')} | {f(r['ours_over_torchjd'], '.2f')} | {r['target']} | "
                     f"{f(r['peak_rss_growth_mb'], '.1f')} |")
    return "\n".join(lines)


def _population(args: argparse.Namespace) -> int:
    """``--population``: time MT2O's stacked step (``compute`` vmap and loop) against K separate LS steps."""
    from paper_repro.experiments.mt2o import benchmark_stacked_step

    with torch_threads(args.threads):
        rows = [benchmark_stacked_step(k=args.tasks, batch_size=args.batch, repeats=args.steps, warmup=args.warmup,
                                       side=side, device=args.device) for side in (10, 28)]
    lines = [f"MT2O population step, K={args.tasks} LeNets, batch={args.batch}, threads={args.threads}, "
             f"device={args.device} (median of {args.steps}, the three timed in turn)", "",
             "| input | K separate ms | stacked vmap ms | ×separate | stacked loop ms | ×separate |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['side']}×{r['side']} | {1e3 * r['separate_s']:.2f} | {1e3 * r['stacked_s']:.2f} | "
                     f"{r['ratio_stacked_over_separate']:.2f} | {1e3 * r['loop_s']:.2f} | "
                     f"{r['ratio_loop_over_separate']:.2f} |")
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"population": rows}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a Markdown table; optionally write JSON. Returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m paper_repro bench", description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    p.add_argument("--tasks", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=1, help="interleaved repetitions; the median over all is kept")
    p.add_argument("--methods", default="all", help="comma-separated names, or 'all'; EW is always measured")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                   help="peak RSS growth per method, each in a fresh subprocess")
    p.add_argument("--json", dest="json_out", default=None)
    p.add_argument("--population", action="store_true",
                   help="instead: MT2O's stacked population step (vmap and loop) against K separate LS steps, "
                        "K = --tasks models, LeNet on 10×10 and 28×28 inputs, batch --batch, --steps repeats")
    p.add_argument("--device", default="cpu", help="with --population: torch device (cuda for the GPU timing)")
    p.add_argument("--_child", nargs=2, metavar=("METHOD", "IMPL"), default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tasks < 1 or args.batch < 1 or args.steps < 1 or args.warmup < 0 or args.repeat < 1:
        p.error("--tasks, --batch, --steps and --repeat should be positive; --warmup non-negative")
    if args._child is not None:
        args.child_method, args.child_impl = args._child
        return _child(args)

    if args.population:
        return _population(args)
    _register()
    names = list(METHODS) if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; known: {sorted(METHODS)}")
    if "EW" not in names:
        names = ["EW", *names]
    with torch_threads(args.threads):
        jobs = [(m, "ours") for m in names] + [(m, "torchjd") for m in names if METHODS[m][2] is not None]
        times: dict[tuple[str, str], list[float]] = {j: [] for j in jobs}
        for _ in range(args.repeat):
            for m, impl in jobs:
                times[(m, impl)] += measure(m, impl, model=args.model, k=args.tasks, batch=args.batch,
                                            steps=args.steps, warmup=args.warmup).times_ms
        med = {j: statistics.median(t) for j, t in times.items()}
        ew = med[("EW", "ours")]
        rows = []
        for m in names:
            level = METHODS[m][0]
            ours = med[(m, "ours")]
            tj = med.get((m, "torchjd"))
            ratio = None if tj is None else ours / tj
            if tj is not None:
                target = "ok (≤1.15× TorchJD)" if ratio <= 1.15 else "MISSED (>1.15× TorchJD)"
            elif level == "loss":
                target = "ok (≤1.1× EW)" if ours / ew <= 1.1 else "MISSED (>1.1× EW)"
            else:
                target = "n/a (not in TorchJD)"
            rows.append({"method": m, "level": level, "ours_ms": ours, "x_ew": ours / ew, "torchjd_ms": tj,
                         "ours_over_torchjd": ratio, "target": target,
                         "peak_rss_growth_mb": _memory(m, "ours", args) if args.memory else None,
                         "torchjd_peak_rss_growth_mb": (_memory(m, "torchjd", args) if args.memory and tj is not None
                                                        else None),
                         "times_ms": times[(m, "ours")], "torchjd_times_ms": times.get((m, "torchjd"))})
    machine = _machine(args.threads)
    print(_table(rows, machine, args))
    if args.json_out:
        settings = {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "json_out"}
        with open(args.json_out, "w") as fh:
            json.dump({"settings": settings, "machine": machine, "rows": rows,
                       "memory_method": "fresh subprocess: VmHWM after reset (clear_refs=5) minus VmRSS before the steps"},
                      fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
