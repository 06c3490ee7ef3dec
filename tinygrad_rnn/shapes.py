"""Shape and indexing ops: reshape, permute, transpose, broadcast_to, getitem, narrow, cat,
stack, split, chunk. Each forward beside its backward, as in ops.py (which re-exports them).

Their backward moves or scatters the gradient without arithmetic; slices return an
IndexedGrad, which the engine adds into one buffer per input instead of a zero array per slice.
"""
from __future__ import annotations

import builtins

import numpy as np

from .autograd import IndexedGrad, make
from .backend import array_module
from .operands import normalize_axis
from .tensor import Tensor

__all__ = ["reshape", "permute", "transpose", "broadcast_to", "getitem", "narrow", "cat", "stack", "split",
           "chunk"]


def reshape(a: Tensor, shape) -> Tensor:
    """y = a with a new shape (same number of entries);  dL/da = g reshaped back"""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    in_shape = a.data.shape
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {in_shape} ({a.data.size} entries) "
                         f"into {shape}") from None
    return make(out, (a,), lambda _, g: (g.reshape(in_shape),), "reshape")


def permute(a: Tensor, dims) -> Tensor:
    """y = a with its axes reordered by dims;  dL/da = g with the inverse order"""
    dims = tuple(d % a.ndim for d in dims) if a.ndim else ()
    if sorted(dims) != list(range(a.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {a.ndim} axes of shape {a.shape}")
    inverse = tuple(np.argsort(dims))
    return make(a.data.transpose(dims), (a,), lambda _, g: (g.transpose(inverse),), "permute")


def transpose(a: Tensor, dim0: int = -2, dim1: int = -1) -> Tensor:
    """y = a with axes dim0 and dim1 swapped (PyTorch's transpose);  dL/da = g swapped back"""
    dims = list(range(a.ndim))
    dim0, dim1 = normalize_axis(dim0, a.ndim, "transpose"), normalize_axis(dim1, a.ndim, "transpose")
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(a, dims)


def broadcast_to(a: Tensor, shape) -> Tensor:
    """y = a broadcast to shape;  dL/da = g summed over the broadcast axes (by the engine)"""
    out = array_module(a.data).broadcast_to(a.data, tuple(shape))
    return make(out, (a,), lambda _, g: (g,), "broadcast_to")


def getitem(a: Tensor, index) -> Tensor:
    """y = a[index] (slices, integers, integer arrays, boolean masks);
    dL/da = g at index, zero elsewhere (repeated indices accumulate)"""
    ad = a.data
    if index.__class__ is int:  # x[t] and s[0], as the per-step layers index: a basic index, which
        try:                    # NumPy and CuPy both bound-check themselves (the fast path)
            out = ad[index]
        except IndexError as error:
            raise IndexError(f"getitem: {error} (tensor of shape {ad.shape})") from None
        return make(out, (a,), lambda _, g: (IndexedGrad(index, g, True),), "getitem")
    index = _plain_index(index)
    try:
        out = ad[index]
    except IndexError as error:
        raise IndexError(f"getitem: {error} (tensor of shape {ad.shape})") from None
    basic = _is_basic(index)
    if not basic and ad.__class__ is not np.ndarray:
        _check_integer_indices(index, ad.shape)
    return make(array_module(a.data).asarray(out), (a,), lambda _, g: (IndexedGrad(index, g, basic),), "getitem")


def _check_integer_indices(index, shape: tuple) -> None:
    """Raise IndexError, as NumPy does, for an integer-array entry of `index` that lies outside its
    axis (-n <= i < n): CuPy wraps such indices around instead, a silent wrong result."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [p if hasattr(p, "dtype") else np.asarray(p) if isinstance(p, list) else None for p in parts]
    taken = builtins.sum(0 if p is None or p is Ellipsis else 1 if a is None or a.dtype != bool else a.ndim
                         for p, a in zip(parts, arrays))
    axis = 0
    for part, array in zip(parts, arrays):
        if part is None:
            continue
        if part is Ellipsis:
            axis += len(shape) - taken
        elif array is not None and array.dtype == bool:
            axis += array.ndim
        else:
            if array is not None and array.size:
                n, lo, hi = shape[axis], int(array.min()), int(array.max())
                if lo < -n or hi >= n:
                    raise IndexError(f"getitem: index {hi if hi >= n else lo} is out of bounds for axis {axis} "
                                     f"with size {n} (tensor of shape {shape})")
            axis += 1


def _plain_index(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _is_basic(index) -> bool:
    """True for indices made of ints, slices, None and Ellipsis only (no entry is repeated)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis), np.integer)) or
               (getattr(i, "dtype", None) is not None and i.dtype == bool) for i in parts)


