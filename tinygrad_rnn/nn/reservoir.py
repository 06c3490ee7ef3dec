"""Echo state networks: a fixed random reservoir and a linear readout trained in closed form.

The formulation of Lukoševičius, "A Practical Guide to Applying Echo State Networks" (2012),
after Jaeger (2001). With input u_t (I,), reservoir state x_t (N,) and output y_t (O,):

    x_t = (1 - a) x_{t-1} + a tanh(W_in [1; u_t] + W x_{t-1})      leaky-integrator reservoir
    y_t = W_out [1; u_t; x_t]                                        linear readout

    W_in: (N, 1 + I), U(-input_scaling, input_scaling); its first column is the reservoir's bias
       (included, and scaled like the input weights)
    W: (N, N), a fraction `density` of entries U(-1, 1), the rest 0, then rescaled so that
       max |eigenvalue(W)| = spectral_radius
    W_out: (O, 1 + I + N), trained: the feature vector is [1; u_t; x_t] (a constant 1, the
       input, the state), so the readout has its own bias and a direct input-to-output path.

W_in and W are drawn once and never trained; `fit` solves the ridge regression

    W_out = Y_target F^T (F F^T + ridge I)^-1

over the feature columns F = [1; u_t; x_t] of every step after the first `warmup` (of every
sequence in a batch), in float64, as a least-squares problem (see _ridge). All three matrices
are Parameters with requires_grad=False, so state_dict()/load_state_dict() carry a fitted
network; the running reservoir state (what `predict` and `generate` continue from) is not part
of it, as an RNN's hidden state is not part of PyTorch's state_dict. Nothing records a graph.

Shapes: X (T, I) or (T, B, I); targets (T, O) or (T, B, O); states (T, N) or (T, B, N).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor
from .init import spectral_radius as _spectral_radius
from .module import Module, Parameter

__all__ = ["ESN"]


class ESN(Module):
    """Echo state network (Jaeger 2001): leaky tanh reservoir, ridge-regression readout.

    ESN(input_size, reservoir_size, spectral_radius=0.9, leak_rate=1.0, input_scaling=1.0,
        density=0.1, ridge=1e-6, seed=None, dtype=None, device=None)

    seed: the reservoir is drawn from np.random.default_rng(seed); with seed=None from the
    library's generator, so tr.manual_seed(s) makes it reproducible. Weights are drawn in float64
    on the host and then cast to dtype and moved to device.

    dtype defaults to float64, unlike the gradient-trained layers (the library default): the
    readout is a least-squares fit and the free run compounds every rounding error, so on
    Mackey-Glass float32 states cost about two orders of magnitude of 84-step accuracy.

        esn = nn.ESN(1, 400, spectral_radius=0.8, leak_rate=0.4, seed=0)
        esn.fit(u[:-1], u[1:], warmup=100)   # teacher-forced run, then ridge regression
        esn.predict(u_next)                  # continues from the state fit left (one row per row)
        esn.generate(83)                     # free run: each output becomes the next input

    Inputs may be NumPy arrays, backend arrays or Tensors; results come back as the same kind
    (a Tensor on the ESN's device for a Tensor, a NumPy array for NumPy input). The readout is
    always solved in float64.
    """

    def __init__(self, input_size: int, reservoir_size: int, spectral_radius: float = 0.9,
                 leak_rate: float = 1.0, input_scaling: float = 1.0, density: float = 0.1,
                 ridge: float = 1e-6, seed=None, dtype=None, device=None):
        super().__init__()
        _check_hyperparameters(input_size, reservoir_size, spectral_radius, leak_rate, input_scaling,
                               density, ridge)
        self.input_size, self.reservoir_size = input_size, reservoir_size
        self.spectral_radius, self.leak_rate, self.input_scaling = spectral_radius, leak_rate, input_scaling
        self.density, self.ridge = density, ridge
        rng = np.random.default_rng(seed) if seed is not None else backend.random_state()
        w_in = rng.uniform(-input_scaling, input_scaling, (reservoir_size, 1 + input_size))
        w = _sparse_reservoir(rng, reservoir_size, density, spectral_radius)
        self.W_in = Parameter(w_in, requires_grad=False, dtype=dtype or np.float64,
                              device=backend.normalize_device(device))
        self.W = Parameter(w, requires_grad=False, dtype=self.W_in.dtype, device=self.W_in.device)
        self.W_out = None  # (O, 1 + I + N) once fitted or loaded
        self.reset_state()

    # ------------------------------------------------------------ public API
    def reset_state(self) -> None:
        """Forget the running state: the next predict starts from x = 0."""
        self.state = None        # x_T of the last run: (N,) or (B, N)
        self._last_input = None  # u_T: with x_T it gives the last output, which generate feeds back first
        self._last_kind = None   # the kind of array (Tensor, NumPy, device) generate returns

    def states(self, X, x0=None):
        """All reservoir states x_1..x_T of a run over X (T, [B,] I) from x0 ([B,] N; default 0).

        Returns (T, [B,] N). A pure function of X and x0: it neither reads nor changes the state
        that predict and generate continue from (use it to compare runs from different x0).
        """
        inputs = self._inputs(X, "states")
        return _like(X, self._run(inputs, self._initial(x0, inputs)))

    def fit(self, X, Y, warmup: int = 0, x0=None) -> "ESN":
        """Run the reservoir over X (T, [B,] I) from x0 (default 0), drop the first `warmup` steps,
        and solve the ridge regression of Y (T, [B,] O) on the features [1; u_t; x_t].

        Leaves the state at x_T, so predict/generate continue right after X. Returns self.
        """
        inputs = self._inputs(X, "fit")
        targets = self._here(_array(Y))
        if targets.shape[:-1] != inputs.shape[:-1] or targets.ndim != inputs.ndim:
            raise ValueError(f"ESN.fit: Y must be shaped {inputs.shape[:-1]} + (output_size,) to match "
                             f"X of shape {inputs.shape}, got {targets.shape}")
        if not 0 <= warmup < len(inputs):
            raise ValueError(f"ESN.fit: warmup must be in [0, T) with T={len(inputs)} rows, got {warmup}")
        states = self._run(inputs, self._initial(x0, inputs))
        features = _features(inputs, states)[warmup:]
        readout = _ridge(features.reshape(-1, features.shape[-1]),
                         targets[warmup:].reshape(-1, targets.shape[-1]), self.ridge)
        self.W_out = Parameter(readout, requires_grad=False, dtype=self.W.dtype, device=self.W.device)
        self._remember(X, inputs, states)
        return self

    def predict(self, X):
        """Outputs y_t (T, [B,] O) for inputs X (T, [B,] I), continuing from the current state
        (the end of the last fit/predict; 0 after reset_state()). Leaves the state at x_T."""
        readout = self._readout("predict")
        inputs = self._inputs(X, "predict")
        states = self._run(inputs, self._continued(inputs))
        self._remember(X, inputs, states)
        return _like(X, _features(inputs, states) @ readout.T)

    def forward(self, X):
        """esn(X) is esn.predict(X)."""
        return self.predict(X)

    def generate(self, steps: int):
        """Free run of `steps` outputs (steps, [B,] O), each output fed back as the next input.

        It continues the outputs of the last fit/predict (or generate): with y_T = W_out [1; u_T; x_T]
        the last output, it runs u_{t+1} = y_t, x_{t+1} = reservoir step, y_{t+1} = readout. So
        predict's last row is the forecast 1 step past its input, generate's row k the forecast
        k + 2 steps past it, and generate(a) then generate(b) equals generate(a + b). Needs output
        size == input size; continues from, and leaves, the running state.
        """
        readout = self._readout("generate")
        if readout.shape[0] != self.input_size:
            raise ValueError(f"ESN.generate feeds each output back as the next input, so the output size must "
                             f"equal input_size={self.input_size}; the readout has {readout.shape[0]} outputs")
        if self.state is None:
            raise RuntimeError("ESN.generate continues from the last input and state of fit/predict; "
                               "run fit(X, Y) or predict(X) first")
        if steps <= 0:
            raise ValueError(f"ESN.generate: steps must be positive, got {steps}")
        xp = backend.array_module(readout)
        x, u = self._here(self.state), self._here(self._last_input)
        outputs = xp.empty((steps,) + u.shape, dtype=readout.dtype)
        y = _features(u, x) @ readout.T
        for k in range(steps):
            u = y  # the last output becomes the next input
            x = self._step(x, u)
            y = outputs[k] = _features(u, x) @ readout.T
        self.state, self._last_input = x, u
        return _wrap(self._last_kind, outputs)

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """As Module.load_state_dict; a stored W_out (of any output size) replaces the readout,
        and the running state is reset."""
        previous = self.W_out
        if "W_out" in state:
            shape = tuple(np.shape(_array(state["W_out"])))
            self.W_out = Parameter(np.zeros(shape), requires_grad=False, dtype=self.W.dtype, device=self.W.device)
        try:
            super().load_state_dict(state, strict)
        except (KeyError, ValueError):
            self.W_out = previous
            raise
        self.reset_state()

    def extra_repr(self) -> str:
        fitted = "" if self.W_out is None else f", output_size={self.W_out.shape[0]}"
        return (f"{self.input_size}, {self.reservoir_size}, spectral_radius={self.spectral_radius}, "
                f"leak_rate={self.leak_rate}, input_scaling={self.input_scaling}, density={self.density}, "
                f"ridge={self.ridge}{fitted}")

    # ------------------------------------------------------------ the reservoir
    def _step(self, x, u):
        """x' = (1 - a) x + a tanh(W_in [1; u] + W x) for one step; x ([B,] N), u ([B,] I)."""
        xp = backend.array_module(x)
        w_in, a = self.W_in.data, self.leak_rate
        return (1 - a) * x + a * xp.tanh(w_in[:, 0] + u @ w_in[:, 1:].T + x @ self.W.data.T)

    def _run(self, inputs, x):
        """States (T, [B,] N) of the run over inputs (T, [B,] I) from x ([B,] N)."""
        xp = backend.array_module(inputs)
        out = xp.empty(inputs.shape[:-1] + (self.reservoir_size,), dtype=self.W.dtype)
        for t in range(len(inputs)):
            x = out[t] = self._step(x, inputs[t])
        return out

    # ------------------------------------------------------------ inputs and running state
    def _here(self, array):
        """The array on the ESN's device, in its dtype."""
        return backend.to_device(array, self.W.device).astype(self.W.dtype, copy=False)

    def _inputs(self, X, method: str):
        inputs = self._here(_array(X))
        if inputs.ndim not in (2, 3) or inputs.shape[-1] != self.input_size:
            raise ValueError(f"ESN.{method}: X must be shaped (T, {self.input_size}) or (T, batch, {self.input_size}) "
                             f"for input_size={self.input_size}, got {inputs.shape}")
        if len(inputs) == 0:
            raise ValueError(f"ESN.{method}: X has no time steps (shape {inputs.shape})")
        return inputs

    def _initial(self, x0, inputs):
        """x0 broadcast to the state shape ([B,] N) of `inputs`; zeros when x0 is None."""
        shape = inputs.shape[1:-1] + (self.reservoir_size,)
        xp = backend.array_module(inputs)
        if x0 is None:
            return xp.zeros(shape, dtype=self.W.dtype)
        x = self._here(_array(x0))
        if x.shape not in (shape, (self.reservoir_size,)):
            raise ValueError(f"ESN: x0 must be shaped {shape} (or ({self.reservoir_size},)) for X of shape "
                             f"{inputs.shape}, got {x.shape}")
        return xp.broadcast_to(x, shape)

    def _continued(self, inputs):
        """The running state, checked against the batch layout of `inputs`."""
        if self.state is None:
            return self._initial(None, inputs)
        expected = inputs.shape[1:-1] + (self.reservoir_size,)
        if self.state.shape != expected:
            raise ValueError(f"ESN.predict continues from the last run's state of shape {self.state.shape}, "
                             f"which does not fit X of shape {inputs.shape}; call reset_state() first")
        return self._here(self.state)

    def _remember(self, X, inputs, states) -> None:
        self.state, self._last_input, self._last_kind = states[-1].copy(), inputs[-1].copy(), _kind(X)

    def _readout(self, method: str):
        if self.W_out is None:
            raise RuntimeError(f"ESN.{method}: the readout is not trained; call fit(X, Y) (or load_state_dict) first")
        return self.W_out.data


# ---------------------------------------------------------------- helpers
def _check_hyperparameters(input_size, reservoir_size, spectral_radius, leak_rate, input_scaling,
                           density, ridge) -> None:
    problems = []
    if input_size <= 0 or reservoir_size <= 0:
        problems.append(f"input_size and reservoir_size must be positive, got {input_size}, {reservoir_size}")
    if spectral_radius < 0 or input_scaling < 0 or ridge < 0:
        problems.append(f"spectral_radius, input_scaling and ridge must be >= 0, got {spectral_radius}, "
                        f"{input_scaling}, {ridge}")
    if not 0 < leak_rate <= 1:
        problems.append(f"leak_rate must be in (0, 1], got {leak_rate}")
    if not 0 < density <= 1:
        problems.append(f"density must be in (0, 1], got {density}")
    if problems:
        raise ValueError("ESN: " + "; ".join(problems))


def _sparse_reservoir(rng, size: int, density: float, radius: float, attempts: int = 100) -> np.ndarray:
    """(size, size) float64: entries U(-1, 1) kept with probability `density`, scaled to `radius`.

    A sparse draw can be nilpotent (no cycle among its connections: spectral radius 0, nothing to
    rescale), as small reservoirs often are at density 0.1; such draws are redrawn.
    """
    for _ in range(attempts):
        w = rng.uniform(-1.0, 1.0, (size, size)) * (rng.random((size, size)) < density)
        current = _spectral_radius(w)
        if current > 0:
            return w * (radius / current)
    raise ValueError(f"ESN: {attempts} random {size}x{size} reservoirs at density={density} all had spectral "
                     "radius 0 and cannot be rescaled; raise density or reservoir_size")


def _features(inputs, states):
    """[1; u_t; x_t] along the last axis: (..., I), (..., N) -> (..., 1 + I + N)."""
    xp = backend.array_module(states)
    ones = xp.ones(states.shape[:-1] + (1,), dtype=states.dtype)
    return xp.concatenate([ones, inputs, states], axis=-1)


def _ridge(features, targets, ridge: float):
    """W_out (O, F) minimising |features W_out^T - targets|^2 + ridge |W_out|^2, in float64.

    That is W_out^T = (F^T F + ridge I)^-1 F^T Y, computed as the least-squares solution of the
    stacked system [F; sqrt(ridge) I] W_out^T = [Y; 0] (lstsq: SVD, no inverse, no normal
    equations). Reservoir features are strongly correlated, so cond(F) is large; the normal
    equations would square it, and with a small ridge they lose the readout's accuracy. With
    ridge = 0 this is the minimum-norm solution (singular values under lstsq's cutoff dropped).
    """
    xp = backend.array_module(features)
    width = features.shape[1]
    system = xp.concatenate([features.astype(np.float64), np.sqrt(ridge) * xp.eye(width)])
    rhs = xp.concatenate([targets.astype(np.float64), xp.zeros((width, targets.shape[1]))])
    return xp.linalg.lstsq(system, rhs, rcond=None)[0].T


def _array(X):
    """The backend array (or array-like) behind X."""
    return X.data if isinstance(X, Tensor) else X


def _kind(X) -> str:
    if isinstance(X, Tensor):
        return "tensor"
    return "device" if backend.array_module(X) is not np else "numpy"


def _wrap(kind: str, array):
    """array as the kind of input that asked for it: Tensor, NumPy array or device array."""
    if kind == "tensor":
        return Tensor(array)
    return backend.to_numpy(array) if kind == "numpy" else array


def _like(X, array):
    return _wrap(_kind(X), array)
