"""Recurrent cells: one time step of a vanilla RNN, an LSTM and a GRU, as in PyTorch.

Each step is written twice. The composite form below builds it from elementary ops, every gate a
separately named node of the graph (for learning and drawing); the fused form (fused.py) is one
node with a hand-derived backward (for speed). Both compute the same numbers.

Shapes: B batch, I input features, H hidden units. Gate order and parameter shapes are
PyTorch's: weight_ih (G*H, I), weight_hh (G*H, H), bias_ih and bias_hh (G*H,), with G = 1 (RNN),
4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n).
"""
from __future__ import annotations

import math

from .. import fused
from ..factories import zeros
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["rnn_cell", "lstm_cell", "gru_cell", "RNNCell", "LSTMCell", "GRUCell", "NONLINEARITIES",
           "check_like_parameters"]

NONLINEARITIES = ("tanh", "relu")


def check_like_parameters(module: str, label: str, t: Tensor, parameter: Tensor) -> None:
    """Raise unless `t` (an input or a given state, named `label`) has the dtype and device of the
    module's parameters: the fused forms compute on the arrays, where NumPy would promote or demote
    silently."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{module}: {label} must be a Tensor, got {type(t).__name__}")
    if t.dtype != parameter.dtype:
        raise TypeError(f"{module}: {label} is {t.dtype} but the parameters are {parameter.dtype}; convert it "
                        f"with .astype('{parameter.dtype}') or the model with .to(dtype=...)")
    if t.device != parameter.device:
        raise RuntimeError(f"{module}: {label} is on {t.device} but the parameters are on {parameter.device}; "
                           "move one with .to(device)")


def _named(t: Tensor, name: str) -> Tensor:
    t.name = name
    return t


def _affine(x, w_ih, h, w_hh, b_ih, b_hh) -> Tensor:
    """x W_ih^T + b_ih + h W_hh^T + b_hh (biases optional)."""
    a = x @ w_ih.T
    if b_ih is not None:
        a = a + b_ih
    a = a + h @ w_hh.T
    return a + b_hh if b_hh is not None else a


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity: str = "tanh") -> Tensor:
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu.  x: (B, I), h: (B, H)."""
    pre = _affine(x, w_ih, h, w_hh, b_ih, b_hh)
    return _named(pre.tanh() if nonlinearity == "tanh" else pre.relu(), "h")


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple:
    """(h', c') of one LSTM step.  x: (B, I); h, c: (B, H).

    i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o), where
    [a_i, a_f, a_g, a_o] = x W_ih^T + b_ih + h W_hh^T + b_hh;
    c' = f * c + i * g;  h' = o * tanh(c')
    """
    a_i, a_f, a_g, a_o = _affine(x, w_ih, h, w_hh, b_ih, b_hh).chunk(4, axis=-1)
    i, f = _named(a_i.sigmoid(), "i"), _named(a_f.sigmoid(), "f")
    g, o = _named(a_g.tanh(), "g"), _named(a_o.sigmoid(), "o")
    c_new = _named(f * c + i * g, "c")
    return _named(o * c_new.tanh(), "h"), c_new


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """h' of one GRU step.  x: (B, I); h: (B, H).

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr);  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h' = (1 - z) * n + z * h
    """
    gi = x @ w_ih.T if b_ih is None else x @ w_ih.T + b_ih
    gh = h @ w_hh.T if b_hh is None else h @ w_hh.T + b_hh
    i_r, i_z, i_n = gi.chunk(3, axis=-1)
    h_r, h_z, h_n = gh.chunk(3, axis=-1)
    r, z = _named((i_r + h_r).sigmoid(), "r"), _named((i_z + h_z).sigmoid(), "z")
    n = _named((i_n + r * h_n).tanh(), "n")
    return _named((1 - z) * n + z * h, "h")


