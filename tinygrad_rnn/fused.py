"""Fused recurrent steps: one graph node per time step, with a hand-derived backward.

Each step takes the input projection of its time step, gx_t = x_t W_ih^T + b (computed for all
steps at once by one GEMM before the time loop), the previous state and the recurrent weights,
and does all of the step's arithmetic in one node: one GEMM h W_hh^T forward, two GEMMs backward
(for the previous state, and W_hh's term d_a^T h, which the engine gathers over all steps into
one GEMM: autograd.OuterGrad). Shapes: B batch, H hidden; gate order as PyTorch.

The elementwise work runs in place on a few buffers (`out=` and augmented assignment), since at
these sizes it costs as much as the GEMMs. Gates use sigmoid(x) = (1 + tanh(x / 2)) / 2: one
transcendental, never overflowing, exact to rounding in absolute terms.

The formulas are the composite cells' (nn/cells.py); the tests hold both forms equal to 1e-10.
"""
from __future__ import annotations

from .autograd import OuterGrad, make
from .backend import array_device, array_module
from .tensor import Tensor

__all__ = ["linear", "rnn_step", "lstm_step", "gru_step"]


def _sigmoid_(xp, x) -> None:
    """x <- sigmoid(x) in place, as (1 + tanh(x / 2)) / 2."""
    x *= 0.5
    xp.tanh(x, out=x)
    x *= 0.5
    x += 0.5


_GATE_AFFINES: dict = {}


def _lstm_gate_affine(like, n: int):
    """(k, m), each (4n,) on like's device and dtype: 1/2 and 1/2 on the sigmoid gates i, f, o;
    1 and 0 on g (cached)."""
    xp, dtype = array_module(like), like.dtype
    key = (array_device(like), n, dtype)
    if key not in _GATE_AFFINES:
        k = xp.full(4 * n, 0.5, dtype=dtype)
        k[2 * n:3 * n] = 1.0
        m = xp.full(4 * n, 0.5, dtype=dtype)
        m[2 * n:3 * n] = 0.0
        _GATE_AFFINES[key] = (k, m)
    return _GATE_AFFINES[key]


def _tanh_slope(xp, y):
    """1 - y^2 for y = tanh(.), as (1 + y)(1 - y): exact near |y| = 1 where 1 - y*y is not."""
    slope = xp.add(1, y)
    slope *= 1 - y
    return slope


def _sigmoid_slope(s):
    """s (1 - s) for s = sigmoid(.)."""
    slope = 1 - s
    slope *= s
    return slope


def linear(x: Tensor, w: Tensor, b: Tensor = None) -> Tensor:
    """y = x W^T + b as one node (the input projection of all time steps at once).
    x: (N, I), w: (O, I), b: (O,) -> y: (N, O)

    backward: d_x = g W;  d_W = g^T x;  d_b = sum over the N rows of g
    """
    xd, wd = x.data, w.data
    out = xd @ wd.T
    if b is not None:
        out += b.data

    def backward(g):
        grads = (g @ wd if x.requires_grad else None, g.T @ xd if w.requires_grad else None)
        return grads if b is None else grads + (g.sum(axis=0) if b.requires_grad else None,)
    return make(out, (x, w) if b is None else (x, w, b), backward, "linear")


def rnn_step(gx: Tensor, h: Tensor, w_hh: Tensor, nonlinearity: str = "tanh") -> Tensor:
    """h' = act(gx + h W_hh^T), act = tanh or relu.   gx, h: (B, H); w_hh: (H, H) -> h': (B, H)

    backward: d_pre = g * act'(h')  (tanh' = (1 + h')(1 - h'), relu' = [h' > 0]);
              d_gx = d_pre;  d_h = d_pre W_hh;  d_W_hh = d_pre^T h
    """
    xp = array_module(h.data)
    hd, w = h.data, w_hh.data
    out = hd @ w.T
    out += gx.data
    tanh = nonlinearity == "tanh"
    if tanh:
        xp.tanh(out, out=out)
    else:
        xp.maximum(out, 0, out=out)

    def backward(g):
        if tanh:
            d_pre = _tanh_slope(xp, out)
            d_pre *= g
        else:
            d_pre = xp.where(out > 0, g, 0)
        return d_pre, d_pre @ w if h.requires_grad else None, OuterGrad(d_pre, hd) if w_hh.requires_grad else None
    return make(out, (gx, h, w_hh), backward, "rnn_step")


