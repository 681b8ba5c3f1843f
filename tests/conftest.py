"""Shared fixtures: every device-placement test runs on the CPU and, where one is
present, on the CUDA device."""

import pytest
import torch

# Unit tests use tiny tensors: extra intra-op threads only contend for the cores.
torch.set_num_threads(1)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seeded():
    """Each test starts from the same global RNG state, so tests repeat exactly."""
    torch.manual_seed(0)
    yield
