"""Run registered experiments over seeds, resumably, and aggregate them.

Layout under ``out_dir`` (default ``runs/``, git-ignored)::

    runs/<profile>/<name>/seed<k>.json   one file per completed seed, written as soon as it completes
    runs/<profile>/<name>/seed<k>/       the seed's workdir (trainer checkpoints, settings.json)
    runs/<profile>/<name>.json           the aggregate: per-seed results, mean ± se, provenance

Resuming: a completed seed is read back, never re-run; an interrupted seed restarts and finds its
trainer checkpoint in its workdir. Both are keyed by a *settings hash* (experiment, profile, config
after overrides, without ``seeds``): if the stored hash differs, :class:`SettingsMismatchError` is
raised unless ``fresh=True`` (CLI ``--fresh``) wipes the experiment's folder first.

Aggregation (conventions §4): for every numeric leaf of the per-seed results (nested dicts are
flattened to dotted keys; equal-length numeric lists are aggregated element-wise) the aggregate holds
``{"mean", "se", "n", "values"}`` with ``se = std(ddof=1)/sqrt(n)`` (NaN for n < 2).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from paper_repro.provenance import REPO_ROOT, git_info, provenance, set_seed_everything
from paper_repro.registry import Experiment, RunContext, get, validate_seeds

__all__ = [
    "COMMITTED_RESULTS",
    "DEFAULT_OUT",
    "DEFAULT_SEEDS",
    "SettingsMismatchError",
    "effective_config",
    "get_leaf",
    "load_results",
    "obtain_results",
    "run_experiment",
    "settings_hash",
    "summarize",
    "summary_table",
]

log = logging.getLogger(__name__)

#: Default output folder: ``$MTOPT_RUNS_DIR`` if set (the test suite shares one folder between the
#: claims test and the notebooks), else ``runs/`` at the repository root, wherever the caller runs from.
DEFAULT_OUT = Path(os.environ.get("MTOPT_RUNS_DIR") or REPO_ROOT / "runs")
#: Where committed (full-profile) aggregates live: ``paper_repro/results/<profile>/<name>.json``.
COMMITTED_RESULTS = REPO_ROOT / "paper_repro" / "results"
#: Training seeds when a profile gives none.
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class SettingsMismatchError(RuntimeError):
    """Stored seeds or checkpoints were produced with other settings than the ones requested."""


# --------------------------------------------------------------------------------------------- utils
def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays, tuples and paths to plain JSON types (recursively)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    raise TypeError(f"Value of type {type(obj).__name__} is not JSON-able: {obj!r}.")


_UMASK = os.umask(0)
os.umask(_UMASK)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (temporary file + rename) so an interruption never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(to_jsonable(data), fh, indent=1)
            fh.write("\n")
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _set_dotted(cfg: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = cfg
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ValueError(f"Override {key!r}: the config value at {p!r} is not a dict. Found {nxt!r}.")
        node = nxt
    node[parts[-1]] = value


def effective_config(exp: Experiment, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The profile's config with ``overrides`` applied (dotted keys reach into nested dicts)."""
    cfg = json.loads(json.dumps(to_jsonable(exp.config(profile))))  # deep copy, JSON-normalized
    for key, value in (overrides or {}).items():
        if key.split(".")[0] not in cfg:
            log.warning("override %r is not a key of %s/%s's config (keys: %s)", key, exp.name, profile, sorted(cfg))
        _set_dotted(cfg, key, to_jsonable(value))
    if "seeds" in cfg:
        validate_seeds(cfg["seeds"], where=f"config of {exp.name}/{profile}")
    if cfg.get("dtype", "float32") not in _DTYPES:
        raise ValueError(f"Config key `dtype` should be one of {sorted(_DTYPES)}. Found `dtype = {cfg['dtype']!r}`.")
    return cfg


def settings_hash(name: str, profile: str, config: dict[str, Any]) -> str:
    """A short hash of what determines a seed's result (the ``seeds`` key excluded)."""
    payload = {"experiment": name, "profile": profile, "config": {k: v for k, v in config.items() if k != "seeds"}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}" for k in keys if old.get(k) != new.get(k)]


