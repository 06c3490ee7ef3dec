"""Gradient clipping (Pascanu, Mikolov and Bengio, 2013, Algorithm 1; PyTorch's torch.nn.utils)."""
from __future__ import annotations

import math

import numpy as np

from .. import backend

__all__ = ["clip_grad_norm_", "clip_grad_value_", "grad_norm"]


def _with_grads(params) -> list:
    params = [params] if hasattr(params, "grad") else list(params)
    return [p for p in params if p.grad is not None]


def grad_norm(params, norm_type: float = 2.0) -> float:
    """The norm of all gradients taken together as one vector, of order norm_type > 0 (inf or
    "inf": the largest |entry|; 0: the number of non-zero entries. PyTorch's clip_grad_norm_
    takes the norm of the per-parameter norms instead, the same for every order but 0, where it
    counts the parameters with a non-zero gradient)."""
    norm_type = _order(norm_type, "grad_norm")
    grads = [p.grad.data for p in _with_grads(params)]
    if not grads:
        return 0.0
    xp = backend.array_module(grads[0])
    if norm_type == 0:
        return float(sum(int(xp.count_nonzero(g)) for g in grads))
    largest = float(np.max([float(xp.abs(g).max()) if g.size else 0.0 for g in grads]))  # np.max keeps a NaN
    if norm_type == math.inf or largest == 0 or not math.isfinite(largest):
        return largest
    # m (sum (|g| / m)^p)^(1/p) with m the largest |entry|: finite gradients never overflow in |g|^p
    total = sum(float(((xp.abs(g.astype(xp.float64)) / largest) ** norm_type).sum()) for g in grads)
    return largest * total ** (1.0 / norm_type)


def clip_grad_norm_(params, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Rescale all gradients together so that their total norm is at most max_norm:

        n = ||(g_1, ..., g_k)||;   if n > max_norm: g_i <- g_i * max_norm / (n + 1e-6)

    Returns n, the total norm before clipping (as PyTorch). A NaN or infinite norm raises with
    error_if_nonfinite; otherwise it is returned and the gradients are left as they are (there
    is no meaningful rescaling of a non-finite vector: skip the step when the norm is not finite).
    """
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be non-negative, got {max_norm} (0 zeroes the gradients)")
    norm_type = _order(norm_type, "clip_grad_norm_")
    params = _with_grads(params)
    total = grad_norm(params, norm_type)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(f"clip_grad_norm_: the total gradient norm is {total} (order {norm_type}); "
                               "lower the learning rate, clip earlier, or pass error_if_nonfinite=False")
        return total
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1.0:
        for p in params:
            p.grad.data *= coefficient
    return total


def _order(norm_type, op: str) -> float:
    """norm_type as a float (PyTorch takes "inf" too), or a ValueError naming op for what is no norm."""
    try:
        order = float(norm_type)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: norm_type must be a number or 'inf', got {norm_type!r}") from None
    if not order >= 0:
        raise ValueError(f"{op}: norm_type must be non-negative (or inf), got {norm_type!r}")
    return order


def clip_grad_value_(params, clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value], in place."""
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be non-negative, got {clip_value}")
    for p in _with_grads(params):
        xp = backend.array_module(p.grad.data)
        xp.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)
