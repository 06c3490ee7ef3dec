"""Sequence tasks generated locally from a seed (no downloads), and the character-text tools.

Every generator takes `seed` (an int, or None for fresh entropy) and returns NumPy arrays in the
time-major layout of the recurrent layers: inputs (T, B, features), float64; class targets int64.
Wrap them with Tensor(x, dtype=np.float32) (or train a float64 model) to feed a network.

    adding_problem   x (T, B, 2), y (B, 1)      Hochreiter & Schmidhuber 1997; Le et al. 2015
    copy_task        x (T, B, K+2), y (T, B)    Arjovsky, Shah & Bengio 2016 (copy_task_baseline)
    sine_waves       x (T, B, 1), y (T, B, 1)   next-step prediction of random sines
    mackey_glass     (n,)                       Jaeger 2001 (tau = 17)
    windows, next_step_pairs                    cut a 1-D series into (T, B[, 1]) windows

The character-level text tools (Vocabulary, load_text, CharCorpus, bptt_batches, sample) live in
tinygrad_rnn/text.py and are re-exported here.
"""
from __future__ import annotations

import numpy as np

from .text import CharCorpus, Vocabulary, bptt_batches, load_text, sample

__all__ = ["adding_problem", "copy_task", "copy_task_baseline", "sine_waves", "mackey_glass", "windows",
           "next_step_pairs", "Vocabulary", "load_text", "CharCorpus", "bptt_batches", "sample"]


def adding_problem(batch: int, length: int, seed=None) -> tuple:
    """The adding problem (Hochreiter & Schmidhuber 1997, sec. 5.4; the variant of Le, Jaitly &
    Hinton 2015 and Arjovsky, Shah & Bengio 2016).

    Each of the B sequences has T = `length` steps of two channels: channel 0 holds values
    v_t ~ U[0, 1), channel 1 a marker m_t that is 1 at exactly two steps, one drawn uniformly in
    the first half [0, T//2) and one in the second half [T//2, T), and 0 elsewhere. The target is
    the sum of the two marked values:  y = sum_t m_t v_t  in [0, 2).

    Returns x: (T, B, 2) float64 and y: (B, 1) float64.
    Baseline: predicting the constant 1 (the mean of y) gives MSE = Var(v_a + v_b) = 2/12 = 1/6
    ~ 0.167; a model has learned the task once its MSE is well below that.
    """
    _check_positive("adding_problem", batch=batch)
    if length < 2:
        raise ValueError(f"adding_problem: length must be at least 2 (one marker per half), got {length}")
    rng = np.random.default_rng(seed)
    half = length // 2
    values = rng.random((length, batch))
    first = rng.integers(0, half, size=batch)
    second = rng.integers(half, length, size=batch)
    markers = np.zeros((length, batch))
    columns = np.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    x = np.stack([values, markers], axis=2)
    y = (values[first, columns] + values[second, columns]).reshape(batch, 1)
    return x, y


def copy_task(batch: int, length: int, delay: int, n_symbols: int = 8, seed=None) -> tuple:
    """The copy memory task of Arjovsky, Shah & Bengio (2016) (after Hochreiter & Schmidhuber 1997).

    Classes: 0 is the blank, 1..K (K = n_symbols) the symbols, K + 1 the delimiter. Each sequence
    has T = delay + 2 * length steps; with L = length and D = delay (the paper's L = 10, D = "T"):

        input:   L symbols ~ U{1..K}, then D - 1 blanks, the delimiter, then L blanks
        target:  L + D blanks, then the L input symbols in their order

    so the model must hold L symbols for D + L steps and replay them after the delimiter.
    Returns x: (T, B, K + 2) float64 one-hot inputs and y: (T, B) int64 target classes.
    Baseline: a memoryless model that predicts blanks and then, after the delimiter, a uniform
    guess over the K symbols has mean cross-entropy  L ln(K) / (2L + D)  per step
    (`copy_task_baseline`); learning shows as a loss well below it.
    """
    _check_positive("copy_task", batch=batch, length=length, delay=delay, n_symbols=n_symbols)
    rng = np.random.default_rng(seed)
    steps, delimiter = delay + 2 * length, n_symbols + 1
    symbols = rng.integers(1, n_symbols + 1, size=(length, batch))
    inputs = np.zeros((steps, batch), dtype=np.int64)
    inputs[:length] = symbols
    inputs[length + delay - 1] = delimiter
    y = np.zeros((steps, batch), dtype=np.int64)
    y[length + delay:] = symbols
    x = np.eye(n_symbols + 2)[inputs]
    return x, y