# ------------------------------------------------------------------------------------ aggregation
def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _mean_se(values: np.ndarray) -> tuple[Any, Any]:
    n = values.shape[0]
    mean = values.mean(axis=0)
    se = values.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full_like(mean, np.nan, dtype=float)
    return mean.tolist(), np.asarray(se).tolist()


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean ± standard error (ddof=1), n and per-seed values for every numeric leaf.

    A leaf is a number, or a list of numbers of the same length in every seed (aggregated
    element-wise). Leaves missing from some seed or of other types are left out (they stay in the
    per-seed results).
    """
    flat = [_flatten(r) for r in per_seed]
    if not flat:
        return {}
    summary: dict[str, dict[str, Any]] = {}
    for key in flat[0]:
        vals = [f.get(key) for f in flat]
        if all(_is_num(v) for v in vals):
            arr = np.asarray(vals, dtype=float)
        elif all(isinstance(v, list) and v and all(_is_num(x) for x in v) for v in vals) and len(
            {len(v) for v in vals}
        ) == 1:
            arr = np.asarray(vals, dtype=float)
        else:
            continue
        mean, se = _mean_se(arr)
        summary[key] = {"mean": mean, "se": se, "n": len(vals), "values": vals}
    return summary


def get_leaf(result: dict[str, Any], key: str) -> Any:
    """``result["a"]["b"]`` for ``key = "a.b"``; ``KeyError`` naming the missing part and the keys there."""
    node: Any = result
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            avail = sorted(node) if isinstance(node, dict) else type(node).__name__
            raise KeyError(f"Key {key!r}: no {part!r} in the results (available: {avail}).")
        node = node[part]
    return node


# -------------------------------------------------------------------------------------------- run
def _paths(out_dir: Path, profile: str, name: str) -> tuple[Path, Path]:
    return Path(out_dir) / profile / name, Path(out_dir) / profile / f"{name}.json"


def run_experiment(
    name: str,
    profile: str = "quick",
    seeds: list[int] | None = None,
    device: str | torch.device = "cpu",
    out_dir: Path | str = DEFAULT_OUT,
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
    fresh: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Run the missing seeds of an experiment, aggregate, and write ``out_dir/<profile>/<name>.json``.

    :param name: a registered experiment name.
    :param profile: a profile of the experiment (``"quick"``, ``"full"``, ...).
    :param seeds: training seeds; default the config's ``seeds`` key, else ``[0, 1, 2]``.
    :param device: torch device for training.
    :param out_dir: output root (see the module docstring for the layout).
    :param progress: show a tqdm bar over seeds (and pass ``progress`` on to the experiment).
    :param overrides: config overrides, ``{"key": value}`` or ``{"nested.key": value}``; they change
        the settings hash.
    :param fresh: wipe this experiment's stored seeds and checkpoints first.
    :param threads: if given, ``torch.set_num_threads(threads)`` before running.
    :returns: the aggregate dict (also written to disk): ``experiment, paper, description, profile,
        seeds, config, settings_hash, per_seed`` (list aligned with ``seeds``), ``summary``
        (dotted key -> mean/se/n/values), ``aggregate`` (the experiment's own, or None),
        ``provenance``, ``wall_clock_s`` (sum over seeds; a seed finished over several processes counts the time
        its read-back units took when they ran, not a trainer's time before a mid-unit interruption),
        ``session_wall_clock_s``, ``seeds_run``,
        ``seeds_resumed``.
    :raises SettingsMismatchError: stored seeds/checkpoints used other settings and not ``fresh``.
    """
    start = time.perf_counter()
    code_state = git_info()  # the code this run executes: recorded even if the tree changes meanwhile
    exp = get(name)
    config = effective_config(exp, profile, overrides)
    seeds = validate_seeds(list(seeds) if seeds is not None else config.get("seeds", list(DEFAULT_SEEDS)))
    shash = settings_hash(name, profile, config)
    dev = torch.device(device)
    dtype = _DTYPES[config.get("dtype", "float32")]
    if threads is not None:
        torch.set_num_threads(int(threads))
    exp_dir, agg_path = _paths(Path(out_dir), profile, name)
    if fresh and exp_dir.exists():
        log.info("--fresh: removing %s", exp_dir)
        shutil.rmtree(exp_dir)
    if fresh:
        agg_path.unlink(missing_ok=True)

    # Check every stored seed before running anything, so a mismatch fails fast.
    stored: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        seed_file = exp_dir / f"seed{seed}.json"
        workdir_settings = exp_dir / f"seed{seed}" / "settings.json"
        for f in (seed_file, workdir_settings):
            if f.exists():
                rec = _read_json(f)
                if rec.get("settings_hash") != shash:
                    diff = _config_diff(rec.get("config", {}), config)
                    raise SettingsMismatchError(
                        f"{f} was produced with other settings (hash {rec.get('settings_hash')} != {shash}; "
                        f"changed: {diff or 'experiment or profile'}). Re-run with --fresh (fresh=True) to "
                        f"discard the stored seeds, or choose another --out folder."
                    )
                if f is seed_file:
                    stored[seed] = rec

    per_seed: dict[int, dict[str, Any]] = {}
    seeds_run: list[int] = []
    base_settings = {"experiment": name, "profile": profile, "config": config, "settings_hash": shash}
    bar = tqdm(seeds, desc=f"{name} [{profile}]", unit="seed", disable=not progress, leave=False)
    for seed in bar:
        if seed in stored:
            per_seed[seed] = stored[seed]
            log.info("%s/%s seed %d: read back from %s", profile, name, seed, exp_dir / f"seed{seed}.json")
            continue
        workdir = exp_dir / f"seed{seed}"
        workdir.mkdir(parents=True, exist_ok=True)
        _write_json(workdir / "settings.json", {**base_settings, "seed": seed})
        generator = set_seed_everything(seed)
        ctx = RunContext(
            device=dev,
            dtype=dtype,
            workdir=workdir,
            units_dir=workdir / "units",
            progress=progress,
            logger=logging.getLogger(f"paper_repro.experiments.{name}"),
            generator=generator,
        )
        log.info("%s/%s seed %d: running (workdir %s)", profile, name, seed, workdir)
        t0 = time.perf_counter()
        try:
            result = exp.run_seed(dict(config), seed, ctx)
        except BaseException:
            log.error("%s/%s seed %d failed; completed seeds are kept in %s", profile, name, seed, exp_dir)
            raise
        wall = time.perf_counter() - t0 + ctx.units_resumed_s  # units read back count the time they took
        if not isinstance(result, dict):
            raise TypeError(f"run_seed of {name!r} should return a dict. Found {type(result).__name__} for seed {seed}.")
        rec = {
            **base_settings,
            "seed": seed,
            "result": to_jsonable(result),
            "wall_clock_s": wall,
            "units_resumed": list(ctx.units_resumed),
            "provenance": provenance({**base_settings, "seed": seed}, dev, git=code_state),
        }
        _write_json(exp_dir / f"seed{seed}.json", rec)
        per_seed[seed] = rec
        seeds_run.append(seed)
    bar.close()

    results_list = [per_seed[s]["result"] for s in seeds]
    aggregate = exp.aggregate(results_list, dict(config)) if exp.aggregate is not None else None
    settings = {**base_settings, "seeds": seeds, "overrides": to_jsonable(overrides or {}), "device": str(dev)}
    prov = provenance(settings, dev, git=code_state)
    prov["seed_commits"] = {str(s): per_seed[s].get("provenance", {}).get("commit", "unknown") for s in seeds}
    out = {
        "experiment": name,
        "paper": exp.paper,
        "description": exp.description,
        "profile": profile,
        "seeds": seeds,
        "config": config,
        "settings_hash": shash,
        "per_seed": results_list,
        "summary": summarize(results_list),
        "aggregate": to_jsonable(aggregate) if aggregate is not None else None,
        "provenance": prov,
        "wall_clock_s": float(sum(per_seed[s].get("wall_clock_s", 0.0) for s in seeds)),
        "session_wall_clock_s": time.perf_counter() - start,
        "seeds_run": seeds_run,
        "seeds_resumed": [s for s in seeds if s not in seeds_run],
    }
    _write_json(agg_path, out)
    log.info("%s/%s: %d seed(s) run, %d read back -> %s", profile, name, len(seeds_run), len(seeds) - len(seeds_run), agg_path)
    return out


