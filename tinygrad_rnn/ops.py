"""Primitive ops: each forward beside its backward, with the formula in one line.

An op reads its inputs' arrays, computes the result with the array module of their device
(written once for NumPy and CuPy), and hands ``make`` its ``backward(out, g)``: given the node
(``out.data`` is the result, ``out._parents`` the inputs) and its gradient g, one gradient per
input (None where an input needs none). Most read what they need from the node and are plain
functions right below their forward; the others are closures over what the node does not hold
(an axis, a mask). Gradients whose shape differs from their input's (broadcasting) are summed
back by the engine, not here. Arithmetic, elementwise ops and reductions live here; the shape and
indexing ops live in shapes.py and are re-exported at the end; operands.py turns what the caller
passed into Tensors and names the shapes that do not broadcast.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from . import backend
from .autograd import make
from .backend import array_module
from .operands import as_operand, as_operands, broadcast_error, normalize_axes, normalize_axis
from .tensor import Tensor

__all__ = ["add", "sub", "mul", "div", "pow", "neg", "matmul", "exp", "log", "tanh", "sigmoid",
           "relu", "abs", "sqrt", "clip", "sum", "mean", "max", "reshape", "permute", "transpose",
           "broadcast_to", "getitem", "narrow", "cat", "stack", "split", "chunk", "where", "astype", "to_device",
           "log_softmax", "compare", "stable_sigmoid"]

# ---------------------------------------------------------------- arithmetic
def add(a, b) -> Tensor:
    """z = a + b;  dL/da = g, dL/db = g"""
    if not (a.__class__ is b.__class__ is Tensor and a.data.__class__ is b.data.__class__ is np.ndarray):
        a, b = as_operands(a, b, "add")
    try:
        return make(a.data + b.data, (a, b), _add_backward, "add")
    except ValueError as error:
        raise broadcast_error("add", error, a, b) from None


def _add_backward(out, g):
    return g, g


def sub(a, b) -> Tensor:
    """z = a - b;  dL/da = g, dL/db = -g"""
    if not (a.__class__ is b.__class__ is Tensor and a.data.__class__ is b.data.__class__ is np.ndarray):
        a, b = as_operands(a, b, "sub")
    try:
        return make(a.data - b.data, (a, b), _sub_backward, "sub")
    except ValueError as error:
        raise broadcast_error("sub", error, a, b) from None


def _sub_backward(out, g):
    return g, (-g if out._parents[1].requires_grad else None)


def mul(a, b) -> Tensor:
    """z = a * b;  dL/da = g * b, dL/db = g * a"""
    if not (a.__class__ is b.__class__ is Tensor and a.data.__class__ is b.data.__class__ is np.ndarray):
        a, b = as_operands(a, b, "mul")
    try:
        return make(a.data * b.data, (a, b), _mul_backward, "mul")
    except ValueError as error:
        raise broadcast_error("mul", error, a, b) from None


def _mul_backward(out, g):
    a, b = out._parents
    return (g * b.data if a.requires_grad else None,
            g * a.data if b.requires_grad else None)


def div(a, b) -> Tensor:
    """z = a / b;  dL/da = g / b, dL/db = -g * z / b"""
    if not (a.__class__ is b.__class__ is Tensor and a.data.__class__ is b.data.__class__ is np.ndarray):
        a, b = as_operands(a, b, "div")
    try:
        return make(a.data / b.data, (a, b), _div_backward, "div")
    except ValueError as error:
        raise broadcast_error("div", error, a, b) from None


def _div_backward(out, g):
    a, b = out._parents
    return (g / b.data if a.requires_grad else None,
            -g * (out.data / b.data) if b.requires_grad else None)


def pow(a, b) -> Tensor:
    """z = a ** b;  dL/da = g * b * a ** (b - 1) (0 where b = 0),
    dL/db = g * z * log(a) (0 where a = 0 and b >= 0; NaN where a < 0, as PyTorch's)"""
    a, b = as_operands(a, b, "pow")
    try:
        return make(a.data ** b.data, (a, b), _pow_backward, "pow")
    except ValueError as error:
        raise broadcast_error("pow", error, a, b) from None


def _pow_backward(out, g):
    a, b = out._parents
    ad, bd = a.data, b.data
    xp = array_module(out.data)  # (the base may be a NumPy scalar: 2.0 ** t)
    ga = gb = None
    if a.requires_grad:
        if bd.ndim == 0 and bd != 0:  # x ** 2 and the like: no zero exponent to mind
            ga = g * bd * ad ** (bd - 1)
        else:  # d(a^0)/da = 0, also at a = 0, where b a^(b-1) would be 0 * inf
            zero = bd == 0
            b1 = xp.where(zero, 1, bd)
            ga = g * xp.where(zero, 0, b1 * ad ** (b1 - 1))
    if b.requires_grad:  # where a = 0 and b >= 0, z is 0 or 1 and log(1) = 0 stands in for log(0)
        gb = g * (out.data * xp.log(xp.where((ad == 0) & (bd >= 0), 1, ad)))
    return ga, gb


def neg(a: Tensor) -> Tensor:
    """z = -a;  dL/da = -g"""
    return make(-a.data, (a,), _neg_backward, "neg")


def _neg_backward(out, g):
    return (-g,)


def matmul(a, b) -> Tensor:
    """z = a @ b (1-D, 2-D or batched);  dL/da = g @ b^T, dL/db = a^T @ g (batch axes summed)"""
    a, b = as_operands(a, b, "matmul")
    ad, bd = a.data, b.data
    _check_matmul(ad, bd)
    try:
        out = ad @ bd
    except ValueError:  # the inner axes align (checked above): the batch axes do not broadcast
        raise ValueError(f"matmul: shapes {ad.shape} and {bd.shape} align, but their batch axes {ad.shape[:-2]} "
                         f"and {bd.shape[:-2]} do not broadcast; reshape one (x[None] adds a batch axis of size 1)"
                         ) from None
    return make(out, (a, b), _matmul_backward, "matmul")


def _matmul_backward(out, g):
    a, b = out._parents
    a_vec, b_vec = a.data.ndim == 1, b.data.ndim == 1  # a 1-D operand is a row (a) or a column (b)
    if a_vec:
        g = g[..., None, :] if not b_vec else g[..., None, None]
    elif b_vec:
        g = g[..., :, None]
    ga = gb = None
    if a.requires_grad:
        ga = g @ (b.data[:, None] if b_vec else b.data).swapaxes(-1, -2)
        ga = ga[..., 0, :] if a_vec else ga
    if b.requires_grad:
        gb = (a.data[None, :] if a_vec else a.data).swapaxes(-1, -2) @ g
        gb = gb[..., 0] if b_vec else gb
    return ga, gb


def _check_matmul(ad, bd) -> None:
    if ad.ndim == 0 or bd.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {ad.shape} and {bd.shape}; "
                         "use * for scaling")
    inner_b = bd.shape[0] if bd.ndim == 1 else bd.shape[-2]
    if ad.shape[-1] != inner_b:
        raise ValueError(f"matmul: shapes {ad.shape} and {bd.shape} do not align: the last axis of the first "
                         f"({ad.shape[-1]}) must equal the {'only' if bd.ndim == 1 else 'second-to-last'} axis "
                         f"of the second ({inner_b})")
    if ad.dtype != bd.dtype:
        raise TypeError(f"matmul: dtypes differ ({ad.dtype} and {bd.dtype}) for shapes {ad.shape} and {bd.shape}; "
                        "convert one with .astype() (models use the default dtype: see set_default_dtype)")


