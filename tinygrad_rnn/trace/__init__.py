"""Gradient flow per time step: how much gradient reaches each step, why, and over training.

    from tinygrad_rnn.trace import trace_gradients, GradientTracer

    flow = trace_gradients(model, x, lambda out, state: F.mse_loss(out[-1], y))
    flow.hidden_grad_norms   # (layers x directions, T): ||dL/dh_t||   (cell_grad_norms: LSTM c_t)
    flow.jacobian_norms      # (T,): ||dh_{T-1}/dh_k||_2, last layer, batch mean
    flow.step_singular_values  # (T, S): singular values of the one-step Jacobian ds_t/ds_{t-1}
                             #   (s_t = h_t; for the LSTM the whole state [h_t; c_t])
    flow.recurrent           # spectral radius and sigma_1 of each W_hh (block) with 1/gamma
    flow.weight_step_norms   # {parameter: (T,)}: the step-t terms of dL/dW, which sum to dL/dW
    flow.decay_rate, flow.attenuation, flow.verdict   # "vanishing" | "exploding" | "stable"

In the analytic case h_t = tanh(W h_{t-1} + small input) with W = rho Q (Q orthogonal) the
recurrence is linear and ||dh_{T-1}/dh_k|| = rho^(T-1-k) exactly; the tests hold it there.

The package only observes: it reads the graph's step stamps, scopes and state names, and
measures with node_grads (no side effects); the one real backward at the end of
trace_gradients leaves the parameters' gradients exactly as a plain forward and backward would.

Modules: flow.py (the GradientFlow record, decay fit, verdict thresholds, recurrent matrices),
gradients.py (trace_gradients, state_nodes), jacobians.py (Jacobians by vector-Jacobian
products), tracer.py (GradientTracer across training steps: history, clipping, non-finite).
"""
from .flow import (EXPLODING_ABOVE, GAMMA, VANISHING_BELOW, GradientFlow, RecurrentMatrix, fit_decay,
                   recurrent_matrices, verdict_for)
from .gradients import state_nodes, trace_gradients
from .tracer import ClipEvent, GradientTracer, NonFiniteEvent

__all__ = ["trace_gradients", "state_nodes", "GradientFlow", "RecurrentMatrix", "GradientTracer", "ClipEvent",
           "NonFiniteEvent", "fit_decay", "verdict_for", "recurrent_matrices", "VANISHING_BELOW",
           "EXPLODING_ABOVE", "GAMMA"]
