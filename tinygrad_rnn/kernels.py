"""The gate arithmetic of one recurrent step on backend arrays, forward and backward, in place.

These are the fused cells' kernels, written once and run by two graph granularities: fused.py
makes one node per time step (fresh buffers each step), sequence.py one node per layer and
direction (slices of buffers allocated once for all steps). The *_factors kernels are the
step-independent half of a backward step, for a block of steps at once (sequence.py). The GEMMs
stay with the callers, who know where their operands live. Shapes: B batch, H hidden; gate
order as PyTorch's; every output buffer is the caller's, and a kernel writes nothing else but
small temporaries.

At these sizes the elementwise work costs as much as the GEMMs, so it runs in place (`out=` and
augmented assignment). Sigmoid is PyTorch's 1 / (1 + exp(-x)), exact to rounding in relative
terms also where a gate is tiny (the shortcut (1 + tanh(x / 2)) / 2 loses the digits of a gate
below about 1e-4 in float32 and returns 0 below x = -20); callers hand the kernels -x, their
GEMMs' weights scaled by -1 once. exp(-x) overflows to inf where x < -88 (float32) or -709,
and there 1 / inf = 0 is sigmoid's value in the dtype, so that one warning is silenced.
"""
from __future__ import annotations

import numpy as np

from .backend import array_device, array_module

__all__ = ["recurrent_t", "tanh_slope", "sigmoid_slope", "negated_sigmoid", "lstm_gate_scale", "lstm_forward", "lstm_backward",
           "gru_forward", "gru_backward", "lstm_factors", "gru_factors"]


_OWN_TRANSPOSE_STEPS = 32  # from this many steps on, a W^T of its own pays for its copy
_TRANSPOSE_ROWS = 64       # rows of W per block of that copy


def recurrent_t(w, steps: int, scale=None):
    """W^T for `steps` GEMMs h @ W^T, each column times `scale` if given.   w: (G*H, H) -> (H, G*H)

    OpenBLAS runs those GEMMs 10-45% faster over a C-contiguous W^T of its own than over W's
    transposed view (B = 1 to 64, H = 100 to 512), but the copy costs as much as 5 to 30 steps
    save (more for small B). So a NumPy W of 32 or more steps gets one, copied 64 rows at a time
    (3x faster than one strided copy at H = 512); otherwise, and for CuPy (cuBLAS takes either
    layout alike), W's transposed view is returned (of W scaled, a copy, when scale is given)."""
    if steps < _OWN_TRANSPOSE_STEPS or w.__class__ is not np.ndarray:
        return (w if scale is None else w * scale[:, None]).T
    w_t = np.empty(w.shape[::-1], dtype=w.dtype)
    for lo in range(0, w.shape[0], _TRANSPOSE_ROWS):
        rows = slice(lo, lo + _TRANSPOSE_ROWS)
        if scale is None:
            w_t[:, rows] = w[rows].T
        else:
            np.multiply(w[rows].T, scale[rows], out=w_t[:, rows])
    return w_t


def tanh_slope(xp, y):
    """1 - y^2 for y = tanh(.), as (1 + y)(1 - y): exact near |y| = 1 where 1 - y*y is not."""
    slope = xp.add(1, y)
    slope *= 1 - y
    return slope


def sigmoid_slope(s):
    """s (1 - s) for s = sigmoid(.)."""
    slope = 1 - s
    slope *= s
    return slope


_GATE_SCALES: dict = {}


def lstm_gate_scale(like, n: int):
    """k (4n,) on like's device and dtype: -1 on the sigmoid gates i, f, o, 1 on g: what
    lstm_forward takes its pre-activations times (cached; callers running many steps look it up
    once and scale their weights by it)."""
    xp, dtype = array_module(like), like.dtype
    key = (array_device(like), n, dtype)
    if key not in _GATE_SCALES:
        k = xp.full(4 * n, -1.0, dtype=dtype)
        k[2 * n:3 * n] = 1.0
        _GATE_SCALES[key] = k
    return _GATE_SCALES[key]


def negated_sigmoid(xp, *blocks) -> None:
    """sigmoid(x) = 1 / (1 + exp(-x)) in place over each of blocks, which hold -x on entry."""
    with np.errstate(over="ignore"):  # exp(-x) = inf where sigmoid(x) is 0 in the dtype
        for minus_x in blocks:
            xp.exp(minus_x, out=minus_x)
    for minus_x in blocks:
        minus_x += 1
        xp.divide(1, minus_x, out=minus_x)


