"""Parameter initialisers, in place (their names end in _ as in PyTorch's torch.nn.init).

Random values are drawn on the host from the seeded generator (tr.manual_seed) in float64 and
then cast and moved, so a seed gives the same weights on every backend and dtype.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["uniform_", "normal_", "zeros_", "ones_", "constant_", "calculate_gain", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "spectral_radius",
           "scale_spectral_radius_", "forget_gate_bias_"]


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t.data = backend.to_device(np.asarray(values, dtype=np.float64).astype(t.dtype), t.device)
    return t


def _rng():
    return backend.random_state()


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


def calculate_gain(nonlinearity: str, param: float = None) -> float:
    """The gain PyTorch recommends for a nonlinearity: 1 (linear, sigmoid), 5/3 (tanh),
    sqrt(2) (relu), sqrt(2 / (1 + slope^2)) (leaky_relu, slope `param`, default 0.01), 3/4 (selu)."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; use linear, sigmoid, tanh, "
                     "relu, leaky_relu or selu")


def _fans(t: Tensor, op: str) -> tuple:
    """(fan_in, fan_out) as PyTorch counts them: shape[1] and shape[0], times the receptive field
    prod(shape[2:]) of a convolution-shaped tensor."""
    if t.ndim < 2:
        raise ValueError(f"{op}: needs a tensor of at least 2 dimensions, got shape {t.shape}")
    receptive = int(np.prod(t.shape[2:]))
    return t.shape[1] * receptive, t.shape[0] * receptive


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _fans(t, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _fans(t, "xavier_normal_")
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str, op: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(t, op)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan) (He et al., 2015; PyTorch's defaults: a
    leaky_relu of slope a = 0, i.e. gain sqrt(2), and fan = fan_in)."""
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, s^2) with s = gain / sqrt(fan) (He et al., 2015; defaults as kaiming_uniform_)."""
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_"))


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


def forget_gate_bias_(model, value: float = 1.0) -> None:
    """Set every LSTM forget-gate bias of `model` (an nn.LSTM, an nn.LSTMCell, or a model holding
    them) to `value` (Gers et al., 2000; Jozefowicz et al., 2015): the f slice (rows H..2H, gate
    order i, f, g, o) of bias_ih is set to value, of bias_hh to 0. Other layers are left alone,
    and a model without an LSTM is refused (a GRU's rows H..2H are its update gate)."""
    from .cells import LSTMCell
    from .rnn import LSTM

    lstms = [m for _, m in model.named_modules() if isinstance(m, (LSTM, LSTMCell))]
    if not lstms:
        raise ValueError(f"forget_gate_bias_: {type(model).__name__} has no nn.LSTM or nn.LSTMCell; only the "
                         "LSTM has a forget gate")
    found = False
    for lstm in lstms:
        for name, p in vars(lstm).items():
            if isinstance(p, Tensor) and name.startswith(("bias_ih", "bias_hh")):
                hidden = p.shape[0] // 4
                values = p.numpy().astype(np.float64)
                values[hidden:2 * hidden] = value if name.startswith("bias_ih") else 0.0
                _fill(p, values)
                found = True
    if not found:
        raise ValueError("forget_gate_bias_: the LSTM has no biases (bias_ih*/bias_hh*); was it built with bias=False?")
