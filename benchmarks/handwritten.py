"""Hand-written BPTT for one LSTM, GRU or RNN (tanh) layer: the limit an autograd over NumPy can reach.

No graph, no nodes, no closures: the forward pass writes what backward needs into buffers
allocated once, and backward walks the time steps in reverse with in-place ufuncs (out=). The
GEMMs are the fewest the algorithm allows:

    forward:  gx = X W_ih^T for all T steps at once      (T*B, I) @ (I, G*H)      1 GEMM
              a_t = gx_t + h_{t-1} W_hh^T, all gates     (B, H) @ (H, G*H)        T GEMMs
    backward: dh_{t-1} = d_a_t W_hh                       (B, G*H) @ (G*H, H)      T-1 GEMMs (T with dh_0)
              dW_hh = sum_t d_a_t^T h_{t-1}               (G*H, T*B) @ (T*B, H)    1 GEMM
              dW_ih = sum_t d_gx_t^T x_t                  (G*H, T*B) @ (T*B, I)    1 GEMM
              dX = d_gx W_ih (only with input_grad)        (T*B, G*H) @ (G*H, I)    1 GEMM

with G = 4 (LSTM), 3 (GRU) or 1 (RNN). Parameters, gate orders and formulas are PyTorch's
(weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh (G*H,); LSTM i, f, g, o; GRU r, z, n).
The loss of a benchmark step is L = sum(output * w) for a fixed array w, so dL/doutput = w.

W_hh^T is copied, C-contiguous, into a buffer of its own at each step (64 rows of W_hh at a time):
OpenBLAS runs the forward's h @ W_hh^T 10-45% faster so than over W_hh's transposed view (B = 1 to
64, H = 100 to 512), as tinygrad_rnn's kernels.recurrent_t does from 32 steps on.

The sigmoid is PyTorch's s(x) = 1 / (1 + exp(-x)), exact in relative terms also for tiny gates
(exp(-x) = inf where s(x) underflows to 0, a warning silenced); the LSTM's pre-activations are
first multiplied by k = -1 (i, f, o) or 1 (g), in one pass. Its few lines repeat kernels.py's on
purpose: this file imports nothing of the library it is the reference for.

The same code runs on CuPy arrays: pass xp = tinygrad_rnn.backend.array_module(some_array).

    ws = make_bptt("lstm", steps=T, batch=B, input_size=I, hidden_size=H, dtype=np.float32)
    loss, grads = ws.step(x, params, w)     # params: {"weight_ih": ..., "weight_hh": ..., ...}
    ws.activation_bytes()                    # what forward keeps for backward, in bytes
"""
from __future__ import annotations

import numpy as np

__all__ = ["make_bptt", "LSTMBPTT", "GRUBPTT", "RNNBPTT", "KINDS", "GATES", "params_of"]

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
KINDS = tuple(GATES)


def sigmoid_of_negated(xp, *blocks) -> None:
    """Each block holds -x on entry and s(x) = 1 / (1 + exp(-x)) on exit."""
    with np.errstate(over="ignore"):  # exp(-x) = inf where s(x) is 0 in the dtype
        for block in blocks:
            xp.exp(block, out=block)
    for block in blocks:
        block += 1
        xp.divide(1, block, out=block)


