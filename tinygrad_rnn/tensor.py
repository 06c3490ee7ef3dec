"""Tensor: an array (NumPy or CuPy) that may remember the op that made it.

A Tensor made by an op while gradients are recorded is a node of the graph (see autograd.py):
``_parents`` are its inputs, ``_backward`` the function that maps its gradient to theirs,
``_op``/``_step``/``_scope`` say what made it, at which time step, inside which module, and
``name`` is an optional label ("h", "c", "f" for a forget gate) that drawings and the tracer read.
``_index`` numbers tensors in the order they were made, so an op's output always has a larger
index than its inputs: the engine sweeps a graph in decreasing index without sorting it.
The operators below are explicit one-line methods that call the ops in ops.py.
"""
from __future__ import annotations

import itertools

import numpy as np

from . import backend

__all__ = ["Tensor", "RemovableHandle"]

next_creation_index = itertools.count().__next__  # every tensor is numbered as it is made


class Tensor:
    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op", "_step", "_scope",
                 "name", "_hooks", "_retain", "_index", "__weakref__")
    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__
    __hash__ = object.__hash__  # == is elementwise, so hashing stays by identity

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = _as_array(data, dtype, device)
        self.grad = None
        self._parents = ()
        self._backward = None
        self._op = "leaf"
        self._step = _autograd._step  # the time step and scope active now (see autograd)
        self._scope = _autograd._scope
        self.name = None
        self._hooks = None
        self._retain = False
        self._index = next_creation_index()
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array) -> "Tensor":
        """A constant leaf around an existing backend array, without copies or checks, stamped
        with the current time step and scope."""
        out = cls.__new__(cls)
        out.data = array
        out.grad = None
        out.requires_grad = False
        out._parents = ()
        out._backward = None
        out._op = "leaf"
        out._step = _autograd._step  # a constant made inside time_step(t) belongs to step t
        out._scope = _autograd._scope
        out.name = None
        out._hooks = None
        out._retain = False
        out._index = next_creation_index()
        return out

    # ------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.array_device(self.data)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (or that do not require grad), not by an op."""
        return self._backward is None

    @property
    def op(self) -> str:
        """The name of the op that made this tensor ("leaf" for user-made tensors)."""
        return self._op

    @property
    def step(self):
        """The time step active when this tensor was made (None outside time_step blocks)."""
        return self._step

    @property
    def scope(self) -> str:
        """The module scope active when this tensor was made, e.g. "lstm.l0.reverse"."""
        return self._scope

    @property
    def parents(self) -> tuple:
        """The op inputs this node keeps (empty for leaves and freed nodes); read-only use."""
        return self._parents

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        """The rows of the first axis, each a node of the graph (t[0], t[1], ...)."""
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __bool__(self) -> bool:
        """The truth of a one-element tensor (`if loss < 1:`); ambiguous for more, as in PyTorch."""
        if self.data.size != 1:
            raise RuntimeError(f"bool: the truth value of a tensor of shape {self.shape} is ambiguous; reduce it "
                               "to one element first (t.sum() > 0, or bool(t.numpy().all()))")
        return bool(self.data.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="Tensor(", threshold=20)
        extras = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.requires_grad:
            extras.append("requires_grad=True" if self.is_leaf else f"op={self._op}")
        return f"Tensor({body}, {', '.join(extras)})"

    # ------------------------------------------------------------ conversions
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (a host copy for GPU tensors; shares memory on the CPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a number, this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device) -> "Tensor":
        """This tensor on `device`: itself if it is already there, else a copy that stays in the
        graph (the gradient flows back to this device), as PyTorch's .to()."""
        return _ops.to_device(self, backend.normalize_device(device))

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        return self.to(f"cuda:{index}")

    def detach(self) -> "Tensor":
        """The same values (shared memory) as a new leaf with no graph: gradients stop here.
        Its op is "detach", so drawings can show where a graph was cut (truncated BPTT)."""
        out = Tensor._wrap(self.data)
        out._op = "detach"
        return out

    def astype(self, dtype) -> "Tensor":
        return _ops.astype(self, dtype)

    def float(self) -> "Tensor":
        return _ops.astype(self, np.float32)

    def double(self) -> "Tensor":
        return _ops.astype(self, np.float64)

    # ------------------------------------------------------------ autograd
    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"requires_grad: only floating tensors can require gradients, this one is "
                            f"{self.data.dtype}; create it with dtype=float32 or float64")
        if not self.is_leaf:
            raise RuntimeError("requires_grad_: can only be changed on leaf tensors; use detach() first")
        self.requires_grad = bool(flag)
        return self

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor into the .grad of every leaf it depends on."""
        _autograd.backward(self, grad, retain_graph)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in .grad after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self._retain = True

    def register_hook(self, fn) -> "RemovableHandle":
        """Call fn(grad) when this tensor's gradient is computed; a returned Tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = fn
        return handle

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------ arithmetic
    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __truediv__(self, other): return _ops.div(self, other)
    def __rtruediv__(self, other): return _ops.div(other, self)
    def __pow__(self, other): return _ops.pow(self, other)
    def __rpow__(self, other): return _ops.pow(other, self)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __rmatmul__(self, other): return _ops.matmul(other, self)
    def __neg__(self): return _ops.neg(self)
    def __getitem__(self, index): return _ops.getitem(self, index)

    # comparisons give boolean tensors that carry no gradient
    def __lt__(self, other): return _ops.compare(self, other, "lt")
    def __le__(self, other): return _ops.compare(self, other, "le")
    def __gt__(self, other): return _ops.compare(self, other, "gt")
    def __ge__(self, other): return _ops.compare(self, other, "ge")
    def __eq__(self, other): return False if other is None else _ops.compare(self, other, "eq")  # x == None: False,
    def __ne__(self, other): return True if other is None else _ops.compare(self, other, "ne")   # as in PyTorch

    # ------------------------------------------------------------ elementwise
    def exp(self): return _ops.exp(self)
    def log(self): return _ops.log(self)
    def tanh(self): return _ops.tanh(self)
    def sigmoid(self): return _ops.sigmoid(self)
    def relu(self): return _ops.relu(self)
    def abs(self): return _ops.abs(self)
    def sqrt(self): return _ops.sqrt(self)
    def clip(self, min=None, max=None): return _ops.clip(self, min, max)

    # ------------------------------------------------------------ reductions
    def sum(self, axis=None, keepdims=False): return _ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _ops.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _ops.max(self, axis, keepdims)
    def argmax(self, axis=None): return Tensor._wrap(self.data.argmax(axis=axis))

    # ------------------------------------------------------------ shape
    def reshape(self, *shape): return _ops.reshape(self, shape[0] if len(shape) == 1 else shape)
    def transpose(self, dim0=-2, dim1=-1): return _ops.transpose(self, dim0, dim1)
    def permute(self, *dims):  # permute(1, 0), permute((1, 0)), and permute(0) on a 1-D tensor
        return _ops.permute(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], (int, np.integer)) else dims)
    @property
    def T(self): return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))
    def split(self, split_size_or_sections, axis=0): return _ops.split(self, split_size_or_sections, axis)
    def chunk(self, chunks, axis=0): return _ops.chunk(self, chunks, axis)


class RemovableHandle:
    """Returned by register_hook; remove() unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


def _as_array(data, dtype, device):
    """A backend array from user data: floats get the default dtype unless `dtype` says otherwise."""
    dtype = None if dtype is None else backend.as_dtype(dtype)
    if isinstance(data, backend.ARRAY_TYPES):
        _check_numeric(data.dtype, data)
        target = backend.array_device(data) if device is None else backend.normalize_device(device)
        array = backend.to_device(data, target)
        return array.astype(dtype or array.dtype, copy=array is data)  # never alias the caller's array
    array = np.asarray(data)
    _check_numeric(array.dtype, data)
    if dtype is None and array.dtype.kind == "f" and not isinstance(data, np.generic):
        dtype = backend.default_dtype()
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return backend.to_device(array, backend.normalize_device(device))


def _check_numeric(dtype: np.dtype, data) -> None:
    if dtype.kind not in "biufc":
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} (it gives a NumPy array of "
                        f"dtype {dtype}); use numbers, nested lists of numbers, or numeric arrays")


from . import autograd as _autograd  # noqa: E402  (the engine and the ops build on Tensor)
from . import ops as _ops  # noqa: E402