def cat(tensors, axis: int = 0) -> Tensor:
    """y = the tensors joined along axis;  dL/da_i = the slice of g that a_i filled"""
    tensors = _same_device(tensors, "cat")
    xp = array_module(tensors[0].data)
    datas = [t.data for t in tensors]
    if datas[0].ndim == 0:
        raise ValueError("cat: 0-d tensors have no axis to join along; use tr.stack, which adds one")
    axis = normalize_axis(axis, datas[0].ndim, "cat")
    try:
        out = xp.concatenate(datas, axis=axis)
    except ValueError:
        raise ValueError(f"cat: shapes {[d.shape for d in datas]} cannot be joined along axis {axis}: "
                         "all other axes must match") from None
    bounds = np.cumsum([0] + [d.shape[axis] for d in datas])
    lead = (slice(None),) * axis
    return make(out, tuple(tensors),
                lambda _, g: tuple(g[lead + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:])), "cat")


def stack(tensors, axis: int = 0) -> Tensor:
    """y = the tensors stacked along a new axis;  dL/da_i = g[..., i, ...] along that axis"""
    tensors = _same_device(tensors, "stack")
    xp = array_module(tensors[0].data)
    datas = [t.data for t in tensors]
    axis = normalize_axis(axis, datas[0].ndim + 1, "stack")  # the new axis may come last
    try:
        out = xp.stack(datas, axis=axis)
    except ValueError:
        raise ValueError(f"stack: all tensors need the same shape, got {[d.shape for d in datas]}") from None
    lead = (slice(None),) * axis
    return make(out, tuple(tensors), lambda _, g: tuple(g[lead + (i,)] for i in range(len(datas))), "stack")


def _same_device(tensors, op: str) -> list:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    if not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{op}: expects a sequence of Tensors")
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise RuntimeError(f"{op}: tensors are on different devices ({', '.join(sorted(devices))}); "
                           "move them to one with .to(device)")
    return tensors


def narrow(a: Tensor, axis: int, start: int, length: int) -> Tensor:
    """y = a[start:start + length] along axis (PyTorch's narrow);  dL/da = g in that slice, zero elsewhere"""
    index = (slice(None),) * normalize_axis(axis, a.ndim, "narrow") + (slice(start, start + length),)
    return make(a.data[index], (a,), lambda _, g: (IndexedGrad(index, g, True),), "slice")


def split(a: Tensor, split_size_or_sections, axis: int = 0) -> tuple:
    """Pieces of a along axis: of size split_size each (the last may be smaller), or of the
    listed sizes (as PyTorch's split)."""
    axis = normalize_axis(axis, a.ndim, "split")
    length = a.data.shape[axis]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split size must be positive, got {split_size_or_sections}")
        sizes = [split_size_or_sections] * (length // split_size_or_sections)
        if length % split_size_or_sections or not length:  # an empty axis splits into one empty piece
            sizes.append(length % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} add up to {builtins.sum(sizes)}, "
                             f"but axis {axis} of shape {a.shape} has {length}")
    bounds = np.cumsum([0] + sizes)
    return tuple(narrow(a, axis, int(lo), int(hi - lo)) for lo, hi in zip(bounds[:-1], bounds[1:]))


def chunk(a: Tensor, chunks: int, axis: int = 0) -> tuple:
    """a split into `chunks` pieces along axis, each of size ceil(n / chunks) but the last."""
    if chunks <= 0:
        raise ValueError(f"chunk: number of chunks must be positive, got {chunks}")
    length = a.data.shape[normalize_axis(axis, a.ndim, "chunk")]
    if not length:  # as PyTorch: an empty axis gives `chunks` empty pieces
        return tuple(narrow(a, axis, 0, 0) for _ in range(chunks))
    return split(a, builtins.max(1, -(-length // chunks)), axis)
