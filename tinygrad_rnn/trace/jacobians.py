"""Jacobians of the recurrence, through the engine's own vector-Jacobian products.

For a batch of B independent sequences, the Jacobian of sequence b's final state h_T[b] (H,)
with respect to its own earlier state h_k[b] is an H x H matrix J_b(T, k). A reverse sweep
seeded with v at h_T gives, at every earlier state node, the vector-Jacobian product
v^T dh_T/dh_k. Seeding e_j (the j-th unit, for every sample at once) gives row j of every
J_b(T, k), for all k in one sweep:

    node_grads(h_T, grad=E_j)[h_k][b, :] = e_j^T J_b(T, k)        E_j = [0 .. 1 .. 0] per sample

so H sweeps over the kept graph give all of them. Samples do not mix: h_T[b] depends on
h_k[b'] only for b' = b. The gradient that a node h_k receives is the total derivative through
every later step, which is exactly dh_T/dh_k, because h_T depends on h_k only through steps
k+1..T. (For the LSTM, h_k and c_k are separate nodes: this is dh_T/dh_k with c_k held fixed.)

The one-step Jacobians dh_t/dh_{t-1} are the same products restricted to one step:
autograd.vjp(..., within=...) sweeps only the nodes stamped with step t in the layer's scope,
so H sweeps of one step each give dh_t/dh_{t-1}, not H sweeps of the whole history.
For the LSTM the one-step Jacobian is that of the whole state s_t = [h_t; c_t] (2H x 2H), so
that the memory path c_{t-1} -> c_t, the reason the LSTM remembers, is part of the step.
Nothing is written: no .grad, no hook, the graph stays as it was.
"""
from __future__ import annotations

import numpy as np

from .. import autograd, backend

__all__ = ["end_jacobians", "step_jacobians", "spectral_norms", "singular_values"]


def end_jacobians(states: list) -> list:
    """[dh_{T-1}/dh_k for k = 0..T-1], each (B, H, H) float64: H node_grads sweeps seeded at the
    final state (row j of every J_b from the sweep seeded with e_j)."""
    target = states[-1]
    xp = backend.array_module(target.data)
    batch, units = target.data.shape
    rows = [np.zeros((batch, units, s.data.shape[-1])) for s in states]
    for j in range(units):
        seed = xp.zeros_like(target.data)
        seed[:, j] = 1
        record = autograd.node_grads(target, seed)
        for k, source in enumerate(states):
            g = record.grad(source)
            if g is not None:
                rows[k][:, j, :] = backend.to_numpy(g)
    return rows


def step_jacobians(h_states: list, c_states: list = None) -> list:
    """[ds_t/ds_{t-1} for t = 0..T-1] (None at t = 0), each (B, S, S) float64, from S one-step
    sweeps per step (autograd.vjp within the nodes of step t).

    s_t = h_t (S = H), or for the LSTM (c_states given) the whole state s_t = [h_t; c_t]
    (S = 2H): its memory path c_{t-1} -> c_t belongs to the step. A fused LSTM's last c_t may
    not reach the loss (no node in its graph); its rows are then seeded on the c part of the
    step's packed output [h, c], which is the same derivative.
    """
    out = [None] * len(h_states)
    for t in range(1, len(h_states)):
        h, units = h_states[t], h_states[t].data.shape[-1]
        outputs = [(h, Ellipsis)]
        sources = [h_states[t - 1]]
        if c_states is not None:
            c = c_states[t]
            outputs.append((c, Ellipsis) if c is not None else (h.parents[0], 1))
            sources.append(c_states[t - 1])
        in_step = lambda n, t=h.step, s=h.scope: n.step == t and n.scope == s  # noqa: E731
        xp = backend.array_module(h.data)
        batch = h.data.shape[0]
        jac = np.zeros((batch, units * len(outputs), units * len(sources)))
        for i, (node, part) in enumerate(outputs):  # part: where in node's value the state lies
            for j in range(units):
                seed = xp.zeros_like(node.data)
                seed[part][:, j] = 1
                reached = autograd.vjp({node: seed}, within=in_step)
                for k, source in enumerate(sources):
                    if reached.grad(source) is not None:
                        jac[:, i * units + j, k * units:(k + 1) * units] = backend.to_numpy(reached.grad(source))
        out[t] = jac
    return out


def singular_values(jacobian: np.ndarray) -> np.ndarray:
    """(B, H) singular values (descending) of a (B, H, H) stack; NaN rows where not finite."""
    out = np.full(jacobian.shape[:2], np.nan)
    finite = np.isfinite(jacobian).all(axis=(1, 2))
    if finite.any():
        out[finite] = np.linalg.svd(jacobian[finite], compute_uv=False)
    return out


def spectral_norms(jacobians: list) -> np.ndarray:
    """(T,) the batch mean of the largest singular value of each (B, H, H) Jacobian."""
    return np.array([singular_values(j)[:, 0].mean() for j in jacobians])