# ---------------------------------------------------------------- elementwise
def exp(a: Tensor) -> Tensor:
    """y = exp(a);  dL/da = g * y"""
    return make(array_module(a.data).exp(a.data), (a,), _exp_backward, "exp")


def _exp_backward(out, g):
    return (g * out.data,)


def log(a: Tensor) -> Tensor:
    """y = log(a);  dL/da = g / a"""
    return make(array_module(a.data).log(a.data), (a,), _log_backward, "log")


def _log_backward(out, g):
    return (g / out._parents[0].data,)


def tanh(a: Tensor) -> Tensor:
    """y = tanh(a);  dL/da = g * (1 + y)(1 - y)"""
    return make(array_module(a.data).tanh(a.data), (a,), _tanh_backward, "tanh")


def _tanh_backward(out, g):
    y = out.data
    one = backend.one(y)
    return (g * ((one + y) * (one - y)),)


def stable_sigmoid(xp, x):
    """1 / (1 + e^-x) without overflow: with e = exp(-|x|), y = 1/(1+e) for x >= 0, else e/(1+e)."""
    e = xp.exp(-xp.abs(x))
    r = 1.0 / (1.0 + e)
    return xp.where(x >= 0, r, e * r)


def sigmoid(a: Tensor) -> Tensor:
    """y = 1 / (1 + exp(-a)), computed stably;  dL/da = g * y * (1 - y)"""
    return make(stable_sigmoid(array_module(a.data), a.data), (a,), _sigmoid_backward, "sigmoid")


