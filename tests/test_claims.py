"""The claims machinery (fake claims) and, marked ``claims``, every registered claim on the quick profile.

The registered claims run once per session in the session's runs folder (``runs_dir`` in conftest:
a fresh one, or ``$MTOPT_RUNS_DIR``); each claim is one test asserting it holds as registered (``expect_holds``).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paper_repro import claims as claims_mod
from paper_repro import registry
from paper_repro.__main__ import main as cli_main
from paper_repro.claims import (
    Claim,
    ClaimOutcome,
    ClaimRow,
    all_claims,
    all_of,
    evaluate,
    format_table,
    paired_effect,
    per_seed,
    register_claim,
    threshold_check,
    unregister_claim,
)
from paper_repro.registry import Experiment, RunContext


@pytest.fixture
def fake_claims() -> Iterator[tuple[list[Claim], list[int]]]:
    calls: list[int] = []

    def run_seed(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
        calls.append(seed)
        return {"ours": 1.0 + 0.1 * seed, "base": 0.9 + 0.1 * seed}

    tag = uuid.uuid4().hex[:6]
    exp = registry.register(Experiment(f"test.claims-{tag}", "core", "fake", {"quick": {"seeds": [0, 1, 2]}, "full": {}}, run_seed))
    holds = Claim(f"test.holds-{tag}", "core", "ours beats base", "Fig. 1", exp.name,
                  lambda r: paired_effect(per_seed(r, "ours"), per_seed(r, "base"), "greater", label="ours − base"))
    fails = Claim(f"test.fails-{tag}", "core", "base beats ours", "Table 9", exp.name,
                  lambda r: paired_effect(per_seed(r, "base"), per_seed(r, "ours"), "greater"), expect_holds=False)
    broken = Claim(f"test.broken-{tag}", "core", "reads a missing key", "—", exp.name,
                   lambda r: threshold_check(per_seed(r, "missing"), 0.0))
    made = [register_claim(c) for c in (holds, fails, broken)]
    yield made, calls
    for c in made:
        unregister_claim(c.id)
    registry.unregister(exp.name)


def test_evaluate_reports_holding_and_failing_claims(fake_claims: tuple[list[Claim], list[int]], tmp_path: Path) -> None:
    made, calls = fake_claims
    rows = evaluate(made, profile="quick", out_dir=tmp_path)
    assert calls == [0, 1, 2]  # the experiment ran once for all three claims
    by_id = {r.id: r for r in rows}
    h, f, b = (by_id[c.id] for c in made)
    assert h.holds is True and h.ours.startswith("ours − base = +0.1 ±") and h.ours.endswith("(n=3)")
    assert h.error is None
    assert f.holds is False and f.detail["diff_mean"] == pytest.approx(-0.1)
    assert b.holds is None and "KeyError" in (b.error or "")
    table = format_table(rows)
    assert table.splitlines()[0] == "| claim | paper | statement | paper's figure | ours | holds |"
    for c, mark in zip(made, ("✓", "✗", "error")):
        line = next(ln for ln in table.splitlines() if c.id in ln)
        assert line.endswith(f"| {mark} |") and c.paper_figure in line
    # stored results are reused: nothing runs again
    evaluate(made, profile="quick", out_dir=tmp_path)
    assert calls == [0, 1, 2]


def test_evaluate_without_running(fake_claims: tuple[list[Claim], list[int]], tmp_path: Path) -> None:
    made, calls = fake_claims
    rows = evaluate([made[0].id], run_missing=False, out_dir=tmp_path)
    assert calls == [] and rows[0].holds is None and "python -m paper_repro run" in rows[0].ours
    assert rows[0].id in format_table(rows) and format_table(rows).endswith("| – |")


def test_claim_validation() -> None:
    with pytest.raises(ValueError, match="`paper`"):
        Claim("x", "nope", "s", "f", "e", lambda r: ClaimOutcome(True, ""))
    with pytest.raises(TypeError, match="`check`"):
        Claim("x", "core", "s", "f", "e", "not callable")  # type: ignore[arg-type]


def test_paired_effect_and_helpers() -> None:
    out = paired_effect([1.0, 2.0, 3.0], [0.5, 1.0, 2.5], "greater", margin=0.1)
    assert out.holds and out.detail["diff_mean"] == pytest.approx(2 / 3)
    assert out.detail["diff_se"] == pytest.approx(math.sqrt(1 / 12) / math.sqrt(3))  # diffs 0.5, 1, 0.5
    assert not paired_effect([1.0, 2.0, 3.0], [0.5, 1.0, 2.5], "greater", margin=1.0).holds
    assert paired_effect([0.0, 0.1], [1.0, 1.0], "less", margin=0.5).holds
    assert not paired_effect([1.0, 1.2, 0.8], [0.9, 0.9, 0.9], "greater", n_se=2.0).holds  # mean 0.1, se ≈ 0.115
    assert not paired_effect([1.0], [0.0], "greater", n_se=1.0).holds  # one seed: no se
    with pytest.raises(ValueError, match="same length"):
        paired_effect([1.0, 2.0], [1.0], "greater")
    with pytest.raises(ValueError, match="direction"):
        paired_effect([1.0], [1.0], "up")
    t = threshold_check([0.8, 0.9], 0.7, "greater", label="AUC")
    assert t.holds and t.ours.startswith("AUC = 0.85")
    both = all_of(t, threshold_check([0.8, 0.9], 0.95, "greater"))
    assert not both.holds and len(both.detail["parts"]) == 2


def test_cli_claims_exit_codes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def fake_rows(holds: bool) -> list[ClaimRow]:
        return [ClaimRow("c1", "core", "s", "Fig. 1", "e", "quick", holds, "x = 1")]

    monkeypatch.setattr(claims_mod, "evaluate", lambda **kw: fake_rows(False))
    assert cli_main(["claims"]) == 0
    assert "| c1 |" in capsys.readouterr().out
    assert cli_main(["claims", "--strict"]) == 1
    monkeypatch.setattr(claims_mod, "evaluate", lambda **kw: fake_rows(True))
    assert cli_main(["claims", "--strict"]) == 0


# ----------------------------------------------------------------------- the registered claims
_REGISTERED = [c for c in all_claims() if not c.id.startswith("test.")]


@pytest.fixture(scope="session")
def quick_claim_rows(request: pytest.FixtureRequest, runs_dir: Path) -> dict[str, ClaimRow]:
    """Evaluated once per session, for the claims whose tests were selected: ``-k emtl`` runs EMTL's
    experiments only."""
    chosen = {item.callspec.params["claim"].id for item in request.session.items
              if getattr(item, "originalname", None) == "test_registered_claim_quick"
              and item.callspec.params.get("claim") is not None}
    claims = [c for c in _REGISTERED if c.id in chosen] or _REGISTERED
    return {r.id: r for r in evaluate(claims, profile="quick", out_dir=runs_dir)}


@pytest.mark.claims
@pytest.mark.parametrize("claim", _REGISTERED or [None], ids=[c.id for c in _REGISTERED] or ["none-registered"])
def test_registered_claim_quick(claim: Claim | None, quick_claim_rows: dict[str, ClaimRow]) -> None:
    if claim is None:
        pytest.skip("no claim is registered")
    row = quick_claim_rows[claim.id]
    assert row.error is None, f"{claim.id}: {row.error}"
    assert row.holds == claim.expect_holds, (
        f"{claim.id} ({claim.paper}, {claim.paper_figure}): expected holds={claim.expect_holds}, measured: {row.ours}"
    )