def params_of(model, layer: int = 0) -> dict:
    """{"weight_ih": array, ...} of one layer of an nn.LSTM/GRU/RNN (ours): the arrays themselves."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return {name: getattr(model, f"{name}_l{layer}").data for name in names}


def make_bptt(kind: str, steps: int, batch: int, input_size: int, hidden_size: int, dtype=np.float32,
              xp=np, input_grad: bool = False):
    """The workspace of one kind ("lstm", "gru", "rnn"): every buffer allocated here, once."""
    classes = {"lstm": LSTMBPTT, "gru": GRUBPTT, "rnn": RNNBPTT}
    if kind not in classes:
        raise ValueError(f"make_bptt: unknown kind {kind!r}; use one of {KINDS}")
    return classes[kind](steps, batch, input_size, hidden_size, dtype, xp, input_grad)


class _BPTT:
    """Buffers and the GEMMs the three cells share; subclasses give forward, backward, `saved`."""
    gates = 1
    saved = ("h",)  # the buffers forward fills and backward reads: the activations kept

    def __init__(self, steps, batch, input_size, hidden_size, dtype=np.float32, xp=np, input_grad=False):
        self.T, self.B, self.I, self.H = steps, batch, input_size, hidden_size
        self.xp, self.dtype, self.input_grad = xp, np.dtype(dtype), input_grad
        G, H = self.gates, hidden_size
        empty = self.empty
        self.h = empty(steps + 1, batch, H)            # h_0 .. h_T; output = h[1:]
        self.dh = empty(batch, H)                       # dL/dh_t flowing back in time
        self.tmp_h = empty(batch, H)
        self.w_hh_t = empty(H, G * H)  # W_hh^T
        self.grads = {"weight_ih": empty(G * H, input_size), "weight_hh": empty(G * H, H),
                      "bias_ih": empty(G * H), "bias_hh": empty(G * H)}
        if input_grad:
            self.grads["x"] = empty(steps, batch, input_size)

    def empty(self, *shape):
        return self.xp.empty(shape, dtype=self.dtype)

    # ------------------------------------------------------------ the step
    def step(self, x, params: dict, w):
        """One training step: forward, L = sum(output * w), backward. Returns (L, grads);
        grads are the workspace's buffers (overwritten by the next step)."""
        output = self.forward(x, params)
        loss = self.xp.vdot(output.reshape(-1), w.reshape(-1))
        return loss, self.backward(w, params)

    def forward(self, x, params: dict, h0=None, c0=None):
        """Output (T, B, H), a view of the workspace's h buffer. x: (T, B, I); h0, c0: (B, H) or
        None (zeros). x is remembered (not copied) for backward's dW_ih GEMM."""
        self._x = x
        return self._forward(x, params, h0, c0)

    def backward(self, dout, params: dict) -> dict:
        """{parameter name: dL/dparameter} (plus "x", "h0" (and "c0") with input_grad), given
        dout = dL/doutput (T, B, H). The arrays are the workspace's (reused by the next step)."""
        return self._backward(dout, params)

    def activation_bytes(self) -> int:
        """Bytes of the arrays forward keeps for backward (exact: their nbytes)."""
        return sum(int(getattr(self, name).nbytes) for name in self.saved)

    # ------------------------------------------------------------ shared pieces
    def _project(self, x, params, into):
        """into (T, B, G*H) <- X W_ih^T for all steps at once: the first GEMM."""
        T, B = self.T, self.B
        self.xp.matmul(x.reshape(T * B, self.I), params["weight_ih"].T, out=into.reshape(T * B, -1))

    def _recurrent_t(self, params):
        """W_hh^T, C-contiguous, for the forward's T GEMMs (copied 64 rows of W_hh at a time)."""
        w = params["weight_hh"]
        for lo in range(0, w.shape[0], 64):
            self.w_hh_t[:, lo:lo + 64] = w[lo:lo + 64].T
        return self.w_hh_t

    def _initial(self, buffer, value):
        if value is None:
            buffer.fill(0)
        else:
            buffer[...] = value

    def _weight_grads(self, d_a, d_gx, params):
        """dW_hh = d_a^T [h_0..h_{T-1}], dW_ih = d_gx^T X (one GEMM each, over all steps),
        biases: the sums over steps and batch; dX = d_gx W_ih with input_grad."""
        xp, T, B = self.xp, self.T, self.B
        g = self.grads
        self._weight_gemms(d_a, d_gx, params)
        xp.sum(d_gx.reshape(T * B, -1), axis=0, out=g["bias_ih"])
        if d_a is d_gx:
            g["bias_hh"][...] = g["bias_ih"]
        else:
            xp.sum(d_a.reshape(T * B, -1), axis=0, out=g["bias_hh"])
        if self.input_grad:
            g["h0"] = self.dh

    def _weight_gemms(self, d_a, d_gx, params):
        xp, T, B, H = self.xp, self.T, self.B, self.H
        g = self.grads
        d_a2, d_gx2 = d_a.reshape(T * B, -1), d_gx.reshape(T * B, -1)
        xp.matmul(d_a2.T, self.h[:T].reshape(T * B, H), out=g["weight_hh"])
        xp.matmul(d_gx2.T, self._x.reshape(T * B, self.I), out=g["weight_ih"])
        if self.input_grad:
            xp.matmul(d_gx2, params["weight_ih"], out=g["x"].reshape(T * B, self.I))

    def gemm_shapes(self) -> list:
        """(m, k, n) of every GEMM one step does, in order (for the GEMM-only timing)."""
        T, B, I, H, GH = self.T, self.B, self.I, self.H, self.gates * self.H
        back = T if self.input_grad else T - 1
        shapes = [(T * B, I, GH)] + [(B, H, GH)] * T + [(B, GH, H)] * back + [(GH, T * B, H), (GH, T * B, I)]
        return shapes + ([(T * B, GH, I)] if self.input_grad else [])

    def gemms(self, x, params):
        """The step's GEMMs alone, back to back, into the same buffers (the hardware limit)."""
        xp, T = self.xp, self.T
        self._x = x
        d_a, d_gx = self._gemm_buffers()
        w_hh, w_hh_t = params["weight_hh"], self._recurrent_t(params)
        self._project(x, params, d_gx)
        a = d_a[0]
        for t in range(T):
            xp.matmul(self.h[t], w_hh_t, out=a)
        for t in range(T - 1, -1 if self.input_grad else 0, -1):
            xp.matmul(d_a[t], w_hh, out=self.dh)
        self._weight_gemms(d_a, d_gx, params)

    def _gemm_buffers(self):
        raise NotImplementedError


