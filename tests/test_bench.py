"""Smoke test of the step-cost benchmark (tiny settings)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torchjd")

from paper_repro import bench  # noqa: E402


def test_bench_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--methods", "MGDA,FAMO", "--tasks", "2", "--batch", "8", "--steps", "2", "--warmup", "1",
                       "--no-memory", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| EW | loss |" in table and "| MGDA | gradient |" in table and "threads=1" in table
    data = json.loads(out.read_text())
    rows = {r["method"]: r for r in data["rows"]}
    assert set(rows) == {"EW", "MGDA", "FAMO"}
    assert rows["EW"]["x_ew"] == 1.0 and rows["MGDA"]["torchjd_ms"] > 0 and rows["FAMO"]["torchjd_ms"] is None
    assert data["machine"]["threads"] == 1


def test_bench_memory_subprocess(capsys):
    assert bench.main(["--methods", "EW", "--model", "cnn", "--tasks", "2", "--batch", "4", "--steps", "1",
                       "--warmup", "0", "--memory"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| EW")][0]
    assert row.split("|")[-2].strip() != "—"


def test_bench_rejects_unknown_method():
    with pytest.raises(SystemExit):
        bench.main(["--methods", "Nope"])


def test_bench_paper_methods_and_representation_mode(capsys):
    """NMT, EMTL (full and representation mode) and MGDA-UB run through the same harness."""
    assert bench.main(["--methods", "NMT,EMTL,EMTL-rep,MGDA-UB", "--tasks", "3", "--batch", "8", "--steps", "2",
                       "--warmup", "1", "--no-memory"]) == 0
    table = capsys.readouterr().out
    for name, level in (("NMT", "loss"), ("EMTL", "gradient"), ("EMTL-rep", "gradient"), ("MGDA-UB", "gradient")):
        assert f"| {name} | {level} |" in table


def test_bench_population_step(tmp_path, capsys):
    """``--population``: MT2O's stacked step (vmap, loop) against K separate steps, both input sizes, JSON rows."""
    out = tmp_path / "pop.json"
    assert bench.main(["--population", "--tasks", "2", "--batch", "4", "--steps", "2", "--warmup", "0",
                       "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| 10×10 |" in table and "| 28×28 |" in table
    rows = json.loads(out.read_text())["population"]
    assert [r["side"] for r in rows] == [10, 28]
    for r in rows:
        assert r["K"] == 2 and min(r["separate_s"], r["stacked_s"], r["loop_s"]) > 0
        assert r["ratio_loop_over_separate"] == pytest.approx(r["loop_s"] / r["separate_s"])
