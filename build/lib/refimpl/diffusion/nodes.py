r"""The distribution of atom counts :math:`p(N)` used to start sampling.

EDM :cite:`hoogeboom2022edm` draws the number of atoms of each generated molecule
from the histogram of the training set and then samples :math:`p(z \mid N)`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["NodeCountDistribution"]


class NodeCountDistribution(nn.Module):
    """A categorical distribution over atom counts, fitted to a training set.

    Args:
        num_atoms: atom counts of the training molecules (1-D integer tensor).
    """

    def __init__(self, num_atoms: Tensor):
        super().__init__()
        num_atoms = torch.as_tensor(num_atoms)
        if (
            num_atoms.dim() != 1
            or num_atoms.numel() == 0
            or num_atoms.is_floating_point()
        ):
            raise ValueError("num_atoms must be a non-empty 1-D integer tensor")
        if int(num_atoms.min()) < 1:
            raise ValueError("atom counts must be positive")
        counts = torch.bincount(num_atoms.long().cpu())
        self.register_buffer("counts", counts.double())

    @property
    def probs(self) -> Tensor:
        return self.counts / self.counts.sum()

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` atom counts (``LongTensor [n]`` on the buffer's device)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        return torch.multinomial(self.probs, n, replacement=True, generator=generator)

    def extra_repr(self) -> str:
        support = (self.counts > 0).nonzero().flatten().tolist()
        return (
            f"support={support[0]}..{support[-1]}, molecules={int(self.counts.sum())}"
        )
