"""tr.save / tr.load: nested dicts of arrays (model and optimizer state_dicts) in one .npz file.

The file is an ordinary NumPy .npz readable with np.load(path, allow_pickle=False): each array
is stored under its path of dict keys joined by "/" ("model/weight_hh_l0"), and a JSON manifest
under "__checkpoint__" records the format version and which entries were Python numbers,
booleans, strings or None, or NumPy scalars (restored as such), and which dicts were empty.
Arrays of Python objects are refused: .npz could store them only by pickling.

Saving is atomic: the data goes to a temporary file in the target's directory, is flushed to
disk, and only then renamed over the target, so a crash mid-write leaves the last good
checkpoint intact. Loading never unpickles.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from . import backend
from .files import atomic_write
from .tensor import Tensor

__all__ = ["save", "load"]

FORMAT = "tinygrad_rnn.checkpoint"
VERSION = 1
_MANIFEST = "__checkpoint__"


def save(state: dict, path) -> str:
    """Write `state` (nested dicts with string keys; leaves arrays, Tensors, numbers, strings,
    None) to `path` atomically. Returns the path."""
    if not isinstance(state, dict):
        raise TypeError(f"save: expects a dict (e.g. {{'model': model.state_dict()}}), got {type(state).__name__}")
    path = os.fspath(path)
    arrays, kinds, empty = {}, {}, []
    _flatten(state, "", arrays, kinds, empty)
    manifest = {"format": FORMAT, "version": VERSION, "kinds": kinds, "empty": empty}
    arrays[_MANIFEST] = np.array(json.dumps(manifest))
    return atomic_write(path, lambda file: np.savez(file, **arrays))


def load(path) -> dict:
    """Read a checkpoint written by save(): the same nested dicts, arrays as NumPy arrays."""
    path = os.fspath(path)
    try:
        data = np.load(path, allow_pickle=False)  # random bytes raise ValueError ("pickled data")
        if not isinstance(data, np.lib.npyio.NpzFile):  # a lone .npy array
            raise ValueError("it holds a single NumPy array, not an .npz archive")
        with data:
            manifest = json.loads(str(data[_MANIFEST])) if _MANIFEST in data.files else None
            arrays = {key: data[key] for key in data.files if key != _MANIFEST}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"load: {path} is not a readable checkpoint (corrupt or truncated?): {error}") from None
    if manifest is None:
        raise ValueError(f"load: {path} is an .npz file but not a tinygrad_rnn checkpoint (no manifest); "
                         "read it with np.load instead")
    if manifest.get("format") != FORMAT or manifest.get("version", 0) > VERSION:
        raise ValueError(f"load: {path} has format {manifest.get('format')!r} version {manifest.get('version')}; "
                         f"this tinygrad_rnn reads {FORMAT!r} up to version {VERSION}")
    return _unflatten(arrays, manifest["kinds"], manifest["empty"])


def _flatten(node: dict, prefix: str, arrays: dict, kinds: dict, empty: list) -> None:
    if not node and prefix:
        empty.append(prefix[:-1])
    for key, value in node.items():
        if not isinstance(key, str) or "/" in key or not key or key == _MANIFEST:
            raise ValueError(f"save: keys must be non-empty strings without '/' (and not {_MANIFEST!r}), "
                             f"got {key!r} under {prefix or 'the top'!r}")
        name = prefix + key
        if isinstance(value, dict):
            _flatten(value, name + "/", arrays, kinds, empty)
        elif isinstance(value, (Tensor, *backend.ARRAY_TYPES)):
            arrays[name] = _storable(value.numpy() if isinstance(value, Tensor) else backend.to_numpy(value), name)
        elif value is None:
            kinds[name] = "none"
            arrays[name] = np.array(0)
        elif isinstance(value, (bool, int, float, str, tuple, list)):
            kinds[name] = "json"
            arrays[name] = np.array(json.dumps(value))
        elif isinstance(value, np.generic):
            kinds[name] = "scalar"
            arrays[name] = _storable(np.asarray(value), name)
        else:
            raise TypeError(f"save: cannot store {type(value).__name__} at {name!r}; use arrays, Tensors, "
                            "numbers, strings, lists of those, or None")


def _storable(array: np.ndarray, name: str) -> np.ndarray:
    """`array` if .npz stores it without pickling, else a TypeError raised before anything is written."""
    if array.dtype.hasobject:
        raise TypeError(f"save: {name!r} is an array of Python objects (dtype {array.dtype}), which .npz can only "
                        "pickle; store numeric arrays (np.asarray(values, dtype=float)) or lists of numbers")
    return array


_KINDS = {"none": lambda array: None, "json": lambda array: json.loads(str(array)),
          "scalar": lambda array: array[()]}  # how an entry saved as a kind comes back (others: as arrays)


def _unflatten(arrays: dict, kinds: dict, empty: list) -> dict:
    root: dict = {}
    for name in empty:
        _slot(root, name.split("/"))
    for name, array in arrays.items():
        parts = name.split("/")
        parent = _slot(root, parts[:-1])
        kind = kinds.get(name)
        parent[parts[-1]] = _KINDS[kind](array) if kind in _KINDS else array
    return root


def _slot(root: dict, parts: list) -> dict:
    node = root
    for part in parts:
        node = node.setdefault(part, {})
    return node
