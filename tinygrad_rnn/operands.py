"""What an op's operands become, and the errors they raise: Tensors on one device from whatever
the caller passed (Tensors, Python scalars, arrays, lists), the message for shapes that do not
broadcast, and axis arguments in one normal form. ops.py calls these; nothing here records a graph.
"""
from __future__ import annotations

import builtins

import numpy as np

from . import backend
from .backend import array_module
from .tensor import Tensor

__all__ = ["SCALARS", "as_operands", "as_operand", "broadcast_error", "normalize_axes"]

SCALARS = (int, float, bool, np.number, np.bool_)


def as_operands(a, b, op: str):
    """Both operands as Tensors on one device; scalars and arrays become constant leaves.

    A Python scalar takes the tensor's dtype, so scalars never change a floating tensor's dtype;
    a float scalar with an integer tensor follows NumPy's promotion (float64).
    add, sub, mul and div first test inline for the common case, two Tensors on the CPU, which
    needs nothing done: one call less per op (5% of benchmarks.overhead).
    """
    if isinstance(a, Tensor):
        return a, as_operand(b, a, op)
    return as_operand(a, b, op), b


def as_operand(x, like: Tensor, op: str) -> Tensor:
    data = like.data
    if x.__class__ is float and data.dtype.kind == "f":  # the common case, first: a NumPy scalar of
        return Tensor._wrap(data.dtype.type(x))         # the tensor's dtype (cheaper than a 0-d array)
    if isinstance(x, Tensor):
        other = x.data
        if other.__class__ is not data.__class__ or (data.__class__ is not np.ndarray
                                                     and other.device != data.device):
            raise RuntimeError(f"{op}: operands are on different devices ({like.device} and {x.device}); "
                               "move one with .to(device) first")
        return x
    if isinstance(x, SCALARS):
        kind = data.dtype.kind
        dtype = data.dtype if kind in "fc" or not isinstance(x, (float, np.floating)) else None
        return Tensor._wrap(array_module(data).asarray(x, dtype=dtype))
    if isinstance(x, backend.ARRAY_TYPES):
        if backend.array_device(x) != like.device:
            raise RuntimeError(f"{op}: an array on {backend.array_device(x)} met a tensor on {like.device}; "
                               "move one with .to(device) or pass an array of the tensor's device")
        return Tensor._wrap(x)
    if isinstance(x, (list, tuple)):
        return Tensor._wrap(backend.to_device(np.asarray(x, dtype=data.dtype), like.device))
    raise TypeError(f"{op}: unsupported operand of type {type(x).__name__}; "
                    "use a Tensor, a Python number or an array of the tensor's device")


def broadcast_error(op: str, error: ValueError, *operands) -> ValueError:
    """What an elementwise op raises when the array module refused its operands: for shapes that
    do not broadcast, an error naming the op and the shapes and saying what to do; else `error`.
    operands: anything with a shape (Tensors, arrays)."""
    shapes = [tuple(t.shape) for t in operands]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return ValueError(f"{op}: shapes {' and '.join(map(str, shapes))} do not broadcast (aligned from the "
                          "right, the sizes on each axis must match or be 1); reshape an operand first "
                          "(x.reshape(...), or x[:, None] for a new axis of size 1)")
    return error


def normalize_axes(axis, ndim: int) -> tuple:
    """Normalize an axis argument (None, int or tuple, negatives allowed) to a sorted tuple."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
            raise IndexError(f"axis {a} is out of range for a tensor of {ndim} dimension(s)")
    return tuple(sorted({a % ndim for a in axes})) if ndim else ()
