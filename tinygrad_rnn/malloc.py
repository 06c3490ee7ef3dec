"""Host memory for training loops: keep freed blocks in the process instead of handing them back.

On Linux, NumPy's arrays come from glibc's malloc, which serves a request of M_MMAP_THRESHOLD or
more (128 KiB at first, raised as such blocks are freed) with a fresh mapping from the kernel,
unmaps it when the array is freed, and hands the free top of its heap back to the kernel beyond
M_TRIM_THRESHOLD. A training step allocates the same large buffers every time (an LSTM's gates
for all steps, the states, the weights' gradients), so glibc's heuristics can leave every step
to fault in, zero and unmap megabytes anew. An LSTM at B=32, T=50, I=64, H=128 (benchmark (b),
one BLAS thread) took 1,959 page faults a step: 11.7 ms a step in the whole-sequence form, 15.7
per-step fused, 25.8 composite; with both thresholds raised, no faults and 7.9, 9.3 and 17.9 ms.
(The GRU and RNN of the same size happened not to fault.)

keep_freed_memory() raises both thresholds for this process, as `tinygrad-rnn` and the
training-step benchmark do when they start: blocks under 32 MiB (glibc's largest mmap threshold) come from
the heap and return to it, and the heap keeps up to 256 MiB free at its top. The process's
memory then stays near its peak instead of falling back between steps, which is what a
training loop wants. It is a process-wide setting of the C library, so the library never makes
it on import: a script opts in. Where the C library has no mallopt (macOS, Windows), or refuses
the settings, it does nothing and returns False. GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...
:glibc.malloc.trim_threshold=... in the environment is the same setting made from outside.
"""
from __future__ import annotations

import ctypes

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: HEAP_MAX_SIZE / 2 on 64-bit systems
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process (see the module docstring);
    True when glibc took both, False where the C library has no such settings."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # no mallopt (macOS), no C library by that name (Windows)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    took = [mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD), mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)]
    return all(took)  # mallopt returns 1 for each setting it took, 0 for one it refused
