"""theory.registry and ``python -m theory``; every registered theory check must hold (per-paper ones with --runslow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from theory.registry import Check, CheckOutcome, all_checks, check, format_table, run_all, unregister

ROOT = Path(__file__).resolve().parents[2]


def test_register_run_and_table() -> None:
    @check(paper="core", claim="1 + 1 = 2", name="test_fake_holds")
    def ok() -> CheckOutcome:
        return CheckOutcome(True, "2", {"value": 2})

    @check(paper="core", claim="1 + 1 = 3", name="test_fake_fails")
    def bad() -> CheckOutcome:
        return CheckOutcome(False, "2 ≠ 3")

    @check(paper="core", claim="raises", name="test_fake_raises")
    def boom() -> CheckOutcome:
        raise ZeroDivisionError("nope")

    try:
        mine = [c for c in all_checks("core") if c.name.startswith("test_fake_")]
        assert [c.name for c in mine] == ["test_fake_holds", "test_fake_fails", "test_fake_raises"]
        rows = run_all(checks=mine)
        assert [r.holds for r in rows] == [True, False, None]
        assert rows[0].detail == {"value": 2} and "ZeroDivisionError" in (rows[2].error or "")
        table = format_table(rows).splitlines()
        assert table[0] == "| paper | claim | check | result | holds |"
        assert table[2].endswith("| ✓ |") and table[3].endswith("| ✗ |") and table[4].endswith("| error |")
        with pytest.raises(ValueError, match="already registered"):
            check(paper="core", claim="again", name="test_fake_holds")(lambda: CheckOutcome(True, ""))
    finally:
        for name in ("test_fake_holds", "test_fake_fails", "test_fake_raises"):
            unregister("core", name)


def test_check_validation() -> None:
    with pytest.raises(ValueError, match="`paper`"):
        check(paper="XYZ", claim="c")
    with pytest.raises(ValueError, match="`claim`"):
        check(paper="core", claim="")
    with pytest.raises(TypeError, match="CheckOutcome"):
        Check("core", "c", "n", lambda: True).run()  # type: ignore[arg-type, return-value]


# Every registered check must hold. The shared ("core") ones always run; the per-paper ones are also
# tested in tests/<paper>/, so here they run only with --runslow (some take minutes).
_CHECKS = [pytest.param(c, id=f"{c.paper}:{c.name}", marks=() if c.paper == "core" else pytest.mark.slow)
           for c in all_checks()]


@pytest.mark.parametrize("chk", _CHECKS)
def test_registered_check_holds(chk: Check) -> None:
    out = chk.run()
    assert out.holds, f"{chk.paper} / {chk.claim}: {out.result}"


def test_theory_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from theory.__main__ import main

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "theory", "--paper", "core"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "| paper | claim | check | result | holds |" in out.stdout and "checks hold" in out.stdout
    assert main(["--list"]) == 0 and "min_norm_two_task_closed_form" in capsys.readouterr().out