class _Cell(Module):
    """Parameters, checks and the fused/composite switch shared by the three cells."""
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, fused: bool = True,
                 dtype=None, device=None):
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"{type(self).__name__}: input_size and hidden_size must be positive, "
                             f"got {input_size} and {hidden_size}")
        self.input_size, self.hidden_size, self.bias, self.fused = input_size, hidden_size, bias, fused
        rows, bound = self.gates * hidden_size, 1.0 / math.sqrt(hidden_size)

        def uniform(*shape):  # PyTorch's default: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))
            return init.uniform_(Parameter(zeros(*shape, dtype=dtype, device=device)), -bound, bound)
        self.weight_ih = uniform(rows, input_size)
        self.weight_hh = uniform(rows, hidden_size)
        self.bias_ih = uniform(rows) if bias else None
        self.bias_hh = uniform(rows) if bias else None

    def _check_input(self, x: Tensor) -> bool:
        """Validate x: (B, I) or (I,), with the parameters' dtype and device; True when unbatched."""
        check_like_parameters(type(self).__name__, "the input", x, self.weight_ih)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input of shape (batch, {self.input_size}) or "
                             f"({self.input_size},), got {x.shape}")
        return x.ndim == 1

    def _state(self, state, x: Tensor, what: str) -> Tensor:
        """The state `what` for input x as the step takes it, (B, H) ((1, H) for an unbatched x):
        zeros when None, else the given state checked against (B, H) ((H,) for an unbatched x)."""
        unbatched = x.ndim == 1
        if state is None:
            return zeros((1 if unbatched else x.shape[0], self.hidden_size), dtype=x.dtype, device=x.device)
        check_like_parameters(type(self).__name__, what, state, self.weight_hh)
        expected = (self.hidden_size,) if unbatched else (x.shape[0], self.hidden_size)
        if state.shape != expected:
            raise ValueError(f"{type(self).__name__}: {what} must have shape {expected} for input of shape "
                             f"{x.shape}, got {state.shape}")
        return state.reshape(1, -1) if unbatched else state

    def _gx(self, x: Tensor) -> Tensor:
        """The fused forms' input projection x W_ih^T + b_ih (+ b_hh where it simply adds)."""
        gx = x @ self.weight_ih.T
        return gx if self.bias_ih is None else gx + self.bias_ih

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}, fused={self.fused}"


class RNNCell(_Cell):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh (default) or relu.

    forward(x, h=None): x (B, I) or (I,), h (B, H) (zeros when None) -> h' (B, H).
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", fused=True, dtype=None, device=None):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; use 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, fused, dtype, device)
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, h: Tensor = None) -> Tensor:
        unbatched = self._check_input(x)
        h = self._state(h, x, "h")
        x = x.reshape(1, -1) if unbatched else x
        if self.fused:
            gx = self._gx(x)
            gx = gx if self.bias_hh is None else gx + self.bias_hh
            out = _named(fused.rnn_step(gx, h, self.weight_hh, self.nonlinearity), "h")
        else:
            out = rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)
        return out.reshape(-1) if unbatched else out


class LSTMCell(_Cell):
    """One LSTM step (gates i, f, g, o; see lstm_cell for the equations).

    forward(x, state=None): x (B, I) or (I,), state (h, c) each (B, H) (zeros when None)
    -> (h', c') each (B, H).
    """
    gates = 4

    def forward(self, x: Tensor, state: tuple = None) -> tuple:
        unbatched = self._check_input(x)
        h, c = (None, None) if state is None else state
        h, c = self._state(h, x, "h"), self._state(c, x, "c")
        x = x.reshape(1, -1) if unbatched else x
        if self.fused:
            gx = self._gx(x)
            gx = gx if self.bias_hh is None else gx + self.bias_hh
            h, c = split_lstm_state(fused.lstm_step(gx, h, c, self.weight_hh))
        else:
            h, c = lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h.reshape(-1), c.reshape(-1)) if unbatched else (h, c)


class GRUCell(_Cell):
    """One GRU step (gates r, z, n; see gru_cell for the equations).

    forward(x, h=None): x (B, I) or (I,), h (B, H) (zeros when None) -> h' (B, H).
    """
    gates = 3

    def forward(self, x: Tensor, h: Tensor = None) -> Tensor:
        unbatched = self._check_input(x)
        h = self._state(h, x, "h")
        x = x.reshape(1, -1) if unbatched else x
        if self.fused:
            out = _named(fused.gru_step(self._gx(x), h, self.weight_hh, self.bias_hh), "h")
        else:
            out = gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out.reshape(-1) if unbatched else out


def split_lstm_state(packed: Tensor) -> tuple:
    """(h, c) views of a fused LSTM step's packed state [h, c] (2, B, H), named "h" and "c"."""
    return _named(packed[0], "h"), _named(packed[1], "c")
