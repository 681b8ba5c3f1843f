"""Tests of the pseudo-spectral Navier–Stokes solver (tiny grids)."""

import math

import pytest
import torch

from refimpl.pde import navier_stokes as ns

F64 = torch.float64


def _grid(s):
    x = torch.arange(s, dtype=F64) / s
    return x[:, None], x[None, :]


def test_mean_vorticity_is_conserved_and_trajectory_finite():
    w0, w = ns.sample(3, 16, viscosity=1e-3, T=1.0, seed=1, dtype=F64)
    assert w.shape == (3, 1, 16, 16) and bool(torch.isfinite(w).all())
    assert float(w0.mean((-1, -2)).abs().max()) < 1e-12
    assert float(w.mean((-1, -2)).abs().max()) < 1e-12 * float(w.abs().max()) + 1e-14
    # a non-zero mean is conserved too (forcing and advection have zero mean)
    shifted = ns.solve(w0 + 0.3, 1e-3, 0.5)
    torch.testing.assert_close(shifted.mean((-1, -2)), torch.full((3, 1), 0.3,
                               dtype=F64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("scheme", ["rk3", "heun", "euler"])
def test_single_wavenumber_shell_decays_at_the_analytic_rate(scheme):
    """Modes with one |k| are steady Euler flows (u . grad w = 0): unforced, they
    decay as exp(-4 pi^2 |k|^2 nu t)."""
    s, nu, T = 16, 1e-2, 0.5
    X, Y = _grid(s)
    w0 = torch.cos(2 * math.pi * (X + 2 * Y)) \
        + 0.5 * torch.sin(2 * math.pi * (2 * X - Y))
    w = ns.solve(w0, nu, T, record_steps=2, dt=1e-2, f=None, scheme=scheme)
    for k, t in enumerate((0.25, 0.5)):
        exact = math.exp(-4 * math.pi**2 * 5 * nu * t) * w0
        assert float((w[k] - exact).abs().max() / exact.abs().max()) < 1e-3


def test_forced_steady_state():
    """f = 0.1 (sin + cos)(2 pi (x + y)) lies on the shell |k|^2 = 2, so
    w = f / (4 pi^2 2 nu) is an exact steady solution."""
    s, nu = 16, 1e-2
    f = ns.forcing(s, dtype=F64)
    w_s = f / (4 * math.pi**2 * 2 * nu)
    w = ns.solve(w_s, nu, 2.0, record_steps=1)
    torch.testing.assert_close(w[0], w_s, rtol=0, atol=1e-10)


@pytest.mark.parametrize("scheme, low, high", [
    ("rk3", 3.5, 9.0), ("heun", 3.5, 4.5), ("euler", 1.7, 2.4)])
def test_order_of_accuracy_in_time(scheme, low, high):
    """Successive differences shrink by 2^p when dt halves (p = 2 for CN + Heun,
    1 for Euler; the RK3/CN scheme is second order, nearer third when advection
    dominates)."""
    w0 = ns.initial_vorticity(1, 16, seed=3, dtype=F64) * 5  # strong advection
    sols = [ns.solve(w0, 1e-3, 0.4, dt=dt, scheme=scheme, record_steps=1)
            for dt in (0.02, 0.01, 0.005)]
    e1 = (sols[0] - sols[1]).norm()
    e2 = (sols[1] - sols[2]).norm()
    assert low < float(e1 / e2) < high


def test_velocity_of_a_single_mode():
    s = 16
    X, Y = _grid(s)
    w = torch.cos(2 * math.pi * X).expand(s, s)
    uv = ns.velocity(w)
    # psi = cos(2 pi x) / (4 pi^2): u = d_y psi = 0, v = -d_x psi = sin(2 pi x) / (2 pi)
    torch.testing.assert_close(uv[0], torch.zeros(s, s, dtype=F64), atol=1e-14, rtol=0)
    torch.testing.assert_close(uv[1], (torch.sin(2 * math.pi * X) / (2 * math.pi))
                               .expand(s, s), atol=1e-14, rtol=0)


def test_recording_and_sequence_layout():
    w0, w = ns.sample(2, 16, viscosity=1e-3, T=2.0, seed=2, dtype=F64)
    assert w.shape == (2, 2, 16, 16)
    # snapshot k is w(t = k + 1): integrating 1 unit from w(1) gives w(2)
    step = ns.solve(w[:, 0], 1e-3, 1.0)
    torch.testing.assert_close(step[:, 0], w[:, 1], rtol=1e-10, atol=1e-10)
    x, y = ns.sequence(2, T_in=1, T_out=1, resolution=16, viscosity=1e-3, seed=2,
                       dtype=F64)
    assert x.shape == (2, 1, 16, 16) and y.shape == (2, 1, 16, 16)
    torch.testing.assert_close(torch.cat([x, y], 1), w)


def test_seeded_device_and_float32(device):
    w0, w = ns.sample(2, 16, viscosity=1e-4, T=1.0, seed=5, device=device)
    assert w0.device.type == device.type and w.dtype == torch.float32
    _, ref = ns.sample(2, 16, viscosity=1e-4, T=1.0, seed=5, dtype=F64)
    torch.testing.assert_close(w.cpu().double(), ref, rtol=0, atol=1e-4)
    _, again = ns.sample(2, 16, viscosity=1e-4, T=1.0, seed=5, batch_size=1)
    torch.testing.assert_close(again, w.cpu(), rtol=1e-5, atol=1e-6)


def test_low_viscosity_stays_finite():
    _, w = ns.sample(2, 32, viscosity=1e-5, T=2.0, seed=0)
    assert bool(torch.isfinite(w).all())


@pytest.mark.parametrize("call, err, match", [
    (lambda: ns.sample(1, 16, viscosity=0.0), ValueError, "viscosity"),
    (lambda: ns.sample(1, 16, viscosity=-1e-3), ValueError, "viscosity"),
    (lambda: ns.sample(1, 15), ValueError, "even"),
    (lambda: ns.sample(1, 0), ValueError, "resolution"),
    (lambda: ns.sample(1, -8), ValueError, "resolution"),
    (lambda: ns.sample(1, 16, T=0.0), ValueError, "T must be positive"),
    (lambda: ns.sample(1, 16, record_steps=0), ValueError, "record_steps"),
    (lambda: ns.sample(1, 16, scheme="rk4"), ValueError, "scheme"),
    (lambda: ns.sample(1, 16, dt=-1.0), ValueError, "dt"),
    (lambda: ns.solve(torch.full((8, 8), float("nan")), 1e-3, 1.0), ValueError, "NaN"),
    (lambda: ns.solve(torch.zeros(8, 6), 1e-3, 1.0), ValueError, "shape"),
    (lambda: ns.solve(torch.zeros(8, 8), 1e-3, 1.0, f=torch.zeros(4, 4)),
     ValueError, "f must"),
    (lambda: ns.solve(torch.zeros(8, 8), 1e-3, 1.0, f="kolmogorov"), ValueError,
     "f must"),
    (lambda: ns.sequence(1, T_in=0), ValueError, "T_in"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


# --- the advection term: tests that see its sign, size and velocity convention ---


def _manufactured(s, nu, A=1.0, B=0.7):
    """w = A cos 2 pi x + B cos 4 pi y with psi = w-shells / (4 pi^2 |k|^2):
    u = d_y psi = -B sin(4 pi y) / (4 pi), v = -d_x psi = A sin(2 pi x) / (2 pi),
    u . grad w = -1.5 A B sin(2 pi x) sin(4 pi y) (non-zero: two shells), and
    Delta w = -4 pi^2 A cos 2 pi x - 16 pi^2 B cos 4 pi y. With the forcing
    f = u . grad w - nu Delta w the field w is an exact steady solution."""
    X, Y = _grid(s)
    sx, cx = torch.sin(2 * math.pi * X), torch.cos(2 * math.pi * X)
    sy, cy = torch.sin(4 * math.pi * Y), torch.cos(4 * math.pi * Y)
    w = A * cx + B * cy
    adv = -1.5 * A * B * sx * sy
    lap = -4 * math.pi**2 * A * cx - 16 * math.pi**2 * B * cy
    return w.expand(s, s).clone(), (adv - nu * lap).expand(s, s).clone(), adv


@pytest.mark.parametrize("scheme", ["rk3", "heun", "euler"])
def test_manufactured_steady_state_with_nonzero_advection(scheme):
    """A steady solution whose advection u . grad w is O(1): the forcing balances
    advection and diffusion only if the solver's advection has the right sign,
    size and velocity convention (u = (d_y psi, -d_x psi), -Delta psi = w)."""
    s, nu, T = 16, 1e-2, 1.0
    w_s, f, adv = _manufactured(s, nu)
    assert float(adv.abs().max()) > 0.5  # advection is not trivially zero
    w = ns.solve(w_s, nu, T, record_steps=4, dt=1e-2, f=f, scheme=scheme)
    torch.testing.assert_close(w, w_s.expand(4, s, s), rtol=0, atol=1e-10)
    # the same forcing without its advective part is not steady: the test can
    # see a wrong advection term (an O(1) drift within the horizon)
    drift = ns.solve(w_s, nu, T, record_steps=1, dt=1e-2, f=f - adv, scheme=scheme)
    assert float((drift[0] - w_s).abs().max()) > 0.1


def _reference_rhs(s, nu, f):
    """An independent right-hand side: complex FFTs (numpy), velocity from the
    stream function, the 2/3 rule on the product, diffusion explicit."""
    np = pytest.importorskip("numpy")
    k = np.fft.fftfreq(s, d=1.0 / s)
    KX, KY = np.meshgrid(k, k, indexing="ij")
    lap = -4 * np.pi**2 * (KX**2 + KY**2)
    inv = np.where(lap == 0, 0.0, -1.0 / np.where(lap == 0, 1.0, lap))  # psi = w/k^2
    keep = (np.abs(KX) <= s / 3) & (np.abs(KY) <= s / 3)
    f_h = np.fft.fft2(f)
    f_h[0, 0] = 0.0

    def rhs(_t, y):
        w_h = np.fft.fft2(y.reshape(s, s))
        psi_h = w_h * inv
        u = np.real(np.fft.ifft2(2j * np.pi * KY * psi_h))
        v = np.real(np.fft.ifft2(-2j * np.pi * KX * psi_h))
        wx = np.real(np.fft.ifft2(2j * np.pi * KX * w_h))
        wy = np.real(np.fft.ifft2(2j * np.pi * KY * w_h))
        n_h = np.fft.fft2(u * wx + v * wy) * keep
        n_h[0, 0] = 0.0
        return np.real(np.fft.ifft2(-n_h + nu * lap * w_h + f_h)).ravel()
    return rhs


def test_matches_an_independent_solve_of_a_strongly_advected_flow():
    """GRF vorticity (x 5, so that advection dominates) integrated by an
    independent implementation (numpy FFTs + scipy's DOP853 at tight tolerance)
    and by the solver's three schemes at a small step."""
    integrate = pytest.importorskip("scipy.integrate")
    s, nu, T = 16, 1e-3, 0.4
    w0 = ns.initial_vorticity(1, s, seed=3, dtype=F64)[0] * 5
    f = ns.forcing(s, dtype=F64)
    sol = integrate.solve_ivp(_reference_rhs(s, nu, f.numpy()), (0.0, T),
                              w0.numpy().ravel(), method="DOP853", rtol=1e-11,
                              atol=1e-12)
    ref = torch.from_numpy(sol.y[:, -1].reshape(s, s))
    for scheme, dt, tol in (("rk3", 2e-3, 1e-6), ("heun", 1e-3, 1e-5),
                            ("euler", 2.5e-4, 1e-3)):
        w = ns.solve(w0, nu, T, record_steps=1, dt=dt, scheme=scheme)[0]
        err = float((w - ref).norm() / ref.norm())
        assert err < tol, (scheme, err)
    # advection moves this flow far: linear (Stokes) evolution is O(1) away, so
    # a wrong advection term cannot pass the tolerance above
    kappa = 4 * math.pi**2 * (torch.fft.fftfreq(s, 1 / s, dtype=F64)[:, None] ** 2
                              + torch.fft.rfftfreq(s, 1 / s, dtype=F64)[None] ** 2)
    f_h = torch.fft.rfft2(f)
    f_h[0, 0] = 0
    decay = torch.exp(-nu * kappa * T)
    stokes_h = decay * torch.fft.rfft2(w0) + torch.where(
        kappa > 0, (1 - decay) / (nu * kappa.clamp_min(1e-30)), T) * f_h
    stokes = torch.fft.irfft2(stokes_h, s=(s, s))
    assert float((stokes - ref).norm() / ref.norm()) > 1e3 * 1e-6


@pytest.mark.parametrize("scheme", ["rk3", "heun", "euler"])
def test_cfl_guard_names_dt_the_velocity_bound_and_the_limit(scheme):
    """Taylor-Green vorticity of amplitude 8 pi^2 (max |u| + |v| = 2 pi): a step
    far above the advective limit must be refused with a message naming dt, the
    velocity bound and the limit (not return NaN), and the step it suggests must
    work."""
    s, nu = 16, 1e-3
    X, Y = _grid(s)
    tg = 8 * math.pi**2 * torch.sin(2 * math.pi * X) * torch.sin(2 * math.pi * Y)
    w0 = tg + 1e-3 * ns.initial_vorticity(1, s, seed=0, dtype=F64)[0]
    with pytest.raises(ValueError, match=r"dt = 0\.04 .*max\(\|u\| \+ \|v\|\) = "
                       r"6\.28.*limit") as info:
        ns.solve(w0, nu, 1.0, dt=0.04, scheme=scheme)
    safe = float(info.value.args[0].rsplit("dt <= ", 1)[1])
    assert safe * 2 * math.pi * s <= ns.CFL_LIMITS[scheme] * 1.01
    # with the default step: a finite answer or a clear error, never silent NaN
    try:
        w = ns.solve(w0, nu, 1.0, scheme=scheme)
    except ValueError as err:
        assert "dt = " in str(err) and "limit" in str(err)
    else:
        assert bool(torch.isfinite(w).all())
    if scheme == "rk3":  # RK3 is stable on the imaginary axis up to its limit
        w = ns.solve(w0, nu, 0.2, dt=0.9 * safe, record_steps=1)
        assert bool(torch.isfinite(w).all())
        # the Taylor-Green mode is a steady Euler flow: it decays viscously
        exact = math.exp(-8 * math.pi**2 * nu * 0.2) * tg
        assert float((w[0] - exact).abs().max() / exact.abs().max()) < 1e-2
