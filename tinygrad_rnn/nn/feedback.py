"""Output-to-hidden recurrence and teacher forcing (Goodfellow et al., sec. 10.2.1, fig. 10.4).

The recurrent connection runs from the output of step t-1 to the hidden units of step t:

    h_t = tanh(x_t U^T + y_{t-1} W^T + b),    o_t = h_t V^T + c

where y_{t-1} is what is fed back. Under teacher forcing, y_{t-1} is the true target of the
previous step, so the steps decouple during training; at test time (or with probability
1 - teacher_forcing_ratio per step during training) it is the model's own previous output:
o_{t-1} itself for regression, softmax(o_{t-1}) for classification (targets are fed back as
one-hot vectors). y_{-1} is zero.
"""
from __future__ import annotations

import math

import numpy as np

from .. import autograd, backend, ops
from .. import functional as F
from ..factories import zeros
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["OutputFeedbackRNN", "teacher_forces", "coin_source"]

KINDS = ("regression", "classification")


def coin_source(rng) -> np.random.Generator:
    """Where teacher forcing's coins come from: `rng` (a NumPy Generator, or a seed for a new
    one), by default the generator tr.manual_seed seeds."""
    return backend.random_state() if rng is None else np.random.default_rng(rng)


def teacher_forces(ratio: float, rng: np.random.Generator) -> bool:
    """One step's coin: True (feed the true previous target) with probability `ratio`. Ratios 1
    and 0 draw no coin, so a run that always or never forces leaves the generator as it was."""
    return ratio == 1.0 or (ratio > 0.0 and rng.random() < ratio)


class OutputFeedbackRNN(Module):
    """h_t = tanh(x_t U^T + y_{t-1} W^T + b), o_t = h_t V^T + c  (see the module docstring).

    Shapes: x (T, B, I); targets (T, B, O) floats for regression, (T, B) class indices for
    classification; output o (T, B, O). Parameters: weight_xh U (H, I), weight_yh W (H, O),
    bias_h b (H,), weight_hy V (O, H), bias_y c (O,).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, kind: str = "regression",
                 dtype=None, device=None):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"OutputFeedbackRNN: kind must be one of {KINDS}, got {kind!r}")
        self.input_size, self.hidden_size, self.output_size, self.kind = input_size, hidden_size, output_size, kind

        def uniform(fan_in, *shape):
            bound = 1.0 / math.sqrt(fan_in)
            return init.uniform_(Parameter(zeros(*shape, dtype=dtype, device=device)), -bound, bound)
        self.weight_xh = uniform(hidden_size, hidden_size, input_size)
        self.weight_yh = uniform(hidden_size, hidden_size, output_size)
        self.bias_h = uniform(hidden_size, hidden_size)
        self.weight_hy = uniform(hidden_size, output_size, hidden_size)
        self.bias_y = uniform(hidden_size, output_size)

    def forward(self, x: Tensor, targets=None, teacher_forcing_ratio: float = 1.0, rng=None) -> Tensor:
        """Outputs o (T, B, O). With targets, step t is fed the true y_{t-1} with probability
        teacher_forcing_ratio (a coin per step from `rng`, a Generator or a seed, by default the
        generator of tr.manual_seed; ratios 1 and 0 draw none), else the model's own previous
        output; without targets, always its own."""
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"OutputFeedbackRNN: expected input of shape (T, B, {self.input_size}), got {x.shape}")
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"OutputFeedbackRNN: teacher_forcing_ratio must lie in [0, 1], got {teacher_forcing_ratio}")
        steps, batch = x.shape[0], x.shape[1]
        teacher = None if targets is None else self._teacher_signal(targets, steps, batch, x)
        rng = coin_source(rng)
        fed = zeros(batch, self.output_size, dtype=x.dtype, device=x.device)
        outputs = []
        for t in range(steps):
            with autograd.time_step(t):
                if t > 0:
                    forced = teacher is not None and teacher_forces(teacher_forcing_ratio, rng)
                    fed = teacher[t - 1] if forced else self._own_feedback(outputs[-1])
                h = (x[t] @ self.weight_xh.T + fed @ self.weight_yh.T + self.bias_h).tanh()
                h.name = "h"
                o = h @ self.weight_hy.T + self.bias_y
                o.name = "o"
            outputs.append(o)
        return ops.stack(outputs, axis=0)

    def _own_feedback(self, o: Tensor) -> Tensor:
        return o if self.kind == "regression" else F.softmax(o, axis=-1)

    def _teacher_signal(self, targets, steps: int, batch: int, like: Tensor) -> Tensor:
        """The targets as the vectors that are fed back: (T, B, O)."""
        data = targets.numpy() if isinstance(targets, Tensor) else backend.to_numpy(targets) \
            if isinstance(targets, backend.ARRAY_TYPES) else np.asarray(targets)
        if self.kind == "classification":
            if data.shape != (steps, batch):
                raise ValueError(f"OutputFeedbackRNN: class targets must have shape (T, B) = {(steps, batch)}, "
                                 f"got {data.shape}")
            outside = data.dtype.kind not in "iu" or (data.size and (data.min() < 0 or data.max() >= self.output_size))
            if outside:
                got = f"values from {data.min()} to {data.max()}" if data.size else "no values"
                raise ValueError(f"OutputFeedbackRNN: class targets must be integers in [0, {self.output_size}), "
                                 f"got {data.dtype} {got}")
            data = np.eye(self.output_size)[data]
        elif data.shape != (steps, batch, self.output_size):
            raise ValueError(f"OutputFeedbackRNN: targets must have shape (T, B, O) = "
                             f"{(steps, batch, self.output_size)}, got {data.shape}")
        return Tensor(data, dtype=like.dtype, device=like.device)
