"""Sequence tasks generated locally from a seed (no downloads)."""
from __future__ import annotations

import numpy as np

__all__ = ["mackey_glass"]


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
