"""Optimizers with PyTorch's arguments and update formulas: SGD, Adagrad, RMSprop, Adam, AdamW.

Each step reads p.grad (g below) and updates p.data in place, parameter by parameter; parameters
without a gradient are skipped. State (momentum buffers, running averages, step counts) is
created on the parameter's device at the first step and moves with `to(device)`;
state_dict()/load_state_dict() give and take nested dicts of arrays for tr.save / tr.load.
Gradient clipping lives in nn.utils.
"""
from __future__ import annotations

import math

import numpy as np

from . import backend
from .nn.module import Parameter
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


class Optimizer:
    """Base class: holds the parameters, the hyper-parameters and the per-parameter state."""

    def __init__(self, params, **defaults):
        if isinstance(params, Tensor):  # iterating it would give row slices that never get a gradient
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters (e.g. "
                            "model.parameters() or [p]), got a single tensor")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for p in self.params:
            if not isinstance(p, Parameter) and not getattr(p, "requires_grad", False):
                raise TypeError(f"{type(self).__name__}: expects Parameters (or tensors that require grad), "
                                f"got {type(p).__name__}")
        if defaults.get("lr", 0.0) < 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be non-negative, got {defaults['lr']}")
        self.defaults = defaults
        for key, value in defaults.items():
            setattr(self, key, value)
        self.state = [dict() for _ in self.params]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (set .grad to None)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p.data, p.grad.data, state)

    def _update(self, p, g, state: dict) -> None:
        raise NotImplementedError

    def _buffer(self, state: dict, name: str, like, fill: float = 0.0):
        """The state array `name`, created full of `fill` like the parameter on first use."""
        if name not in state:
            state[name] = backend.array_module(like).full(like.shape, fill, dtype=like.dtype)
        return state[name]

    # ------------------------------------------------------------ devices and state
    def to(self, device) -> "Optimizer":
        """Move the optimizer's state arrays to `device` (after moving the model there)."""
        device = backend.normalize_device(device)
        for state in self.state:
            for key, value in state.items():
                if isinstance(value, backend.ARRAY_TYPES):
                    state[key] = backend.to_device(value, device)
        return self

    def hyperparameters(self) -> dict:
        return {key: getattr(self, key) for key in self.defaults}

    def state_dict(self) -> dict:
        """{"hyperparameters": {...}, "state": {"0": {name: array or number}, ...}} (host arrays)."""
        return {"hyperparameters": self.hyperparameters(),
                "state": {str(i): {k: backend.to_numpy(v).copy() if isinstance(v, backend.ARRAY_TYPES) else v
                                   for k, v in s.items()} for i, s in enumerate(self.state)}}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and state saved by state_dict() for the same parameter list."""
        saved = state_dict.get("state", {})
        if len(saved) > len(self.params) or any(int(k) >= len(self.params) for k in saved):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved state covers {len(saved)} "
                             f"parameters but this optimizer has {len(self.params)}")
        for key, value in state_dict.get("hyperparameters", {}).items():
            if key not in self.defaults:
                raise KeyError(f"{type(self).__name__}.load_state_dict: unknown hyper-parameter {key!r}")
            setattr(self, key, _hyperparameter(value, self.defaults[key]))
        self.state = [dict() for _ in self.params]
        for k, entries in saved.items():
            p = self.params[int(k)]
            for name, value in entries.items():
                if not isinstance(value, backend.ARRAY_TYPES):  # a number (a step count); arrays even when 0-d
                    self.state[int(k)][name] = _number(value)
                    continue
                if tuple(np.shape(value)) != p.shape:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: state {name!r} of parameter {k} has "
                                     f"shape {tuple(np.shape(value))}, the parameter has {p.shape}")
                self.state[int(k)][name] = backend.to_device(value, p.device).astype(p.dtype)  # a copy, either way

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


def _number(value):
    """A saved number as Python's (a NumPy scalar or 0-d array gives its .item())."""
    return value.item() if hasattr(value, "item") else value


def _hyperparameter(value, default):
    """A saved hyper-parameter as the optimizer holds it: a sequence (betas, which tr.load gives
    back as a list) as a tuple, a number as itself: its own type, not the default's (lr=1 at
    construction must not turn a saved 0.5 into 0)."""
    if isinstance(default, tuple):
        return tuple(_number(v) for v in value)
    return _number(value)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's formulation):

        g <- g + weight_decay * p
        b <- g at the first step, then momentum * b + (1 - dampening) * g
        g <- g + momentum * b if nesterov else b          (when momentum > 0)
        p <- p - lr * g
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov)

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            if "momentum_buffer" not in state:
                # a copy of g, and an array even when p is 0-d (NumPy's g + weight_decay * p is then a
                # scalar, which `b *= momentum` would rebind instead of updating the state)
                state["momentum_buffer"] = backend.array_module(p).array(g)
            else:
                b = state["momentum_buffer"]
                b *= self.momentum
                b += (1 - self.dampening) * g
            b = state["momentum_buffer"]
            g = g + self.momentum * b if self.nesterov else b
        p -= self.lr * g


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011) as PyTorch:

        g <- g + weight_decay * p;   s <- s + g^2;   lr_t = lr / (1 + (t - 1) * lr_decay)
        p <- p - lr_t * g / (sqrt(s) + eps)
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    def _update(self, p, g, state):
        xp = backend.array_module(p)
        state["step"] = state.get("step", 0) + 1
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = self._buffer(state, "sum", p, self.initial_accumulator_value)
        s += g * g
        lr = self.lr / (1 + (state["step"] - 1) * self.lr_decay)
        p -= lr * g / (xp.sqrt(s) + self.eps)


class RMSprop(Optimizer):
    """RMSprop (Tieleman and Hinton, 2012) as PyTorch:

        g <- g + weight_decay * p;   v <- alpha * v + (1 - alpha) * g^2
        centered: m <- alpha * m + (1 - alpha) * g and d = sqrt(v - m^2) + eps, else d = sqrt(v) + eps
        momentum > 0: b <- momentum * b + g / d, p <- p - lr * b;  else p <- p - lr * g / d
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered)

    def _update(self, p, g, state):
        xp = backend.array_module(p)
        if self.weight_decay:
            g = g + self.weight_decay * p
        v = self._buffer(state, "square_avg", p)
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        if self.centered:
            m = self._buffer(state, "grad_avg", p)
            m *= self.alpha
            m += (1 - self.alpha) * g
            d = xp.sqrt(v - m * m) + self.eps
        else:
            d = xp.sqrt(v) + self.eps
        if self.momentum > 0:
            b = self._buffer(state, "momentum_buffer", p)
            b *= self.momentum
            b += g / d
            p -= self.lr * b
        else:
            p -= self.lr * g / d


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) as PyTorch, with L2 weight decay added to the gradient:

        g <- g + weight_decay * p;   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
        p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        amsgrad: v in the denominator is replaced by the running maximum of v.
    """
    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def _update(self, p, g, state):
        xp = backend.array_module(p)
        beta1, beta2 = self.betas
        t = state["step"] = state.get("step", 0) + 1
        if self.weight_decay:
            if self.decoupled:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, v = self._buffer(state, "exp_avg", p), self._buffer(state, "exp_avg_sq", p)
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        if self.amsgrad:
            v_max = self._buffer(state, "max_exp_avg_sq", p)
            xp.maximum(v_max, v, out=v_max)
            v = v_max
        denominator = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps  # a Python float: v's dtype stays
        p -= (self.lr / (1 - beta1 ** t)) * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019): p <- p (1 - lr * wd) first."""
    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
