r"""Where does the forward marginal become Gaussian? Dataset-level curves over
:math:`t`, their noise floors, and the characteristic step :math:`T^*(\varepsilon)`.

Every statistic compares the noised data :math:`z_t = \alpha_t z_0 + \sigma_t
\varepsilon` with **reference draws** :math:`y_t = \sqrt{\tilde v_t}\,\varepsilon'`
from the matched Gaussian (same atom counts, same sample size, zero-mean subspace),
so each has an explicit null level ("floor"); :math:`\tilde v_t = \alpha_t^2 \hat v +
\sigma_t^2` (per channel) :cite:`qu2025shortening`. All grid points are computed at
once (vectorised over :math:`t`).

* **S1, marginal** (``"marg"``; ``"marg_h"`` for types): the one-sample
  Kolmogorov–Smirnov distance :math:`\sup_u |\hat F(u) - \Phi(u)|` of all pooled
  entries :math:`z_{t,ia}/\sqrt{\tilde v_t (N_m-1)/N_m}` (the factor is the ambient
  variance of zero-mean noise).
* **S2, distances** (``"dist"``): the two-sample KS distance between the pooled
  intra-molecular distances of :math:`z_t` and of a reference draw; this statistic
  sees bond-length peaks, which the marginal cannot.
* **S3, dependency** (``"dep"``, ``"rho"``): for each molecule a random atom
  :math:`i`, its nearest neighbour :math:`j` *in* :math:`z_t` and a random axis
  :math:`a` give a pair :math:`(z_{t,ia}, z_{t,ja})`; the statistic is the KSG
  mutual information :cite:`kraskov2004mi` (``"dep"``) or the Pearson correlation
  (``"rho"``) of the :math:`M` pairs. Nearest neighbours of a Gaussian cloud are
  correlated too, so only the excess over the reference is meaningful.

For each statistic :math:`S` the **excess** is :math:`E_t = \operatorname{mean}_r
[S(z_t) - S(y_t)]` and the **band** :math:`b` is the 95 % quantile of
:math:`|S(y) - S(y')|` over pairs of independent reference draws. The
characteristic step of a curve is

.. math::
    T^*_S(\varepsilon) = \min\{ t \in G : E_u \le \varepsilon
    \ \text{for every}\ u \in G,\ u \ge t \},

the first grid step after which the curve stays below :math:`\varepsilon`
(:func:`T_star`). It grows with the sample size :math:`M` (more power) and with
:math:`\varepsilon \to 0`; it is a calibrated hyper-parameter, not a property of
the data alone.

The module also re-implements the authors' **per-molecule test** (one draw per
molecule, a KS test of its :math:`3N` standardised coordinates and a KSG
mutual-information test between coordinate columns), to show why it is weakly
informative: its KS part passes already at :math:`t = 0`, and its MI part fails
often on pure noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .reference import data_variance, reference_variance
from .schedules import NoiseSchedule
from .subspace import center, check_node_mask, sample_zero_mean_gaussian

__all__ = [
    "ks_normal",
    "ks_two_sample",
    "ksg_mutual_information",
    "random_rotations",
    "T_star",
    "GaussianityCurves",
    "CharacteristicStep",
    "characteristic_step",
    "KS_STATISTICS",
    "pointcloud_curves",
    "vector_curves",
    "covariance_mismatch_kl",
    "PerMoleculeTest",
    "per_molecule_test",
]


# --------------------------------------------------------------------- primitives
def _check_sample(name: str, x: Tensor, owner: str) -> None:
    """A real floating tensor with at least one value per row and no NaN/inf
    (a NaN would sort last and silently shift every empirical CDF)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: {name} must be a torch.Tensor, got "
                        f"{type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: {name} must be a floating-point tensor, got "
                        f"{x.dtype}")
    if x.dim() == 0 or x.shape[-1] < 1:
        raise ValueError(f"{owner} needs at least one value per row of {name}, got "
                         f"shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{owner}: {name} holds {int((~torch.isfinite(x)).sum())} "
                         "NaN or infinite value(s); expected finite samples")


def ks_normal(u: Tensor) -> Tensor:
    r"""One-sample KS statistic of each row of ``u`` (``[..., n]``) against
    :math:`\mathcal{N}(0, 1)`."""
    _check_sample("u", u, "ks_normal")
    n = u.shape[-1]
    cdf = torch.special.ndtr(u.sort(dim=-1).values.double())
    i = torch.arange(1, n + 1, dtype=torch.float64, device=u.device)
    d_plus = (i / n - cdf).amax(dim=-1)
    d_minus = (cdf - (i - 1) / n).amax(dim=-1)
    return torch.maximum(d_plus, d_minus)


