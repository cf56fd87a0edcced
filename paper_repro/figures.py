"""Figure helpers shared by experiments, the report and the notebooks.

Figures are built with the object-oriented API (``matplotlib.figure.Figure``, no pyplot state: use
:func:`subplots`, not ``plt.subplots``), so they work in scripts, the report (PNG) and notebooks alike; a
notebook shows one when it is a cell's value, once ``%matplotlib inline`` has run (first code cell).
Every function takes the aggregated results of :func:`paper_repro.runner.run_experiment` (or arrays)
and draws what is in them: no number typed by hand. :func:`stamp` writes the data, profile, seeds and
commit under a figure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from matplotlib.figure import Figure

__all__ = ["curve_figure", "data_label", "dataset_figure", "default_figures", "front_figure", "provenance_line",
           "save_figure", "stamp", "stamped", "subplots", "summary_figure"]

#: Data sets by the ``dataset`` / ``data`` key of an experiment's config.
_DATASETS = {
    "multidigits": "Multi-Digits (two scikit-learn 8×8 digits overlaid; our stand-in for Multi-MNIST)",
    "multimnist": "Multi-MNIST (built here from MNIST's idx files)",
    "multimnist36": "Multi-MNIST 36×36 (built here from MNIST's idx files)",
}
#: Data sets by experiment name, for configs without such a key (first match of a name's suffix after the paper).
_BY_NAME = [
    ("scenes", "procedural indoor scenes {size}×{size} (our proxy for NYUv2)"),
    ("encdec", "procedural indoor scenes {size}×{size} (our proxy for NYUv2 / Cityscapes)"),
    ("recsys", "synthetic CTR/CTCVR cascade (our proxy, not AliExpress)"),
    ("ablation", "synthetic CTR/CTCVR cascade (our proxy)"),
    ("scale", "Multi-Digits / Multi-MNIST with one loss rescaled"),
    ("regression", "synthetic multi-target regression (conventions §8.5)"),
    ("vlmop2", "VLMOP2 (synthetic, concave front)"),
    ("demo", "synthetic"),
]


def data_label(results: Mapping[str, Any]) -> str:
    """What data a result was computed on, in words, saying when it is our proxy rather than the paper's set.

    >>> data_label({"experiment": "cso.scenes", "config": {"size": 32}})
    'procedural indoor scenes 32×32 (our proxy for NYUv2)'
    >>> data_label({"experiment": "emtl.digits", "config": {"dataset": "multimnist"}})
    "Multi-MNIST (built here from MNIST's idx files)"
    """
    cfg = results.get("config", {})
    key = cfg.get("dataset", cfg.get("data"))
    if isinstance(key, str) and key in _DATASETS:
        return _DATASETS[key]
    name = str(results.get("experiment", ""))
    for part, label in _BY_NAME:
        if part in name.split(".", 1)[-1]:
            return label.format(size=cfg.get("size", "?"))
    return name or "unknown data"


def provenance_line(results: Mapping[str, Any] | Sequence[Mapping[str, Any]], sep: str = "; ") -> str:
    """One line naming the data, profile, seeds and commit of one result (or of several, joined by ``sep``).

    A result that holds only some of its profile's seeds says so; a result made from a dirty tree says
    ``+dirty`` after the commit.

    >>> provenance_line({"experiment": "cso.scenes", "config": {"size": 32}, "profile": "full", "seeds": [0],
    ...                  "partial_seeds": [1, 2], "provenance": {"commit": "0123456789abcdef", "dirty": False}})
    'procedural indoor scenes 32×32 (our proxy for NYUv2) · profile full · seeds [0] (partial: not [1, 2]) · commit 0123456'
    """
    if not isinstance(results, Mapping):
        return sep.join(provenance_line(r) for r in results)
    prov = results.get("provenance", {})
    commit = str(prov.get("commit", "unknown"))[:7] + ("+dirty" if prov.get("dirty") else "")
    part = f" (partial: not {results['partial_seeds']})" if results.get("partial_seeds") else ""
    return (f"{data_label(results)} · profile {results.get('profile', '?')} · seeds {results.get('seeds', '?')}{part}"
            f" · commit {commit}")


def stamp(fig: Figure, results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Figure:
    """Write :func:`provenance_line` small along the bottom of ``fig`` (once; the layout makes room for it); one
    line per result when ``results`` is a list.

    >>> fig, ax = subplots()
    >>> stamp(fig, {"experiment": "mt2o.vlmop2", "profile": "quick", "seeds": [0]}).get_gid()
    'provenance-stamped'
    """
    if fig.get_gid() == "provenance-stamped":
        return fig
    fig.supxlabel(provenance_line(results, sep="\n"), x=0.005, ha="left", fontsize=6, color="0.35")
    fig.set_gid("provenance-stamped")
    if fig.get_layout_engine() is None:   # figures laid out once with tight_layout: redo it around the stamp
        fig.tight_layout()
    return fig


_F = TypeVar("_F", bound=Callable[..., Any])


def stamped(fn: _F) -> _F:
    """Decorator for a figure function whose first argument is a result (or a list of results): the returned
    figure carries :func:`stamp`."""

    @functools.wraps(fn)
    def wrapper(results: Any, *args: Any, **kwargs: Any) -> Any:
        return stamp(fn(results, *args, **kwargs), results)

    return wrapper  # type: ignore[return-value]


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             layout: str | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` without pyplot: a new :class:`~matplotlib.figure.Figure` and its axes.

    The figure is not registered with pyplot, so it is never shown twice in a notebook, never kept
    alive by pyplot's figure list, and a script that makes hundreds of them leaks nothing.
    ``kwargs`` go to :meth:`Figure.subplots` (``sharex``, ``sharey``, ``squeeze``, ``gridspec_kw``, ...).

    >>> fig, axes = subplots(1, 2, figsize=(4, 2), sharey=True)
    >>> type(fig).__name__, len(axes)
    ('Figure', 2)
    >>> import matplotlib.pyplot as plt
    >>> plt.get_fignums()
    []
    """
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _scalar_keys(results: Mapping[str, Any]) -> list[str]:
    return [k for k, v in results.get("summary", {}).items() if not isinstance(v["mean"], list)]


