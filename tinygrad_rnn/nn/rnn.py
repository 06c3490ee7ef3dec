"""Sequence layers nn.RNN, nn.LSTM, nn.GRU: cells unrolled over time, stacked and bidirectional.

For layer k and direction d (forward, or reverse reading the sequence from the end), every time
step applies the layer's cell (nn/cells.py) to the input at t and the state at t-1. The output of
layer k (both directions concatenated along features) is the input of layer k+1, with dropout in
between while training. Shapes as PyTorch's, with L layers and D = 2 if bidirectional else 1:

    x: (T, B, I) (or (B, T, I) with batch_first, or (T, I) unbatched)
    output: (T, B, D*H) (batch_first: (B, T, D*H));  h_n (and c_n): (L*D, B, H)

Parameters are named exactly as PyTorch's (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0,
then the _reverse ones, then layer 1, ...), so state_dicts move between the two unchanged.
With learn_init=True the initial states are parameters h0 (and c0), (L*D, H), broadcast over the
batch when forward gets no hx (a given hx takes precedence); they are the only state_dict keys
PyTorch's layers lack (drop them before loading into PyTorch).
Three forms compute the same numbers: fused=True (the default) makes one node per time step with
a hand-derived backward (fused.py); fused=False builds every gate from elementary ops
(nn/cells.py), a node each; fused="sequence" runs each layer and direction as one node over the
whole sequence (sequence.py), the fastest and leanest, but with no steps for the drawings and
the gradient tracer to show. In the first two, each step runs inside time_step(t) and the
scope "l{k}" (plus ".reverse"), so the graph knows where every node belongs; the per-step
states are the nodes named "h" (and "c").
"""
from __future__ import annotations

import math

from .. import autograd, backend, fused, kernels, ops, sequence
from .. import functional as F
from ..factories import zeros
from ..tensor import Tensor
from . import init
from .cells import NONLINEARITIES, check_like_parameters, gru_cell, lstm_cell, rnn_cell, split_lstm_state
from .module import Module, Parameter

__all__ = ["RNN", "LSTM", "GRU"]