def ks_two_sample(a: Tensor, b: Tensor) -> Tensor:
    r"""Two-sample KS statistic :math:`\sup_u |\hat F_a(u) - \hat F_b(u)|` row by row
    (``[..., n]`` and ``[..., m]`` with equal leading shapes).

    One sort of the merged sample: the running sum of :math:`+1/n` (from ``a``) and
    :math:`-1/m` (from ``b``) is :math:`\hat F_a - \hat F_b`, read at the last
    position of every group of tied values.
    """
    _check_sample("a", a, "ks_two_sample")
    _check_sample("b", b, "ks_two_sample")
    if a.shape[:-1] != b.shape[:-1]:
        raise ValueError(f"leading shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    n, m = a.shape[-1], b.shape[-1]
    vals, order = torch.sort(torch.cat([a, b], dim=-1), dim=-1)
    pos = torch.tensor(1.0 / n, dtype=torch.float64, device=a.device)
    neg = torch.tensor(-1.0 / m, dtype=torch.float64, device=a.device)
    step = torch.where(order < n, pos, neg)
    diff = torch.cumsum(step, dim=-1)
    last = torch.ones_like(vals, dtype=torch.bool)
    last[..., :-1] = vals[..., 1:] != vals[..., :-1]
    return torch.where(last, diff.abs(), torch.zeros_like(diff)).amax(dim=-1)


def ksg_mutual_information(
    x: Tensor,
    y: Tensor,
    k: int = 3,
    *,
    standardize: bool = True,
    clip: bool = False,
    jitter: float = 0.0,
    generator: Optional[torch.Generator] = None,
    chunk: int = 16,
) -> Tensor:
    r"""KSG estimate (algorithm 1 of :cite:`kraskov2004mi`) of :math:`I(X;Y)` in nats,
    row by row for paired samples ``x, y`` of shape ``[..., n]``.

    .. math::
        \hat I = \psi(k) + \psi(n)
            - \bigl\langle \psi(n_x + 1) + \psi(n_y + 1)\bigr\rangle,

    with :math:`\epsilon_i` the max-norm distance to the :math:`k`-th neighbour in the
    joint space and :math:`n_x` the number of other points strictly closer than
    :math:`\epsilon_i` in :math:`x` — as scikit-learn's ``mutual_info_regression``
    computes it (which also standardises, jitters by ``1e-10`` and clips at 0; the
    last two are options here).
    """
    if x.shape != y.shape:
        raise ValueError(
            f"x and y must have the same shape, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    n = x.shape[-1]
    if not isinstance(k, int) or not 1 <= k < n:
        raise ValueError(f"k must be an integer in [1, n-1={n - 1}], got {k!r}")
    lead = x.shape[:-1]
    x = x.reshape(-1, n).double()
    y = y.reshape(-1, n).double()
    if standardize:
        x = x / x.std(dim=-1, keepdim=True).clamp_min(1e-300)
        y = y / y.std(dim=-1, keepdim=True).clamp_min(1e-300)
    if jitter > 0:

        def _j(v: Tensor) -> Tensor:
            noise = torch.randn(
                v.shape,
                generator=generator,
                dtype=v.dtype,
                device=v.device if generator is None else generator.device,
            )
            return v + jitter * v.abs().mean(-1, keepdim=True).clamp_min(1) * noise.to(
                v.device
            )

        x, y = _j(x), _j(y)
    out = []
    eye = torch.eye(n, dtype=torch.bool, device=x.device)
    for start in range(0, x.shape[0], chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        dx = (xs.unsqueeze(-1) - xs.unsqueeze(-2)).abs()
        dy = (ys.unsqueeze(-1) - ys.unsqueeze(-2)).abs()
        dz = torch.maximum(dx, dy).masked_fill(eye, float("inf"))
        eps = dz.kthvalue(k, dim=-1).values.unsqueeze(-1)
        radius = torch.nextafter(eps, torch.zeros_like(eps))
        nx = (dx <= radius).sum(-1).double() - 1.0  # self is at distance 0
        ny = (dy <= radius).sum(-1).double() - 1.0
        mi = (
            torch.special.digamma(torch.tensor(float(n), dtype=torch.float64))
            + torch.special.digamma(torch.tensor(float(k), dtype=torch.float64))
            - torch.special.digamma(nx + 1).mean(-1)
            - torch.special.digamma(ny + 1).mean(-1)
        )
        out.append(mi)
    mi = torch.cat(out).reshape(lead)
    return mi.clamp_min(0.0) if clip else mi


def random_rotations(
    n: int,
    dim: int = 3,
    *,
    generator: Optional[torch.Generator] = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """``n`` uniformly random rotation matrices of SO(dim), ``[n, dim, dim]`` (Haar, by
    a sign-corrected QR decomposition of Gaussian matrices)."""
    for name, value, low in (("n", n, 0), ("dim", dim, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"random_rotations: {name} must be an integer >= {low}, "
                             f"got {value!r}")
    A = torch.randn(n, dim, dim, generator=generator, dtype=torch.float64)
    Q, R = torch.linalg.qr(A)
    Q = Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1)).unsqueeze(-2)
    flip = torch.linalg.det(Q) < 0
    Q[flip, :, 0] = -Q[flip, :, 0]
    return Q.to(dtype)


def T_star(
    curve: Tensor,
    eps: Union[float, Sequence[float], Tensor],
    ts: Optional[Sequence[int]] = None,
):
    r"""The first grid step after which ``curve`` stays at or below ``eps``.

    Args:
        curve: values on an increasing grid, ``[G]``.
        eps: tolerance :math:`\varepsilon` (a number, or several: vectorised).
        ts: the grid steps (default: the indices ``0..G-1``).

    Returns:
        The step (an ``int``), or ``None`` if the curve ends above ``eps``; a list
        of those for several tolerances.
    """
    curve = torch.as_tensor(curve, dtype=torch.float64).reshape(-1)
    if curve.numel() == 0:
        raise ValueError("curve is empty")
    if not bool(torch.isfinite(curve).all()):
        raise ValueError("curve contains NaN or infinite values")
    grid = list(range(curve.numel())) if ts is None else [int(t) for t in ts]
    if len(grid) != curve.numel():
        raise ValueError(
            f"ts has {len(grid)} steps but the curve has {curve.numel()} values"
        )
    if any(a >= b for a, b in zip(grid, grid[1:])):
        raise ValueError("ts must be strictly increasing")
    e = torch.as_tensor(eps, dtype=torch.float64)
    scalar = e.dim() == 0
    e = e.reshape(-1, 1)
    below = (curve.unsqueeze(0) <= e).int()
    stays = torch.flip(torch.cummin(torch.flip(below, [-1]), dim=-1).values, [-1])
    out = []
    for row in stays:
        idx = row.nonzero().flatten()
        out.append(grid[int(idx[0])] if idx.numel() else None)
    return out[0] if scalar else out


# ------------------------------------------------------------------------ curves
@dataclass
class GaussianityCurves:
    """Gaussianity statistics on a grid of steps.

    Attributes:
        ts: the grid (integer steps, increasing).
        T: the number of steps of the schedule.
        value, null, null2: per statistic, ``[R, G]`` values on the data, on a
            reference draw and on a second, independent reference draw.
        info: sample sizes and the variances used.
    """

    ts: list[int]
    T: int
    value: dict[str, Tensor] = field(default_factory=dict)
    null: dict[str, Tensor] = field(default_factory=dict)
    null2: dict[str, Tensor] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.value)

    @property
    def tau(self) -> Tensor:
        """The grid as :math:`t/T`."""
        return torch.tensor(self.ts, dtype=torch.float64) / self.T

    def _check(self, name: str) -> None:
        if name not in self.value:
            raise KeyError(f"unknown statistic {name!r}; available: {self.names}")

    def curve(self, name: str) -> Tensor:
        """Mean statistic on the data, ``[G]``."""
        self._check(name)
        return self.value[name].mean(0)

    def floor(self, name: str) -> Tensor:
        """Mean statistic on the reference, ``[G]``."""
        self._check(name)
        return self.null[name].mean(0)

    def excess(self, name: str) -> Tensor:
        r""":math:`E_t = \operatorname{mean}_r [S(z_t) - S(y_t)]`, ``[G]``."""
        self._check(name)
        return (self.value[name] - self.null[name]).mean(0)

    def band(self, name: str, q: float = 0.95) -> float:
        """The ``q``-quantile of ``|S(y) - S(y')|`` over all grid points and repeats,
        divided by :math:`\\sqrt{R}` because the excess is a mean over ``R`` repeats."""
        self._check(name)
        diff = (self.null[name] - self.null2[name]).abs().flatten()
        R = self.value[name].shape[0]
        return float(torch.quantile(diff, q)) / math.sqrt(R)

    def t_star(self, name: str, eps: Optional[Union[float, Sequence[float]]] = None):
        """:func:`T_star` of the excess; ``eps`` defaults to the band."""
        eps = self.band(name) if eps is None else eps
        return T_star(self.excess(name), eps, self.ts)


#: Statistics that are Kolmogorov–Smirnov distances (values in [0, 1] with a common
#: scale), the only ones for which an absolute tolerance is meaningful; the
#: correlation and mutual-information excesses ("rho", "dep") are on other scales and
#: take tolerances in bands only.
KS_STATISTICS = ("marg", "marg_h", "dist")

#: The statistics of the default rule: S1 (positions, types), S2 and the
#: lower-variance companion of S3 (spec §5.4).
DEFAULT_RULE_STATISTICS = ("marg", "marg_h", "dist", "rho")


@dataclass
class CharacteristicStep:
    r"""The measured characteristic step :math:`T^* = \max_S T^*_S(k\,b_S)`.

    Attributes:
        t_star: the step (on the curves' grid); ``T`` when some statistic never
            stays within its tolerance on the grid (no truncation is supported).
        bands: :math:`k`, the tolerance in units of each statistic's band.
        per_statistic: :math:`T^*_S` per statistic (``None``: never within).
        eps: the tolerance :math:`k\,b_S` per statistic.
        T: the schedule length.
        limiting: the statistic(s) that set :math:`T^*`.
    """

    t_star: int
    bands: float
    per_statistic: dict[str, Optional[int]]
    eps: dict[str, float]
    T: int

    @property
    def fraction(self) -> float:
        return self.t_star / self.T

    @property
    def limiting(self) -> list[str]:
        return [
            k for k, v in self.per_statistic.items() if v is None or v == self.t_star
        ]

    def __str__(self) -> str:
        parts = ", ".join(
            f"{k} {'—' if v is None else f'{v / self.T:.2f}T'}"
            for k, v in self.per_statistic.items()
        )
        return (
            f"T* = {self.t_star} ({self.fraction:.2f} T) at {self.bands:g} bands "
            f"[{parts}]"
        )


def characteristic_step(
    curves: GaussianityCurves,
    statistics: Optional[Sequence[str]] = None,
    bands: float = 2.0,
) -> CharacteristicStep:
    r"""The rule of spec §5.4: :math:`T^* = \max_S T^*_S(\varepsilon_S)` with
    :math:`\varepsilon_S = k\, b_S` (``bands`` = :math:`k` times the statistic's own
    noise band).

    At :math:`k = 1` a curve that has reached its floor still crosses the band at
    about 5 % of the later grid points by construction (the band is a 95 %
    quantile), so :math:`T^*_S(b)` is set by the last chance crossing; :math:`k = 2`
    is the default of this package and the sensitivity to :math:`k` should be
    shown beside it.

    Args:
        curves: Gaussianity curves of one dataset.
        statistics: the statistics that enter the maximum (default: those of
            :data:`DEFAULT_RULE_STATISTICS` present in ``curves``).
        bands: :math:`k > 0`.
    """
    if not (isinstance(bands, (int, float)) and math.isfinite(bands) and bands > 0):
        raise ValueError(f"bands must be a positive number, got {bands!r}")
    if statistics is None:
        statistics = [s for s in DEFAULT_RULE_STATISTICS if s in curves.value]
    statistics = list(statistics)
    if not statistics:
        raise ValueError(
            f"no statistic to combine; the curves have {curves.names}"
        )
    per, eps = {}, {}
    for name in statistics:
        eps[name] = bands * curves.band(name)
        per[name] = curves.t_star(name, eps[name])
    t = curves.T if any(v is None for v in per.values()) else max(per.values())
    return CharacteristicStep(
        t_star=int(t), bands=float(bands), per_statistic=per, eps=eps, T=curves.T
    )


def _check_grid(ts: Sequence[int], T: int) -> list[int]:
    ts = [int(t) for t in ts]
    if not ts:
        raise ValueError("the grid of steps is empty")
    if any(a >= b for a, b in zip(ts, ts[1:])) or ts[0] < 0 or ts[-1] > T:
        raise ValueError(
            f"grid steps must increase strictly within [0, T={T}], got {ts}"
        )
    return ts


def _pair_corr(a: Tensor, b: Tensor) -> Tensor:
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-300)


def pointcloud_curves(
    x0: Tensor,
    node_mask: Tensor,
    schedule: NoiseSchedule,
    ts: Sequence[int],
    *,
    h0: Optional[Tensor] = None,
    v_hat: Optional[Union[float, Sequence[float]]] = None,
    repeats: int = 3,
    k: int = 3,
    rotate: bool = True,
    generator: Optional[torch.Generator] = None,
    statistics: Sequence[str] = ("marg", "dist", "dep", "rho"),
) -> GaussianityCurves:
    r"""Dataset-level Gaussianity curves of point clouds (molecules) over ``ts``.

    Args:
        x0: coordinates ``[M, N, D]`` (centred per molecule here).
        node_mask: ``[M, N, 1]`` (at least 2 atoms per cloud).
        schedule: the noise schedule (only :math:`\alpha_t` enters).
        ts: increasing grid of steps.
        h0: optional preprocessed type features ``[M, N, K]`` (adds ``"marg_h"``).
        v_hat: data variance(s) ``v_x`` or ``(v_x, v_h)``; default: the
            ``"unbiased_subspace"`` estimate per channel.
        repeats: independent repetitions :math:`R`.
        k: neighbours of the KSG estimator.
        rotate: apply an independent uniform random rotation per molecule first
            (per-axis statistics need it: QM9 geometries are not randomly oriented).
        generator: seeded CPU generator.
        statistics: which of ``"marg"``, ``"dist"``, ``"dep"``, ``"rho"`` to compute.
    """
    unknown = set(statistics) - {"marg", "dist", "dep", "rho"}
    if unknown:
        raise ValueError(
            f"unknown statistics {sorted(unknown)}; valid: marg, dist, dep, rho"
        )
    n_atoms = check_node_mask(node_mask, x0, min_atoms=2)
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 contains NaN or infinite coordinates")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    ts = _check_grid(ts, schedule.T)
    M, N, D = x0.shape
    dev = x0.device
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    mask = node_mask.double()
    x = center(x0.double() * mask, mask)
    if rotate:
        Rm = random_rotations(M, D, generator=gen).to(dev)
        x = torch.einsum("mnd,med->mne", x, Rm) * mask
    vv = (
        None
        if v_hat is None
        else torch.as_tensor(v_hat, dtype=torch.float64).reshape(-1)
    )
    v_x = float(vv[0]) if vv is not None else float(data_variance(x, mask))
    t_idx = torch.tensor(ts, device=schedule.gamma_table.device)
    alpha = schedule.alpha(t_idx).to(dev)
    sigma = schedule.sigma(t_idx).to(dev)
    vt_x = reference_variance(schedule, t_idx, v_x).to(dev)
    G = len(ts)
    real = mask[..., 0] > 0
    ambient = ((n_atoms - 1) / n_atoms).double().to(dev)  # [M]
    amb_atoms = ambient.unsqueeze(1).expand(M, N)[real]  # [n_real]
    iu = torch.triu_indices(N, N, offset=1, device=dev)
    pair_ok = real[:, iu[0]] & real[:, iu[1]]  # [M, P_all]
    mol_i, pair_k = pair_ok.nonzero(as_tuple=True)
    atom_i, atom_j = iu[0][pair_k], iu[1][pair_k]

    def draw_ref(var: Tensor, shape_d: int) -> Tensor:
        eps = sample_zero_mean_gaussian(
            (G * M, N, shape_d),
            mask.repeat(G, 1, 1),
            generator=gen if dev.type == "cpu" else None,
            dtype=torch.float64,
        )
        return eps.view(G, M, N, shape_d) * var.sqrt().view(G, 1, 1, 1)

    def noised(z0: Tensor) -> Tensor:
        eps = sample_zero_mean_gaussian(
            (G * M, N, z0.shape[-1]),
            mask.repeat(G, 1, 1),
            generator=gen if dev.type == "cpu" else None,
            dtype=torch.float64,
        ).view(G, M, N, -1)
        return alpha.view(G, 1, 1, 1) * z0.unsqueeze(0) + sigma.view(G, 1, 1, 1) * eps

    def marg(z: Tensor, var: Tensor) -> Tensor:
        u = z[:, real] / (var.view(G, 1, 1) * amb_atoms.view(1, -1, 1)).sqrt()
        return ks_normal(u.reshape(G, -1))

    def dists(z: Tensor, var: Tensor) -> Tensor:
        d = (z[:, mol_i, atom_i] - z[:, mol_i, atom_j]).norm(dim=-1)
        # float32 halves the cost of sorting the large pools; KS needs no more.
        return (d / var.sqrt().view(G, 1)).float()

    def nn_pairs(z: Tensor, i: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        ar = torch.arange(M, device=dev)
        zi = z[:, ar, i]  # [G, M, D]
        d = (z - zi.unsqueeze(2)).norm(dim=-1)  # [G, M, N]
        d = d.masked_fill(~real.unsqueeze(0), float("inf"))
        d[:, ar, i] = float("inf")
        j = d.argmin(dim=-1)  # [G, M]
        zj = torch.gather(z, 2, j.view(G, M, 1, 1).expand(G, M, 1, D)).squeeze(2)
        ax = a.view(1, M, 1).expand(G, M, 1)
        return torch.gather(zi, 2, ax).squeeze(-1), torch.gather(zj, 2, ax).squeeze(-1)

    names = list(statistics)
    if h0 is not None:
        names.append("marg_h")
        check_node_mask(node_mask, h0)
        h = center(h0.double() * mask, mask)
        v_h = (
            float(vv[-1])
            if vv is not None and vv.numel() > 1
            else float(data_variance(h, mask))
        )
        vt_h = reference_variance(schedule, t_idx, v_h).to(dev)
    res = {n: ([], [], []) for n in names}
    for _ in range(repeats):
        zt = noised(x)
        y1, y2, w = (draw_ref(vt_x, D) for _ in range(3))
        if "marg" in names:
            for lst, z in zip(res["marg"], (zt, y1, y2)):
                lst.append(marg(z, vt_x))
        if "dist" in names:
            dw = dists(w, vt_x)
            for lst, z in zip(res["dist"], (zt, y1, y2)):
                lst.append(ks_two_sample(dists(z, vt_x), dw))
        if "dep" in names or "rho" in names:
            pick = torch.rand(M, generator=gen).to(dev)
            i = (pick * n_atoms.to(dev)).long().clamp_max(N - 1)
            a = torch.randint(0, D, (M,), generator=gen).to(dev)
            for idx, z in enumerate((zt, y1, y2)):
                p, q = nn_pairs(z, i, a)
                if "dep" in names:
                    res["dep"][idx].append(ksg_mutual_information(p, q, k))
                if "rho" in names:
                    res["rho"][idx].append(_pair_corr(p, q))
        if h0 is not None:
            ht = noised(h)
            K = h.shape[-1]
            for lst, z in zip(
                res["marg_h"], (ht, draw_ref(vt_h, K), draw_ref(vt_h, K))
            ):
                lst.append(marg(z, vt_h))
    out = GaussianityCurves(
        ts=ts,
        T=schedule.T,
        info=dict(
            M=M,
            mean_atoms=float(n_atoms.double().mean()),
            v_x=v_x,
            repeats=repeats,
            k=k,
            rotate=rotate,
        ),
    )
    if h0 is not None:
        out.info["v_h"] = v_h
    for n in names:
        out.value[n], out.null[n], out.null2[n] = (torch.stack(v).cpu() for v in res[n])
    return out


def vector_curves(
    X: Tensor,
    schedule: NoiseSchedule,
    ts: Sequence[int],
    *,
    pairs: Optional[Tensor] = None,
    v_hat: Optional[float] = None,
    repeats: int = 3,
    k: int = 3,
    center: str = "global",
    generator: Optional[torch.Generator] = None,
) -> GaussianityCurves:
    r"""Gaussianity curves of vector data (e.g. images as 64-vectors).

    The data are centred with the global (scalar) mean, as an image diffusion model
    sees them (``center="feature"`` removes the mean image instead); :math:`\hat v`
    is the mean squared entry; the reference is :math:`\mathcal{N}(0, \tilde v_t I)`.
    Statistics: ``"marg"`` (S1) and, when ``pairs`` (``[P, 2]`` feature indices, e.g.
    horizontally adjacent pixels) is given, ``"dep"``/``"rho"`` on one random pair
    per sample (S3).
    """
    if X.dim() != 2 or X.shape[0] < 3:
        raise ValueError(f"X must have shape [M >= 3, d], got {tuple(X.shape)}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError("X contains NaN or infinite values")
    ts = _check_grid(ts, schedule.T)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    M, d = X.shape
    if center not in ("global", "feature"):
        raise ValueError(f"center must be 'global' or 'feature', got {center!r}")
    Xc = (X - (X.mean() if center == "global" else X.mean(0))).double()
    v = float(Xc.pow(2).mean()) if v_hat is None else float(v_hat)
    t_idx = torch.tensor(ts)
    G = len(ts)
    alpha, sigma = schedule.alpha(t_idx).cpu(), schedule.sigma(t_idx).cpu()
    vt = reference_variance(schedule, t_idx, v).cpu()
    names = ["marg"] + (["dep", "rho"] if pairs is not None else [])
    if pairs is not None:
        pairs = torch.as_tensor(pairs).long()
        if pairs.dim() != 2 or pairs.shape[1] != 2 or int(pairs.max()) >= d:
            raise ValueError("pairs must be a [P, 2] tensor of feature indices")
    res = {n: ([], [], []) for n in names}
    Xc = Xc.cpu()
    for _ in range(repeats):
        zt = alpha.view(G, 1, 1) * Xc + sigma.view(G, 1, 1) * torch.randn(
            G, M, d, generator=gen, dtype=torch.float64
        )
        refs = [
            vt.sqrt().view(G, 1, 1)
            * torch.randn(G, M, d, generator=gen, dtype=torch.float64)
            for _ in range(2)
        ]
        for idx, z in enumerate([zt] + refs):
            res["marg"][idx].append(
                ks_normal((z / vt.sqrt().view(G, 1, 1)).reshape(G, -1))
            )
        if pairs is not None:
            sel = pairs[torch.randint(0, pairs.shape[0], (M,), generator=gen)]
            ar = torch.arange(M)
            for idx, z in enumerate([zt] + refs):
                p, q = z[:, ar, sel[:, 0]], z[:, ar, sel[:, 1]]
                res["dep"][idx].append(ksg_mutual_information(p, q, k))
                res["rho"][idx].append(_pair_corr(p, q))
    out = GaussianityCurves(
        ts=ts, T=schedule.T, info=dict(M=M, d=d, v=v, repeats=repeats)
    )
    for n in names:
        out.value[n], out.null[n], out.null2[n] = (torch.stack(v_) for v_ in res[n])
    return out


def covariance_mismatch_kl(
    eigvals: Tensor, schedule: NoiseSchedule, ts: Sequence[int]
) -> Tensor:
    r"""Closed-form :math:`\mathrm{KL}(\mathcal{N}(0,\Sigma_t)\,\|\,\mathcal{N}(0,
    \tilde v_t I))` for :math:`\Sigma_t = \alpha_t^2 \Sigma_0 + \sigma_t^2 I`:

    .. math::
        \tfrac12 \sum_i \bigl[r_i - 1 - \log r_i\bigr], \qquad
        r_i = \frac{\alpha_t^2\lambda_i + \sigma_t^2}
                   {\alpha_t^2\bar\lambda + \sigma_t^2},

    with :math:`\lambda_i` the eigenvalues of :math:`\Sigma_0` (``[..., d]``) — the
    covariance-mismatch part of the distance to the isotropic reference.
    Returns ``[..., G]``.
    """
    lam = torch.as_tensor(eigvals, dtype=torch.float64)
    if bool((lam < -1e-12).any()):
        raise ValueError("eigenvalues of a covariance must be non-negative")
    t_idx = torch.tensor(_check_grid(ts, schedule.T))
    a2 = schedule.alpha2(t_idx).cpu()
    s2 = schedule.sigma2(t_idx).cpu()
    lam = lam.clamp_min(0).unsqueeze(-1)  # [..., d, 1]
    r = (a2 * lam + s2) / (a2 * lam.mean(-2, keepdim=True) + s2)
    return 0.5 * (r - 1 - torch.log(r)).sum(-2)


# ------------------------------------------------------ the authors' per-molecule test
@dataclass
class PerMoleculeTest:
    """Result of :func:`per_molecule_test`.

    Attributes:
        ts: grid; pass_ks, pass_mi, passed: ``[G, M']`` booleans for the ``M'``
        molecules with at least ``min_atoms`` atoms; earliest: per molecule, the first
        grid step with passes at two consecutive grid points (``-1``: never).
    """

    ts: list[int]
    pass_ks: Tensor
    pass_mi: Tensor
    passed: Tensor
    earliest: Tensor

    def pass_rate(self, which: str = "passed") -> Tensor:
        return getattr(self, which).double().mean(dim=1)

    def mean_earliest(self) -> float:
        """Mean earliest step over the molecules that pass at all (the authors'
        rule)."""
        ok = self.earliest >= 0
        return (
            float(self.earliest[ok].double().mean()) if bool(ok.any()) else float("nan")
        )


def per_molecule_test(
    x0: Tensor,
    node_mask: Tensor,
    schedule: NoiseSchedule,
    ts: Sequence[int],
    v_x: float,
    *,
    reference: bool = False,
    alpha_level: float = 0.05,
    mi_threshold: float = 0.1,
    k: int = 2,
    min_atoms: int = 4,
    generator: Optional[torch.Generator] = None,
) -> PerMoleculeTest:
    r"""The authors' per-molecule Gaussianity test of the coordinates, re-implemented.

    Per molecule and grid step: one draw :math:`z_t`, standardised by
    :math:`\sqrt{\alpha_t^2 v_x + \sigma_t^2}`; **KS**: the :math:`3N` numbers against
    :math:`\mathcal{N}(0,1)`, pass if :math:`p > 0.05`; **MI**: the mean KSG estimate
    (``k = 2``, clipped at 0 as scikit-learn does) over :math:`2N` random pairs of
    distinct coordinate columns (each :math:`N` samples), pass if below 0.1. The
    row-wise MI of the released code (pairs of 3 samples, always 0) is omitted. With
    ``reference=True`` the molecule is replaced by a pure draw of the matched Gaussian,
    which shows the test's false-failure rate.
    """
    from scipy.stats import kstwo

    n_atoms = check_node_mask(node_mask, x0, min_atoms=1)
    ts = _check_grid(ts, schedule.T)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    mask = node_mask.double().cpu()
    keep = n_atoms.cpu() >= min_atoms
    if not bool(keep.any()):
        raise ValueError(f"no molecule has at least {min_atoms} atoms")
    x = center(x0.double().cpu() * mask, mask)[keep]
    mask, n_atoms = mask[keep], n_atoms.cpu()[keep].long()
    M, N, D = x.shape
    G = len(ts)
    t_idx = torch.tensor(ts)
    a, s = schedule.alpha(t_idx).cpu(), schedule.sigma(t_idx).cpu()
    vt = a.pow(2) * v_x + s.pow(2)
    pass_ks = torch.zeros(G, M, dtype=torch.bool)
    pass_mi = torch.zeros(G, M, dtype=torch.bool)
    for n in n_atoms.unique().tolist():
        sel = (n_atoms == n).nonzero().flatten()
        xm = x[sel, :n]  # [m, n, D]
        m = xm.shape[0]
        eps = torch.randn(G, m, n, D, generator=gen, dtype=torch.float64)
        eps = eps - eps.mean(dim=2, keepdim=True)
        if reference:
            z = vt.sqrt().view(G, 1, 1, 1) * eps
        else:
            z = a.view(G, 1, 1, 1) * xm + s.view(G, 1, 1, 1) * eps
        u = z / vt.sqrt().view(G, 1, 1, 1)
        d = ks_normal(u.reshape(G, m, n * D))
        p = torch.as_tensor(kstwo.sf(d.numpy(), n * D))
        pass_ks[:, sel] = p > alpha_level
        cols = torch.randint(0, D, (G, m, 2 * n, 2), generator=gen)
        same = cols[..., 0] == cols[..., 1]
        cols[..., 1] = torch.where(same, (cols[..., 1] + 1) % D, cols[..., 1])
        zc = u.transpose(-1, -2)  # [G, m, D, n]
        ca = torch.gather(zc, 2, cols[..., 0].unsqueeze(-1).expand(G, m, 2 * n, n))
        cb = torch.gather(zc, 2, cols[..., 1].unsqueeze(-1).expand(G, m, 2 * n, n))
        mi = ksg_mutual_information(ca, cb, k, clip=True, chunk=4096).mean(-1)
        pass_mi[:, sel] = mi < mi_threshold
    passed = pass_ks & pass_mi
    both = passed[:-1] & passed[1:]
    earliest = torch.full((M,), -1, dtype=torch.long)
    has = both.any(dim=0)
    first = both.int().argmax(dim=0)
    earliest[has] = t_idx[first[has]]
    return PerMoleculeTest(
        ts=ts, pass_ks=pass_ks, pass_mi=pass_mi, passed=passed, earliest=earliest
    )
