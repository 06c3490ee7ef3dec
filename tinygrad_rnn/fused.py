"""Fused recurrent steps: one graph node per time step, with a hand-derived backward.

Each step takes the input projection of its time step, gx_t = x_t W_ih^T + b (computed for all
steps at once by one GEMM before the time loop), the previous state and the recurrent weights,
and does all of the step's arithmetic in one node: one GEMM h W_hh^T forward, two GEMMs backward
(for the previous state and for W_hh). Shapes: B batch, H hidden; gate order as PyTorch.

The formulas are the composite cells' (nn/cells.py); the tests hold both forms equal to 1e-10.
"""
from __future__ import annotations

from .autograd import make
from .backend import array_module
from .ops import stable_sigmoid
from .tensor import Tensor

__all__ = ["rnn_step", "lstm_step", "gru_step"]


def rnn_step(gx: Tensor, h: Tensor, w_hh: Tensor, nonlinearity: str = "tanh") -> Tensor:
    """h' = act(gx + h W_hh^T), act = tanh or relu.   gx, h: (B, H); w_hh: (H, H) -> h': (B, H)

    backward: d_pre = g * act'(h')  (tanh' = (1 + h')(1 - h'), relu' = [h' > 0]);
              d_gx = d_pre;  d_h = d_pre W_hh;  d_W_hh = d_pre^T h
    """
    xp = array_module(h.data)
    hd, w = h.data, w_hh.data
    pre = gx.data + hd @ w.T
    tanh = nonlinearity == "tanh"
    out = xp.tanh(pre, out=pre) if tanh else xp.maximum(pre, 0, out=pre)

    def backward(g):
        d_pre = g * ((1 + out) * (1 - out)) if tanh else xp.where(out > 0, g, 0)
        return d_pre, d_pre @ w if h.requires_grad else None, d_pre.T @ hd if w_hh.requires_grad else None
    return make(out, (gx, h, w_hh), backward, "rnn_step")


def lstm_step(gx: Tensor, h: Tensor, c: Tensor, w_hh: Tensor) -> Tensor:
    """One LSTM step, packed output s' = [h' | c'].   gx: (B, 4H); h, c: (B, H); w_hh: (4H, H)
    -> s': (B, 2H)

    a = gx + h W_hh^T = [a_i, a_f, a_g, a_o];  i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c' = f * c + i * g;   h' = o * tanh(c')

    backward, with dh', dc' the two halves of the incoming gradient:
    dc = dc' + dh' * o * (1 - tanh(c')^2)
    d_a = [dc * g * i(1 - i),  dc * c * f(1 - f),  dc * i * (1 - g^2),  dh' * tanh(c') * o(1 - o)]
    d_gx = d_a;  d_h = d_a W_hh;  d_c = dc * f;  d_W_hh = d_a^T h
    """
    xp = array_module(h.data)
    hd, cd, w = h.data, c.data, w_hh.data
    n = cd.shape[-1]
    a = gx.data + hd @ w.T
    act = xp.empty_like(a)
    act[:, :2 * n] = stable_sigmoid(xp, a[:, :2 * n])
    act[:, 2 * n:3 * n] = xp.tanh(a[:, 2 * n:3 * n])
    act[:, 3 * n:] = stable_sigmoid(xp, a[:, 3 * n:])
    i, f, g_, o = act[:, :n], act[:, n:2 * n], act[:, 2 * n:3 * n], act[:, 3 * n:]
    out = xp.empty((a.shape[0], 2 * n), dtype=a.dtype)
    c_new = out[:, n:]
    xp.multiply(f, cd, out=c_new)
    c_new += i * g_
    tanh_c = xp.tanh(c_new)
    xp.multiply(o, tanh_c, out=out[:, :n])

    def backward(gs):
        dh, dc = gs[:, :n], gs[:, n:] + gs[:, :n] * o * ((1 + tanh_c) * (1 - tanh_c))
        d_a = xp.empty_like(act)
        d_a[:, :n] = dc * g_ * i * (1 - i)
        d_a[:, n:2 * n] = dc * cd * f * (1 - f)
        d_a[:, 2 * n:3 * n] = dc * i * ((1 + g_) * (1 - g_))
        d_a[:, 3 * n:] = dh * tanh_c * o * (1 - o)
        return (d_a,
                d_a @ w if h.requires_grad else None,
                dc * f if c.requires_grad else None,
                d_a.T @ hd if w_hh.requires_grad else None)
    return make(out, (gx, h, c, w_hh), backward, "lstm_step")


def gru_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor = None) -> Tensor:
    """One GRU step.   gx: (B, 3H) = x W_ih^T + b_ih;  h: (B, H);  w_hh: (3H, H);  b_hh: (3H,)
    -> h': (B, H)

    a = h W_hh^T + b_hh = [a_r, a_z, a_n];  r = sigmoid(gx_r + a_r);  z = sigmoid(gx_z + a_z)
    n = tanh(gx_n + r * a_n);   h' = (1 - z) * n + z * h

    backward: dn = g (1 - z) (1 - n^2);  dz = g (h - n) z(1 - z);  dr = dn * a_n * r(1 - r)
    d_gx = [dr, dz, dn];  d_a = [dr, dz, dn * r];  d_h = g z + d_a W_hh;  d_W_hh = d_a^T h;
    d_b_hh = sum over the batch of d_a
    """
    xp = array_module(h.data)
    hd, w = h.data, w_hh.data
    n_ = hd.shape[-1]
    a = hd @ w.T
    if b_hh is not None:
        a += b_hh.data
    gxd = gx.data
    rz = stable_sigmoid(xp, gxd[:, :2 * n_] + a[:, :2 * n_])
    r, z = rz[:, :n_], rz[:, n_:]
    a_n = a[:, 2 * n_:]
    n = xp.tanh(gxd[:, 2 * n_:] + r * a_n)
    out = n + z * (hd - n)

    def backward(g):
        dn = g * (1 - z) * ((1 + n) * (1 - n))
        d_gx = xp.empty_like(gxd)
        d_gx[:, :n_] = dn * a_n * r * (1 - r)
        d_gx[:, n_:2 * n_] = g * (hd - n) * z * (1 - z)
        d_gx[:, 2 * n_:] = dn
        d_a = d_gx.copy()
        d_a[:, 2 * n_:] *= r
        parents = (d_gx,
                   g * z + d_a @ w if h.requires_grad else None,
                   d_a.T @ hd if w_hh.requires_grad else None)
        return parents if b_hh is None else parents + (d_a.sum(axis=0),)
    inputs = (gx, h, w_hh) if b_hh is None else (gx, h, w_hh, b_hh)
    return make(out, inputs, backward, "gru_step")
