"""What an op's operands become, and the errors they raise: Tensors on one device from whatever
the caller passed (Tensors, Python scalars, arrays, lists), the message for shapes that do not
broadcast, and axis arguments in one normal form. ops.py calls these; nothing here records a graph.
"""
from __future__ import annotations

import builtins

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["SCALARS", "as_operands", "as_operand", "broadcast_error", "normalize_axis", "normalize_axes"]

SCALARS = (int, float, bool, np.number, np.bool_)
_PYTHON_DTYPES = {bool: np.dtype(bool), int: np.dtype(np.int64), float: np.dtype(np.float64)}  # looked up, not computed


def as_operands(a, b, op: str):
    """Both operands as Tensors on one device; scalars and arrays become constant leaves.

    A Python number (or list of numbers) takes the tensor's dtype where that loses nothing (see
    _values_dtype), so numbers never change a floating tensor's dtype; otherwise NumPy's promotion
    decides: a float with an integer tensor gives float64, a number with a boolean tensor int64.
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
    if isinstance(x, SCALARS):  # a NumPy scalar, as above: no 0-d array to make (and copy to a GPU)
        values = _PYTHON_DTYPES.get(x.__class__) or np.asarray(x).dtype
        return Tensor._wrap((_values_dtype(values, data.dtype) or values).type(x))
    if isinstance(x, backend.ARRAY_TYPES):
        if backend.array_device(x) != like.device:
            raise RuntimeError(f"{op}: an array on {backend.array_device(x)} met a tensor on {like.device}; "
                               "move one with .to(device) or pass an array of the tensor's device")
        return Tensor._wrap(x)
    if isinstance(x, (list, tuple)):
        values = np.asarray(x)
        return Tensor._wrap(backend.to_device(values.astype(_values_dtype(values.dtype, data.dtype) or values.dtype,
                                                            copy=False), like.device))
    raise TypeError(f"{op}: unsupported operand of type {type(x).__name__}; "
                    "use a Tensor, a Python number or an array of the tensor's device")


def _values_dtype(values: np.dtype, tensor: np.dtype):
    """The dtype numbers of dtype `values` take beside a tensor of dtype `tensor`: the tensor's,
    where every such number fits its kind (any real number beside a floating tensor, integers
    beside an integer tensor, booleans beside a boolean one); None where it would truncate (0.5
    beside integers, 2 beside booleans), which leaves the promotion to NumPy."""
    kind, of = tensor.kind, values.kind
    if (kind in "fc" and of in "biuf") or (kind in "iu" and of in "biu") or (kind == "b" and of == "b"):
        return tensor
    return None


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


def normalize_axis(axis, ndim: int, op: str) -> int:
    """One axis (negatives count from the end) as an index in [0, ndim), or an IndexError naming op."""
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        allowed = f"from {-ndim} to {ndim - 1}" if ndim else "none: a 0-d tensor has no axes"
        raise IndexError(f"{op}: axis {axis!r} is out of range for a tensor of {ndim} dimension(s) "
                         f"(allowed: {allowed})")
    return int(axis) % ndim


def normalize_axes(axis, ndim: int, op: str) -> tuple:
    """An axis argument of a reduction (None for all, an int or a tuple, negatives allowed) as a
    sorted tuple; a 0-d tensor takes axis 0 or -1, as in PyTorch."""
    if axis is None:
        return tuple(range(ndim))
    given = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = [normalize_axis(a, builtins.max(ndim, 1), op) for a in given]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: axis {axis} names an axis more than once")
    return tuple(sorted(axes)) if ndim else ()