def _curve_keys(results: Mapping[str, Any]) -> list[str]:
    return [k for k, v in results.get("summary", {}).items() if isinstance(v["mean"], list) and len(v["mean"]) > 1]


@stamped
def summary_figure(results: Mapping[str, Any], keys: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Horizontal bars of the mean ± standard error of scalar summary keys, with per-seed dots."""
    summary = results.get("summary", {})
    keys = list(keys) if keys is not None else _scalar_keys(results)[:24]
    missing = [k for k in keys if k not in summary]
    if missing:
        raise KeyError(f"Keys {missing} are not in the results' summary (available: {sorted(summary)}).")
    fig = Figure(figsize=(6.0, 0.35 * max(len(keys), 2) + 1.0), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(keys))
    means = [summary[k]["mean"] for k in keys]
    ses = [np.nan_to_num(summary[k]["se"]) for k in keys]
    ax.barh(y, means, xerr=ses, color="tab:blue", alpha=0.5, capsize=3)
    for i, k in enumerate(keys):
        ax.plot(summary[k]["values"], [i] * len(summary[k]["values"]), "k.", ms=4)
    ax.set_yticks(y, keys)
    ax.invert_yaxis()
    n = summary[keys[0]]["n"] if keys else 0
    ax.set_xlabel(f"mean ± se over seeds (n = {n}); dots: seeds")
    ax.set_title(title or f"{results.get('experiment', '')} [{results.get('profile', '')}]")
    return fig


@stamped
def curve_figure(
    results: Mapping[str, Any],
    key: str,
    *,
    x: Sequence[float] | None = None,
    xlabel: str = "step",
    ylabel: str | None = None,
    ax: Any = None,
    label: str | None = None,
) -> Figure:
    """Mean curve ± standard error band of a list-valued summary key, per-seed curves thin."""
    s = results.get("summary", {}).get(key)
    if s is None or not isinstance(s["mean"], list):
        raise KeyError(f"{key!r} is not a list-valued key of the results' summary (curves: {_curve_keys(results)}).")
    mean, se = np.asarray(s["mean"]), np.nan_to_num(np.asarray(s["se"], dtype=float))
    xs = np.arange(mean.size) if x is None else np.asarray(x)
    if ax is None:
        fig = Figure(figsize=(5.5, 3.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    (line,) = ax.plot(xs, mean, label=label or key)
    ax.fill_between(xs, mean - se, mean + se, color=line.get_color(), alpha=0.25)
    for v in s["values"]:
        ax.plot(xs, v, color=line.get_color(), lw=0.5, alpha=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or key)
    ax.set_title(f"{results.get('experiment', '')}: {key} (n = {s['n']})")
    return fig


def front_figure(
    points: Mapping[str, np.ndarray],
    *,
    reference: np.ndarray | None = None,
    xlabel: str = "task 1 loss",
    ylabel: str = "task 2 loss",
    title: str = "",
) -> Figure:
    """Scatter of two-objective points per method (label -> n×2 array), optional reference front as a line."""
    fig = Figure(figsize=(4.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    if reference is not None:
        ref = np.asarray(reference, dtype=float)
        ref = ref[np.argsort(ref[:, 0])]
        ax.plot(ref[:, 0], ref[:, 1], "k-", lw=1, label="Pareto front")
    for label, pts in points.items():
        arr = np.atleast_2d(np.asarray(pts, dtype=float))
        if arr.shape[1] != 2:
            raise ValueError(f"Points of {label!r} should be n×2. Found shape {arr.shape}.")
        ax.plot(arr[:, 0], arr[:, 1], "o", ms=4, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def default_figures(results: Mapping[str, Any], max_curves: int = 4) -> dict[str, Figure]:
    """Figures for an experiment that defines none: the scalar summary and up to ``max_curves`` curves."""
    figs: dict[str, Figure] = {}
    if _scalar_keys(results):
        figs["summary"] = summary_figure(results)
    for key in _curve_keys(results)[:max_curves]:
        figs[f"curve-{key}"] = curve_figure(results, key)
    return figs


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def dataset_figure(record: Any, title: str = "", n: int = 6) -> Figure:
    """A picture of a data record (duck-typed on its fields, see :mod:`paper_repro.data`):

    - images with per-task labels (``x`` 4-D, ``y``): the first ``n`` images titled with their labels;
    - scenes (``image, seg, depth, normal``): the four maps of the first scene;
    - recommendation data (``labels``): the joint distribution of the first two binary labels, or a
      scatter of two continuous labels;
    - regression (``x`` 2-D, ``y``): a scatter of the first two targets.
    """
    fields = set(vars(record)) if hasattr(record, "__dict__") else set()
    if {"image", "seg", "depth", "normal"} <= fields:
        fig = Figure(figsize=(8, 2.3), layout="constrained")
        axes = fig.subplots(1, 4)
        img = _np(record.image[0]).transpose(1, 2, 0)
        nrm = _np(record.normal[0]).transpose(1, 2, 0)
        panels = [(np.clip((img - img.min()) / max(np.ptp(img), 1e-12), 0, 1), "image", None),
                  (_np(record.seg[0]), "segmentation", "tab10"), (_np(record.depth[0])[0], "depth", "viridis"),
                  (np.clip(0.5 * (nrm + 1), 0, 1), "normals", None)]
        for ax, (im, name, cmap) in zip(axes, panels):
            ax.imshow(im, cmap=cmap)
            ax.set_title(name, fontsize="small")
            ax.axis("off")
    elif "x" in fields and getattr(record, "x").ndim == 4:
        k = min(n, len(record.x))
        fig = Figure(figsize=(1.3 * k, 1.6), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, k))
        for i, ax in enumerate(axes):
            ax.imshow(_np(record.x[i])[0], cmap="gray")
            ax.set_title(str(_np(record.y[i]).tolist()), fontsize="small")
            ax.axis("off")
    else:
        y = _np(record.labels if "labels" in fields else record.y).astype(float)
        fig = Figure(figsize=(3.2, 2.8), layout="constrained")
        ax = fig.add_subplot()
        if y.shape[1] < 2:
            ax.hist(y[:, 0], bins=30)
            ax.set_xlabel("target 0")
        elif np.isin(y[:, :2], (0.0, 1.0)).all():
            counts = np.array([[np.mean((y[:, 0] == a) & (y[:, 1] == b)) for b in (0, 1)] for a in (0, 1)])
            ax.imshow(counts, cmap="Blues")
            for a in (0, 1):
                for b in (0, 1):
                    ax.text(b, a, f"{counts[a, b]:.3f}", ha="center", va="center",
                            color="white" if counts[a, b] > 0.5 * counts.max() else "black")
            ax.set_xticks([0, 1], ["0", "1"])
            ax.set_yticks([0, 1], ["0", "1"])
            ax.set_xlabel("label 1")
            ax.set_ylabel("label 0")
        else:
            m = min(len(y), 2000)
            ax.plot(y[:m, 0], y[:m, 1], ".", ms=2, alpha=0.5)
            ax.set_xlabel("target 0")
            ax.set_ylabel("target 1")
    fig.suptitle(title, fontsize="medium")
    return fig


def save_figure(fig: Figure, path: Path | str, dpi: int = 100) -> Path:
    """Save ``fig`` as PNG (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path