def load_results(name: str, profile: str = "quick", out_dir: Path | str = DEFAULT_OUT) -> dict[str, Any]:
    """Read an aggregate: ``out_dir/<profile>/<name>.json`` first, then the committed
    ``paper_repro/results/<profile>/<name>.json``. The returned dict gets a ``"source"`` key (the path).

    :raises FileNotFoundError: naming both places and the command that produces the results.
    """
    candidates = [Path(out_dir) / profile / f"{name}.json", COMMITTED_RESULTS / profile / f"{name}.json"]
    for path in candidates:
        if path.exists():
            res = _read_json(path)
            res["source"] = str(path)
            return res
    raise FileNotFoundError(
        f"No results for experiment {name!r}, profile {profile!r}: looked in {candidates[0]} and {candidates[1]}. "
        f"Produce them with `python -m paper_repro run {name} --profile {profile} --out {out_dir}`."
    )


def obtain_results(
    name: str,
    profile: str = "quick",
    out_dir: Path | str = DEFAULT_OUT,
    run_missing: bool = True,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, Any] | None:
    """Stored results if they match the current settings and cover the profile's seeds, else run
    them (``run_missing``; seeds already stored in ``out_dir`` are read back).

    Without ``run_missing``: stored results with the current settings but only some of the profile's
    seeds (a long full profile run for part of its seeds) are returned with ``"partial_seeds"``, the
    profile's seeds they lack; results made with other settings are returned with ``"stale": True``;
    missing ones give ``None``.
    """
    exp = get(name)
    config = effective_config(exp, profile)
    shash = settings_hash(name, profile, config)
    seeds = set(config.get("seeds", DEFAULT_SEEDS))
    try:
        res: dict[str, Any] | None = load_results(name, profile, out_dir)
    except FileNotFoundError:
        res = None
    if res is not None and res.get("settings_hash") == shash and seeds <= set(res.get("seeds", [])):
        return res
    same_settings = res is not None and res.get("settings_hash") == shash
    if res is not None:
        if same_settings:
            log.warning("%s/%s: stored results (%s) hold seeds %s of the profile's %s", profile, name, res["source"],
                        sorted(res.get("seeds", [])), sorted(seeds))
        else:
            log.warning("%s/%s: stored results (%s) were made with other settings than the current config",
                        profile, name, res["source"])
    if run_missing:
        return run_experiment(name, profile, device=device, out_dir=out_dir, progress=progress)
    if same_settings:
        res["partial_seeds"] = sorted(seeds - set(res.get("seeds", [])))
    elif res is not None:
        res["stale"] = True
    return res


