"""Whole-sequence fused layers: one graph node runs one layer in one direction over all T steps.

The per-step fused form (fused.py) makes a node per time step, so the graph shows every step to
the drawings and the gradient tracer. This form is the one cuDNN's kernels take instead: the
node's forward allocates every buffer backward needs once, for all steps, and its backward walks
the steps in reverse and forms each weight's gradient as one GEMM over all of them:

    forward:  gx = X W_ih^T + b for all T steps             1 GEMM   (T*B, I) @ (I, G*H)
              a_t = gx_t + h_{t-1} W_hh^T, then the gates     T GEMMs  (B, H) @ (H, G*H)
    backward: dh_{t-1} from d_a_t W_hh                        T GEMMs  (B, G*H) @ (G*H, H)
              dW_hh = d_A^T H_prev, dW_ih = d_GX^T X, dX = d_GX W_ih   3 GEMMs over all steps

with G = 1 (RNN), 4 (LSTM) or 3 (GRU). What it keeps is what a hand-written BPTT keeps (the
gates, written in place into the projection's buffer; the states; the GRU's a_n), less the
LSTM's tanh(c), which backward takes again from c. Forward runs kernels.py's gate arithmetic,
the per-step form's. Backward first computes every factor of d_a that does not depend on the
gradient flowing back in time (the gates' slopes times what multiplies them) for a block of
steps at once, as many as fit in cache (at small sizes all of them: there every NumPy call
counts), so that the loop over the steps is left with a few multiplies and one GEMM each. When
backward frees the graph as it goes (autograd.releasing()), the LSTM and GRU form d_a over their
saved gates, block by block, and the GRU's dL/dh over its a_n: such a backward adds little more
than dL/dS to what forward kept.
The price: no per-step nodes, so draw and trace with fused=True (or False) instead.

The states of all steps lie in one buffer in time order, with the initial state in an extra
row: (T + 1, B, H). Going forward, h_t is row t + 1 and the initial state row 0; in reverse, h_t
is row t and the initial state row T. So the step at t reads row t + r and writes row t + 1 - r
(r = 1 in reverse, else 0), the outputs are rows 1..T (or 0..T-1) and the states the steps read
rows 0..T-1 (or 1..T): contiguous both ways. The RNN's and the GRU's node is the outputs, a view
of that buffer, so what it gets back is dL/doutput itself, not a copy. The LSTM's node is the
buffer with one more row, c_n: S (T + 2, B, H), of which the outputs and c_n are slices (its
other cell states stay inside the node).
"""
from __future__ import annotations

from . import kernels
from .autograd import make, releasing
from .backend import array_module
from .tensor import Tensor

__all__ = ["rnn", "lstm", "gru"]


def rnn(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor = None, b_hh: Tensor = None,
        nonlinearity: str = "tanh", reverse: bool = False) -> tuple:
    """An Elman layer over a sequence: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).
    x: (T, B, I); h0: (B, H) -> (output (T, B, H), (h_n,))"""
    output = _rnn_node(x, h0, w_ih, w_hh, _bias(b_ih, b_hh), nonlinearity, reverse)
    return output, (_last(output, reverse),)


def lstm(x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor = None,
         b_hh: Tensor = None, reverse: bool = False) -> tuple:
    """An LSTM layer over a sequence (equations in kernels.lstm_forward).
    x: (T, B, I); h0, c0: (B, H) -> (output (T, B, H), (h_n, c_n))"""
    states = _lstm_node(x, h0, c0, w_ih, w_hh, _bias(b_ih, b_hh), reverse)
    T = x.shape[0]
    return _outputs(states, T, reverse), (_final(states, T, reverse), states[T + 1])


def gru(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor = None, b_hh: Tensor = None,
        reverse: bool = False) -> tuple:
    """A GRU layer over a sequence (equations in kernels.gru_forward; b_hh acts inside the
    reset gate, so it stays apart from b_ih).   x: (T, B, I); h0: (B, H) -> (output (T, B, H), (h_n,))"""
    output = _gru_node(x, h0, w_ih, w_hh, b_ih, b_hh, reverse)
    return output, (_last(output, reverse),)


