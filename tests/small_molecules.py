"""Hand-checked small molecules and a tiny SchNet shared by the molecule and RISE
tests (importable because ``tests/`` holds the root ``conftest.py``)."""

import torch

from refimpl.molecules.schnet import SchNetRegressor

# MMFF-optimised geometries (RDKit, seed 0), in Å:
# methane, water, ethanol, acetaldehyde, methylamine.
MOLECULES = [
    ([6, 1, 1, 1, 1],
     [(0.0, 0.0, 0.0), (0.531, 0.747, -0.594), (0.719, -0.586, 0.577),
      (-0.559, -0.662, -0.664), (-0.691, 0.501, 0.681)]),
    ([8, 1, 1], [(0.0, 0.398, 0.0), (-0.763, -0.199, 0.0), (0.764, -0.198, 0.0)]),
    ([6, 6, 8, 1, 1, 1, 1, 1, 1],
     [(0.901, -0.075, 0.014), (-0.584, -0.368, 0.056), (-1.306, 0.822, 0.340),
      (1.237, 0.351, 0.966), (1.128, 0.663, -0.762), (1.472, -0.985, -0.187),
      (-0.809, -1.098, 0.839), (-0.932, -0.770, -0.900), (-1.107, 1.461, -0.366)]),
    ([6, 6, 8, 1, 1, 1, 1],
     [(-0.638, -0.101, 0.082), (0.830, 0.127, -0.111), (1.470, 0.970, 0.509),
      (-1.027, 0.583, 0.839), (-1.154, 0.073, -0.865), (-0.800, -1.132, 0.405),
      (1.318, -0.519, -0.860)]),
    ([6, 7, 1, 1, 1, 1, 1],
     [(-0.568, 0.086, -0.008), (0.826, -0.060, 0.371), (-0.695, -0.087, -1.081),
      (-0.920, 1.094, 0.229), (-1.186, -0.632, 0.538), (1.150, -0.993, 0.118),
      (1.394, 0.593, -0.167)]),
]


def batch_of(indices, dtype=torch.float64, device="cpu"):
    """Flat ``(z, pos, batch)`` of the molecules ``MOLECULES[i]`` for ``i`` in ``indices``."""
    zs, ps, bs = [], [], []
    for g, i in enumerate(indices):
        z, p = MOLECULES[i]
        zs.append(torch.tensor(z))
        ps.append(torch.tensor(p, dtype=dtype))
        bs.append(torch.full((len(z),), g))
    return (torch.cat(zs).to(device), torch.cat(ps).to(device),
            torch.cat(bs).to(device))


def tiny_model(dtype=torch.float64, **kw):
    """A seeded 2-interaction SchNet with 8 channels and a 5 Å cutoff, in eval mode."""
    torch.manual_seed(0)
    kw = dict(dict(hidden_channels=8, num_filters=8, num_interactions=2,
                   num_gaussians=6, cutoff=5.0), **kw)
    return SchNetRegressor(**kw).to(dtype).eval()
