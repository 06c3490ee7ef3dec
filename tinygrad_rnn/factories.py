"""Tensor factories: zeros, ones, randn, rand, arange, eye, and the seed that makes runs repeat.

Random values are drawn on the host from one seeded generator and then moved to the device, so
`manual_seed(s)` gives the same numbers on the CPU and on a GPU (and in float32 and float64:
values are drawn in float64 and rounded).
"""
from __future__ import annotations

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["zeros", "ones", "randn", "rand", "arange", "eye", "zeros_like", "ones_like", "manual_seed"]


def manual_seed(seed: int) -> None:
    """Seed every random generator (factories, parameter init, dropout) on every backend."""
    backend.seed_all(seed)


def _shape(shape, op: str) -> tuple:
    """The sizes given as varargs (2, 3) or one sequence ((2, 3)): non-negative integers."""
    sizes = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in sizes):
        raise TypeError(f"{op}: sizes must be non-negative integers, got {sizes}")
    return tuple(int(n) for n in sizes)


def _make(host_array, dtype, device, requires_grad) -> Tensor:
    dtype = backend.default_dtype() if dtype is None else backend.as_dtype(dtype)
    array = backend.to_device(host_array.astype(dtype, copy=False), backend.normalize_device(device))
    return Tensor(array, requires_grad=requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros: zeros(2, 3) or zeros((2, 3))."""
    return _make(np.zeros(_shape(shape, "zeros")), dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones: ones(2, 3) or ones((2, 3))."""
    return _make(np.ones(_shape(shape, "ones")), dtype, device, requires_grad)


def zeros_like(t: Tensor, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=t.dtype, device=t.device, requires_grad=requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples N(0, 1)."""
    return _make(backend.random_state().standard_normal(_shape(shape, "randn")), dtype, device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) (drawn in float64: the few that would round up to 1 in float32
    are the largest float below 1 instead)."""
    dtype = backend.default_dtype() if dtype is None else backend.as_dtype(dtype)
    values = backend.random_state().random(_shape(shape, "rand")).astype(dtype)
    below_one = np.nextafter(dtype.type(1), dtype.type(0))
    return _make(np.minimum(values, below_one, out=values), dtype, device, requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Evenly spaced values in [start, stop) (arange(stop): from 0), step apart; integers give int64
    unless dtype says otherwise."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError(f"arange: step must be nonzero, got {step}")
    values = np.arange(start, stop, step)
    if dtype is None and values.dtype.kind == "f":
        dtype = backend.default_dtype()
    return _make(values, dtype or values.dtype, device, requires_grad)


def eye(n: int, m: int = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The n x m identity matrix (m = n by default)."""
    return _make(np.eye(n, m), dtype, device, requires_grad)
