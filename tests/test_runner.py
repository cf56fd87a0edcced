"""The experiment registry, the resumable runner, provenance and the CLI (fake experiments only)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from paper_repro import registry
from paper_repro.__main__ import main as cli_main
from paper_repro.provenance import provenance, set_seed_everything
from paper_repro.registry import Experiment, RunContext
from paper_repro.runner import (
    SettingsMismatchError,
    effective_config,
    load_results,
    run_experiment,
    summarize,
)

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE_KEYS = {"commit", "dirty", "timestamp_utc", "hostname", "platform", "python", "torch", "numpy",
                   "torch_threads", "device", "settings"}


class FakeRun:
    """A run_seed that records its calls and returns seed-dependent numbers."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.contexts: list[RunContext] = []

    def __call__(self, config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
        self.calls.append(seed)
        self.contexts.append(ctx)
        return {
            "loss": {"a": float(seed) * config["scale"], "b": 2.0},
            "curve": [float(seed), seed + 1.0],
            "tag": "text",
            "flag": True,
        }


@pytest.fixture
def fake() -> Iterator[tuple[Experiment, FakeRun]]:
    run = FakeRun()
    exp = Experiment(
        name=f"test.fake-{uuid.uuid4().hex[:8]}",
        paper="core",
        description="A fake experiment for the runner tests.\nSecond line.",
        profiles={"quick": {"scale": 1.0, "seeds": [0, 1]}, "full": {"scale": 1.0}},
        run_seed=run,
        aggregate=lambda per_seed, config: {"n_seeds": len(per_seed)},
    )
    registry.register(exp)
    yield exp, run
    registry.unregister(exp.name)


def test_run_two_seeds_writes_and_aggregates(fake: tuple[Experiment, FakeRun], tmp_path: Path) -> None:
    exp, run = fake
    res = run_experiment(exp.name, out_dir=tmp_path, progress=False)
    assert run.calls == [0, 1]  # default seeds come from the profile
    for k in (0, 1):
        rec = json.loads((tmp_path / "quick" / exp.name / f"seed{k}.json").read_text())
        assert rec["seed"] == k and rec["result"]["loss"]["a"] == float(k)
        assert PROVENANCE_KEYS <= set(rec["provenance"])
    assert (tmp_path / "quick" / f"{exp.name}.json").exists()
    a = res["summary"]["loss.a"]
    assert a["mean"] == pytest.approx(0.5) and a["se"] == pytest.approx(0.5) and a["n"] == 2
    assert a["values"] == [0.0, 1.0]
    assert res["summary"]["curve"]["mean"] == pytest.approx([0.5, 1.5])
    assert "tag" not in res["summary"] and "flag" not in res["summary"]
    assert res["aggregate"] == {"n_seeds": 2}
    assert PROVENANCE_KEYS <= set(res["provenance"])
    assert res["provenance"]["settings"]["seeds"] == [0, 1]
    assert res["wall_clock_s"] >= 0 and res["seeds_run"] == [0, 1]
    ctx = run.contexts[0]
    assert ctx.workdir == tmp_path / "quick" / exp.name / "seed0" and ctx.generator is not None
    assert load_results(exp.name, "quick", tmp_path)["summary"] == json.loads(json.dumps(res["summary"]))


def test_interrupted_run_resumes_only_missing_seed(fake: tuple[Experiment, FakeRun], tmp_path: Path) -> None:
    exp, run = fake
    run_experiment(exp.name, seeds=[0, 1, 2], out_dir=tmp_path, progress=False)
    (tmp_path / "quick" / f"{exp.name}.json").unlink()
    (tmp_path / "quick" / exp.name / "seed1.json").unlink()
    run.calls.clear()
    res = run_experiment(exp.name, seeds=[0, 1, 2], out_dir=tmp_path, progress=False)
    assert run.calls == [1]
    assert res["seeds_resumed"] == [0, 2] and res["summary"]["loss.a"]["values"] == [0.0, 1.0, 2.0]
    assert (tmp_path / "quick" / f"{exp.name}.json").exists()


def test_interrupted_seed_resumes_from_its_workdir(tmp_path: Path) -> None:
    def run_seed(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
        ckpt = ctx.workdir / "ckpt.json"
        if not ckpt.exists():
            ckpt.write_text(json.dumps({"epoch": 3}))
            raise KeyboardInterrupt  # interrupted after the checkpoint
        return {"resumed_from": json.loads(ckpt.read_text())["epoch"]}

    exp = registry.register(Experiment(f"test.ckpt-{uuid.uuid4().hex[:6]}", "core", "checkpoint test",
                                       {"quick": {}, "full": {}}, run_seed))
    try:
        with pytest.raises(KeyboardInterrupt):
            run_experiment(exp.name, seeds=[0], out_dir=tmp_path, progress=False)
        assert not (tmp_path / "quick" / exp.name / "seed0.json").exists()
        res = run_experiment(exp.name, seeds=[0], out_dir=tmp_path, progress=False)
        assert res["per_seed"][0]["resumed_from"] == 3
    finally:
        registry.unregister(exp.name)


def test_interrupted_seed_reruns_only_its_missing_units(tmp_path: Path) -> None:
    """``ctx.unit``: an interruption after unit ``a`` re-runs ``b`` only, and the result equals an uninterrupted run."""
    computed: list[str] = []
    interrupt = {"on": True}

    def work(key: str, seed: int) -> dict[str, Any]:
        computed.append(key)
        g = torch.Generator().manual_seed(seed * 10 + len(key))  # each unit seeds its own randomness
        return {"x": torch.rand(3, generator=g), "pair": (key, seed)}

    def run_seed(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
        a = ctx.unit("a", lambda: work("a", seed))
        if interrupt["on"]:
            raise KeyboardInterrupt
        b = ctx.unit("bb", lambda: work("bb", seed))
        return {"a": a, "b": b}

    exp = registry.register(Experiment(f"test.units-{uuid.uuid4().hex[:6]}", "core", "unit test",
                                       {"quick": {}, "full": {}}, run_seed))
    try:
        with pytest.raises(KeyboardInterrupt):
            run_experiment(exp.name, seeds=[1], out_dir=tmp_path / "resumed", progress=False)
        interrupt["on"] = False
        resumed = run_experiment(exp.name, seeds=[1], out_dir=tmp_path / "resumed", progress=False)
        assert computed == ["a", "bb"]
        seed_rec = json.loads((tmp_path / "resumed" / "quick" / exp.name / "seed1.json").read_text())
        assert seed_rec["units_resumed"] == ["a"]
        straight = run_experiment(exp.name, seeds=[1], out_dir=tmp_path / "straight", progress=False)
        assert computed == ["a", "bb", "a", "bb"]
        assert resumed["per_seed"] == straight["per_seed"]
        assert resumed["per_seed"][0]["a"]["pair"] == ["a", 1]  # the JSON form, in both runs
    finally:
        registry.unregister(exp.name)


@pytest.mark.parametrize("key", ["", "../x", "a/b", "a b", 3])
def test_unit_key_must_be_file_name_safe(key: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Parameter `key`"):
        RunContext(units_dir=tmp_path, progress=False).unit(key, dict)


def test_unit_without_units_dir_computes_every_time() -> None:
    calls: list[int] = []
    ctx = RunContext(progress=False)
    for _ in range(2):
        assert ctx.unit("a", lambda: calls.append(1) or (1, 2)) == [1, 2]
    assert calls == [1, 1] and ctx.units_resumed == []


def test_partial_seeds_are_returned_as_partial_not_stale(fake: tuple[Experiment, FakeRun], tmp_path: Path) -> None:
    """A long profile run for some of its seeds: read back as such (flagged), not as results of other settings."""
    from paper_repro.claims import ClaimRow, format_table
    from paper_repro.runner import obtain_results

    exp, run = fake
    run_experiment(exp.name, seeds=[1], out_dir=tmp_path, progress=False)
    res = obtain_results(exp.name, "quick", tmp_path, run_missing=False)
    assert res is not None and not res.get("stale") and res["partial_seeds"] == [0] and res["seeds"] == [1]
    assert run.calls == [1]
    row = ClaimRow(id="c", paper="core", statement="s", paper_figure="f", experiment=exp.name, profile="full",
                   holds=True, ours="x",
                   detail={"seeds": {"have": [1], "missing": [0]}})
    assert "(seeds 1 only; not run yet: 0)" in format_table([row])
    exp.profiles["quick"]["scale"] = 2.0  # other settings: stale, whatever the seeds
    res = obtain_results(exp.name, "quick", tmp_path, run_missing=False)
    assert res is not None and res["stale"] and "partial_seeds" not in res


def test_stored_results_keeps_partial_drops_stale_and_says_so(fake: tuple[Experiment, FakeRun],
                                                               tmp_path: Path) -> None:
    """What the notebooks' full-profile sections draw: partial results kept and flagged, stale ones dropped."""
    from paper_repro.runner import stored_results

    exp, run = fake
    run_experiment(exp.name, seeds=[1], out_dir=tmp_path, progress=False)
    found, lines = stored_results([exp.name], "quick", tmp_path)
    assert found[exp.name] is not None and found[exp.name]["seeds"] == [1]
    assert lines[0].startswith(f"{exp.name}: seeds [1] (partial: lacks seeds [0]), commit ")
    run_experiment(exp.name, out_dir=tmp_path, progress=False)  # runs seed 0, reads seed 1 back
    found, lines = stored_results([exp.name], "quick", tmp_path)
    assert found[exp.name]["seeds"] == [0, 1] and "partial" not in lines[0]
    exp.profiles["quick"]["scale"] = 2.0
    found, lines = stored_results([exp.name], "quick", tmp_path)
    assert found == {exp.name: None} and f"run {exp.name} --profile quick" in lines[0]
    assert run.calls == [1, 0]  # nothing run by the reader


def test_seed_wall_clock_counts_units_read_back(tmp_path: Path) -> None:
    """A seed finished in a second process reports the time its stored units took, not only its own."""
    def run_seed(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
        return {"a": ctx.unit("a", lambda: time.sleep(0.2) or 1.0)}

    exp = Experiment(name=f"test.units-{uuid.uuid4().hex[:8]}", paper="core", description="units",
                     profiles={"quick": {"seeds": [0]}, "full": {}}, run_seed=run_seed)
    registry.register(exp)
    try:
        first = run_experiment(exp.name, out_dir=tmp_path, progress=False)
        unit = json.loads((tmp_path / "quick" / exp.name / "seed0" / "units" / "a.json").read_text())
        assert unit["result"] == 1.0 and 0.2 <= unit["wall_clock_s"] <= first["wall_clock_s"]
        (tmp_path / "quick" / exp.name / "seed0.json").unlink()  # the seed ran again, its unit read back
        again = run_experiment(exp.name, out_dir=tmp_path, progress=False)
        assert again["seeds_run"] == [0] and again["wall_clock_s"] >= unit["wall_clock_s"]
    finally:
        registry.unregister(exp.name)


def test_settings_change_is_detected(fake: tuple[Experiment, FakeRun], tmp_path: Path) -> None:
    exp, run = fake
    run_experiment(exp.name, out_dir=tmp_path, progress=False)
    with pytest.raises(SettingsMismatchError, match=r"scale: 1\.0 -> 3\.0.*--fresh"):
        run_experiment(exp.name, out_dir=tmp_path, progress=False, overrides={"scale": 3.0})
    run.calls.clear()
    res = run_experiment(exp.name, out_dir=tmp_path, progress=False, overrides={"scale": 3.0}, fresh=True)
    assert run.calls == [0, 1] and res["summary"]["loss.a"]["values"] == [0.0, 3.0]
    # more seeds with the same settings are fine and only the new one runs
    run.calls.clear()
    run_experiment(exp.name, seeds=[0, 1, 5], out_dir=tmp_path, progress=False, overrides={"scale": 3.0})
    assert run.calls == [5]


def test_load_results_missing_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="python -m paper_repro run nope --profile quick"):
        load_results("nope", "quick", tmp_path)


def test_summarize_and_overrides() -> None:
    s = summarize([{"x": 1.0, "d": {"y": [1, 2]}}, {"x": 3.0, "d": {"y": [3, 4]}}, {"x": 5.0, "d": {"y": [5, 6]}}])
    assert s["x"]["mean"] == 3.0 and s["x"]["se"] == pytest.approx(2 / math.sqrt(3)) and s["x"]["n"] == 3
    assert s["d.y"]["mean"] == [3.0, 4.0]
    assert math.isnan(summarize([{"x": 1.0}])["x"]["se"])
    exp = Experiment("test.cfg", "core", "d", {"quick": {"opt": {"lr": 0.1, "m": 0.9}}, "full": {}}, lambda c, s, x: {})
    cfg = effective_config(exp, "quick", {"opt.lr": 0.5})
    assert cfg == {"opt": {"lr": 0.5, "m": 0.9}} and exp.profiles["quick"]["opt"]["lr"] == 0.1


def test_registry_validation() -> None:
    ok = dict(name="test.v", paper="core", description="d", profiles={"quick": {}, "full": {}},
              run_seed=lambda c, s, x: {})
    with pytest.raises(ValueError, match="`name`"):
        Experiment(**{**ok, "name": "bad name/with slash"})
    with pytest.raises(ValueError, match="`paper`"):
        Experiment(**{**ok, "paper": "XYZ"})
    with pytest.raises(ValueError, match=r"\['quick', 'full'\]"):
        Experiment(**{**ok, "profiles": {"quick": {}}})
    with pytest.raises(ValueError, match="seeds"):
        Experiment(**{**ok, "profiles": {"quick": {"seeds": [0, 0]}, "full": {}}})
    with pytest.raises(KeyError, match="Known experiments"):
        registry.get("no.such.experiment")
    exp = registry.register(Experiment(**ok))
    try:
        with pytest.raises(ValueError, match="already registered"):
            registry.register(Experiment(**ok))
        with pytest.raises(KeyError, match="known profiles"):
            exp.config("medium")
    finally:
        registry.unregister("test.v")


def test_provenance_and_seeding() -> None:
    prov = provenance({"a": 1})
    assert PROVENANCE_KEYS <= set(prov) and prov["settings"] == {"a": 1}
    assert isinstance(prov["commit"], str)
    import torch

    g1, g2 = set_seed_everything(7), set_seed_everything(7)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    with pytest.raises(ValueError, match="seed"):
        set_seed_everything(-1)


def test_cli_run_in_process(fake: tuple[Experiment, FakeRun], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp, run = fake
    rc = cli_main(["run", exp.name, "--seeds", "3", "--out", str(tmp_path), "--no-progress", "--set", "scale=2"])
    out = capsys.readouterr().out
    assert rc == 0 and run.calls == [3]
    assert "loss.a" in out and "6" in out


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paper_repro", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_cli_help_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    out = _cli("--help")  # one real subprocess: `python -m paper_repro` as users call it
    assert out.returncode == 0, out.stderr
    for word in ("list", "run", "claims", "report", "bench", "registered experiments:"):
        assert word in out.stdout
    for exp in registry.all_experiments():
        assert exp.name in out.stdout
    assert cli_main(["list"]) == 0
    assert "| experiment | paper |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli_main(["run", "--help"])
    assert exc.value.code == 0 and "--fresh" in capsys.readouterr().out


def test_cli_bench_forwarding(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import types

    seen: list[list[str]] = []
    fake_bench = types.ModuleType("paper_repro.bench")
    fake_bench.main = lambda argv: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "paper_repro.bench", fake_bench)
    assert cli_main(["bench", "--help", "-x"]) == 0 and seen == [["--help", "-x"]]
    monkeypatch.setitem(sys.modules, "paper_repro.bench", None)  # imports as if the module were absent
    assert cli_main(["bench"]) == 2 and "not available" in capsys.readouterr().err


def test_write_report_with_a_fake_experiment(fake: tuple[Experiment, FakeRun], tmp_path: Path) -> None:
    from paper_repro.claims import Claim, register_claim, threshold_check, unregister_claim
    from paper_repro.report import write_report

    exp, run = fake
    claim = register_claim(Claim(f"{exp.name}.claim", "core", "loss b is above 1", "Fig. 0", exp.name,
                                 lambda r: threshold_check([v["loss"]["b"] for v in r["per_seed"]], 1.0)))
    try:
        index = write_report(out=tmp_path / "report", experiments=[exp.name], out_dir=tmp_path / "runs",
                             include_theory=False, progress=False)
    finally:
        unregister_claim(claim.id)
    text = index.read_text()
    assert f"## {exp.name} (core)" in text and "| loss.a |" in text and claim.id in text and "| ✓ |" in text
    assert "commit" in text and "seeds:" in text
    pngs = sorted((tmp_path / "report" / "figures").glob("*.png"))
    assert pngs and all(f"figures/{p.name}" in text for p in pngs)  # default summary + curve figures
    html_text = (tmp_path / "report" / "index.html").read_text()
    assert "<table>" in html_text and f'src="figures/{pngs[0].name}"' in html_text
    assert run.calls == [0, 1]


def test_torch_threads_restores_after_an_error() -> None:
    from paper_repro.provenance import torch_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="positive integer"):
        with torch_threads(0):
            pass
