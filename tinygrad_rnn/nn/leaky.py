"""Leaky units: recurrent units that integrate over time with a time constant.

    h_t = (1 - alpha) * h_{t-1} + alpha * tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)

alpha in (0, 1] is one number or one per unit; 1 / alpha is the unit's time constant in steps.
With alpha = 1 this is the Elman RNN; with small alpha a unit changes slowly and remembers long,
since the direct path h_{t-1} -> h_t has slope (1 - alpha) (Goodfellow et al., sec. 10.9.2;
Jaeger et al., 2007). With learn_alpha, alpha = sigmoid(a) per unit and a is trained.
"""
from __future__ import annotations

import numpy as np

from .. import autograd, ops
from ..factories import zeros
from ..tensor import Tensor
from .cells import RNNCell
from .module import Module, Parameter

__all__ = ["LeakyRNN"]


class LeakyRNN(Module):
    """A single-layer RNN of leaky-integrator tanh units.

    forward(x, h_0=None): x (T, B, I) (or (B, T, I) with batch_first), h_0 (1, B, H)
    -> (output (T, B, H) (batch_first: (B, T, H)), h_n (1, B, H)), as nn.RNN.
    Parameters: cell.weight_ih (H, I), cell.weight_hh (H, H), cell.bias_ih, cell.bias_hh (H,),
    and with learn_alpha the logits `alpha_logit` (H,).
    """

    def __init__(self, input_size: int, hidden_size: int, alpha=0.5, bias: bool = True,
                 batch_first: bool = False, learn_alpha: bool = False, dtype=None, device=None):
        super().__init__()
        alpha = np.asarray(alpha, dtype=np.float64)
        if alpha.shape not in ((), (hidden_size,)):
            raise ValueError(f"LeakyRNN: alpha must be one number or one per unit ({hidden_size}), "
                             f"got shape {alpha.shape}")
        alpha = np.broadcast_to(alpha, (hidden_size,)).copy()
        if not np.all((alpha > 0) & (alpha <= 1)):
            raise ValueError(f"LeakyRNN: alpha must lie in (0, 1], got values from {alpha.min()} to {alpha.max()}")
        self.hidden_size, self.batch_first, self.learn_alpha = hidden_size, batch_first, learn_alpha
        self.cell = RNNCell(input_size, hidden_size, bias=bias, dtype=dtype, device=device)
        if learn_alpha:
            clipped = np.clip(alpha, 1e-6, 1 - 1e-6)
            self.alpha_logit = Parameter(np.log(clipped / (1 - clipped)), dtype=self.cell.weight_hh.dtype,
                                         device=device)
        else:
            self._alpha = alpha  # host float64: alpha takes the weights' dtype and device, after .to() too

    @property
    def alpha(self) -> Tensor:
        """The leak rates, (H,), in the dtype and on the device of the cell's weights."""
        if self.learn_alpha:
            return self.alpha_logit.sigmoid()
        weight = self.cell.weight_hh
        return Tensor(self._alpha, dtype=weight.dtype, device=weight.device)

    def forward(self, x: Tensor, h0: Tensor = None):
        if x.ndim != 3:
            raise ValueError(f"LeakyRNN: expected input of shape {'(B, T, I)' if self.batch_first else '(T, B, I)'}, "
                             f"got {x.shape}")
        if self.batch_first:
            x = x.transpose(0, 1)
        batch = x.shape[1]
        expected = (1, batch, self.hidden_size)
        if h0 is not None and h0.shape != expected:
            raise ValueError(f"LeakyRNN: h_0 must have shape {expected}, got {h0.shape}")
        h = zeros(batch, self.hidden_size, dtype=x.dtype, device=x.device) if h0 is None else h0[0]
        alpha = self.alpha
        keep = 1 - alpha
        outputs = []
        for t in range(x.shape[0]):
            with autograd.time_step(t), autograd.scope("l0"):
                h = keep * h + alpha * self.cell(x[t], h)
                h.name = "h"
            outputs.append(h)
        output = ops.stack(outputs, axis=0)
        return (output.transpose(0, 1) if self.batch_first else output), h.reshape(expected)
