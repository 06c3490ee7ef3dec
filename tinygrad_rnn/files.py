"""Atomic file writes: a crash mid-write never leaves a half-written file behind."""
from __future__ import annotations

import os

__all__ = ["atomic_write"]


def atomic_write(path, write) -> str:
    """Call write(file) on a new temporary file beside `path`, flush it to disk, then rename it
    over `path` (os.replace is atomic). On any error the temporary file is removed and `path` is
    left as it was. The file gets the usual permissions (0o666 less the umask). Returns the path.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    for attempt in range(100):
        temporary = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{attempt}.tmp")
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise RuntimeError(f"atomic_write: could not create a temporary file beside {path!r}")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path