def copy_task_baseline(length: int, delay: int, n_symbols: int = 8) -> float:
    """Mean per-step cross-entropy of the memoryless copy-task strategy: L ln(K) / (2L + D)."""
    return length * float(np.log(n_symbols)) / (2 * length + delay)


def sine_waves(batch: int, length: int, seed=None, period_range=(8.0, 32.0)) -> tuple:
    """Next-step prediction of sines with random period and phase.

    Sequence b is s_b(t) = sin(2 pi t / P_b + phi_b) for t = 0..T, with the period
    P_b ~ U[period_range) in steps and the phase phi_b ~ U[0, 2 pi). The input is s(0..T-1) and
    the target s(1..T), one step ahead.
    Returns x: (T, B, 1) and y: (T, B, 1), float64.
    """
    _check_positive("sine_waves", batch=batch, length=length)
    low, high = period_range
    if not 0 < low <= high:
        raise ValueError(f"sine_waves: period_range must satisfy 0 < low <= high, got {period_range}")
    rng = np.random.default_rng(seed)
    periods = rng.uniform(low, high, size=batch)
    phases = rng.uniform(0.0, 2 * np.pi, size=batch)
    t = np.arange(length + 1)[:, None]
    waves = np.sin(2 * np.pi * t / periods + phases)[:, :, None]
    return waves[:-1], waves[1:]


def mackey_glass(n: int, tau: int = 17, beta: float = 0.2, gamma: float = 0.1, power: int = 10,
                 dt: float = 0.1, subsample: int = 10, washout: int = 1000, seed=None) -> np.ndarray:
    """n samples of the Mackey-Glass delay equation, chaotic for tau = 17:

        dx/dt = beta * x(t - tau) / (1 + x(t - tau)^power) - gamma * x(t)

    integrated by Euler steps of dt = 0.1 and sampled every `subsample` steps (one sample per unit
    of time), as in Jaeger (2001) and Jaeger & Haas (2004). The history before t = 0 is 1.2 plus,
    with a seed, a small random perturbation; the first `washout` samples are dropped so the
    series starts on the attractor. Returns float64 of shape (n,).
    """
    if n <= 0 or tau <= 0:
        raise ValueError(f"mackey_glass: n and tau must be positive, got n={n}, tau={tau}")
    delay = int(round(tau / dt))
    rng = np.random.default_rng(seed)
    total = (n + washout) * subsample
    x = np.empty(delay + total + 1)
    x[:delay + 1] = 1.2 + (0.0 if seed is None else 0.01 * rng.standard_normal())
    for i in range(delay, delay + total):
        lagged = x[i - delay]
        x[i + 1] = x[i] + dt * (beta * lagged / (1.0 + lagged ** power) - gamma * x[i])
    samples = x[delay + 1::subsample]
    return samples[washout:washout + n].copy()


def windows(series, length: int, stride: int = None) -> np.ndarray:
    """Windows of a 1-D series as columns: W[t, b] = series[b * stride + t].

    series: (N,); returns (length, B) float64 with B = (N - length) // stride + 1 windows, each
    starting `stride` steps after the previous one (stride defaults to length: no overlap).
    """
    series = np.asarray(series, dtype=np.float64)
    stride = length if stride is None else stride
    _check_positive("windows", length=length, stride=stride)
    if series.ndim != 1:
        raise ValueError(f"windows: expected a 1-D series, got shape {series.shape}")
    if series.shape[0] < length:
        raise ValueError(f"windows: a series of {series.shape[0]} samples is shorter than one window of {length}")
    starts = np.arange(0, series.shape[0] - length + 1, stride)
    return series[starts[None, :] + np.arange(length)[:, None]]


def next_step_pairs(series, length: int, stride: int = None) -> tuple:
    """One-step-ahead prediction pairs from a 1-D series (e.g. mackey_glass): x_t -> x_{t+1}.

    Windows of length + 1 samples (starting every `stride` steps, default length, so that the
    targets tile the series) give inputs = window[0..T-1] and targets = window[1..T].
    series: (N,); returns inputs (T, B, 1) and targets (T, B, 1), float64, T = length.
    """
    stride = length if stride is None else stride
    w = windows(series, length + 1, stride)[:, :, None]
    return w[:-1], w[1:]


def _check_positive(task: str, **sizes) -> None:
    bad = {name: value for name, value in sizes.items()
           if isinstance(value, bool) or not (isinstance(value, (int, np.integer)) and value > 0)}  # True is an int
    if bad:
        raise ValueError(f"{task}: " + ", ".join(f"{k} must be a positive integer, got {v!r}" for k, v in bad.items()))