def lstm_step(gx: Tensor, h: Tensor, c: Tensor, w_hh: Tensor) -> Tensor:
    """One LSTM step, packed output s' = [h', c'] stacked.   gx: (B, 4H); h, c: (B, H);
    w_hh: (4H, H) -> s': (2, B, H), so that s'[0] = h' and s'[1] = c' are contiguous views

    a = gx + h W_hh^T = [a_i, a_f, a_g, a_o];  i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c' = f * c + i * g;   h' = o * tanh(c')

    backward, with dh', dc' the two parts of the incoming gradient:
    dc = dc' + dh' * o * (1 - tanh(c')^2)
    d_a = [dc * g * i(1 - i),  dc * c * f(1 - f),  dc * i * (1 - g^2),  dh' * tanh(c') * o(1 - o)]
    d_gx = d_a;  d_h = d_a W_hh;  d_c = dc * f;  d_W_hh = d_a^T h
    """
    xp = array_module(h.data)
    hd, cd, w = h.data, c.data, w_hh.data
    n = cd.shape[-1]
    act = hd @ w.T  # the pre-activations a, turned into the gates in place, all columns at once:
    act += gx.data  # sigmoid(a) = tanh(a/2)/2 + 1/2 on i, f, o and tanh(a) on g, as tanh(a k) k + m
    scale, shift = _lstm_gate_affine(act, n)
    act *= scale
    xp.tanh(act, out=act)
    act *= scale
    act += shift
    i, f, g_, o = act[:, :n], act[:, n:2 * n], act[:, 2 * n:3 * n], act[:, 3 * n:]
    out = xp.empty((2, act.shape[0], n), dtype=act.dtype)
    h_new, c_new = out[0], out[1]
    xp.multiply(f, cd, out=c_new)
    xp.multiply(i, g_, out=h_new)  # h_new as scratch for i * g
    c_new += h_new
    tanh_c = xp.tanh(c_new)
    xp.multiply(o, tanh_c, out=h_new)

    def backward(gs):
        dh = gs[0]
        dc = _tanh_slope(xp, tanh_c)
        dc *= o
        dc *= dh
        dc += gs[1]
        slope = 1 - act  # s(1 - s) on the sigmoid gates, then (1 + g)(1 - g) on g
        slope *= act
        xp.add(1, g_, out=slope[:, 2 * n:3 * n])
        slope[:, 2 * n:3 * n] *= 1 - g_
        d_a = xp.empty_like(act)  # the upstream factor of each gate, times its slope
        xp.multiply(dc, g_, out=d_a[:, :n])
        xp.multiply(dc, cd, out=d_a[:, n:2 * n])
        xp.multiply(dc, i, out=d_a[:, 2 * n:3 * n])
        xp.multiply(dh, tanh_c, out=d_a[:, 3 * n:])
        d_a *= slope
        return (d_a,
                d_a @ w if h.requires_grad else None,
                dc * f if c.requires_grad else None,
                OuterGrad(d_a, hd) if w_hh.requires_grad else None)
    return make(out, (gx, h, c, w_hh), backward, "lstm_step")


def gru_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor = None) -> Tensor:
    """One GRU step.   gx: (B, 3H) = x W_ih^T + b_ih;  h: (B, H);  w_hh: (3H, H);  b_hh: (3H,)
    -> h': (B, H)

    a = h W_hh^T + b_hh = [a_r, a_z, a_n];  r = sigmoid(gx_r + a_r);  z = sigmoid(gx_z + a_z)
    n = tanh(gx_n + r * a_n);   h' = (1 - z) * n + z * h = n + z * (h - n)

    backward: dn = g (1 - z) (1 - n^2);  dz = g (h - n) z(1 - z);  dr = dn * a_n * r(1 - r)
    d_gx = [dr, dz, dn];  d_a = [dr, dz, dn * r];  d_h = g z + d_a W_hh;  d_W_hh = d_a^T h;
    d_b_hh = sum over the batch of d_a
    """
    xp = array_module(h.data)
    hd, w, gxd = h.data, w_hh.data, gx.data
    n_ = hd.shape[-1]
    a = hd @ w.T
    if b_hh is not None:
        a += b_hh.data
    rz = gxd[:, :2 * n_] + a[:, :2 * n_]
    _sigmoid_(xp, rz)
    r, z = rz[:, :n_], rz[:, n_:]
    a_n = a[:, 2 * n_:].copy()  # backward needs only this third of a: let the rest go
    n = r * a_n
    n += gxd[:, 2 * n_:]
    xp.tanh(n, out=n)
    out = hd - n
    out *= z
    out += n

    def backward(g):
        d_gx = xp.empty_like(gxd)
        d_r, d_z, d_n = d_gx[:, :n_], d_gx[:, n_:2 * n_], d_gx[:, 2 * n_:]
        xp.subtract(1, z, out=d_n)
        d_n *= g
        d_n *= _tanh_slope(xp, n)
        xp.multiply(d_n, a_n, out=d_r)
        d_r *= _sigmoid_slope(r)
        xp.subtract(hd, n, out=d_z)
        d_z *= g
        d_z *= _sigmoid_slope(z)
        d_a = d_gx.copy()
        d_a[:, 2 * n_:] *= r
        grads = (d_gx,
                 g * z + d_a @ w if h.requires_grad else None,
                 OuterGrad(d_a, hd) if w_hh.requires_grad else None)
        return grads if b_hh is None else grads + (d_a.sum(axis=0),)
    inputs = (gx, h, w_hh) if b_hh is None else (gx, h, w_hh, b_hh)
    return make(out, inputs, backward, "gru_step")