def _bias(b_ih, b_hh):
    """b_ih + b_hh as one node (None without biases): RNN and LSTM add them before the gates."""
    return None if b_ih is None else b_ih + b_hh


def _outputs(states: Tensor, T: int, reverse: bool) -> Tensor:
    """The LSTM's outputs h_1..h_T in time order: a slice of its S, one node."""
    return states[0:T] if reverse else states[1:T + 1]


def _final(states: Tensor, T: int, reverse: bool) -> Tensor:
    """h_n, the state after the last step, from the LSTM's S."""
    return states[0] if reverse else states[T]


def _last(output: Tensor, reverse: bool) -> Tensor:
    """h_n, the state after the last step, from the outputs."""
    return output[0] if reverse else output[-1]


def _steps(T: int, reverse: bool):
    """(time steps in the order forward runs them, r): the step at t reads row t + r, writes t + 1 - r."""
    return (range(T - 1, -1, -1), 1) if reverse else (range(T), 0)


_BLOCK_BYTES = 1 << 18  # a block of steps' gates: well inside a core's L2 cache, and the scratch a
                        # freeing backward adds to what forward kept (as fast as 1 MiB at (a)-(c))


def _blocks(T: int, reverse: bool, step_bytes: int) -> list:
    """Backward's walk over the steps, the reverse of forward's, in blocks of consecutive steps:
    [(lo, hi, the steps lo..hi-1 in backward's order)], at most k = 256 KiB / step_bytes steps each.
    A block's step-independent factors are computed in one vectorized pass while its buffers are
    in cache (at small sizes one block holds every step, so the NumPy calls are few), then its
    steps run one by one."""
    k = max(1, _BLOCK_BYTES // max(1, step_bytes))
    if reverse:
        return [(lo, min(T, lo + k), range(lo, min(T, lo + k))) for lo in range(0, T, k)]
    return [(max(0, hi - k), hi, range(hi - 1, max(0, hi - k) - 1, -1)) for hi in range(T, 0, -k)]


def _gradient_rows(xp, gates, k: int) -> tuple:
    """(d_a, block): where backward forms d_a, (T, B, G*H). While the sweep frees the graph
    (autograd.releasing()), d_a takes the gates' own buffer: each block of steps forms its rows in
    `block` (room for k steps) and then copies them over gates it no longer needs. Otherwise d_a
    is a new array, block is None and the rows are formed in place."""
    if releasing():
        return gates, xp.empty_like(gates[:k])
    return xp.empty_like(gates), None


def _project(xp, x: Tensor, w_ih: Tensor, bias, scale=None, out=None):
    """(X as (T*B, I), gx = X W_ih^T + bias as (T, B, G*H)): the first GEMM, all steps at once;
    bias an array or None. With `scale` (G*H,), each column of gx comes scaled by it (W_ih's rows
    and the bias are scaled instead, so this costs no pass over gx). Written into `out` if given."""
    T, B, _ = x.shape
    x2 = x.data.reshape(T * B, x.shape[2])  # widths spelled out: -1 is ambiguous when B = 0
    w = w_ih.data
    if scale is not None:
        w = w * scale[:, None]
        bias = None if bias is None else bias * scale
    if out is None:
        out = xp.empty((T, B, w.shape[0]), dtype=w.dtype)
    xp.matmul(x2, w.T, out=out.reshape(T * B, w.shape[0]))
    if bias is not None:
        out += bias
    return x2, out


def _input_grads(x, w_ih, bias, x2, *blocks):
    """dX = d_GX W_ih, dW_ih = d_GX^T X, d_bias = the sums of d_GX over steps and batch (each
    only where it is needed): the gradients through the projection, a GEMM each per block.
    d_GX comes as column blocks side by side, each (T, B, k) (the GRU's differs from its d_a in
    one block only, so it need not be copied whole)."""
    xp, w = array_module(x2), w_ih.data
    blocks = [b.reshape(x2.shape[0], b.shape[-1]) for b in blocks]
    rows, start = [], 0
    for b in blocks:
        rows.append(slice(start, start + b.shape[1]))
        start += b.shape[1]
    d_x = d_w = d_bias = None
    if x.requires_grad:
        d_x = blocks[0] @ w[rows[0]]
        for b, part in zip(blocks[1:], rows[1:]):
            d_x += b @ w[part]
        d_x = d_x.reshape(x.shape)
    if w_ih.requires_grad:
        d_w = xp.empty_like(w)
        for b, part in zip(blocks, rows):
            xp.matmul(b.T, x2, out=d_w[part])
    if bias is not None and bias.requires_grad:
        d_bias = xp.concatenate([b.sum(axis=0) for b in blocks])
    return d_x, d_w, d_bias


def _rnn_node(x, h0, w_ih, w_hh, bias, nonlinearity, reverse) -> Tensor:
    """The outputs (T, B, H), a view of the states (layout in the module docstring).
    backward: d_pre_t = dh_t * act'(h_t);  dh_{t-1} = d_pre_t W_hh;  dW_hh = d_Pre^T H_prev
    (act' = (1 + h)(1 - h) for tanh, [h > 0] for relu, 1 at NaN as ops.relu)"""
    xp = array_module(h0.data)
    T, B, _ = x.shape
    wh = w_hh.data
    H = wh.shape[1]
    order, r = _steps(T, reverse)
    hs = xp.empty((T + 1, B, H), dtype=wh.dtype)
    hs[T * r] = h0.data
    x2, _ = _project(xp, x, w_ih, None if bias is None else bias.data, out=hs[1 - r:T + 1 - r])
    tanh, wh_t, recurrent = nonlinearity == "tanh", kernels.recurrent_t(wh, T), xp.empty_like(hs[0])
    for t in order:  # gx_t is in h_t's row already: add the recurrence, then the nonlinearity
        h = hs[t + 1 - r]
        xp.matmul(hs[t + r], wh_t, out=recurrent)
        h += recurrent
        if tanh:
            xp.tanh(h, out=h)
        else:
            xp.maximum(h, 0, out=h)

    def backward(_, g):
        d_pre, dh = xp.empty((T,) + hs.shape[1:], dtype=hs.dtype), xp.zeros_like(hs[0])
        blocks = _blocks(T, reverse, hs[0].nbytes)
        scratch = xp.empty_like(d_pre[:blocks[0][1] - blocks[0][0]]) if tanh else None  # for (1 - h)
        for lo, hi, steps in blocks:
            h, slope = hs[lo + 1 - r:hi + 1 - r], d_pre[lo:hi]  # act' of the block, then times dh_t
            if tanh:
                xp.add(1, h, out=slope)
                xp.subtract(1, h, out=scratch[:hi - lo])
                slope *= scratch[:hi - lo]
            else:
                inactive = h <= 0  # relu' = 0 there (1 at NaN, as ops.relu)
            for t in steps:
                dh += g[t]
                d = d_pre[t]
                if tanh:
                    d *= dh
                else:  # a select, as PyTorch's: 0 times an inf or NaN dh_t would be NaN
                    xp.copyto(d, dh)
                    xp.copyto(d, 0, where=inactive[t - lo])
                xp.matmul(d, wh, out=dh)
        scratch = h = slope = d = inactive = None  # let go of the scratch before the GEMMs' outputs
        d_x, d_w_ih, d_bias = _input_grads(x, w_ih, bias, x2, d_pre)
        d_w_hh = d_pre.reshape(T * B, H).T @ hs[r:T + r].reshape(T * B, H) if w_hh.requires_grad else None
        grads = (d_x, dh, d_w_ih, d_w_hh)
        return grads if bias is None else grads + (d_bias,)
    parents = (x, h0, w_ih, w_hh) if bias is None else (x, h0, w_ih, w_hh, bias)
    return make(hs[1 - r:T + 1 - r], parents, backward, f"rnn_{nonlinearity}_sequence")


def _lstm_node(x, h0, c0, w_ih, w_hh, bias, reverse) -> Tensor:
    """S (T + 2, B, H): h_0..h_T, then c_n (layout in the module docstring).
    backward per step (the formulas of kernels.lstm_backward): dc_t += dh_t * o (1 - tanh(c_t)^2);
    d_a_t = [dc_t g i(1 - i), dc_t c_{t-1} f(1 - f), dc_t i (1 - g^2), dh_t tanh(c_t) o(1 - o)];
    dh_{t-1} = d_a_t W_hh;  dc_{t-1} = dc_t * f.  tanh(c_t) is not kept: backward takes it again
    from c_t, a block at a time (one tanh over the outputs' size, for a seventh less to keep)."""
    xp = array_module(h0.data)
    T, B, _ = x.shape
    wh = w_hh.data
    H = wh.shape[1]
    order, r = _steps(T, reverse)
    scale = kernels.lstm_gate_scale(wh, H)  # the kernel takes the pre-activations times k: the
                                            # projection and W_hh's rows come scaled by k
    x2, acts = _project(xp, x, w_ih, None if bias is None else bias.data, scale)  # then the gates
    wh_t = kernels.recurrent_t(wh, T, scale)
    states = xp.empty((T + 2, B, H), dtype=acts.dtype)
    hs, cs = states[:T + 1], xp.empty((T + 1, B, H), dtype=acts.dtype)
    hs[T * r], cs[T * r] = h0.data, c0.data
    tanh_c, recurrent = xp.empty((B, H), dtype=acts.dtype), xp.empty_like(acts[0])
    for t in order:
        a = acts[t]
        xp.matmul(hs[t + r], wh_t, out=recurrent)
        a += recurrent
        kernels.lstm_forward(xp, a, cs[t + r], hs[t + 1 - r], cs[t + 1 - r], tanh_c)
    states[T + 1] = cs[T - T * r]  # c_n

    def backward(_, g):
        blocks = _blocks(T, reverse, acts[0].nbytes)
        k = blocks[0][1] - blocks[0][0]
        d_a, block = _gradient_rows(xp, acts, k)
        f = acts.reshape(T, B, 4, H)[:, :, 1]
        h_to_c, tanh_c = (xp.empty((k, B, H), dtype=acts.dtype) for _ in range(2))  # o(1 - tanh(c)^2), tanh(c)
        dh, dc, scratch = xp.zeros_like(hs[0]), g[T + 1].copy(), xp.empty_like(cs[0])
        for lo, hi, steps in blocks:
            rows = d_a[lo:hi] if block is None else block[:hi - lo]
            factors = rows.reshape(hi - lo, B, 4, H)
            xp.tanh(cs[lo + 1 - r:hi + 1 - r], out=tanh_c[:hi - lo])
            kernels.lstm_factors(xp, acts[lo:hi], cs[lo + r:hi + r], tanh_c[:hi - lo], factors, h_to_c[:hi - lo])
            for t in steps:  # d_a = [dc, dc, dc, dh] * factors, then on to step t - 1
                dh += g[t + 1 - r]
                xp.multiply(dh, h_to_c[t - lo], out=scratch)
                dc += scratch
                step = factors[t - lo]
                step[:, :3] *= dc[:, None]
                step[:, 3] *= dh
                xp.matmul(rows[t - lo], wh, out=dh)
                dc *= f[t]
            if block is not None:
                d_a[lo:hi] = rows
        dh += g[T * r]
        block = h_to_c = tanh_c = rows = factors = step = None  # let go of the scratch before the GEMMs' outputs
        d_x, d_w_ih, d_bias = _input_grads(x, w_ih, bias, x2, d_a)
        d_w_hh = d_a.reshape(T * B, 4 * H).T @ hs[r:T + r].reshape(T * B, H) if w_hh.requires_grad else None
        grads = (d_x, dh, dc, d_w_ih, d_w_hh)
        return grads if bias is None else grads + (d_bias,)
    parents = (x, h0, c0, w_ih, w_hh) if bias is None else (x, h0, c0, w_ih, w_hh, bias)
    return make(states, parents, backward, "lstm_sequence")


def _gru_node(x, h0, w_ih, w_hh, b_ih, b_hh, reverse) -> Tensor:
    """The outputs (T, B, H), a view of the states (layout in the module docstring).
    backward per step (the formulas of kernels.gru_backward): dn = dh (1 - z)(1 - n^2);
    dz = dh (h_{t-1} - n) z(1 - z);  dr = dn a_n r(1 - r);  d_gx_t = [dr, dz, dn];
    d_a_t = [dr, dz, dn r];  dh_{t-1} = dh_t * z + d_a_t W_hh"""
    xp = array_module(h0.data)
    T, B, _ = x.shape
    wh = w_hh.data
    H = wh.shape[1]
    order, r = _steps(T, reverse)
    scale = xp.ones(3 * H, dtype=wh.dtype)  # the kernel takes the r and z pre-activations negated:
    scale[:2 * H] = -1.0                     # the projection (b_hh's r and z blocks added) and
    bias = None                              # W_hh's r and z rows come negated
    if b_ih is not None:
        bias = b_ih.data.copy()
        bias[:2 * H] += b_hh.data[:2 * H]
    x2, gates = _project(xp, x, w_ih, bias, scale)  # then the gates [r, z, n], in place
    wh_t = kernels.recurrent_t(wh, T, scale)
    hs = xp.empty((T + 1, B, H), dtype=gates.dtype)
    hs[T * r] = h0.data
    a_n = xp.empty((T, B, H), dtype=gates.dtype)
    a = xp.empty_like(gates[0])
    for t in order:
        xp.matmul(hs[t + r], wh_t, out=a)
        gates[t, :, :2 * H] += a[:, :2 * H]
        if b_hh is None:
            a_n[t] = a[:, 2 * H:]
        else:
            xp.add(a[:, 2 * H:], b_hh.data[2 * H:], out=a_n[t])
        kernels.gru_forward(xp, gates[t], a_n[t], hs[t + r], hs[t + 1 - r])

    def backward(_, g):
        blocks = _blocks(T, reverse, gates[0].nbytes)
        k = blocks[0][1] - blocks[0][0]
        d_a, block = _gradient_rows(xp, gates, k)
        z, to_n = gates.reshape(T, B, 3, H)[:, :, 1], xp.empty_like(a_n[:k])
        # dL/dh_t of each step, then (times to_n) d_gx's n block; in a freeing backward (block given)
        # over a_n, whose rows a block has read before its steps write them
        d_gx_n = a_n if block is not None else xp.empty_like(a_n)
        carry, scratch = xp.zeros_like(hs[0]), xp.empty_like(hs[0])
        for lo, hi, steps in blocks:
            rows = d_a[lo:hi] if block is None else block[:hi - lo]
            factors = rows.reshape(hi - lo, B, 3, H)
            kernels.gru_factors(xp, gates[lo:hi], a_n[lo:hi], hs[lo + r:hi + r], factors, to_n[:hi - lo])
            for t in steps:  # d_a = dh * factors, then on to step t - 1
                dh = d_gx_n[t]
                xp.add(g[t], carry, out=dh)
                factors[t - lo] *= dh[:, None]
                xp.matmul(rows[t - lo], wh, out=carry)
                xp.multiply(dh, z[t], out=scratch)
                carry += scratch
            d_gx_n[lo:hi] *= to_n[:hi - lo]
            if block is not None:
                d_a[lo:hi] = rows
        dh = carry
        block = to_n = rows = factors = None  # let go of the scratch before the GEMMs' outputs
        d_x, d_w_ih, d_b_ih = _input_grads(x, w_ih, b_ih, x2, d_a[:, :, :2 * H], d_gx_n)
        d_a2 = d_a.reshape(T * B, 3 * H)
        d_w_hh = d_a2.T @ hs[r:T + r].reshape(T * B, H) if w_hh.requires_grad else None
        grads = (d_x, dh, d_w_ih, d_w_hh)
        return grads if b_ih is None else grads + (d_b_ih, d_a2.sum(axis=0) if b_hh.requires_grad else None)
    parents = (x, h0, w_ih, w_hh) if b_ih is None else (x, h0, w_ih, w_hh, b_ih, b_hh)
    return make(hs[1 - r:T + 1 - r], parents, backward, "gru_sequence")
