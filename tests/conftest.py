"""Shared fixtures: every engine test runs once per available backend through `device`."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import backend

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not backend.cuda_available(), reason="needs CuPy and a CUDA device"))]


@pytest.fixture(params=DEVICES)
def device(request):
    """The device string of one backend: "cpu", and "cuda" where CuPy sees a GPU."""
    return request.param


@pytest.fixture(autouse=True)
def _fresh_defaults():
    """Each test starts from the same seed, float32 default and the CPU default device."""
    tr.manual_seed(0)
    yield
    tr.set_default_dtype(np.float32)
    tr.set_default_device("cpu")


def host(x) -> np.ndarray:
    """Host NumPy values of a Tensor or backend array (for comparisons in tests; import it with
    `from conftest import host`)."""
    return x.numpy() if isinstance(x, tr.Tensor) else backend.to_numpy(x)
