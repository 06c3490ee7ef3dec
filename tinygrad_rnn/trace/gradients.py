"""trace_gradients: one forward and backward pass, observed time step by time step.

How the states are found. The layers stamp every node of a time step with time_step(t) and the
scope "<module>.l{k}" (plus ".reverse"), and name the per-step states "h" (and "c" for the
LSTM), in the fused and the composite forms alike. `state_nodes` walks the loss's graph
(read-only, iteratively: autograd.topological_order) and keeps those nodes, one row per scope.

What is measured. node_grads(loss) gives dL/dv for every node v without side effects; the norms
of dL/dh_t, dL/dc_t come from it. Its `contributions` split a shared weight's gradient by the
consumer that used it, so the terms of dL/dW = sum_t (step-t term) are grouped by the step
stamped on the consumer. The fused forms compute x W_ih^T + b for all T steps in one GEMM
outside the steps (the node named "W_ih x", rows time-major: row t*B + b is step t, sample b);
its terms are split by sweeping back through the projection's nodes alone, once per step, with
the gradient of that step's rows only (linearity: the T terms sum to the whole). The Jacobians come from
vector-Jacobian products through the same engine (jacobians.py).

Never changing the numbers. Every measurement is a node_grads sweep over the kept graph; then
one ordinary loss.backward() runs, so the parameters' .grad (accumulated, hooks run) are exactly
those of a plain forward and backward, and training may go on from there (optimizer.step()).
"""
from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..ops import stable_sigmoid
from . import jacobians as jac
from .flow import GradientFlow, _parse, fit_decay, reached_steps, recurrent_matrices, verdict_for

__all__ = ["trace_gradients", "state_nodes"]


def state_nodes(root) -> dict:
    """{scope: {"h": [h_0, .., h_{T-1}], "c": [...] or None}} for the state nodes that reach root.

    Rows are ordered by layer, then forward before reverse; a step without a node (one that does
    not reach root) is None in its list. Raises if two nodes claim the same scope, name and step
    (the model was run twice into one loss: trace one call at a time).
    """
    found = {}
    for node in autograd.topological_order(root):
        if node.name in ("h", "c") and node.step is not None:
            row = found.setdefault(node.scope, {"h": {}, "c": {}})[node.name]
            if node.step in row:
                raise ValueError(f"state_nodes: two '{node.name}' nodes at step {node.step} in scope "
                                 f"'{node.scope}'; was the model called twice for this loss? Trace one call.")
            row[node.step] = node
    steps = 1 + max((t for r in found.values() for d in r.values() for t in d), default=-1)
    out = {}
    for scope in sorted((s for s in found if found[s]["h"]), key=lambda s: (_parse(s), s)):
        row = found[scope]
        h = [row["h"].get(t) for t in range(steps)]
        # a fused LSTM row has a cell state even when no "c" node reaches the loss (T = 1, a loss on
        # the outputs): the steps' packed nodes [h, c] hold it
        has_cells = row["c"] or any(_packed_lstm_step(n) is not None for n in h)
        c = [row["c"].get(t) for t in range(steps)] if has_cells else None
        out[scope] = {"h": h, "c": c}
    return out


def _packed_lstm_step(h):
    """The fused lstm_step node whose output [h, c] the state node h is a view of, else None."""
    packed = h.parents[0] if h is not None and h.parents else None
    return packed if packed is not None and packed.op == "lstm_step" else None


