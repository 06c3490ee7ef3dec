"""What the commands share: argument types, the device check, checkpoint files, the viz import,
the Ctrl-C handler that lets a training loop stop at a step boundary, and JSON output."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import textwrap
import threading

import numpy as np

from .. import backend
from ..checkpoint import load
from .errors import UsageError

__all__ = ["HelpFormatter", "positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "device_of",
           "DTYPES", "read_checkpoint", "writable_file", "writable_folder", "import_viz", "StopRequest", "plain",
           "write_json"]

DTYPES = {"float32": np.float32, "float64": np.float64}


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, except that a paragraph written over several lines (the examples,
    the list of tasks) is kept as written; one-line paragraphs are wrapped to the terminal."""

    def _fill_text(self, text, width, indent):
        return "\n\n".join(p if "\n" in p else textwrap.fill(p, width, initial_indent=indent, subsequent_indent=indent)
                           for p in text.split("\n\n"))


def _number(kind, test, what):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
nonnegative_int = _number(int, lambda v: v >= 0, "a non-negative integer")
positive_float = _number(float, lambda v: v > 0 and np.isfinite(v), "a positive number")
nonnegative_float = _number(float, lambda v: v >= 0 and np.isfinite(v), "a non-negative number")


def device_of(name: str) -> str:
    """The canonical device ("cpu", "cuda:0"); UsageError when it cannot be used here (no CuPy,
    no GPU, a bad name), with the library's explanation."""
    try:
        return backend.normalize_device(name)
    except (RuntimeError, ValueError) as error:
        raise UsageError(f"--device {name}: {error}") from None


def read_checkpoint(path, wanted: str = None) -> dict:
    """tr.load(path), with UsageError for a missing or unreadable file, or (wanted) one that
    `tinygrad-rnn train --task wanted` did not write."""
    try:
        state = load(path)
    except FileNotFoundError:
        raise UsageError(f"no such checkpoint: {path}") from None
    except (ValueError, IsADirectoryError, PermissionError) as error:
        raise UsageError(str(error)) from None
    if "args" not in state or "model" not in state or "step" not in state:
        raise UsageError(f"{path} is a tinygrad_rnn checkpoint but not one written by `tinygrad-rnn train`")
    if wanted and state["args"].get("task") != wanted:
        raise UsageError(f"{path} holds a model trained on --task {state['args'].get('task')}; "
                         f"this needs one trained with --task {wanted}")
    return state


def writable_folder(folder, option: str, path=None) -> str:
    """`folder`, made if missing and shown to take a new file (`path`, when given, is the file the
    message names); else a UsageError naming `option`, raised before any work that would be lost
    (a run that trained for an hour, then could not save)."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(f"{option} {path or folder}: cannot write into {folder} ({error.strerror or error})") from None
    return folder


def writable_file(path, option: str) -> str:
    """`path`, a file that can be written: not a folder, in a folder that takes a new file."""
    if os.path.isdir(path):
        raise UsageError(f"{option} {path} is a folder; give a file name")
    writable_folder(os.path.dirname(os.fspath(path)) or ".", option, path)
    return path


def import_viz():
    """The viz package (drawings and plots), imported only by the commands that draw:
    tinygrad_rnn itself never depends on it."""
    try:
        import viz
        import viz.plots  # noqa: F401  (matplotlib)
        import viz.report  # noqa: F401
    except ImportError as error:
        raise UsageError(f"this command draws, and needs the viz extras ({error}): "
                         "pip install 'tinygrad-rnn[viz]'") from None
    return viz


class StopRequest:
    """While active, the first Ctrl-C only sets .requested (the loop saves and stops at the end of
    the step it is in); a second one raises KeyboardInterrupt at once. Outside the main thread
    (where signals cannot be caught) it does nothing and Ctrl-C raises as usual."""

    def __init__(self, stream=None):
        self.requested = False
        self.stream = sys.stderr if stream is None else stream
        self._previous = None

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.stream.write("\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to stop now)\n")
        self.stream.flush()


def plain(value):
    """A JSON-ready copy of value: arrays and NumPy numbers become lists and floats, tuples lists,
    and NaN or infinite floats None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def write_json(data, path) -> str:
    """plain(data) as indented JSON in path; returns the path."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(plain(data), file, indent=1)
        file.write("\n")
    return path
