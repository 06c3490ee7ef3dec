"""Fused recurrent steps: one graph node per time step, with a hand-derived backward.

Each step takes the input projection of its time step, gx_t = x_t W_ih^T + b (computed for all
steps at once by one GEMM before the time loop), the previous state and the recurrent weights,
and does all of the step's arithmetic in one node: one GEMM h W_hh^T forward, two GEMMs backward
(for the previous state, and W_hh's term d_a^T h, which the engine gathers over all steps into
one GEMM: autograd.OuterGrad). Shapes: B batch, H hidden; gate order as PyTorch.

The gate arithmetic is kernels.py's, shared with the whole-sequence form (sequence.py); here
each step gets fresh buffers, since its node keeps them for backward. The formulas are the
composite cells' (nn/cells.py); the tests hold the forms equal to 1e-10.
"""
from __future__ import annotations

from . import kernels
from .autograd import OuterGrad, make
from .backend import array_module
from .tensor import Tensor

__all__ = ["linear", "rnn_step", "lstm_step", "gru_step"]


def linear(x: Tensor, w: Tensor, b: Tensor = None) -> Tensor:
    """y = x W^T + b as one node (the input projection of all time steps at once).
    x: (N, I), w: (O, I), b: (O,) -> y: (N, O)

    backward: d_x = g W;  d_W = g^T x;  d_b = sum over the N rows of g
    """
    xd, wd = x.data, w.data
    out = xd @ wd.T
    if b is not None:
        out += b.data

    def backward(_, g):
        grads = (g @ wd if x.requires_grad else None, g.T @ xd if w.requires_grad else None)
        return grads if b is None else grads + (g.sum(axis=0) if b.requires_grad else None,)
    return make(out, (x, w) if b is None else (x, w, b), backward, "linear")


def rnn_step(gx: Tensor, h: Tensor, w_hh: Tensor, nonlinearity: str = "tanh", w_hh_t=None) -> Tensor:
    """h' = act(gx + h W_hh^T), act = tanh or relu.   gx, h: (B, H); w_hh: (H, H) -> h': (B, H)
    (w_hh_t: W_hh^T as kernels.recurrent_t gives it, for the forward GEMM; None: W_hh.T)

    backward: d_pre = g * act'(h')  (tanh' = (1 + h')(1 - h'), relu' = [h' > 0], 1 at NaN as ops.relu);
              d_gx = d_pre;  d_h = d_pre W_hh;  d_W_hh = d_pre^T h
    """
    xp = array_module(h.data)
    hd, w = h.data, w_hh.data
    out = hd @ (w.T if w_hh_t is None else w_hh_t)
    out += gx.data
    tanh = nonlinearity == "tanh"
    if tanh:
        xp.tanh(out, out=out)
    else:
        xp.maximum(out, 0, out=out)

    def backward(_, g):
        if tanh:
            d_pre = kernels.tanh_slope(xp, out)
            d_pre *= g
        else:
            d_pre = xp.where(out <= 0, 0, g)
        return d_pre, d_pre @ w if h.requires_grad else None, OuterGrad(d_pre, hd) if w_hh.requires_grad else None
    return make(out, (gx, h, w_hh), backward, "rnn_step")


def lstm_step(gx: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, w_hh_t=None) -> Tensor:
    """One LSTM step, packed output s' = [h', c'] stacked.   gx: (B, 4H); h, c: (B, H);
    w_hh: (4H, H) -> s': (2, B, H), so that s'[0] = h' and s'[1] = c' are contiguous views
    (w_hh_t: W_hh^T as kernels.recurrent_t gives it, for the forward GEMM; None: W_hh.T)

    a = gx + h W_hh^T = [a_i, a_f, a_g, a_o];  i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c' = f * c + i * g;   h' = o * tanh(c')

    backward, with dh', dc' the two parts of the incoming gradient:
    dc = dc' + dh' * o * (1 - tanh(c')^2)
    d_a = [dc * g * i(1 - i),  dc * c * f(1 - f),  dc * i * (1 - g^2),  dh' * tanh(c') * o(1 - o)]
    d_gx = d_a;  d_h = d_a W_hh;  d_c = dc * f;  d_W_hh = d_a^T h
    """
    xp = array_module(h.data)
    hd, cd, w = h.data, c.data, w_hh.data
    act = hd @ (w.T if w_hh_t is None else w_hh_t)
    act += gx.data
    act *= kernels.lstm_gate_scale(act, cd.shape[-1])
    out = xp.empty((2,) + cd.shape, dtype=act.dtype)
    tanh_c = xp.empty_like(out[1])
    kernels.lstm_forward(xp, act, cd, out[0], out[1], tanh_c)

    def backward(_, gs):
        dc = gs[1].copy()  # dL/dc', then dL/dc
        d_a = xp.empty_like(act)
        kernels.lstm_backward(xp, act, cd, tanh_c, gs[0], dc, d_a, xp.empty_like(act))
        return (d_a,
                d_a @ w if h.requires_grad else None,
                dc,
                OuterGrad(d_a, hd) if w_hh.requires_grad else None)
    return make(out, (gx, h, c, w_hh), backward, "lstm_step")


def gru_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor = None, w_hh_t=None) -> Tensor:
    """One GRU step.   gx: (B, 3H) = x W_ih^T + b_ih;  h: (B, H);  w_hh: (3H, H);  b_hh: (3H,)
    -> h': (B, H)   (w_hh_t: W_hh^T as kernels.recurrent_t gives it, for the forward GEMM; None: W_hh.T)

    a = h W_hh^T + b_hh = [a_r, a_z, a_n];  r = sigmoid(gx_r + a_r);  z = sigmoid(gx_z + a_z)
    n = tanh(gx_n + r * a_n);   h' = (1 - z) * n + z * h = n + z * (h - n)

    backward: dn = g (1 - z) (1 - n^2);  dz = g (h - n) z(1 - z);  dr = dn * a_n * r(1 - r)
    d_gx = [dr, dz, dn];  d_a = [dr, dz, dn * r];  d_h = g z + d_a W_hh;  d_W_hh = d_a^T h;
    d_b_hh = sum over the batch of d_a
    """
    xp = array_module(h.data)
    hd, w, gxd = h.data, w_hh.data, gx.data
    n_ = hd.shape[-1]
    a = hd @ (w.T if w_hh_t is None else w_hh_t)
    if b_hh is not None:
        a += b_hh.data
    gates = xp.empty_like(gxd)
    xp.add(gxd[:, :2 * n_], a[:, :2 * n_], out=gates[:, :2 * n_])
    xp.negative(gates[:, :2 * n_], out=gates[:, :2 * n_])
    gates[:, 2 * n_:] = gxd[:, 2 * n_:]
    a_n = a[:, 2 * n_:].copy()  # backward needs only this third of a: let the rest go
    out = xp.empty_like(hd)
    kernels.gru_forward(xp, gates, a_n, hd, out)

    def backward(_, g):
        d_gx, d_a = xp.empty_like(gxd), xp.empty_like(gxd)
        kernels.gru_backward(xp, gates, a_n, hd, g, d_gx, d_a)
        grads = (d_gx,
                 g * gates[:, n_:2 * n_] + d_a @ w if h.requires_grad else None,
                 OuterGrad(d_a, hd) if w_hh.requires_grad else None)
        return grads if b_hh is None else grads + (d_a.sum(axis=0),)
    inputs = (gx, h, w_hh) if b_hh is None else (gx, h, w_hh, b_hh)
    return make(out, inputs, backward, "gru_step")