def _sigmoid_backward(out, g):
    y = out.data
    return (g * y * (backend.one(y) - y),)


def relu(a: Tensor) -> Tensor:
    """y = max(a, 0);  dL/da = g * [a > 0], and g where a is NaN (as PyTorch: 0 only where a <= 0)"""
    return make(array_module(a.data).maximum(a.data, 0), (a,), _relu_backward, "relu")


def _relu_backward(out, g):
    return (array_module(out.data).where(out._parents[0].data <= 0, 0, g),)


def abs(a: Tensor) -> Tensor:
    """y = |a|;  dL/da = g * sign(a), with sign(NaN) = 0 as PyTorch's"""
    return make(array_module(a.data).abs(a.data), (a,), _abs_backward, "abs")


def _abs_backward(out, g):
    xp = array_module(out.data)
    sign = xp.sign(out._parents[0].data)  # a / |a| for complex a
    return (g * xp.where(xp.isnan(sign), 0, sign),)


def sqrt(a: Tensor) -> Tensor:
    """y = sqrt(a);  dL/da = g / (2 y)"""
    return make(array_module(a.data).sqrt(a.data), (a,), _sqrt_backward, "sqrt")


def _sqrt_backward(out, g):
    return (g / (2 * out.data),)


def clip(a: Tensor, min=None, max=None) -> Tensor:
    """y = min(max(a, lo), hi);  dL/da = g where lo <= a <= hi, else 0 (as PyTorch's clamp).
    The bounds are numbers, arrays or constant Tensors (no gradient flows to them)."""
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    min, max = (_constant_bound(bound, name) for bound, name in ((min, "min"), (max, "max")))
    ad = a.data
    xp = array_module(a.data)
    inside = xp.ones(ad.shape, dtype=bool)
    if min is not None:
        inside &= ad >= min
    if max is not None:
        inside &= ad <= max
    return make(xp.clip(ad, min, max), (a,), lambda _, g: (xp.where(inside, g, 0),), "clip")


def _constant_bound(bound, name: str):
    """A clip bound as a number or an array; a Tensor's array, unless it needs a gradient."""
    if not isinstance(bound, Tensor):
        return bound
    if bound.requires_grad:
        raise ValueError(f"clip: the {name} bound requires grad, which clip does not give it; "
                         f"detach it, or write the bound with tr.where (tr.where(x < lo, lo, x) for min)")
    return bound.data


def to_device(a: Tensor, device: str) -> Tensor:
    """y = a on device (a canonical device string);  dL/da = g moved back to a's device"""
    source = a.device
    if source == device:
        return a
    return make(backend.to_device(a.data, device), (a,), lambda _, g: (backend.to_device(g, source),), "to")


def astype(a: Tensor, dtype) -> Tensor:
    """y = a cast to dtype;  dL/da = g cast back (by the engine). A cast to an integer or boolean
    dtype is a constant, as in PyTorch: no gradient flows through rounding."""
    dtype = backend.as_dtype(dtype)
    out = a.data.astype(dtype)
    if dtype.kind not in "fc":
        return Tensor._wrap(out)
    return make(out, (a,), lambda _, g: (g,), "astype")