def lstm_forward(xp, act, c, h_out, c_out, tanh_c_out) -> None:
    """One LSTM step after its GEMM.   act: (B, 4H); c, h_out, c_out, tanh_c_out: (B, H)

    act holds the pre-activations times k = lstm_gate_scale(act, H) on entry, (gx + h W_hh^T) k
    (a caller running many steps scales its projection and W_hh by k once), and the gates
    [i, f, g, o] on exit: i, f, o = sigmoid(a_i, a_f, a_o), g = tanh(a_g). Then
    c' = f * c + i * g -> c_out, tanh(c') -> tanh_c_out, h' = o * tanh(c') -> h_out.
    """
    n = c.shape[-1]
    i, f, g, o = act[:, :n], act[:, n:2 * n], act[:, 2 * n:3 * n], act[:, 3 * n:]
    negated_sigmoid(xp, act[:, :2 * n], o)
    xp.tanh(g, out=g)
    xp.multiply(f, c, out=c_out)
    xp.multiply(i, g, out=h_out)  # h_out as scratch for i * g
    c_out += h_out
    xp.tanh(c_out, out=tanh_c_out)
    xp.multiply(o, tanh_c_out, out=h_out)


def lstm_backward(xp, act, c, tanh_c, dh, dc, d_a, slope) -> None:
    """One LSTM step backward, but for its GEMM.   act, d_a, slope: (B, 4H); the rest (B, H)

    act: the gates [i, f, g, o]; c: the previous cell state; tanh_c: tanh(c'); dh: dL/dh';
    dc: dL/dc' from later steps. With dc_all = dc + dh * o * (1 - tanh(c')^2), writes
    d_a = [dc_all * g * i(1 - i),  dc_all * c * f(1 - f),  dc_all * i * (1 - g^2),  dh * tanh(c') * o(1 - o)]
    and leaves dL/dc = dc_all * f in dc. The caller forms d_h = d_a W_hh. slope is scratch (the
    gates' slopes); the slots of d_a serve as scratch too until they are written.
    """
    n = c.shape[-1]
    i, f, g, o = act[:, :n], act[:, n:2 * n], act[:, 2 * n:3 * n], act[:, 3 * n:]
    d_i, d_f, d_g, d_o = d_a[:, :n], d_a[:, n:2 * n], d_a[:, 2 * n:3 * n], d_a[:, 3 * n:]
    xp.subtract(1, act, out=slope)  # s(1 - s) on the sigmoid gates, then (1 + g)(1 - g) on g:
    slope *= act                    # the product form is exact near |g| = 1, where 1 - g*g is not
    xp.add(1, g, out=slope[:, 2 * n:3 * n])
    xp.subtract(1, g, out=d_g)
    slope[:, 2 * n:3 * n] *= d_g
    xp.add(1, tanh_c, out=d_o)  # dc += dh * o * (1 + tanh c')(1 - tanh c')
    xp.subtract(1, tanh_c, out=d_i)
    d_o *= d_i
    d_o *= o
    d_o *= dh
    dc += d_o
    xp.multiply(dc, g, out=d_i)  # the upstream factor of each gate, times its slope
    xp.multiply(dc, c, out=d_f)
    xp.multiply(dc, i, out=d_g)
    xp.multiply(dh, tanh_c, out=d_o)
    d_a *= slope
    dc *= f


def gru_forward(xp, gates, a_n, h, h_out) -> None:
    """One GRU step after its GEMM.   gates: (B, 3H); a_n, h, h_out: (B, H)

    With gx = x W_ih^T + b_ih and a = h W_hh^T + b_hh, each [_r, _z, _n], gates holds
    [-(gx_r + a_r), -(gx_z + a_z), gx_n] on entry (negated for the sigmoid; a caller running many
    steps negates its projection's and W_hh's r and z rows once) and [r, z, n] on exit, a_n = a's
    n block: r, z = sigmoid(gx + a);  n = tanh(gx_n + r * a_n);  h' = (1 - z) * n + z * h
    = n + z * (h - n) -> h_out.
    """
    n_ = h.shape[-1]
    rz = gates[:, :2 * n_]
    negated_sigmoid(xp, rz)
    r, z, n = rz[:, :n_], rz[:, n_:], gates[:, 2 * n_:]
    xp.multiply(r, a_n, out=h_out)  # h_out as scratch for r * a_n
    n += h_out
    xp.tanh(n, out=n)
    xp.subtract(h, n, out=h_out)
    h_out *= z
    h_out += n