class LSTMBPTT(_BPTT):
    """LSTM, gates i, f, g, o:

        a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh = [a_i, a_f, a_g, a_o]
        i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
        c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)

    Backward, with dh_t = w_t + dh from step t+1 and dc_t from step t+1:
        dc_t += dh_t * o * (1 - tanh(c_t)^2)
        d_a = [dc_t * g, dc_t * c_{t-1}, dc_t * i, dh_t * tanh(c_t)] * [i(1-i), f(1-f), 1-g^2, o(1-o)]
        dh_{t-1} = d_a W_hh;  dc_{t-1} = dc_t * f

    Kept for backward: the gate activations (T, B, 4H), c_0..c_T, tanh(c_1..c_T), h_0..h_T.
    """
    gates = 4
    saved = ("acts", "c", "tanh_c", "h")

    def __init__(self, *args):
        super().__init__(*args)
        T, B, H, empty = self.T, self.B, self.H, self.empty
        self.acts = empty(T, B, 4 * H)      # pre-activations, then [i, f, g, o] in place
        self.c = empty(T + 1, B, H)
        self.tanh_c = empty(T, B, H)
        self.d_a = empty(T, B, 4 * H)       # dL/da_t of every step, for the weight GEMMs
        self.dc = empty(B, H)
        self.tmp_g = empty(B, 4 * H)
        self.bias = empty(4 * H)
        k = np.full(4 * H, -1.0)            # a <- a * k: -a on the sigmoid gates i, f, o
        k[2 * H:3 * H] = 1.0
        self.k = xp_array(self.xp, k, self.dtype)

    def _forward(self, x, params, h0, c0):
        xp, H = self.xp, self.H
        acts, c, tanh_c, h, tmp_g, tmp_h = self.acts, self.c, self.tanh_c, self.h, self.tmp_g, self.tmp_h
        self._project(x, params, acts)
        xp.add(params["bias_ih"], params["bias_hh"], out=self.bias)
        acts += self.bias
        self._initial(h[0], h0)
        self._initial(c[0], c0)
        w_hh_t = self._recurrent_t(params)
        for t in range(self.T):
            a = acts[t]
            xp.matmul(h[t], w_hh_t, out=tmp_g)
            a += tmp_g
            a *= self.k
            i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            sigmoid_of_negated(xp, a[:, :2 * H], o)
            xp.tanh(g, out=g)
            xp.multiply(f, c[t], out=c[t + 1])
            xp.multiply(i, g, out=tmp_h)
            c[t + 1] += tmp_h
            xp.tanh(c[t + 1], out=tanh_c[t])
            xp.multiply(o, tanh_c[t], out=h[t + 1])
        return h[1:]

    def _backward(self, dout, params):
        xp, H = self.xp, self.H
        acts, c, tanh_c, d_a, dh, dc = self.acts, self.c, self.tanh_c, self.d_a, self.dh, self.dc
        deriv, tmp_h, w_hh = self.tmp_g, self.tmp_h, params["weight_hh"]
        dh.fill(0)
        dc.fill(0)
        for t in range(self.T - 1, -1, -1):
            dh += dout[t]
            a, tc, d = acts[t], tanh_c[t], d_a[t]
            i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            xp.multiply(tc, tc, out=tmp_h)                  # dc += dh * o * (1 - tanh(c)^2)
            xp.subtract(1, tmp_h, out=tmp_h)
            tmp_h *= o
            tmp_h *= dh
            dc += tmp_h
            xp.subtract(1, a, out=deriv)                    # s' = s(1 - s) for i, f, o ...
            deriv *= a
            dg = deriv[:, 2 * H:3 * H]                      # ... and tanh' = 1 - g^2 for g
            xp.multiply(g, g, out=dg)
            xp.subtract(1, dg, out=dg)
            xp.multiply(dc, g, out=d[:, :H])                # the upstream factor of each gate
            xp.multiply(dc, c[t], out=d[:, H:2 * H])
            xp.multiply(dc, i, out=d[:, 2 * H:3 * H])
            xp.multiply(dh, tc, out=d[:, 3 * H:])
            d *= deriv
            if t > 0 or self.input_grad:
                xp.matmul(d, w_hh, out=dh)                  # dh_{t-1} = d_a W_hh
            dc *= f                                         # dc_{t-1} = dc * f
        self._weight_grads(d_a, d_a, params)
        if self.input_grad:
            self.grads["c0"] = dc
        return self.grads

    def _gemm_buffers(self):
        return self.d_a, self.acts


