"""Parameter initialisers, in place (their names end in _ as in PyTorch's torch.nn.init).

Random values are drawn on the host from the seeded generator (tr.manual_seed) in float64 and
then cast and moved, so a seed gives the same weights on every backend and dtype.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["uniform_", "normal_", "zeros_", "ones_", "constant_", "xavier_uniform_", "orthogonal_",
           "spectral_radius", "scale_spectral_radius_", "forget_gate_bias_"]


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t.data = backend.to_device(np.asarray(values, dtype=np.float64).astype(t.dtype), t.device)
    return t


def _rng():
    return backend.random_state("cpu")


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with samples of U(a, b)."""
    return _fill(t, _rng().uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with samples of N(mean, std^2)."""
    return _fill(t, _rng().normal(mean, std, t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    return _fill(t, np.full(t.shape, value))


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    if t.ndim < 2:
        raise ValueError(f"xavier_uniform_: needs a tensor of at least 2 dimensions, got shape {t.shape}")
    fan_out, fan_in = t.shape[0], int(np.prod(t.shape[1:]))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def orthogonal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et al., 2013),
    signs fixed so the distribution is uniform (Haar)."""
    if t.ndim != 2:
        raise ValueError(f"orthogonal_: needs a 2-D tensor, got shape {t.shape}")
    rows, cols = t.shape
    a = _rng().standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return _fill(t, gain * (q if rows >= cols else q.T))


def spectral_radius(matrix) -> float:
    """max |eigenvalue| of a square matrix (Tensor or array)."""
    m = matrix.numpy() if isinstance(matrix, Tensor) else backend.to_numpy(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"spectral_radius: needs a square matrix, got shape {m.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(m.astype(np.float64)))))


def scale_spectral_radius_(t: Tensor, radius: float) -> Tensor:
    """Rescale a square recurrent matrix so that its spectral radius equals `radius`."""
    current = spectral_radius(t)
    if current == 0:
        raise ValueError("scale_spectral_radius_: the matrix has spectral radius 0 and cannot be rescaled")
    return _fill(t, t.numpy().astype(np.float64) * (radius / current))


def forget_gate_bias_(lstm, value: float = 1.0) -> None:
    """Set every LSTM forget-gate bias to `value` (Gers et al., 2000; Jozefowicz et al., 2015):
    the f slice (rows H..2H, gate order i, f, g, o) of bias_ih is set to value, of bias_hh to 0."""
    found = False
    for name, p in lstm.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith(("bias_ih", "bias_hh")):
            hidden = p.shape[0] // 4
            values = p.numpy().astype(np.float64)
            values[hidden:2 * hidden] = value if leaf.startswith("bias_ih") else 0.0
            _fill(p, values)
            found = True
    if not found:
        raise ValueError("forget_gate_bias_: the module has no LSTM biases (bias_ih*/bias_hh*); was it built with bias=False?")