def gru_backward(xp, gates, a_n, h, dh, d_gx, d_a) -> None:
    """The gradients of one GRU step's two GEMM outputs.   gates, d_gx, d_a: (B, 3H); a_n, h, dh: (B, H)

    gates: [r, z, n]; a_n: the n-block of h W_hh^T + b_hh; h: the previous state; dh: dL/dh'.
    dn = dh (1 - z)(1 - n^2);  dz = dh (h - n) z(1 - z);  dr = dn a_n r(1 - r)
    d_gx = [dr, dz, dn] (for gx);  d_a = [dr, dz, dn * r] (for a).
    The caller forms d_h = dh * z + d_a W_hh.
    """
    n_ = h.shape[-1]
    r, z, n = gates[:, :n_], gates[:, n_:2 * n_], gates[:, 2 * n_:]
    d_r, d_z, d_n = d_gx[:, :n_], d_gx[:, n_:2 * n_], d_gx[:, 2 * n_:]
    xp.subtract(1, z, out=d_n)
    d_n *= dh
    d_n *= tanh_slope(xp, n)
    xp.multiply(d_n, a_n, out=d_r)
    d_r *= sigmoid_slope(r)
    xp.subtract(h, n, out=d_z)
    d_z *= dh
    d_z *= sigmoid_slope(z)
    d_a[...] = d_gx
    d_a[:, 2 * n_:] *= r


def lstm_factors(xp, gates, c_prev, tanh_c, factors, h_to_c) -> None:
    """What LSTM backward needs of a block of k steps before the gradients flowing back in time.
    gates: (k, B, 4H), [i, f, g, o]; c_prev, tanh_c, h_to_c: (k, B, H); factors: (k, B, 4, H)

    d_a = [dc, dc, dc, dh] * factors (the formulas of lstm_backward), so factors =
    [g i(1 - i), c f(1 - f), i (1 + g)(1 - g), tanh(c') o(1 - o)]; and h_to_c = o (1 - tanh(c')^2),
    the path from dh to dc. The slots of factors double as scratch before they are written.
    """
    k, B, n4 = gates.shape
    i, f, g, o = (gates.reshape(k, B, 4, n4 // 4)[:, :, j] for j in range(4))
    xp.add(1, tanh_c, out=h_to_c)
    xp.subtract(1, tanh_c, out=factors[:, :, 3])
    h_to_c *= factors[:, :, 3]
    h_to_c *= o
    xp.add(1, g, out=factors[:, :, 0])
    xp.subtract(1, g, out=factors[:, :, 2])
    factors[:, :, 2] *= factors[:, :, 0]
    factors[:, :, 2] *= i
    for j, gate, other in ((0, i, g), (1, f, c_prev), (3, o, tanh_c)):  # s(1 - s) times the other
        xp.subtract(1, gate, out=factors[:, :, j])
        factors[:, :, j] *= gate
        factors[:, :, j] *= other


def gru_factors(xp, gates, a_n, h_prev, factors, to_n) -> None:
    """What GRU backward needs of a block of k steps before the gradients flowing back in time.
    gates: (k, B, 3H), [r, z, n]; a_n, h_prev, to_n: (k, B, H); factors: (k, B, 3, H)

    d_a = dh * factors (the formulas of gru_backward), so factors =
    [r(1 - r) a_n (1 - z)(1 - n^2),  z(1 - z)(h - n),  (1 - z)(1 - n^2) r]; and
    to_n = (1 - z)(1 + n)(1 - n), so that d_gx's n block is dh * to_n (its r and z blocks are
    d_a's). The slots of factors double as scratch before they are written.
    """
    k, B, n3 = gates.shape
    r, z, n = (gates.reshape(k, B, 3, n3 // 3)[:, :, j] for j in range(3))
    xp.add(1, n, out=to_n)
    xp.subtract(1, n, out=factors[:, :, 2])
    to_n *= factors[:, :, 2]
    xp.subtract(1, z, out=factors[:, :, 2])
    to_n *= factors[:, :, 2]
    xp.subtract(1, r, out=factors[:, :, 0])
    factors[:, :, 0] *= r
    factors[:, :, 0] *= a_n
    factors[:, :, 0] *= to_n
    xp.subtract(1, z, out=factors[:, :, 1])
    factors[:, :, 1] *= z
    xp.subtract(h_prev, n, out=factors[:, :, 2])
    factors[:, :, 1] *= factors[:, :, 2]
    xp.multiply(to_n, r, out=factors[:, :, 2])