class GRUBPTT(_BPTT):
    """GRU, gates r, z, n (b_hh acts inside the reset gate, as in PyTorch):

        gx_t = x_t W_ih^T + b_ih = [gx_r, gx_z, gx_n];  a_t = h_{t-1} W_hh^T + b_hh = [a_r, a_z, a_n]
        r = sigmoid(gx_r + a_r);  z = sigmoid(gx_z + a_z);  n = tanh(gx_n + r * a_n)
        h_t = (1 - z) * n + z * h_{t-1}

    Backward, with dh_t = w_t + dh from step t+1:
        dn = dh (1 - z)(1 - n^2);  dz = dh (h_{t-1} - n) z(1 - z);  dr = dn a_n r(1 - r)
        d_gx = [dr, dz, dn];  d_a = [dr, dz, dn * r];  dh_{t-1} = dh * z + d_a W_hh

    Kept for backward: r, z, n (T, B, 3H), a_n (T, B, H), h_0..h_T.
    """
    gates = 3
    saved = ("acts", "a_n", "h")

    def __init__(self, *args):
        super().__init__(*args)
        T, B, H, empty = self.T, self.B, self.H, self.empty
        self.acts = empty(T, B, 3 * H)      # gx, then [r, z, n] in place
        self.a_n = empty(T, B, H)
        self.d_gx = empty(T, B, 3 * H)
        self.d_a = empty(T, B, 3 * H)
        self.tmp_g = empty(B, 3 * H)
        self.tmp_h2 = empty(B, H)

    def _forward(self, x, params, h0, c0):
        xp, H = self.xp, self.H
        acts, a_n, h, tmp_g, tmp_h = self.acts, self.a_n, self.h, self.tmp_g, self.tmp_h
        self._project(x, params, acts)
        acts += params["bias_ih"]
        self._initial(h[0], h0)
        w_hh_t, b_hh = self._recurrent_t(params), params["bias_hh"]
        for t in range(self.T):
            gates = acts[t]
            xp.matmul(h[t], w_hh_t, out=tmp_g)              # a = h W_hh^T + b_hh
            tmp_g += b_hh
            rz = gates[:, :2 * H]                           # r, z = sigmoid(gx + a)
            rz += tmp_g[:, :2 * H]
            xp.negative(rz, out=rz)
            sigmoid_of_negated(xp, rz)
            a_n[t] = tmp_g[:, 2 * H:]
            r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
            xp.multiply(r, a_n[t], out=tmp_h)               # n = tanh(gx_n + r * a_n)
            n += tmp_h
            xp.tanh(n, out=n)
            xp.subtract(h[t], n, out=tmp_h)                 # h' = n + z * (h - n)
            tmp_h *= z
            xp.add(n, tmp_h, out=h[t + 1])
        return h[1:]

    def _backward(self, dout, params):
        xp, H = self.xp, self.H
        acts, a_n, h, d_gx, d_a, dh = self.acts, self.a_n, self.h, self.d_gx, self.d_a, self.dh
        one_minus, tmp, w_hh = self.tmp_h, self.tmp_h2, params["weight_hh"]
        dh.fill(0)
        for t in range(self.T - 1, -1, -1):
            dh += dout[t]
            r, z, n = acts[t, :, :H], acts[t, :, H:2 * H], acts[t, :, 2 * H:]
            dr, dz, dn = d_gx[t, :, :H], d_gx[t, :, H:2 * H], d_gx[t, :, 2 * H:]
            xp.subtract(1, z, out=one_minus)
            xp.multiply(n, n, out=dn)                       # dn = dh (1 - z)(1 - n^2)
            xp.subtract(1, dn, out=dn)
            dn *= dh
            dn *= one_minus
            xp.subtract(h[t], n, out=dz)                    # dz = dh (h - n) z (1 - z)
            dz *= dh
            dz *= z
            dz *= one_minus
            xp.multiply(dn, a_n[t], out=dr)                 # dr = dn a_n r (1 - r)
            dr *= r
            xp.subtract(1, r, out=tmp)
            dr *= tmp
            d_a[t, :, :2 * H] = d_gx[t, :, :2 * H]          # d_a = [dr, dz, dn * r]
            xp.multiply(dn, r, out=d_a[t, :, 2 * H:])
            dh *= z                                         # dh_{t-1} = dh z + d_a W_hh
            if t > 0 or self.input_grad:
                xp.matmul(d_a[t], w_hh, out=tmp)
                dh += tmp
        self._weight_grads(d_a, d_gx, params)
        return self.grads

    def _gemm_buffers(self):
        return self.d_a, self.d_gx


