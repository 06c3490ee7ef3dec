"""Devices and array modules: the only module that knows CuPy exists.

A device is a string: ``"cpu"`` (NumPy arrays) or ``"cuda"`` / ``"cuda:N"`` (CuPy arrays on GPU N).
Every op is written once against an array module ``xp`` obtained from :func:`array_module`, so
the same code runs on both backends.
"""
from __future__ import annotations

import os

import numpy as np

try:  # CuPy is optional: `pip install tinygrad-rnn[gpu]`
    import cupy as _cupy
except Exception:  # ImportError, or a CuPy build that cannot find its CUDA libraries
    _cupy = None

__all__ = [
    "array_module", "array_device", "ARRAY_TYPES", "cuda_available", "normalize_device",
    "to_device", "to_numpy", "default_device", "set_default_device", "default_dtype",
    "set_default_dtype", "as_dtype", "seed_all", "random_state",
]

ARRAY_TYPES: tuple = (np.ndarray,) if _cupy is None else (np.ndarray, _cupy.ndarray)

_GPU_INSTALL_HINT = ("install CuPy with `pip install tinygrad-rnn[gpu]` (CuPy for CUDA 12; from a checkout "
                     "`pip install -e '.[gpu]'`, or CuPy alone: `pip install cupy-cuda12x`)")


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def normalize_device(device) -> str:
    """Canonical device string: "cpu" or "cuda:N". Raises a clear error for an unusable device."""
    if device is None:
        return default_device()
    name = str(device).strip().lower()
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        index = 0 if name == "cuda" else name[5:]
        try:
            index = int(index)
        except ValueError:
            raise ValueError(f"device {device!r}: expected 'cuda' or 'cuda:N' with N an integer") from None
        if _cupy is None:
            raise RuntimeError(f"device {device!r} needs CuPy, which is not installed: {_GPU_INSTALL_HINT}")
        count = _cupy.cuda.runtime.getDeviceCount() if cuda_available() else 0
        if count == 0:
            raise RuntimeError(f"device {device!r}: CuPy is installed but no CUDA device is visible "
                               "(check the driver with `nvidia-smi`, or use device='cpu')")
        if not 0 <= index < count:
            raise RuntimeError(f"device {device!r}: only {count} CUDA device(s) present (cuda:0..cuda:{count - 1})")
        return f"cuda:{index}"
    raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'")


_default_device = None  # resolved lazily from TINYGRAD_RNN_DEVICE on first use


def default_device() -> str:
    """The device new tensors go to: set_default_device(), else $TINYGRAD_RNN_DEVICE, else "cpu"."""
    global _default_device
    if _default_device is None:
        name = os.environ.get("TINYGRAD_RNN_DEVICE", "").strip() or "cpu"  # set but empty: unset
        try:
            _default_device = _made_current(normalize_device(name))
        except (ValueError, RuntimeError) as error:
            raise type(error)(f"the environment variable TINYGRAD_RNN_DEVICE={name!r} names the default device: "
                              f"{error} (unset it or set it to 'cpu' to work on the CPU)") from None
    return _default_device


def set_default_device(device) -> None:
    """Make `device` ("cpu", "cuda", "cuda:N") the default for tensors created afterwards."""
    global _default_device
    _default_device = _made_current(normalize_device(device))


def _made_current(device: str) -> str:
    """`device`, made CuPy's current device when it is a GPU: CuPy runs every kernel and allocates
    every array of an op on its current device, so a default cuda:1 must be current to work. (Tensors
    on two GPUs in one program are not supported: ops between them raise, naming both.)"""
    if device != "cpu":
        _cupy.cuda.Device(int(device[5:])).use()
    return device


def array_device(array) -> str:
    """The device string of a backend array (NumPy arrays and scalars are "cpu")."""
    if isinstance(array, (np.ndarray, np.generic)):
        return "cpu"
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return f"cuda:{array.device.id}"
    raise TypeError(f"expected a NumPy or CuPy array, got {type(array).__name__}")


def array_module(array):
    """NumPy for CPU arrays, CuPy for GPU arrays: the `xp` every op is written against."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy
    return np


_ONES = {}  # dtype -> a read-only 0-d NumPy array holding 1


def one(like):
    """1 for arithmetic with `like`: a 0-d NumPy array of like's dtype for NumPy arrays, which
    NumPy adds to a small array about 1.5x faster than a Python float (no scalar conversion, no
    weak-scalar promotion); the Python float 1.0 for CuPy arrays, which pass scalars to their
    kernels as arguments."""
    if like.__class__ is not np.ndarray:
        return 1.0
    found = _ONES.get(like.dtype)
    if found is None:
        found = _ONES[like.dtype] = np.ones((), dtype=like.dtype)
        found.flags.writeable = False
    return found


def module_for(device: str):
    """The array module of a canonical device string."""
    return np if device == "cpu" else _cupy


def to_device(array, device: str):
    """A copy of `array` on `device` (canonical string); the same array if it is already there."""
    if device == "cpu":
        return to_numpy(array)
    index = int(device[5:])
    if isinstance(array, _cupy.ndarray) and array.device.id == index:
        return array
    with _cupy.cuda.Device(index):
        return _cupy.asarray(array)


def to_numpy(array) -> np.ndarray:
    """A NumPy array holding the same values (a host copy for GPU arrays)."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return np.asarray(array)




# ---------------------------------------------------------------- dtypes
_default_dtype = np.dtype(np.float32)
_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def default_dtype() -> np.dtype:
    """The floating dtype of tensors made from Python floats, factories and parameters."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Make `dtype` (float32 or float64, a NumPy dtype or its name) the default floating dtype."""
    global _default_dtype
    dtype = as_dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(f"set_default_dtype: {dtype} is not a floating dtype (use float32 or float64)")
    _default_dtype = dtype


def as_dtype(dtype) -> np.dtype:
    """np.dtype from a NumPy dtype, a type or a name such as "float64"; a clear error otherwise."""
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}: use a NumPy dtype or a name like 'float32'") from None


def is_floating(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


# ---------------------------------------------------------------- random numbers
_rng_seed = None
_generator = None  # made on first use from _rng_seed (None: fresh entropy)


def seed_all(seed: int) -> None:
    """Reseed the generator random_state gives: the same seed gives the same numbers on every backend."""
    global _rng_seed, _generator
    _rng_seed, _generator = int(seed), None


def random_state() -> np.random.Generator:
    """The one seeded generator every random draw comes from (factories, init, dropout, the
    reservoirs, teacher forcing's coins, sampling): NumPy's, on the host. Draws are moved to their
    device afterwards, so a seed gives the same numbers on every backend."""
    global _generator
    if _generator is None:
        _generator = np.random.default_rng(_rng_seed)
    return _generator


def scatter_add(target, index, values) -> None:
    """target[index] += values, in place, with repeated indices accumulating (np.add.at)."""
    if _cupy is not None and isinstance(target, _cupy.ndarray):
        import cupyx
        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)