def stored_results(
    names: list[str] | tuple[str, ...], profile: str = "full", out_dir: Path | str = DEFAULT_OUT
) -> tuple[dict[str, dict[str, Any] | None], list[str]]:
    """The stored results of ``names`` that a notebook may draw, without running anything, and one status line each.

    Looks where :func:`obtain_results` looks (``out_dir``, then the committed results). A result made with other
    settings than the current config (stale) or absent becomes ``None``, and its line says the command that makes
    it. A result that holds only some of the profile's seeds is kept, and its line names the seeds it lacks.
    Otherwise the line gives the seeds, the commit, the training time and the torch threads.

    >>> import tempfile
    >>> res, lines = stored_results(["core.demo"], "quick", out_dir=tempfile.mkdtemp())
    >>> res, lines[0]  # nothing stored (the committed results hold no quick profile)
    ({'core.demo': None}, 'core.demo: no current quick-profile result; run `python -m paper_repro run core.demo --profile quick`')

    :param names: experiment names.
    :param profile: the profile to read.
    :param out_dir: the runs folder, searched before the committed results.
    :returns: name -> result or ``None``, and the status lines in the order of ``names``.
    """
    found: dict[str, dict[str, Any] | None] = {}
    lines: list[str] = []
    for name in names:
        res = obtain_results(name, profile, out_dir, run_missing=False)
        if res is None or res.get("stale"):
            found[name] = None
            lines.append(f"{name}: no current {profile}-profile result; "
                         f"run `python -m paper_repro run {name} --profile {profile}`")
            continue
        found[name] = res
        part = f" (partial: lacks seeds {res['partial_seeds']})" if res.get("partial_seeds") else ""
        prov = res.get("provenance", {})
        lines.append(f"{name}: seeds {res['seeds']}{part}, commit {str(prov.get('commit', '?'))[:7]}, "
                     f"training {res.get('wall_clock_s', 0) / 60:.0f} min, {prov.get('torch_threads')} thread(s)")
    return found, lines


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4g}"
    return str(x)


def summary_table(results: dict[str, Any], keys: list[str] | None = None, max_rows: int = 40) -> str:
    """Markdown table of a result's scalar summary: key | mean ± se | n | per seed."""
    summary = results.get("summary", {})
    keys = keys if keys is not None else [k for k, v in summary.items() if not isinstance(v["mean"], list)]
    lines = ["| quantity | mean ± se | n | per seed |", "|---|---|---|---|"]
    for k in keys[:max_rows]:
        s = summary[k]
        per = ", ".join(_fmt(v) for v in s["values"])
        lines.append(f"| {k} | {_fmt(s['mean'])} ± {_fmt(s['se'])} | {s['n']} | {per} |")
    if len(keys) > max_rows:
        lines.append(f"| … {len(keys) - max_rows} more | | | |")
    return "\n".join(lines)
