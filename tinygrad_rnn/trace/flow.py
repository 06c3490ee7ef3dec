"""GradientFlow, the record of one traced backward pass, and the pure numerics behind it.

Nothing here touches a graph: these are arrays and the formulas that summarise them.

Decay rate. With n_t = ||dL/dh_t|| (t = 0..T-1) and a loss that reads only the end of the
sequence, backpropagation multiplies the gradient by one Jacobian per step,

    dL/dh_t = (dh_{t+1}/dh_t)^T dL/dh_{t+1},   so   n_t ~ C r^(T-1-t).

`fit_decay` fits log n_t = a - t log r by least squares and returns r, the per-step factor by
which the gradient norm shrinks (r < 1) or grows (r > 1) each step it travels back in time.

Verdict. From r the fitted change over the whole sequence is the attenuation

    A = r^(T-1)  (the fitted ||dL/dh_0|| / ||dL/dh_{T-1}||)

and the verdict is "vanishing" when A < VANISHING_BELOW (less than a tenth of the gradient at
the end reaches the first step), "exploding" when A > EXPLODING_ABOVE (ten times more), or when
any gradient is non-finite, and "stable" otherwise. Over T = 50 steps these thresholds mean
r < 0.954 and r > 1.048; over T = 10, r < 0.774 and r > 1.292.

Steps after the last one with a non-zero gradient lie beyond what the loss reads (a loss on
o_2 of ten steps gives steps 3..9 a gradient of exactly 0 by construction): they are left out
of the fit and of the attenuation, which then spans the steps the gradient had to cross.

When it is meaningful: a loss on the final state or last output only. A loss on every step
adds its own direct term to each dL/dh_t, which flattens the curve; the Jacobian norms
||dh_{T-1}/dh_k|| (and `jacobian_decay_rate`, fitted the same way) do not depend on the loss and
tell the same story in that case.

Recurrent matrices (Pascanu, Mikolov and Bengio 2013, sec. 2.1). For h_t = W_hh s(h_{t-1}) + ...
with |s'| <= gamma, ||dh_t/dh_{t-1}|| <= gamma * sigma_1(W_hh); so sigma_1(W_hh) < 1/gamma is
sufficient for vanishing gradients, and sigma_1(W_hh) > 1/gamma necessary for exploding ones.
gamma = 1 for tanh (and relu), 1/4 for the sigmoid. Gated layers are listed one gate block of
W_hh at a time (LSTM i, f, g, o; GRU r, z, n), each with its gate's gamma.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = ["GradientFlow", "RecurrentMatrix", "fit_decay", "reached_steps", "verdict_for", "recurrent_matrices",
           "VANISHING_BELOW", "EXPLODING_ABOVE", "GAMMA"]

VANISHING_BELOW = 0.1   # attenuation A below this: "vanishing"
EXPLODING_ABOVE = 10.0  # attenuation A above this (or any non-finite gradient): "exploding"
GAMMA = {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25}  # sup |s'(x)|
_GATES = {1: (None,), 3: ("r", "z", "n"), 4: ("i", "f", "g", "o")}
_GATE_ACTIVATION = {"i": "sigmoid", "f": "sigmoid", "g": "tanh", "o": "sigmoid",
                    "r": "sigmoid", "z": "sigmoid", "n": "tanh"}


@dataclass(frozen=True)
class RecurrentMatrix:
    """One recurrent matrix (or one gate's H x H block of W_hh) and Pascanu's bound for it."""
    name: str               # "weight_hh_l0" or "lstm.weight_hh_l0[f]"
    parameter: str          # the parameter's qualified name
    gate: str | None        # "i", "f", "g", "o", "r", "z", "n", or None for a plain RNN
    activation: str         # "tanh", "relu" or "sigmoid": the nonlinearity after this block
    spectral_radius: float  # max |eigenvalue|
    singular_value: float   # sigma_1, the largest singular value (the spectral norm)
    gamma: float            # sup |activation'|

    @property
    def threshold(self) -> float:
        """1 / gamma: sigma_1 below it guarantees vanishing gradients (Pascanu et al. 2013)."""
        return 1.0 / self.gamma

    @property
    def vanishing_guaranteed(self) -> bool:
        return self.singular_value < self.threshold


@dataclass
class GradientFlow:
    """What trace_gradients saw in one forward and backward pass. Arrays are NumPy, float64.

    Rows are the layer/direction pairs, named by their scope ("lstm.l0", "lstm.l0.reverse",
    "lstm.l1", ...), sorted by layer then direction; T is the number of time steps.

    hidden_grad_norms   (R, T)  ||dL/dh_t|| over the batch (Frobenius norm of the (B, H) array)
    cell_grad_norms     (R, T)  ||dL/dc_t|| for the LSTM, else None
    hidden_grad_units   (R, T, H)  per unit: sqrt(mean over the batch of (dL/dh_t)^2)
    jacobian_row        the row the Jacobians belong to: the last layer, forward direction
    jacobian_norms      (T,)  ||dh_{T-1}/dh_k||_2 for k = 0..T-1, batch mean (1 at k = T-1)
    step_singular_values (T, S)  singular values of the one-step Jacobian ds_t/ds_{t-1}, descending,
                        batch mean, with s_t = h_t (S = H), or [h_t; c_t] for the LSTM (S = 2H);
                        row 0 is NaN (h_{-1} is the initial state, outside the steps)
    recurrent           RecurrentMatrix for every recurrent matrix (gate block)
    weight_step_norms   {parameter name: (T,)}  ||step-t term of dL/dW||
    weight_step_terms   {parameter name: (T, *shape)}  the terms themselves (may be dropped), for
                        each parameter used inside the steps (or by a fused input projection)
    weight_outside_terms {parameter name: array}  the part of such a parameter's gradient made
                        outside every step (a weight a readout shares, say); dL/dW = sum_t
                        terms[t] + outside. A parameter used only outside the steps (a readout,
                        a learned initial state h0) is in neither
    decay_rate, attenuation, verdict  see the module docstring; jacobian_decay_rate likewise
    nonfinite           {row: time step where a non-finite dL/dh_t (or dL/dc_t) first appears
                        as backpropagation runs (from T-1 down for a forward row, up from 0
                        for a reverse one)}; empty when all gradients are finite
    loss                the loss value;  model  the class name of its (first) recurrent layer
    """
    rows: tuple
    hidden_grad_norms: np.ndarray
    cell_grad_norms: np.ndarray | None
    hidden_grad_units: np.ndarray
    jacobian_row: str | None
    jacobian_norms: np.ndarray | None
    step_singular_values: np.ndarray | None
    recurrent: tuple
    weight_step_norms: dict
    weight_step_terms: dict
    weight_outside_terms: dict
    decay_rate: float
    attenuation: float
    verdict: str
    jacobian_decay_rate: float | None
    nonfinite: dict
    loss: float
    model: str = ""

    @property
    def steps(self) -> int:
        """T, the number of time steps."""
        return self.hidden_grad_norms.shape[1]

    def row(self, layer: int = -1, reverse: bool = False) -> int:
        """The row index of a layer (negative counts from the last) and direction."""
        parsed = [_parse(r) for r in self.rows]
        layers = sorted({k for k, _ in parsed})
        wanted = (layers[layer], reverse)
        for i, p in enumerate(parsed):
            if p == wanted:
                return i
        direction = "reverse" if reverse else "forward"
        raise KeyError(f"GradientFlow has no row for layer {layer} {direction}; rows: {self.rows}")

    def lite(self) -> "GradientFlow":
        """A copy without the per-step weight terms (the largest arrays), as the tracer keeps."""
        return dataclasses.replace(self, weight_step_terms={})

    def __repr__(self) -> str:
        return (f"GradientFlow({self.model or 'model'}, T={self.steps}, rows={list(self.rows)}, "
                f"verdict={self.verdict!r}, decay_rate={self.decay_rate:.4g}, attenuation={self.attenuation:.3g}, "
                f"loss={self.loss:.4g})")


def _parse(scope: str) -> tuple:
    """(layer, reverse) from a row scope "...l{k}" or "...l{k}.reverse"; (0, False) otherwise."""
    parts = scope.split(".")
    reverse = parts[-1] == "reverse"
    last = parts[-2] if reverse and len(parts) > 1 else parts[-1]
    layer = int(last[1:]) if last[:1] == "l" and last[1:].isdigit() else 0
    return layer, reverse


def reached_steps(norms) -> int:
    """How many steps from t = 0 the gradient had to cross: up to the last one whose norm is not
    0 (non-finite counts as reached); all of them when every norm is 0."""
    n = np.asarray(norms, dtype=np.float64)
    reached = np.flatnonzero(n != 0)
    return int(reached[-1]) + 1 if reached.size else len(n)


def fit_decay(norms) -> float:
    """Per-step factor r from a least-squares fit of log n_t = a - t log r (see module docstring)
    over the reached steps (reached_steps).

    Zeros among them count as the smallest positive double (a gradient that stopped reaching);
    non-finite entries are left out. Returns NaN with fewer than two usable steps, 0.0 if all
    are zero.
    """
    n = np.asarray(norms, dtype=np.float64)
    n = n[:reached_steps(n)]
    t = np.arange(len(n), dtype=np.float64)
    usable = np.isfinite(n)
    if usable.sum() < 2:
        return float("nan")
    if not (n[usable] > 0).any():
        return 0.0
    logs = np.log(np.maximum(n[usable], np.finfo(np.float64).tiny))
    slope = np.polyfit(t[usable], logs, 1)[0]
    return float(np.exp(-slope))


def verdict_for(rate: float, steps: int, finite: bool = True) -> tuple:
    """(attenuation A = rate^(steps-1), verdict) with the thresholds of the module docstring."""
    if not finite:
        return float("inf"), "exploding"
    if not np.isfinite(rate):
        return float("nan"), "stable"
    with np.errstate(over="ignore", under="ignore"):
        attenuation = float(np.float64(rate) ** max(steps - 1, 0))
    if attenuation < VANISHING_BELOW:
        return attenuation, "vanishing"
    if attenuation > EXPLODING_ABOVE:
        return attenuation, "exploding"
    return attenuation, "stable"


def recurrent_matrices(model) -> tuple:
    """RecurrentMatrix for each weight_hh* parameter of the model and its submodules, split
    into gate blocks by the number of gates (rows / hidden size: 1 RNN, 3 GRU, 4 LSTM)."""
    from ..nn.init import spectral_radius

    found = []
    for prefix, module in model.named_modules():
        for name, p in vars(module).items():
            if not (name.startswith("weight_hh") and hasattr(p, "data") and p.ndim == 2):
                continue
            qualified = f"{prefix}.{name}" if prefix else name
            w = p.numpy().astype(np.float64)
            hidden = w.shape[1]
            gates = _GATES.get(w.shape[0] // hidden, (None,))
            for g, gate in enumerate(gates):
                block = w[g * hidden:(g + 1) * hidden]
                activation = _GATE_ACTIVATION[gate] if gate else getattr(module, "nonlinearity", "tanh")
                found.append(RecurrentMatrix(
                    name=qualified + (f"[{gate}]" if gate else ""), parameter=qualified, gate=gate,
                    activation=activation, spectral_radius=spectral_radius(block),
                    singular_value=float(np.linalg.norm(block, 2)), gamma=GAMMA[activation]))
    return tuple(found)
