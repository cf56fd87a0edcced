"""Connection strength (Eq. 4–7, 10) and the phase-2 projection (Alg. 1), ``specs/cso.md`` §7."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn.utils.fusion import fuse_conv_bn_weights

from methods.cso import channel_strength, is_degenerate, normalized_strength, owners, ownership_shares, project_by_owner

DTYPES = [torch.float32, torch.float64]


def test_hand_computed_2x2x3x3() -> None:
    w = torch.zeros(2, 2, 3, 3, dtype=torch.float64)
    w[0, 0, 0, 0], w[0, 1, 1, 1] = 1.0, 2.0      # Σ W[0]² = 5
    w[1, 0, 2, 2] = 3.0                           # Σ W[1]² = 9
    gamma = torch.tensor([2.0, 1.0], dtype=torch.float64)
    var = torch.tensor([0.5, 2.0], dtype=torch.float64)
    s = channel_strength(w, gamma, var, 0.5)
    # S_0 = 4/(0.5+0.5)·5 = 20 ; S_1 = 1/(2+0.5)·9 = 3.6
    torch.testing.assert_close(s, torch.tensor([20.0, 3.6], dtype=torch.float64))
    torch.testing.assert_close(channel_strength(w, gamma, var, 0.5, kernel_average=True), s / 9)
    torch.testing.assert_close(normalized_strength(s), torch.tensor([20 / 23.6, 3.6 / 23.6], dtype=torch.float64))
    assert channel_strength(w, None, var, 0.5).tolist() == pytest.approx([5.0, 9 / 2.5])


@pytest.mark.parametrize("transpose", [False, True])
def test_f1_folded_filter_energy(transpose: bool) -> None:
    g = torch.Generator().manual_seed(0)
    c_out, c_in, k = 6, 4, 3
    shape = (c_in, c_out, k, k) if transpose else (c_out, c_in, k, k)
    w = torch.randn(*shape, generator=g, dtype=torch.float64)
    gamma, beta = torch.randn(c_out, generator=g, dtype=torch.float64), torch.randn(c_out, generator=g, dtype=torch.float64)
    mean, var = torch.randn(c_out, generator=g, dtype=torch.float64), torch.rand(c_out, generator=g, dtype=torch.float64) + 0.1
    fw, _ = fuse_conv_bn_weights(w, None, mean, var, 1e-5, gamma, beta, transpose=transpose)
    axis = 1 if transpose else 0
    folded = fw.movedim(axis, 0).reshape(c_out, -1).pow(2).sum(1) / k**2
    s = channel_strength(w, gamma, var, 1e-5, out_axis=axis, kernel_average=True)
    assert float((folded - s).abs().max()) <= 1e-12


def test_f2_scale_invariance_and_f4() -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8, 3, 3, 3, generator=g, dtype=torch.float64)
    gammas = torch.rand(3, 8, generator=g, dtype=torch.float64) + 0.1
    var = torch.rand(3, 8, generator=g, dtype=torch.float64) + 0.5

    def nu(w: torch.Tensor, gm: torch.Tensor) -> torch.Tensor:
        return owners(normalized_strength(torch.stack([channel_strength(w, gm[t], var[t], 1e-5) for t in range(3)])))

    base = nu(w, gammas)
    assert torch.equal(base, nu(w * 3.7, gammas))
    scaled = gammas.clone()
    scaled[1] *= 5.0
    assert torch.equal(base, nu(w, scaled))
    # F4: copied BNs -> identical Ŝ -> one owner (task 0) -> degenerate; a perturbed γ -> each of K=2 owns a channel
    same = torch.stack([channel_strength(w, gammas[0], var[0], 1e-5)] * 2)
    own = owners(normalized_strength(same))
    assert is_degenerate(own) and int(own.max()) == 0
    assert ownership_shares(normalized_strength(same)).tolist() == [4.0, 4.0]
    g2 = gammas[0].clone()
    g2[3] *= 1.01
    two = torch.stack([channel_strength(w, gammas[0], var[0], 1e-5), channel_strength(w, g2, var[0], 1e-5)])
    own2 = owners(normalized_strength(two))
    assert not is_degenerate(own2) and set(own2.tolist()) == {0, 1}


def _reference(grads: torch.Tensor, owner: torch.Tensor, order: list[int]) -> torch.Tensor:
    """Alg. 1 written as loops, processing the groups in ``order`` (the slow route)."""
    h = grads.clone()
    k = grads.shape[0]
    for i in order:
        mask = owner == i
        if not mask.any():
            continue
        a = grads[i][mask].reshape(-1)
        if float(a @ a) <= 1e-30:
            continue
        for j in range(k):
            if j == i:
                continue
            b = h[j][mask].reshape(-1)
            d = a @ b
            if d < 0:
                h[j][mask] = (b - d / (a @ a) * a).reshape(h[j][mask].shape)
    return h.sum(0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_projection_invariants_random(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(2)
    tol = 1e-9 if dtype == torch.float64 else 2e-4
    for case in range(200):
        k = [2, 3, 4][case % 3]
        c, d = 6, 5
        grads = torch.randn(k, c, d, generator=g, dtype=torch.float64)
        owner = torch.randint(0, k, (c,), generator=g)
        if len(set(owner.tolist())) == 1:
            owner[0] = (owner[0] + 1) % k
        out, stats = project_by_owner(grads.to(dtype), owner)
        out = out.double()
        ref = _reference(grads, owner, list(range(k)))
        assert float((out - ref).abs().max()) <= tol * max(1.0, float(ref.abs().max()))
        # I2: independent of the processing order
        for perm in itertools.islice(itertools.permutations(range(k)), 3):
            assert float((_reference(grads, owner, list(perm)) - ref).abs().max()) <= 1e-12
        # I1: <G_ii, u_i> = ||G_ii||² + Σ_j max(0, G_ii·G_ij) >= ||G_ii||²
        for i in range(k):
            mask = owner == i
            if not mask.any():
                continue
            a = grads[i][mask].reshape(-1)
            u = out[mask].reshape(-1)
            expected = a @ a + sum(max(0.0, float(a @ grads[j][mask].reshape(-1))) for j in range(k) if j != i)
            assert float(a @ u) == pytest.approx(float(expected), rel=tol, abs=tol)
            assert float(a @ u) >= float(a @ a) * (1 - tol)


def test_projection_edge_cases() -> None:
    g = torch.Generator().manual_seed(3)
    grads = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    # I3: K = 1 and conflict-free inputs give the plain sum
    out, _ = project_by_owner(grads[:1], torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(out, grads[0])
    pos = grads.abs()
    out, st = project_by_owner(pos, torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(out, pos.sum(0))
    assert st.projections == 0
    # zero reference: no NaN, plain sum on that group
    z = grads.clone()
    z[0, [0, 3]] = 0.0
    out, _ = project_by_owner(z, torch.tensor([0, 1, 2, 0]))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[[0, 3]], z.sum(0)[[0, 3]])
    # empty group (task 2 owns nothing) is skipped; degenerate layer sums by default, projects on request
    out, st = project_by_owner(grads, torch.tensor([0, 1, 1, 0]))
    assert st.group_sizes == [2, 2, 0]
    out, st = project_by_owner(grads, torch.zeros(4, dtype=torch.long))
    assert st.degenerate
    torch.testing.assert_close(out, grads.sum(0))
    outp, _ = project_by_owner(grads, torch.zeros(4, dtype=torch.long), degenerate="project")
    torch.testing.assert_close(outp, _reference(grads, torch.zeros(4, dtype=torch.long), [0, 1, 2]))
    # unit="channel" equals unit="group" when every group has one channel
    owner = torch.tensor([2, 0, 1])
    a, _ = project_by_owner(grads[:, :3], owner, unit="channel")
    b, _ = project_by_owner(grads[:, :3], owner, unit="group")
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="owner"):
        project_by_owner(grads, torch.tensor([0, 1, 5, 0]))


def test_projection_golden_two_tasks() -> None:
    # one group owned by task 0: a = (1, 0), b = (-1, 1) -> b' = (0, 1), sum = (1, 1)
    grads = torch.tensor([[[1.0, 0.0]], [[-1.0, 1.0]]], dtype=torch.float64)
    out, st = project_by_owner(grads, torch.tensor([0]), degenerate="project")
    torch.testing.assert_close(out, torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    assert st.conflicts == [1, 0]