def where(condition, a, b) -> Tensor:
    """y = a where condition else b;  dL/da = g * [c], dL/db = g * [not c]"""
    if isinstance(condition, Tensor):
        condition = condition.data
    like = next((t for t in (a, b) if isinstance(t, Tensor)), None)
    if like is None:
        raise TypeError("where: at least one of the two value operands must be a Tensor")
    a, b = as_operand(a, like, "where"), as_operand(b, like, "where")
    xp = array_module(like.data)
    cond = xp.asarray(condition, dtype=bool) if isinstance(condition, backend.ARRAY_TYPES) else \
        backend.to_device(np.asarray(condition, dtype=bool), like.device)

    def backward(_, g):
        return (xp.where(cond, g, 0) if a.requires_grad else None,
                xp.where(cond, 0, g) if b.requires_grad else None)
    try:
        return make(xp.where(cond, a.data, b.data), (a, b), backward, "where")
    except ValueError as error:
        raise broadcast_error("where", error, cond, a, b) from None


def compare(a, b, how: str) -> Tensor:
    """Elementwise comparison (lt, le, gt, ge, eq, ne) as a boolean tensor without gradient."""
    a, b = as_operands(a, b, how)
    xp = array_module(a.data)
    fn = {"lt": xp.less, "le": xp.less_equal, "gt": xp.greater, "ge": xp.greater_equal,
          "eq": xp.equal, "ne": xp.not_equal}[how]
    try:
        return Tensor._wrap(xp.asarray(fn(a.data, b.data)))
    except ValueError as error:
        raise broadcast_error(how, error, a, b) from None


# ---------------------------------------------------------------- reductions
def sum(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """y = sum of a over axis;  dL/da = g broadcast back over the summed axes"""
    shape = a.data.shape
    axes = normalize_axes(axis, a.ndim, "sum")
    xp = array_module(a.data)

    def backward(_, g):
        if not keepdims:
            g = g.reshape(_kept_shape(shape, axes))
        return (xp.broadcast_to(g, shape),)
    return make(xp.asarray(a.data.sum(axis=axes, keepdims=keepdims)), (a,), backward, "sum")


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """y = mean of a over axis;  dL/da = g / n broadcast back, n the number of averaged entries"""
    shape = a.data.shape
    axes = normalize_axes(axis, a.ndim, "mean")
    scale = 1.0 / builtins.max(math.prod(shape[i] for i in axes), 1)
    xp = array_module(a.data)

    def backward(_, g):
        if not keepdims:
            g = g.reshape(_kept_shape(shape, axes))
        return (xp.broadcast_to(g * scale, shape),)
    return make(xp.asarray(a.data.mean(axis=axes, keepdims=keepdims)), (a,), backward, "mean")


def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """y = max of a over axis;  dL/da = g shared equally among the entries equal to the max
    (a NaN is the max of what it is in, and gets the gradient, as in PyTorch)"""
    ad = a.data
    axes = normalize_axes(axis, a.ndim, "max")
    if builtins.any(ad.shape[i] == 0 for i in axes):
        raise ValueError(f"max: cannot reduce over an empty axis (shape {ad.shape}, axis {axis})")
    xp = array_module(a.data)
    top = ad.max(axis=axes, keepdims=True)

    def backward(_, g):
        hit = ((ad == top) | ((ad != ad) & (top != top))).astype(ad.dtype)  # x != x: x is NaN
        share = hit / hit.sum(axis=axes, keepdims=True)
        return ((g if keepdims else g.reshape(top.shape)) * share,)
    return make(xp.asarray(top if keepdims else top.reshape(_reduced_shape(ad.shape, axes))), (a,), backward, "max")


def _reduced_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def log_softmax(a: Tensor, axis: int = -1) -> Tensor:
    """y = a - log(sum(exp(a))) along axis, with the max subtracted first;
    dL/da = g - softmax(a) * sum(g) along axis"""
    xp = array_module(a.data)
    ad = a.data
    axis = normalize_axis(axis, ad.ndim, "log_softmax")
    if ad.shape[axis] == 0:  # nothing to normalize (NumPy's max would refuse the empty axis)
        return make(ad.copy(), (a,), lambda _, g: (g,), "log_softmax")
    shifted = ad - ad.max(axis=axis, keepdims=True)
    y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return make(y, (a,), lambda _, g: (g - xp.exp(y) * g.sum(axis=axis, keepdims=True),), "log_softmax")


from .shapes import (broadcast_to, cat, chunk, getitem, narrow, permute, reshape, split,  # noqa: E402,F401
                     stack, transpose)
