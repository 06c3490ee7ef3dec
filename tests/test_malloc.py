"""keep_freed_memory: after it, a steady training step no longer faults its buffers in anew.

Each check runs in a fresh interpreter, so that this process's heap and malloc settings are not
part of it. Page faults are counted, not timed: the kernel counts them exactly.
"""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

import tinygrad_rnn as tr

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

STEP_FAULTS = textwrap.dedent("""
    import resource
    import numpy as np
    import tinygrad_rnn as tr
    from tinygrad_rnn import nn
    took = tr.keep_freed_memory()
    T, B, I, H = 50, 32, 64, 128  # the benchmarks' configuration (b)
    tr.manual_seed(0)
    lstm = nn.LSTM(I, H, fused="sequence")
    x, w = tr.randn(T, B, I), np.ones((T, B, H), dtype=np.float32)
    faults = []
    for _ in range(8):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        lstm.zero_grad()
        output, _ = lstm(x)
        (output * w).sum().backward()
        del output
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(took, max(faults[3:]))  # after a warm-up of three steps
""")


def step_faults() -> tuple:
    """(what keep_freed_memory returned, the most page faults of a steady step) in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", STEP_FAULTS], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr
    took, faults = done.stdout.split()
    return took, int(faults)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc settings: Linux with glibc only")
def test_a_steady_training_step_faults_in_no_memory():
    took, faults = step_faults()
    assert took == "True"
    # Without the call, glibc's defaults fault an LSTM step at (b) 1,959 pages (about 8 MB) in
    # again every step (measured); kept, a step touches only pages it had.
    assert faults < 50, f"{faults} page faults in a steady training step after keep_freed_memory()"


@pytest.mark.skipif(GLIBC, reason="elsewhere than glibc")
def test_without_glibc_it_says_it_did_nothing():
    assert tr.keep_freed_memory() is False
