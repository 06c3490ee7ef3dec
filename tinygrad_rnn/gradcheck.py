"""Gradient checks against central finite differences, in float64.

For each input x_i that requires grad, the engine's gradient of the scalar
S = sum(w * fn(*inputs)) (w a fixed random weighting of the outputs) is compared with

    dS/dx_i[j] ~ (S(x + eps e_j) - S(x - eps e_j)) / (2 eps)      for every entry j,

and, for inputs larger than `max_entries`, with the directional derivative along random unit
directions v:  <dS/dx, v> ~ (S(x + eps v) - S(x - eps v)) / (2 eps)  (a vector-Jacobian check).
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import no_grad
from .tensor import Tensor

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree; the message names the input and the entry."""


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              max_entries: int = 2000, directions: int = 8, seed: int = 0) -> bool:
    """True if fn's gradients match finite differences for every input that requires grad.

    fn: Tensors -> Tensor (or a tuple of Tensors, all weighted into S). inputs: a sequence of
    Tensors; those with requires_grad are checked and must be float64 (their .grad is left as it
    was). Raises GradcheckError naming the input, the worst entry, the expected (numeric) and
    obtained (analytic) values.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; create the inputs with requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64 "
                            "(create it with dtype=np.float64)")
    rng = np.random.default_rng(seed)
    with no_grad():
        weights = [rng.standard_normal(o.shape) for o in _outputs(fn(*inputs))]

    def scalar(*args):
        total = 0.0
        for w, o in zip(weights, _outputs(fn(*args))):
            total = total + (o * backend.to_device(w, o.device)).sum()
        return total

    kept = {i: inputs[i].grad for i in checked}  # the caller's .grad, given back afterwards
    for i in checked:
        inputs[i].grad = None
    try:
        total = scalar(*inputs)
        if isinstance(total, Tensor) and total.requires_grad:  # else no checked input reaches it: all zero
            total.backward()
        analytic = {i: np.zeros(inputs[i].shape) if inputs[i].grad is None
                    else inputs[i].grad.numpy().astype(np.float64) for i in checked}
    finally:
        for i, grad in kept.items():
            inputs[i].grad = grad
    for i in checked:
        _check_input(scalar, inputs, i, analytic[i], eps, atol, rtol, max_entries, directions, rng)
    return True


def _outputs(result) -> list:
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    return [o for o in outputs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _check_input(scalar, inputs, i, analytic, eps, atol, rtol, max_entries, directions, rng) -> None:
    x = inputs[i]
    original = x.data.copy()

    def value_at(perturbation):
        # asarray: 0-d array + 0-d array gives a NumPy scalar, and a Tensor must hold an array
        x.data = backend.array_module(original).asarray(original + backend.to_device(perturbation, x.device))
        with no_grad():
            total = scalar(*inputs)
            return float(total.item()) if isinstance(total, Tensor) else float(total)

    try:
        if x.size <= max_entries:
            numeric = np.zeros(x.shape)
            flat = numeric.reshape(-1)
            for j in range(x.size):
                e = np.zeros(x.size)
                e[j] = eps
                e = e.reshape(x.shape)
                flat[j] = (value_at(e) - value_at(-e)) / (2 * eps)
            _compare(i, x.shape, numeric, analytic, atol, rtol)
        else:
            for _ in range(directions):
                v = rng.standard_normal(x.shape)
                v /= np.linalg.norm(v)
                numeric = (value_at(eps * v) - value_at(-eps * v)) / (2 * eps)
                obtained = float((analytic * v).sum())
                if not abs(numeric - obtained) <= atol + rtol * abs(numeric):
                    raise GradcheckError(f"gradcheck: input {i} (shape {x.shape}): along a random direction the "
                                         f"directional derivative is {obtained:.10g}, finite differences give "
                                         f"{numeric:.10g}")
    finally:
        x.data = original


def _compare(i, shape, numeric, analytic, atol, rtol) -> None:
    error = np.abs(numeric - analytic) - (atol + rtol * np.abs(numeric))
    outside = ~(error <= 0)  # NaN counts as outside
    if not outside.any():
        return
    error = np.where(np.isnan(error), np.inf, error)  # the worst entry: a NaN first
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(error)), shape)) if shape else ()
    raise GradcheckError(f"gradcheck: input {i} (shape {shape}) entry {worst}: expected {numeric[worst]:.10g} "
                         f"(finite differences), obtained {analytic[worst]:.10g} (backward); "
                         f"{int(outside.sum())} of {numeric.size} entries outside atol={atol}, rtol={rtol}")