class _Recurrent(Module):
    """What RNN, LSTM and GRU share; subclasses give `gates`, `states`, `_step` and `_sequence`."""
    gates = 1   # G: blocks of H rows in weight_ih / weight_hh
    states = 1  # 1 (h) or 2 (h, c)
    bias_hh_in_step = False  # the GRU's b_hh acts inside the reset gate, not in the projection

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 fused: bool = True, learn_init: bool = False, dtype=None, device=None):
        super().__init__()
        name = type(self).__name__
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: input_size, hidden_size and num_layers must be positive, "
                             f"got {input_size}, {hidden_size}, {num_layers}")
        if fused not in (True, False, "sequence"):
            raise ValueError(f"{name}: fused must be True (one node per time step), False (every gate a node) "
                             f"or 'sequence' (one node per layer and direction), got {fused!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional, self.fused, self.learn_init = bidirectional, fused, learn_init
        directions = 2 if bidirectional else 1
        rows, bound = self.gates * hidden_size, 1.0 / math.sqrt(hidden_size)

        def uniform(*shape):  # PyTorch's default: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))
            return init.uniform_(Parameter(zeros(*shape, dtype=dtype, device=device)), -bound, bound)
        for k in range(num_layers):
            layer_input = input_size if k == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                setattr(self, f"weight_ih_l{k}{suffix}", uniform(rows, layer_input))
                setattr(self, f"weight_hh_l{k}{suffix}", uniform(rows, hidden_size))
                if bias:
                    setattr(self, f"bias_ih_l{k}{suffix}", uniform(rows))
                    setattr(self, f"bias_hh_l{k}{suffix}", uniform(rows))
        if learn_init:  # a learned initial state: one vector per layer and direction
            self.h0 = Parameter(zeros(num_layers * directions, hidden_size, dtype=dtype, device=device))
            if self.states == 2:
                self.c0 = Parameter(zeros(num_layers * directions, hidden_size, dtype=dtype, device=device))

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def weights(self, layer: int, reverse: bool = False) -> tuple:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction (biases may be None)."""
        suffix = f"l{layer}" + ("_reverse" if reverse else "")
        return tuple(getattr(self, f"{name}_{suffix}", None) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    # ------------------------------------------------------------ forward
    def forward(self, x: Tensor, hx=None):
        unbatched = self._check_input(x)
        if unbatched:
            x = x.reshape(x.shape[0], 1, x.shape[1])
            hx = None if hx is None else self._unbatched_states(hx)
        elif self.batch_first:
            x = x.transpose(0, 1)
        initial = self._initial_states(hx, x)
        finals = []
        layer_input = x
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0 and self.training:
                layer_input = F.dropout(layer_input, self.dropout, True)
            outputs = []
            for d in range(self.directions):
                state = self._state(initial, k * self.directions + d, x)
                with autograd.scope(f"l{k}" + (".reverse" if d else "")):
                    out, state = self._direction(layer_input, state, k, reverse=bool(d))
                outputs.append(out)
                finals.append(state)
            layer_input = outputs[0] if len(outputs) == 1 else ops.cat(outputs, axis=2)
        output = layer_input
        final = tuple(_stacked([f[i] for f in finals]) for i in range(self.states))
        if unbatched:
            output = output.reshape(output.shape[0], output.shape[2])
            final = tuple(s.reshape(s.shape[0], s.shape[2]) for s in final)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, (final[0] if self.states == 1 else final)

    def _direction(self, x: Tensor, state: tuple, layer: int, reverse: bool):
        """Run one layer in one direction over all T steps: (outputs (T, B, H), final state)."""
        w_ih, w_hh, b_ih, b_hh = self.weights(layer, reverse)
        if self.fused == "sequence":
            return self._sequence(x, state, w_ih, w_hh, b_ih, b_hh, reverse)
        steps = x.shape[0]
        inputs = self._projection(x, w_ih, b_ih, b_hh) if self.fused else x
        w_hh_t = kernels.recurrent_t(w_hh.data, steps) if self.fused else None  # once for the T steps
        outputs = [None] * steps
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            with autograd.time_step(t):
                state = self._step(inputs[t], state, w_ih, w_hh, b_ih, b_hh, w_hh_t)
            outputs[t] = state[0]
        return ops.stack(outputs, axis=0), state

    def _projection(self, x: Tensor, w_ih, b_ih, b_hh) -> Tensor:
        """gx = x W_ih^T + bias for all T steps in one GEMM: (T, B, In) -> (T, B, G*H).
        The bias is b_ih + b_hh, except for the GRU, whose b_hh acts inside the reset gate."""
        steps, batch, features = x.shape
        bias = None if b_ih is None else b_ih if self.bias_hh_in_step else b_ih + b_hh
        gx = fused.linear(x.reshape(steps * batch, features), w_ih, bias)
        gx.name = "W_ih x"
        return gx.reshape(steps, batch, gx.shape[-1])

    # ------------------------------------------------------------ checks and states
    def _check_input(self, x: Tensor) -> bool:
        """Validate the input; True when it is unbatched (T, I)."""
        name = type(self).__name__
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        check_like_parameters(name, "the input", x, self.weight_ih_l0)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape {layout} or (T, I) with I = {self.input_size}, "
                             f"got {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{name}: the input has no time steps (shape {x.shape}); a sequence needs at least one")
        return x.ndim == 2

    def _as_tuple(self, hx) -> tuple:
        """The given initial states as a tuple (h_0,) or (h_0, c_0), each checked to be a Tensor
        with the parameters' dtype and device (their shapes are the caller's to check)."""
        if self.states == 1:
            if not isinstance(hx, Tensor):
                raise TypeError(f"{type(self).__name__}: hx must be a Tensor h_0 of shape (L*D, B, H), "
                                f"got {type(hx).__name__}")
            states = (hx,)
        elif not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            got = f"a {type(hx).__name__} of length {len(hx)}" if isinstance(hx, (tuple, list)) else type(hx).__name__
            raise TypeError(f"LSTM: hx must be a tuple (h_0, c_0), each of shape (L*D, B, H), got {got}")
        else:
            states = tuple(hx)
        for label, s in zip(("h_0", "c_0"), states):
            check_like_parameters(type(self).__name__, label, s, self.weight_hh_l0)
        return states

    def _unbatched_states(self, hx):
        """The given states of an unbatched input, each checked against (L*D, H) and reshaped to
        (L*D, 1, H); returned in the form forward accepts (h_0, or the tuple (h_0, c_0))."""
        expected = (self.num_layers * self.directions, self.hidden_size)
        states = self._as_tuple(hx)
        for label, s in zip(("h_0", "c_0"), states):
            if s.shape != expected:
                raise ValueError(f"{type(self).__name__}: {label} must have shape (L*D, H) = {expected} for "
                                 f"unbatched input, got {s.shape}")
        states = tuple(s.reshape(expected[0], 1, expected[1]) for s in states)
        return states[0] if self.states == 1 else states

    def _initial_states(self, hx, x: Tensor):
        """The initial states, each (L*D, B, H), given or learned; None for zeros (see _state)."""
        expected = (self.num_layers * self.directions, x.shape[1], self.hidden_size)
        if hx is not None:
            states = self._as_tuple(hx)
            for label, s in zip(("h_0", "c_0"), states):
                if s.shape != expected:
                    raise ValueError(f"{type(self).__name__}: {label} must have shape (L*D, B, H) = {expected} "
                                     f"for this input, got {s.shape}")
            return states
        if self.learn_init:
            learned = (self.h0, self.c0) if self.states == 2 else (self.h0,)
            return tuple(ops.broadcast_to(s.reshape(expected[0], 1, expected[2]), expected) for s in learned)
        return None

    def _state(self, initial, index: int, x: Tensor) -> tuple:
        """The initial state of one layer and direction: row `index` of the initial states, or
        with none given or learned, zeros (B, H) made for it, one array each for h (and c)."""
        if initial is not None:
            return tuple(s[index] for s in initial)
        xp, shape = backend.array_module(x.data), (x.shape[1], self.hidden_size)
        return tuple(Tensor._wrap(xp.zeros(shape, dtype=x.data.dtype)) for _ in range(self.states))

    def extra_repr(self) -> str:
        options = [f"{self.input_size}, {self.hidden_size}"]
        for key, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False), ("fused", True), ("learn_init", False)):
            if getattr(self, key) != default:
                options.append(f"{key}={getattr(self, key)!r}")
        return ", ".join(options)


def _stacked(states: list) -> Tensor:
    """(L*D, B, H) from the final states (B, H) of the L*D layers and directions (one needs no
    copy, only a leading axis)."""
    return states[0].reshape((1,) + states[0].shape) if len(states) == 1 else ops.stack(states, axis=0)


class RNN(_Recurrent):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu.

    forward(x, h_0=None) -> (output, h_n); shapes in the module docstring.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, fused=True, learn_init=False,
                 dtype=None, device=None):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; use 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         fused, learn_init, dtype, device)

    def _step(self, inp, state, w_ih, w_hh, b_ih, b_hh, w_hh_t=None) -> tuple:
        if self.fused:
            h = fused.rnn_step(inp, state[0], w_hh, self.nonlinearity, w_hh_t)
            h.name = "h"
            return (h,)
        return (rnn_cell(inp, state[0], w_ih, w_hh, b_ih, b_hh, self.nonlinearity),)

    def _sequence(self, x, state, w_ih, w_hh, b_ih, b_hh, reverse) -> tuple:
        return sequence.rnn(x, state[0], w_ih, w_hh, b_ih, b_hh, self.nonlinearity, reverse)


class LSTM(_Recurrent):
    """Long short-term memory (gates i, f, g, o; equations in nn/cells.lstm_cell).

    forward(x, (h_0, c_0)=None) -> (output, (h_n, c_n)); shapes in the module docstring.
    """
    gates, states = 4, 2

    def _step(self, inp, state, w_ih, w_hh, b_ih, b_hh, w_hh_t=None) -> tuple:
        h, c = state
        if self.fused:
            return split_lstm_state(fused.lstm_step(inp, h, c, w_hh, w_hh_t))
        return lstm_cell(inp, h, c, w_ih, w_hh, b_ih, b_hh)

    def _sequence(self, x, state, w_ih, w_hh, b_ih, b_hh, reverse) -> tuple:
        return sequence.lstm(x, *state, w_ih, w_hh, b_ih, b_hh, reverse)


class GRU(_Recurrent):
    """Gated recurrent unit (gates r, z, n; h' = (1 - z) * n + z * h; see nn/cells.gru_cell).

    forward(x, h_0=None) -> (output, h_n); shapes in the module docstring.
    """
    gates, bias_hh_in_step = 3, True

    def _step(self, inp, state, w_ih, w_hh, b_ih, b_hh, w_hh_t=None) -> tuple:
        if self.fused:
            h = fused.gru_step(inp, state[0], w_hh, b_hh, w_hh_t)
            h.name = "h"
            return (h,)
        return (gru_cell(inp, state[0], w_ih, w_hh, b_ih, b_hh),)

    def _sequence(self, x, state, w_ih, w_hh, b_ih, b_hh, reverse) -> tuple:
        return sequence.gru(x, state[0], w_ih, w_hh, b_ih, b_hh, reverse)