class RNNBPTT(_BPTT):
    """Elman RNN with tanh:  h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)

    Backward, with dh_t = w_t + dh from step t+1:  d_a = dh_t (1 - h_t^2);  dh_{t-1} = d_a W_hh

    Kept for backward: h_0..h_T only (tanh' is read from the output).
    """
    gates = 1
    saved = ("h",)

    def __init__(self, *args):
        super().__init__(*args)
        self.d_a = self.empty(self.T, self.B, self.H)
        self.bias = self.empty(self.H)

    def _forward(self, x, params, h0, c0):
        xp, h, tmp_h = self.xp, self.h, self.tmp_h
        self._project(x, params, h[1:])                     # the pre-activations go straight into h
        xp.add(params["bias_ih"], params["bias_hh"], out=self.bias)
        h[1:] += self.bias
        self._initial(h[0], h0)
        w_hh_t = self._recurrent_t(params)
        for t in range(self.T):
            xp.matmul(h[t], w_hh_t, out=tmp_h)
            h[t + 1] += tmp_h
            xp.tanh(h[t + 1], out=h[t + 1])
        return h[1:]

    def _backward(self, dout, params):
        xp, h, d_a, dh, w_hh = self.xp, self.h, self.d_a, self.dh, params["weight_hh"]
        dh.fill(0)
        for t in range(self.T - 1, -1, -1):
            dh += dout[t]
            d = d_a[t]
            xp.multiply(h[t + 1], h[t + 1], out=d)          # d_a = dh (1 - h^2)
            xp.subtract(1, d, out=d)
            d *= dh
            if t > 0 or self.input_grad:
                xp.matmul(d, w_hh, out=dh)
        self._weight_grads(d_a, d_a, params)
        return self.grads

    def _gemm_buffers(self):
        return self.d_a, self.d_a


def xp_array(xp, host: np.ndarray, dtype):
    """A host array on the workspace's backend (NumPy: no copy when the dtype already fits)."""
    return xp.asarray(host.astype(dtype, copy=False))

