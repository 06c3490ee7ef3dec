"""Module and Parameter: the containers every layer is built from (PyTorch's names and habits).

A Module's parameters are the Parameter attributes it holds, and those of the Modules it holds
(directly, or in a list or tuple attribute), in the order they were assigned; their qualified
names ("rnn.weight_hh_l0") are the state_dict keys. Calling a module runs `forward` inside its
scope, so every node of the graph it builds carries the module's place in the model.
"""
from __future__ import annotations

import collections

import numpy as np

from .. import autograd, backend
from ..tensor import Tensor

__all__ = ["Module", "Parameter", "ModuleList", "IncompatibleKeys"]

IncompatibleKeys = collections.namedtuple("IncompatibleKeys", "missing_keys unexpected_keys")
IncompatibleKeys.__doc__ = "What load_state_dict(strict=False) passed over (PyTorch's NamedTuple of the same fields)."


class Parameter(Tensor):
    """A leaf Tensor that a Module owns and optimizers update; requires_grad=True by default."""
    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None, device=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of layers and models: subclasses set attributes in __init__ and define forward."""

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_name", type(self).__name__.lower())

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Module):
            _rename(value, name)  # the child's scope is its attribute name
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, Module):
                    _rename(item, f"{name}.{i}")
        object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        with autograd.scope(self._name):
            return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ traversal
    def named_children(self):
        """(name, module) for each direct submodule; list members are named "layers.0", ..."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_modules(self, prefix: str = ""):
        """(qualified name, module) for this module ("") and every submodule, depth first."""
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(children))

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True):
        """(qualified name, Parameter) pairs in assignment order: each parameter once, or with
        remove_duplicate=False under every name it has (a weight tied between two modules)."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and (not remove_duplicate or id(value) not in seen):
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def parameters(self) -> list:
        return [p for _, p in self.named_parameters()]

    def children(self) -> list:
        return [m for _, m in self.named_children()]

    # ------------------------------------------------------------ modes and devices
    def zero_grad(self) -> None:
        """Forget every parameter's gradient (set .grad to None)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active) for this module and all submodules."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off)."""
        return self.train(False)

    def to(self, device=None, dtype=None) -> "Module":
        """Move (and/or cast) every parameter in place, keeping their identity, so an optimizer
        made before the move keeps working. Returns self. As in PyTorch, a dtype may come first:
        model.to(np.float64) or model.to("float64")."""
        if dtype is None and device is not None and not _names_a_device(device):
            try:
                device, dtype = None, backend.as_dtype(device)
            except TypeError:
                pass  # not a dtype either: normalize_device names it as an unknown device
        device = None if device is None else backend.normalize_device(device)
        dtype = None if dtype is None else backend.as_dtype(dtype)
        for p in self.parameters():
            p.data = _moved(p.data, device, dtype)
            if p.grad is not None:
                p.grad.data = _moved(p.grad.data, device, dtype)
        return self

    def double(self) -> "Module":
        return self.to(dtype=np.float64)

    def float(self) -> "Module":
        return self.to(dtype=np.float32)

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """{qualified name: NumPy array copy} of every parameter under each of its names (a tied
        weight under both, as PyTorch; PyTorch's keys for its layers)."""
        return {name: backend.to_numpy(p.data).copy() for name, p in self.named_parameters(remove_duplicate=False)}

    def load_state_dict(self, state: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters (cast to each parameter's dtype and device); returns
        IncompatibleKeys(missing_keys, unexpected_keys), which strict=True requires to be empty.

        Raises KeyError listing every missing and unexpected key (when strict; the message also
        lists any shape mismatch) and otherwise ValueError listing every shape mismatch, before
        changing anything.
        """
        params = dict(self.named_parameters(remove_duplicate=False))
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        arrays = {k: _host_array(v) for k, v in state.items() if k in params}
        mismatched = [f"{k}: expected {params[k].shape}, got {tuple(a.shape)}"
                      for k, a in arrays.items() if tuple(a.shape) != params[k].shape]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if problems:
            if mismatched:
                problems.append("shape mismatch for " + "; ".join(mismatched))
            raise KeyError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        if mismatched:
            raise ValueError(f"load_state_dict into {type(self).__name__}: shape mismatch for " + "; ".join(mismatched))
        for k, array in arrays.items():
            p = params[k]
            p.data = backend.to_device(array.astype(p.dtype), p.device)
        return IncompatibleKeys(missing, unexpected)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self.named_children()]
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(([extra] if extra else []) + children) + "\n)"


class ModuleList(Module):
    """A list of modules whose parameters belong to the owner (named "0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        self.items = []
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> None:
        _rename(module, f"{self._name}.{len(self.items)}")
        self.items.append(module)

    def named_children(self):
        for i, m in enumerate(self.items):
            yield str(i), m

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


def _rename(module: Module, name: str) -> None:
    """Set the scope name of a module (and of a ModuleList's members: "blocks.0", ...)."""
    object.__setattr__(module, "_name", name)
    if isinstance(module, ModuleList):
        for i, member in enumerate(module.items):
            object.__setattr__(member, "_name", f"{name}.{i}")


def _names_a_device(value) -> bool:
    """True for "cpu", "cuda", "cuda:N" (any case); False for dtypes and their names."""
    return isinstance(value, str) and value.strip().lower().split(":")[0] in ("cpu", "cuda")


def _moved(array, device, dtype):
    if device is not None:
        array = backend.to_device(array, device)
    if dtype is not None and array.dtype != dtype:
        array = array.astype(dtype)
    return array


def _host_array(value) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.numpy()
    return backend.to_numpy(value) if isinstance(value, backend.ARRAY_TYPES) else np.asarray(value)
