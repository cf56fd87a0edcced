"""The committed full-profile results (``paper_repro/results/full/``) stay usable: each file was made by a clean
tree with the experiment's current settings (a config change that would silently make one stale fails here), holds
only seeds of the profile, and is listed in the results README."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paper_repro import registry
from paper_repro.runner import COMMITTED_RESULTS, effective_config, settings_hash

FILES = sorted((COMMITTED_RESULTS / "full").glob("*.json"))


def test_there_are_committed_results() -> None:
    assert FILES, f"no committed results under {COMMITTED_RESULTS / 'full'}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_committed_result_is_current_and_clean(path: Path) -> None:
    res = json.loads(path.read_text())
    name = path.stem
    assert res["experiment"] == name and res["profile"] == "full"
    cfg = effective_config(registry.get(name), "full")
    assert res["settings_hash"] == settings_hash(name, "full", cfg), (
        f"{name}: committed with other settings than the current full config; re-run it or revert the config")
    assert set(res["seeds"]) <= set(cfg["seeds"]) and res["seeds"] == sorted(res["seeds"])
    assert all(r is not None for r in res["per_seed"]) and len(res["per_seed"]) == len(res["seeds"])
    prov = res["provenance"]
    assert prov["dirty"] is False, f"{name}: made from a dirty tree"
    assert len(prov["commit"]) == 40


def test_results_readme_lists_every_file() -> None:
    readme = (COMMITTED_RESULTS / "README.md").read_text()
    for path in FILES:
        assert f"`full/{path.name}`" in readme, f"{path.name} is not listed in paper_repro/results/README.md"


def test_claims_hold_on_committed_results_as_recorded(tmp_path: Path) -> None:
    """Every claim whose experiment has a committed full result has its full-profile outcome recorded
    (``expect_holds_full``), and evaluating the committed file (nothing is run) gives that outcome: a change to an
    experiment's analysis or a check that flips a full-scale verdict fails here."""
    from paper_repro.claims import all_claims, evaluate

    committed = {p.stem for p in FILES}
    claims = [c for c in all_claims() if c.experiment in committed]
    assert claims
    unrecorded = [c.id for c in claims if c.expect_holds_full is None]
    assert not unrecorded, f"claims on committed full results without expect_holds_full: {unrecorded}"
    stray = [c.id for c in all_claims() if c.expect_holds_full is not None and c.experiment not in committed]
    assert not stray, f"expect_holds_full recorded without a committed full result: {stray}"
    rows = evaluate(claims, profile="full", run_missing=False, out_dir=tmp_path)  # empty runs dir: committed files
    wrong = [(r.id, r.holds, r.expect_holds, r.ours) for r in rows if r.holds is None or r.holds != r.expect_holds]
    assert not wrong, f"full-profile outcomes differ from the recorded ones: {wrong}"