def trace_gradients(model, x, loss_fn, hx=None, jacobians: bool = True,
                    weight_terms: bool = True) -> GradientFlow:
    """Run output, state = model(x[, hx]); loss = loss_fn(output, state); observe the gradient
    flow; then loss.backward(). Returns a GradientFlow (see flow.py for every field).

    jacobians: also compute ||dh_{T-1}/dh_k|| and the singular values of the one-step Jacobians
    (dh_t/dh_{t-1}; for the LSTM d[h_t; c_t]/d[h_{t-1}; c_{t-1}]) for the last layer's forward
    direction (a bidirectional layer's reverse direction is not included); costs H sweeps of the
    graph plus H (or 2H) sweeps of each step's few nodes. weight_terms: split each recurrent
    layer's parameter gradients into per-step terms (T small sweeps of each fused projection).
    """
    output, state = model(x) if hx is None else model(x, hx)
    loss = loss_fn(output, state)
    if loss.data.size != 1:
        raise ValueError(f"trace_gradients: loss_fn must return a scalar Tensor, got shape {loss.shape}")
    rows = state_nodes(loss)
    if not rows:
        if any(node.op.endswith("_sequence") for node in autograd.topological_order(loss)):
            raise ValueError("trace_gradients: the model's recurrent layers run as whole-sequence nodes "
                             "(fused='sequence'), which have no per-step states to trace; build them with "
                             "fused=True (or False) and load the same state_dict")
        raise ValueError("trace_gradients: the loss does not depend on any state node named 'h' stamped with a "
                         "time step; is the model an nn.RNN/LSTM/GRU (or built with time_step and named states)?")
    record = autograd.node_grads(loss)
    h_grads = {r: [_grad(record, n) for n in row["h"]] for r, row in rows.items()}
    hidden, hidden_units, h_start = _summaries(h_grads)
    c_grads = _cell_grads(record, rows, h_grads)
    cell, _, c_start = _summaries(c_grads) if c_grads else (None, None, {})
    nonfinite = {}  # where backpropagation first meets a non-finite dL/dh or dL/dc, per row
    for r in rows:
        starts = [s[r] for s in (h_start, c_start) if r in s]
        if starts:  # a forward row is reached from T-1 down, a reverse row from 0 up
            nonfinite[r] = min(starts) if _parse(r)[1] else max(starts)

    labels = tuple(rows)
    main = _jacobian_row(labels)
    jac_norms = step_svals = jac_rate = None
    if jacobians and main is not None and all(n is not None for n in rows[main]["h"]):
        states = rows[main]["h"]
        end = jac.end_jacobians(states)
        jac_norms = jac.spectral_norms(end)
        cells = rows[main]["c"]
        size = states[0].data.shape[-1] * (1 if cells is None else 2)
        step_svals = np.full((len(states), size), np.nan)
        for t, j in enumerate(jac.step_jacobians(states, cells)):
            if j is not None:
                step_svals[t] = jac.singular_values(j).mean(axis=0)
        jac_rate = fit_decay(jac_norms)

    names = {id(p): name for name, p in model.named_parameters()}
    terms, outside = _weight_terms(record, loss, names, hidden.shape[1]) if weight_terms else ({}, {})
    with np.errstate(over="ignore", invalid="ignore"):
        step_norms = {n: np.sqrt((t.reshape(len(t), -1).astype(np.float64) ** 2).sum(axis=1))
                      for n, t in terms.items()}

    main_norms = hidden[labels.index(main) if main is not None else -1]
    rate = fit_decay(main_norms)
    attenuation, verdict = verdict_for(rate, reached_steps(main_norms), finite=not nonfinite)
    loss_value = float(backend.to_numpy(loss.data).reshape(()))
    loss.backward()  # the one real backward: .grad exactly as a plain forward + backward
    return GradientFlow(
        rows=labels, hidden_grad_norms=hidden, cell_grad_norms=cell, hidden_grad_units=hidden_units,
        jacobian_row=main if jac_norms is not None else None, jacobian_norms=jac_norms,
        step_singular_values=step_svals, recurrent=recurrent_matrices(model),
        weight_step_norms=step_norms, weight_step_terms=terms, weight_outside_terms=outside,
        decay_rate=rate, attenuation=attenuation, verdict=verdict, jacobian_decay_rate=jac_rate,
        nonfinite=nonfinite, loss=loss_value, model=_model_name(model))


def _model_name(model) -> str:
    """The class name of the first recurrent layer inside the model ("LSTM"), else the model's."""
    for _, module in model.named_modules():
        if any(name.startswith("weight_hh") for name in vars(module)):
            return type(module).__name__
    return type(model).__name__


def _jacobian_row(labels: tuple):
    """The last layer's forward row (None if every row is a reverse direction)."""
    forward = [r for r in labels if not _parse(r)[1]]
    return forward[-1] if forward else None


def _grad(record, node):
    """dL/d(node) as a float64 NumPy array; zeros if the node received none; None if no node."""
    if node is None:
        return None
    g = record.grad(node)
    return np.zeros(node.data.shape) if g is None else backend.to_numpy(g).astype(np.float64)


