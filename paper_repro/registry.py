"""The experiment registry.

An :class:`Experiment` is data + model + methods + protocol for one paper figure or table, with a
``quick`` profile (minutes on 2 CPU cores; CI and notebooks) and a ``full`` profile (hours, or a GPU).
Experiments are registered with :func:`register` in ``paper_repro/experiments/<paper>.py``; the
registry imports those modules the first time it is asked for the list (:func:`all_experiments`) or
for a name it does not know yet (:func:`get`).

Example::

    from paper_repro.registry import Experiment, RunContext, register

    def run_seed(config: dict, seed: int, ctx: RunContext) -> dict:
        ...  # train with torch.Generator().manual_seed(seed) on ctx.device / ctx.dtype
        return {"auc": {"ctr": 0.71, "ctcvr": 0.65}}

    register(Experiment(name="nmt.recsys", paper="NMT", description="...",
                        profiles={"quick": {"epochs": 2}, "full": {"epochs": 50}},
                        run_seed=run_seed))
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

# PAPERS: the papers an experiment or claim may belong to ("core": shared machinery and baselines). One list for the
# repository, defined with the theory checks (theory does not import paper_repro) and re-exported here.
from theory.registry import PAPERS

__all__ = [
    "PAPERS",
    "Experiment",
    "RunContext",
    "all_experiments",
    "get",
    "register",
    "unregister",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_REQUIRED_PROFILES = ("quick", "full")
_UNIT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-+=>@,]*$")


@dataclass
class RunContext:
    """What a seed's run gets besides its config and seed.

    :ivar device: the torch device to train on.
    :ivar dtype: the floating dtype (from the config's ``dtype`` key; default float32).
    :ivar workdir: a folder private to (experiment, profile, seed) for trainer checkpoints; a run
        interrupted mid-seed finds its checkpoint here and resumes from it. ``None`` (the default, e.g.
        when a test or notebook calls ``run_seed`` directly): no checkpoints (see :meth:`checkpoint_dir`).
    :ivar progress: whether to show progress bars.
    :ivar logger: the logger to use (never ``print``).
    :ivar generator: a CPU ``torch.Generator`` seeded with the seed, to pass on explicitly.
    :ivar units_dir: where :meth:`unit` stores its results (the runner sets ``workdir/units``); ``None``
        (the default, e.g. when a test or notebook calls ``run_seed`` directly): units are computed, not stored.
    :ivar units_resumed: keys of the :meth:`unit` calls of this run that were read back, in call order.
    :ivar units_resumed_s: the compute seconds the read-back units took when they ran (stored with each unit), so
        that a seed finished over several processes reports its whole time, not only the last process's.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    workdir: Path | None = None
    progress: bool = True
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("paper_repro"))
    generator: torch.Generator | None = None
    units_dir: Path | None = None
    units_resumed: list[str] = field(default_factory=list)
    units_resumed_s: float = 0.0

    def checkpoint_dir(self, tag: str) -> Path | None:
        """Where a trainer of this seed keeps its checkpoints (``workdir/<tag>``), or ``None`` without a workdir.

        Never the current directory: a direct ``run_seed`` call must neither leave checkpoints behind nor
        silently resume from ones an earlier call left.

        >>> RunContext().checkpoint_dir("EW") is None, RunContext(workdir=Path("w")).checkpoint_dir("EW")
        (True, PosixPath('w/EW'))
        """
        return None if self.workdir is None else Path(self.workdir) / tag

    def unit(self, key: str, compute: Callable[[], Any]) -> Any:
        """Run one resumable unit of a seed's work (one method's training, one setting), or read it back.

        The first call with ``key`` runs ``compute()``, writes its result as JSON to
        ``units_dir/<key>.json`` (atomically) and returns the JSON form of it; a later call with the same
        key, in this run or in one resumed after an interruption, returns the stored JSON without computing.
        Returning the JSON form in both cases (tuples and tensors become lists) makes a resumed run see
        exactly what an uninterrupted one sees. The runner has already checked that the workdir was made
        with the same settings.

        A unit must seed its own randomness (e.g. ``torch.manual_seed`` at its start) and must not leave
        state that later units read, or a resumed run would differ from an uninterrupted one.

        >>> import tempfile
        >>> ctx = RunContext(units_dir=Path(tempfile.mkdtemp()), progress=False)
        >>> calls = []
        >>> ctx.unit("EW", lambda: calls.append(1) or {"acc": (0.5, 0.75)})
        {'acc': [0.5, 0.75]}
        >>> ctx.unit("EW", lambda: calls.append(1) or {"acc": (0.0, 0.0)}), len(calls), ctx.units_resumed
        ({'acc': [0.5, 0.75]}, 1, ['EW'])

        :param key: a file-name-safe id, unique within the seed (letters, digits, ``_ . - > = + @ ,``).
        :param compute: the work; returns anything :func:`paper_repro.runner.to_jsonable` accepts.
        :raises ValueError: ``key`` is not file-name safe.
        """
        from paper_repro.runner import _read_json, _write_json, to_jsonable

        if not isinstance(key, str) or not _UNIT_RE.match(key):
            raise ValueError(f"Parameter `key` should match {_UNIT_RE.pattern}. Found `key = {key!r}`.")
        if self.units_dir is None:
            return to_jsonable(compute())
        path = Path(self.units_dir) / f"{key}.json"
        if path.exists():
            stored = _read_json(path)
            self.units_resumed.append(key)
            self.units_resumed_s += float(stored.get("wall_clock_s", 0.0))  # 0 for units stored before it was kept
            self.logger.info("unit %s: read back from %s", key, path)
            return stored["result"]
        t0 = time.perf_counter()
        result = to_jsonable(compute())
        _write_json(path, {"key": key, "result": result, "wall_clock_s": time.perf_counter() - t0})
        return result


