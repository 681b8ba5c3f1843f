"""Tests of the Darcy finite-difference solver and data generator."""

import math

import numpy as np
import pytest
import torch

from refimpl.pde import darcy

F64 = torch.float64


def _grid(s):
    x = torch.linspace(0, 1, s, dtype=F64)
    return x[:, None], x[None, :]


def _manufactured_error(s, a_fn):
    """u = sin(pi x) sin(2 pi y); f = -div(a grad u) analytically."""
    X, Y = _grid(s)
    a, ax, ay = a_fn(X, Y)
    u = torch.sin(math.pi * X) * torch.sin(2 * math.pi * Y)
    ux = math.pi * torch.cos(math.pi * X) * torch.sin(2 * math.pi * Y)
    uy = 2 * math.pi * torch.sin(math.pi * X) * torch.cos(2 * math.pi * Y)
    lap = -5 * math.pi**2 * u
    f = -(ax * ux + ay * uy + a * lap)
    a = a.expand(s, s).contiguous()
    f = f.expand(s, s).contiguous()
    return float((darcy.solve(a, f) - u).abs().max())


@pytest.mark.parametrize("a_fn", [
    lambda X, Y: (torch.full_like(X * Y, 2.5), 0 * X * Y, 0 * X * Y),   # constant
    lambda X, Y: (1 + X + 2 * Y**2, 1 + 0 * X * Y, 4 * Y + 0 * X),      # smooth
], ids=["constant", "smooth"])
def test_manufactured_solution_converges_at_second_order(a_fn):
    errors = [_manufactured_error(s, a_fn) for s in (17, 33, 65)]
    assert errors[-1] < 2e-3
    for coarse, fine in zip(errors, errors[1:]):
        assert 3.5 < coarse / fine < 4.5


def test_residual_of_the_five_point_system_by_explicit_loops():
    a = darcy.coefficient(1, 9, seed=2, dtype=F64)[0]
    u = darcy.solve(a)
    s, h = 9, 1.0 / 8
    A, U = a.numpy(), u.numpy()
    H = lambda p, q: 2 * p * q / (p + q)  # noqa: E731
    for i in range(1, s - 1):
        for j in range(1, s - 1):
            e, w = H(A[i, j], A[i, j + 1]), H(A[i, j], A[i, j - 1])
            so, no = H(A[i, j], A[i + 1, j]), H(A[i, j], A[i - 1, j])
            lhs = ((e + w + so + no) * U[i, j] - e * U[i, j + 1] - w * U[i, j - 1]
                   - so * U[i + 1, j] - no * U[i - 1, j]) / h**2
            assert abs(lhs - 1.0) < 1e-9
    assert np.abs(U[[0, -1]]).max() == 0 and np.abs(U[:, [0, -1]]).max() == 0
    M, b = darcy.assemble(a)
    assert abs(M - M.T).max() < 1e-12 and (M.diagonal() > 0).all()
    assert np.abs(M @ U[1:-1, 1:-1].ravel() - b).max() < 1e-9


def test_solution_is_positive_and_scales_inversely_with_a():
    a = darcy.coefficient(3, 17, seed=1, dtype=F64)
    u = darcy.solve(a)
    assert bool((u[:, 1:-1, 1:-1] > 0).all())
    torch.testing.assert_close(darcy.solve(4.0 * a), u / 4.0, rtol=1e-10, atol=1e-14)
    # unbatched input gives the same answer
    torch.testing.assert_close(darcy.solve(a[1]), u[1])


def test_two_phase_coefficient():
    a = darcy.coefficient(40, 17, seed=0)
    assert set(torch.unique(a).tolist()) == {3.0, 12.0}
    frac = float((a == 12).double().mean())
    assert 0.35 < frac < 0.65  # the GRF is symmetric: P(g >= 0) = 1/2


def test_same_coefficient_at_two_resolutions():
    a17 = darcy.coefficient(3, 17, seed=7)
    a33 = darcy.coefficient(3, 33, seed=7)
    assert torch.equal(a33[:, ::2, ::2], a17)
    # solved on the same fine grid, two resolutions agree on their common nodes
    a_c, u_c = darcy.sample(3, 17, seed=7, oversample=2)
    a_f, u_f = darcy.sample(3, 33, seed=7)
    assert torch.equal(a_c, a_f[:, ::2, ::2])
    torch.testing.assert_close(u_c, u_f[:, ::2, ::2])
    # solved separately, they differ only by the discretisation error
    _, u_direct = darcy.sample(3, 17, seed=7)
    rel = (u_direct - u_c).norm() / u_c.norm()
    assert float(rel) < 0.1


def test_sample_shapes_dtype_device(device):
    a, u = darcy.sample(2, 9, seed=3, device=device)
    assert a.shape == u.shape == (2, 9, 9)
    assert a.dtype == u.dtype == torch.float32
    assert a.device.type == device.type and u.device.type == device.type
    u2 = darcy.solve(a)
    assert u2.device.type == device.type
    torch.testing.assert_close(u2, u)
    a2, u3 = darcy.sample(2, 9, seed=3)
    torch.testing.assert_close(u3, u.cpu())


@pytest.mark.parametrize("call, err, match", [
    (lambda: darcy.sample(2, resolution=2), ValueError, "resolution"),
    (lambda: darcy.sample(2, resolution=0), ValueError, "resolution"),
    (lambda: darcy.sample(0, resolution=9), ValueError, "n must"),
    (lambda: darcy.sample(2, resolution=9, oversample=0), ValueError, "oversample"),
    (lambda: darcy.sample(2, resolution=9, a_minus=0.0), ValueError, "a_minus"),
    (lambda: darcy.solve(-torch.ones(5, 5)), ValueError, "positive"),
    (lambda: darcy.solve(torch.full((5, 5), float("nan"))), ValueError, "NaN"),
    (lambda: darcy.solve(torch.ones(5, 6)), ValueError, "square"),
    (lambda: darcy.solve(torch.ones(2, 2)), ValueError, "3x3"),
    (lambda: darcy.solve(torch.ones(5, 5, dtype=torch.int64)), TypeError, "floating"),
    (lambda: darcy.solve(torch.ones(5, 5), torch.ones(4, 4)), ValueError, "f must"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
