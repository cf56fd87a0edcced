"""Every MT2O theory check (theory/mt2o.py, specs/mt2o.md §2) holds; expected numbers from the spec."""

from __future__ import annotations

import pytest

import theory.mt2o as t

CHECKS = [t.lemma_a_proximal_cost, t.prop_b_graph_coupled_gd, t.prop_b_frozen_coupling_strengthens,
          t.thm_c_monte_carlo, t.thm_c_sympy, t.obs_d_variance_vs_bias, t.obs_d_elitist_early_phase]


@pytest.mark.parametrize("fn", CHECKS, ids=lambda f: f.__name__)
def test_check_holds(fn) -> None:  # type: ignore[no-untyped-def]
    out = fn()
    assert out.holds, out.result


def test_laplacian_numbers() -> None:
    assert t.circle_laplacian_lambda_max(5) == pytest.approx(2.2546, abs=1e-4)
    assert t.circle_laplacian_lambda_max(5, 0.1) == pytest.approx(2.3178, abs=1e-4)


def test_thm_c_counts_in_spec_range() -> None:
    out = t.thm_c_monte_carlo()
    assert out.detail["violations"] == 0
    assert 0.85 * 2000 <= out.detail["no_worse"] <= 0.99 * 2000
