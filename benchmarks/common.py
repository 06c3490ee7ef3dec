"""What the benchmarks share: timing with warm-up and medians, thread counts, machine metadata.

Timing PyTorch and NumPy in one process: OpenBLAS's worker threads (NumPy's) and OpenMP's
(PyTorch's) keep spinning for about 0.1 s after each call and slow the other library down
several times, so every timed block starts after a pause (`PAUSE_S`).
"""
from __future__ import annotations

import ctypes
import datetime
import gc
import io
import os
import platform
import statistics
import sys
import time
from contextlib import redirect_stdout

import numpy as np

PAUSE_S = 0.2  # let the other library's worker threads go idle before a timed block


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
# "cpu": the CPU time of this process, which leaves out the time other jobs hold the cores: much
# steadier on a shared machine, but meaningful only single-threaded (--threads 1): spinning BLAS or
# OpenMP workers add their CPU time, and a GPU's time is not counted at all.


def time_block(step, repeats: int, sync=None, budget_s: float = 3.0, warmup: int = None,
               pause_s: float = PAUSE_S, clock=time.perf_counter) -> dict:
    """Time `step()` `repeats` times after a pause and a warm-up; stop early once `budget_s` is
    spent (but after at least 3 samples). Returns {"median_s", "min_s", "samples_s", "warmup"}."""
    gc.collect()
    time.sleep(pause_s)
    sync = sync or (lambda: None)
    start = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - start
    if warmup is None:  # one warm-up call for slow steps, a few for fast ones
        warmup = 1 if first > 0.3 else 3
    for _ in range(warmup - 1):
        step()
        sync()
    samples = []
    for _ in range(repeats):
        start = clock()
        step()
        sync()
        samples.append(clock() - start)
        if len(samples) >= 3 and sum(samples) > budget_s:
            break
    return {"median_s": statistics.median(samples), "min_s": min(samples), "samples_s": samples,
            "warmup": warmup}


def time_interleaved(steps: dict, repeats: int, sync=None, budget_s: float = 3.0,
                     pause_s: float = PAUSE_S, clock=time.perf_counter) -> dict:
    """Time several steps of one library round-robin: each round runs every step once, so a
    slow spell of a shared machine hits them all alike and their ratios stay steady. One pause
    and a warm-up first; stops early once `budget_s` per step is spent (after 3 rounds).
    Returns {name: the dict of time_block}."""
    gc.collect()
    time.sleep(pause_s)
    sync = sync or (lambda: None)
    warmups = {}
    for name, step in steps.items():
        start = time.perf_counter()
        step()
        sync()
        warmups[name] = 1 if time.perf_counter() - start > 0.3 else 3
        for _ in range(warmups[name] - 1):
            step()
            sync()
    samples = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = clock()
            step()
            sync()
            samples[name].append(clock() - start)
        spent = sum(sum(s) for s in samples.values())
        if len(samples[name]) >= 3 and spent > budget_s * len(steps):
            break
    return {name: {"median_s": statistics.median(s), "min_s": min(s), "samples_s": s, "warmup": warmups[name]}
            for name, s in samples.items()}


# ---------------------------------------------------------------- threads and libraries
def blas_threads():
    """NumPy's BLAS thread count: threadpoolctl when installed, else OpenBLAS asked directly
    through ctypes (the library NumPy loaded), else None."""
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
                return int(pool["num_threads"])
    except ImportError:
        pass
    function = _openblas_function("get_num_threads")
    if function is None:
        return None
    function.restype = ctypes.c_int
    return int(function())


def set_blas_threads(n: int) -> bool:
    """Make NumPy's BLAS use n threads (threadpoolctl, else OpenBLAS through ctypes); True when
    done. One thread gives steadier numbers on a machine that other jobs keep busy."""
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=n, user_api="blas")
        return True
    except ImportError:
        pass
    function = _openblas_function("set_num_threads")
    if function is None:
        return False
    function.argtypes = [ctypes.c_int]
    function(int(n))
    return True


def openblas_kernel():
    """The CPU kernel OpenBLAS runs NumPy's GEMMs with ("SkylakeX", "Haswell", ...), or None
    when NumPy's BLAS is not OpenBLAS."""
    function = _openblas_function("get_corename")
    if function is None:
        return None
    function.restype = ctypes.c_char_p
    return function().decode()


def forced_kernel_note():
    """A warning when the environment forces OpenBLAS's kernel, else None.

    OPENBLAS_CORETYPE overrides the kernel OpenBLAS would pick for this CPU, and it is read when
    NumPy loads, so a benchmark cannot undo it. Some machines set it because older OpenBLAS
    builds fail on their CPU; a current NumPy then runs GEMMs on an older kernel (on an AVX-512
    CPU forced to Haswell, 1.8x to 1.9x slower at (c)'s sizes on one thread), and every ratio
    against PyTorch, whose BLAS (MKL) ignores the variable, shifts with it."""
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if not forced:
        return None
    return (f"OPENBLAS_CORETYPE={forced} forces NumPy's GEMMs onto OpenBLAS's {openblas_kernel() or forced} "
            "kernel, which may be slower than this CPU's own; to measure NumPy at its best, run the "
            "benchmark with both variables unset for that command alone: "
            "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks ...")


def _openblas_function(name: str):
    """OpenBLAS's `name` function ("get_num_threads", ...) in the library NumPy loaded, under
    any of its export names (SciPy's build, 64-bit integers, plain), or None."""
    for path in _loaded_libraries("openblas"):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in (f"scipy_openblas_{name}64_", f"openblas_{name}64_", f"openblas_{name}"):
            function = getattr(lib, symbol, None)
            if function is not None:
                return function
    return None


def _loaded_libraries(fragment: str) -> list:
    """Paths of the shared libraries this process has mapped whose name contains `fragment`."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if fragment in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if os.path.basename(p).lower().find(fragment) >= 0)


def numpy_blas_info() -> dict:
    """NumPy's build configuration of BLAS/LAPACK (numpy.show_config as data)."""
    try:
        config = np.show_config(mode="dicts")
        return config.get("Build Dependencies", config)
    except TypeError:  # NumPy < 1.26: only prints
        text = io.StringIO()
        with redirect_stdout(text):
            np.show_config()
        return {"text": text.getvalue()}


def threadpool_info():
    try:
        from threadpoolctl import threadpool_info as info
    except ImportError:
        return None
    return info()


def import_torch():
    """PyTorch, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def machine_info() -> dict:
    """What a reader needs to judge the numbers: CPU, cores, load, Python, library versions."""
    info = {
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "numpy_blas": numpy_blas_info(),
        "numpy_blas_threads": blas_threads(),
        "openblas_kernel": openblas_kernel(),
        "env_openblas": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
        "threadpoolctl": threadpool_info(),
        "env_threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                        if k in os.environ},
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average"] = os.getloadavg()  # a busy machine makes every number noisy
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def synchronizer(xp):
    """A function that waits for the device to finish (a no-op for NumPy)."""
    if xp is np:
        return None
    return xp.cuda.runtime.deviceSynchronize