def _cell_grads(record, rows: dict, h_grads: dict) -> dict:
    """{row: [dL/dc_t]} for LSTM rows: the total derivative, through h_t = o_t tanh(c_t) too.

    The composite cell's "c" node feeds tanh(c_t) -> h_t, so its gradient already is the total
    derivative. The fused step computes h_t and c_t side by side from one packed node, so its
    "c" node only hears the later steps; the path through h_t is added back with
    dh_t/dc_t = o_t (1 - tanh^2 c_t), o_t = sigmoid(gx_o + h_{t-1} W_hh,o^T) read from the step's
    inputs (gate order i, f, g, o), the same formula as fused.lstm_step's backward.
    """
    out = {}
    for r, row in rows.items():
        if row["c"] is None:
            continue
        grads = []
        for t, (h, c) in enumerate(zip(row["h"], row["c"])):
            packed = _packed_lstm_step(h)
            if packed is None:
                grads.append(_grad(record, c))
                continue
            gx, h_prev, _, w = (p.data for p in packed.parents)
            n = packed.data.shape[-1]
            o = backend.to_numpy(stable_sigmoid(backend.array_module(gx), gx[:, 3 * n:] + h_prev @ w[3 * n:].T))
            tanh_c = np.tanh(backend.to_numpy(packed.data[1]).astype(np.float64))
            g_c = _grad(record, c)
            with np.errstate(over="ignore", invalid="ignore"):
                through_h = h_grads[r][t] * o * ((1 + tanh_c) * (1 - tanh_c))
            grads.append(through_h if g_c is None else g_c + through_h)
        out[r] = grads
    return out


def _summaries(grads: dict) -> tuple:
    """(norms (R, T), per-unit RMS over the batch (R, T, H), {row: step where non-finite starts})
    from {row: [dL/ds_t or None]}; a missing node gives NaN. Non-finite means an entry of the
    gradient is inf or NaN, not that its norm overflowed (which _scaled_rms keeps it from doing)."""
    steps = max(len(g) for g in grads.values())
    units = max(g.shape[-1] for row in grads.values() for g in row if g is not None)
    norms = np.full((len(grads), steps), np.nan)
    per_unit = np.full((len(grads), steps, units), np.nan)
    starts = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for i, (label, row) in enumerate(grads.items()):
            for t, g in enumerate(row):
                if g is not None:
                    g = g.reshape(-1, g.shape[-1])
                    norms[i, t] = _scaled_rms(g.reshape(-1), 0) * np.sqrt(g.size)
                    per_unit[i, t, :g.shape[-1]] = _scaled_rms(g, 0)
            bad = [t for t, g in enumerate(row) if g is not None and not np.isfinite(g).all()]
            if bad:  # backpropagation reaches a forward row's steps from T-1 down, a reverse row's from 0 up
                starts[label] = min(bad) if _parse(label)[1] else max(bad)
    return norms, per_unit, starts


def _scaled_rms(g: np.ndarray, axis: int):
    """sqrt(mean(g^2)) along axis, by way of m = max |g| so that no finite g overflows in its
    squares (1e200 squares to inf): m sqrt(mean((g / m)^2)); 0 where g is 0, inf or NaN where g
    holds one (the caller silences the warnings)."""
    m = np.abs(g).max(axis=axis)
    scalable = (m > 0) & np.isfinite(m)
    scale = np.where(scalable, m, 1.0)
    return np.where(scalable, scale * np.sqrt(np.mean((g / np.expand_dims(scale, axis)) ** 2, axis=axis)), m)


def _weight_terms(record, loss, names: dict, steps: int) -> tuple:
    """({name: (T, *shape) step terms}, {name: outside term}) for every parameter that has a
    term made inside a time step or in a fused input projection; see the module docstring.
    Terms made outside the steps (or stamped with a step past the states' T) go to `outside`."""
    projections = {n.scope: n for n in autograd.topological_order(loss) if n.name == "W_ih x" and n.step is None}
    terms, outside = {}, {}

    def add(pid, t, term):
        name = names[pid]
        if name not in terms:
            shape = (steps,) + tuple(term.shape)
            terms[name], outside[name] = np.zeros(shape), np.zeros(shape[1:])
        target = terms[name][t] if t is not None and 0 <= t < steps else outside[name]
        target += backend.to_numpy(term)

    deferred = []
    for pid, pairs in record.contributions.items():
        if pid not in names:
            continue  # a leaf that is not a parameter (an input or initial state)
        if not any(c.step is not None or c.scope in projections for c, _ in pairs):
            continue  # made outside the recurrence (a readout head): no per-step split
        for consumer, term in pairs:
            if consumer.step is not None:
                add(pid, consumer.step, term)
            elif consumer.scope in projections:
                deferred.append(pid)
            else:
                add(pid, None, term)
    wanted = set(deferred)
    for scope, node in projections.items():
        g = record.grad(node)
        if g is None or g.shape[0] % steps:
            continue
        batch = g.shape[0] // steps
        xp = backend.array_module(g)
        outside_steps = lambda n, scope=scope: n.step is None and n.scope == scope  # noqa: E731
        for t in range(steps):
            seed = xp.zeros_like(g)
            seed[t * batch:(t + 1) * batch] = g[t * batch:(t + 1) * batch]
            reached = autograd.vjp({node: seed}, within=outside_steps)
            for pid in wanted:
                if pid in reached.grads:
                    add(pid, t, reached.grads[pid])
    return terms, outside