FigureFn = Callable[[dict[str, Any]], Any]  # results -> matplotlib.figure.Figure


@dataclass
class Experiment:
    """One registered experiment.

    :ivar name: unique id such as ``"nmt.recsys"`` (letters, digits, ``_ . -``; used in file names).
    :ivar paper: one of :data:`PAPERS`.
    :ivar description: one line (shown by ``python -m paper_repro list``), more lines allowed.
    :ivar profiles: profile name -> config dict; at least ``"quick"`` and ``"full"``. The optional
        ``seeds`` key (default ``[0, 1, 2]``) gives the training seeds; ``dtype`` (``"float32"`` or
        ``"float64"``) sets :attr:`RunContext.dtype`.
    :ivar run_seed: ``(config, seed, ctx) -> dict`` of JSON-able results for one training seed.
    :ivar aggregate: optional ``(per_seed results in seed order, config) -> dict`` computing
        cross-seed quantities (e.g. a hypervolume of the mean front); stored under ``"aggregate"``.
    :ivar figures: figure name -> ``(results) -> matplotlib Figure``, drawn from the aggregated
        results that :func:`paper_repro.runner.run_experiment` returns.
    """

    name: str
    paper: str
    description: str
    profiles: dict[str, dict[str, Any]]
    run_seed: Callable[[dict[str, Any], int, RunContext], dict[str, Any]]
    aggregate: Callable[[list[dict[str, Any]], dict[str, Any]], dict[str, Any]] | None = None
    figures: dict[str, FigureFn] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(
                "Parameter `name` should be a non-empty string of letters, digits, '_', '.' or '-' "
                f"(it names files). Found `name = {self.name!r}`."
            )
        if self.paper not in PAPERS:
            raise ValueError(f"Parameter `paper` should be one of {PAPERS}. Found `paper = {self.paper!r}`.")
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"Parameter `description` should be a non-empty string. Found {self.description!r}.")
        if not isinstance(self.profiles, dict) or not all(p in self.profiles for p in _REQUIRED_PROFILES):
            found = sorted(self.profiles) if isinstance(self.profiles, dict) else self.profiles
            raise ValueError(
                f"Parameter `profiles` should be a dict with at least the keys {list(_REQUIRED_PROFILES)} "
                f"for experiment {self.name!r}. Found keys `{found}`."
            )
        for pname, cfg in self.profiles.items():
            if not isinstance(cfg, dict):
                raise TypeError(f"Profile {pname!r} of experiment {self.name!r} should be a dict. Found {cfg!r}.")
            if "seeds" in cfg:
                validate_seeds(cfg["seeds"], where=f"profile {pname!r} of experiment {self.name!r}")
        if not callable(self.run_seed):
            raise TypeError(f"Parameter `run_seed` should be callable. Found `run_seed = {self.run_seed!r}`.")
        if self.aggregate is not None and not callable(self.aggregate):
            raise TypeError(f"Parameter `aggregate` should be callable or None. Found {self.aggregate!r}.")
        if not isinstance(self.figures, dict) or not all(callable(f) for f in self.figures.values()):
            raise TypeError(f"Parameter `figures` should map names to callables. Found {self.figures!r}.")

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.strip().splitlines()[0]

    def config(self, profile: str) -> dict[str, Any]:
        """A copy of the profile's config; ``KeyError`` naming the known profiles otherwise."""
        if profile not in self.profiles:
            raise KeyError(
                f"Experiment {self.name!r} has no profile {profile!r}; known profiles: {sorted(self.profiles)}."
            )
        return dict(self.profiles[profile])


def validate_seeds(seeds: Any, where: str = "seeds") -> list[int]:
    """Check that ``seeds`` is a non-empty list of distinct non-negative ints; return it as a list."""
    ok = (
        isinstance(seeds, (list, tuple))
        and len(seeds) > 0
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        and len(set(seeds)) == len(seeds)
    )
    if not ok:
        raise ValueError(
            f"`seeds` in {where} should be a non-empty list of distinct non-negative integers. Found `{seeds!r}`."
        )
    return list(seeds)


_REGISTRY: dict[str, Experiment] = {}
_BUILTINS_LOADED = False


def _load_builtins() -> None:
    """Import ``paper_repro.experiments`` (which imports every per-paper module) once."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        import paper_repro.experiments  # noqa: F401  (registers on import)


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry (returns it); ``ValueError`` if the name is taken."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"Parameter `experiment` should be an Experiment. Found {type(experiment).__name__}.")
    if experiment.name in _REGISTRY and _REGISTRY[experiment.name] is not experiment:
        raise ValueError(f"An experiment named {experiment.name!r} is already registered.")
    _REGISTRY[experiment.name] = experiment
    return experiment


def unregister(name: str) -> None:
    """Remove an experiment (for tests that register fakes); no error if absent."""
    _REGISTRY.pop(name, None)


def get(name: str) -> Experiment:
    """The experiment called ``name``; ``KeyError`` listing the known names otherwise."""
    if name not in _REGISTRY:
        _load_builtins()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise KeyError(f"No experiment named {name!r}. Known experiments: {known}.")
    return _REGISTRY[name]


def all_experiments(paper: str | None = None) -> list[Experiment]:
    """Every registered experiment (optionally of one paper), sorted by paper then name."""
    _load_builtins()
    if paper is not None and paper not in PAPERS:
        raise ValueError(f"Parameter `paper` should be one of {PAPERS} or None. Found `paper = {paper!r}`.")
    exps = [e for e in _REGISTRY.values() if paper is None or e.paper == paper]
    return sorted(exps, key=lambda e: (PAPERS.index(e.paper), e.name))
