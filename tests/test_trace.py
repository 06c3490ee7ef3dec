"""tinygrad_rnn.trace: per-time-step gradient flow, Jacobians, verdicts, the tracer.

Every check compares the trace with an independent computation: closed forms (the linear
orthogonal RNN), retain_grad through an ordinary backward, the parameters' own .grad, full-graph
sweeps against one-step sweeps, the fused against the composite cells.
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import Tensor, autograd, nn
from tinygrad_rnn.trace import (GradientTracer, fit_decay, state_nodes, trace_gradients, verdict_for)
from tinygrad_rnn.trace import jacobians as jac

LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


@pytest.fixture(autouse=True)
def _float64():
    tr.set_default_dtype(np.float64)  # conftest restores float32 afterwards


def last_output_loss(batch: int, hidden: int, seed: int = 0):
    """L = sum(out[-1] * w) for a fixed random w: a loss that reads only the final step."""
    w = Tensor(np.random.default_rng(seed).standard_normal((batch, hidden)))
    return lambda out, state: (out[-1] * w).sum()


def linear_orthogonal_rnn(rho: float, hidden: int = 6, fused: bool = True):
    """h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T) with W_hh = rho Q, Q orthogonal, no biases."""
    model = nn.RNN(2, hidden, bias=False, fused=fused)
    nn.init.orthogonal_(model.weight_hh_l0, gain=rho)
    return model


# ---------------------------------------------------------------- the analytic case
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("rho", [0.5, 0.9, 1.0, 1.3])
def test_orthogonal_rnn_jacobian_norms_are_powers_of_rho(rho, fused):
    steps, batch, hidden = 12, 3, 6
    model = linear_orthogonal_rnn(rho, hidden, fused)
    x = tr.randn(steps, batch, 2) * 1e-8  # tanh'(~1e-8) = 1 - 1e-16: the recurrence is linear
    flow = trace_gradients(model, x, last_output_loss(batch, hidden))
    k = np.arange(steps)
    np.testing.assert_allclose(flow.jacobian_norms, rho ** (steps - 1 - k), rtol=1e-6)
    np.testing.assert_allclose(flow.step_singular_values[1:], rho, rtol=1e-6)  # every singular value of rho Q
    assert np.isnan(flow.step_singular_values[0]).all()
    assert flow.jacobian_decay_rate == pytest.approx(rho, rel=1e-6)
    assert flow.decay_rate == pytest.approx(rho, rel=1e-6)  # ||Q^T v|| = ||v||: the gradient too
    (matrix,) = flow.recurrent
    assert matrix.spectral_radius == pytest.approx(rho, rel=1e-9)
    assert matrix.singular_value == pytest.approx(rho, rel=1e-9)


# ---------------------------------------------------------------- the same numbers as retain_grad
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("fused", [True, False])
def test_hidden_grad_norms_equal_retain_grad(name, fused, device):
    model = LAYERS[name](3, 4, num_layers=2, bidirectional=True, fused=fused).to(device)
    x = tr.randn(6, 2, 3, device=device)
    loss_fn = lambda out, state: (out ** 2).sum() + (state[0] if name == "LSTM" else state).sum()
    out, state = model(x)
    loss = loss_fn(out, state)
    states = [n for n in autograd.topological_order(loss) if n.name in ("h", "c") and n.step is not None]
    for node in states:
        node.retain_grad()
    loss.backward()
    model.zero_grad()
    flow = trace_gradients(model, x, loss_fn)
    checked = 0
    for node in states:
        i = flow.rows.index(node.scope)
        if node.name == "h":
            traced = flow.hidden_grad_norms[i, node.step]
        elif not fused:  # the composite "c" node feeds tanh(c) -> h: its gradient is the total dL/dc_t
            traced = flow.cell_grad_norms[i, node.step]
        else:
            continue
        assert traced == pytest.approx(np.linalg.norm(node.grad.numpy()), rel=1e-12, abs=1e-300)
        checked += 1
    assert checked == (2 * 2 * 6) * (2 if name == "LSTM" and not fused else 1)


def test_fused_and_composite_traces_agree():
    flows = []
    for fused in (True, False):
        tr.manual_seed(3)
        model = nn.LSTM(3, 4, num_layers=2, fused=fused)
        flows.append(trace_gradients(model, tr.randn(7, 2, 3), lambda out, state: (out ** 2).sum()))
    a, b = flows
    for field in ("hidden_grad_norms", "cell_grad_norms", "jacobian_norms", "step_singular_values"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-10, atol=1e-14)
    assert a.weight_step_terms.keys() == b.weight_step_terms.keys()
    for key in a.weight_step_terms:
        np.testing.assert_allclose(a.weight_step_terms[key], b.weight_step_terms[key], rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------- it never changes the numbers
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_trace_leaves_exactly_the_gradients_of_a_plain_backward(name):
    model = LAYERS[name](3, 5, num_layers=2)
    x = tr.randn(8, 2, 3)
    loss_fn = lambda out, state: (out[-1] ** 2).mean()
    weights = {k: v.copy() for k, v in model.state_dict().items()}
    out, state = model(x)
    loss = loss_fn(out, state)
    loss.backward()
    plain = {k: p.grad.numpy().copy() for k, p in model.named_parameters()}
    model.zero_grad()
    flow = trace_gradients(model, x, loss_fn)
    assert flow.loss == loss.item()
    for k, p in model.named_parameters():
        assert np.array_equal(p.grad.numpy(), plain[k]), k
    for k, v in model.state_dict().items():
        assert np.array_equal(v, weights[k]), k


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("fused", [True, False])
def test_per_step_weight_terms_sum_to_the_gradient(name, fused):
    model = LAYERS[name](3, 4, num_layers=2, bidirectional=True, fused=fused)
    flow = trace_gradients(model, tr.randn(5, 2, 3), lambda out, state: (out ** 2).sum())
    assert set(flow.weight_step_terms) == {k for k, _ in model.named_parameters()}
    for key, p in model.named_parameters():
        terms = flow.weight_step_terms[key]
        assert terms.shape == (5,) + p.shape
        np.testing.assert_allclose(terms.sum(axis=0) + flow.weight_outside_terms[key], p.grad.numpy(),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(flow.weight_step_norms[key],
                                   np.linalg.norm(terms.reshape(5, -1), axis=1), rtol=1e-12)
        assert not flow.weight_outside_terms[key].any()  # everything is made inside a step or the projection
    first = flow.weight_step_terms["weight_hh_l0"][0]
    assert not first.any()  # the step-0 term of W_hh is d_pre^T h_{-1}, and h_{-1} = 0


# ---------------------------------------------------------------- Jacobians: one step against the whole graph
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("fused", [True, False])
def test_one_step_jacobians_match_full_graph_sweeps(name, fused):
    model = LAYERS[name](3, 4, fused=fused)
    out, _ = model(tr.randn(6, 2, 3))
    rows = state_nodes(out.sum())
    (row,) = rows.values()
    hs, cs = row["h"], row["c"]
    steps = jac.step_jacobians(hs, cs)
    end = jac.end_jacobians(hs)
    for t in range(1, len(hs)):
        full = jac.end_jacobians(hs[:t + 1])[t - 1]  # dh_t/dh_{t-1} by node_grads over the whole graph
        np.testing.assert_allclose(steps[t][:, :4, :4], full, rtol=1e-12, atol=1e-15)
    if name != "LSTM":  # chain rule: dh_T/dh_k = dh_T/dh_{k+1} dh_{k+1}/dh_k (the LSTM's c carries too)
        for k in range(len(hs) - 1):
            np.testing.assert_allclose(end[k], end[k + 1] @ steps[k + 1], rtol=1e-10, atol=1e-15)
    else:
        assert steps[1].shape == (2, 8, 8)


# ---------------------------------------------------------------- verdicts
def test_fit_decay_and_verdict_thresholds():
    t = np.arange(20)
    assert fit_decay(3.0 * 0.7 ** (19 - t)) == pytest.approx(0.7, rel=1e-12)
    assert fit_decay(1.3 ** (19 - t)) == pytest.approx(1.3, rel=1e-12)
    assert fit_decay([0.0, 0.0, 0.0]) == 0.0
    assert np.isnan(fit_decay([1.0]))
    assert verdict_for(0.9, 50)[1] == "vanishing"    # 0.9^49 = 0.006 < 1/10
    assert verdict_for(0.99, 50)[1] == "stable"      # 0.61
    assert verdict_for(0.9, 5)[1] == "stable"        # 0.66: five steps are not enough to vanish
    assert verdict_for(1.06, 50)[1] == "exploding"   # 17 > 10
    assert verdict_for(1.0, 10, finite=False)[1] == "exploding"


def test_steps_beyond_what_the_loss_reads_stay_out_of_the_fit():
    """A loss on o_2 of ten steps leaves steps 3..9 a gradient of exactly 0: fitted as 'stopped
    reaching', they once made a shrinking gradient read as 1e39 per step, "exploding"."""
    model = nn.RNN(4, 5)
    flow = trace_gradients(model, tr.randn(10, 3, 4), lambda out, state: (out[2] * out[2]).sum())
    norms = flow.hidden_grad_norms[0]
    assert np.all(norms[3:] == 0) and np.all(norms[:3] > 0)
    assert flow.decay_rate == pytest.approx(fit_decay(norms[:3]), rel=1e-12)
    assert flow.attenuation == pytest.approx(flow.decay_rate ** 2, rel=1e-12)  # over the 3 steps crossed
    assert flow.verdict == verdict_for(flow.decay_rate, 3)[1] != "exploding"
    assert fit_decay([0.0, 2.0, 4.0, 0.0, 0.0]) == pytest.approx(fit_decay([0.0, 2.0, 4.0]), rel=1e-12)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
def test_a_one_step_lstm_reports_its_cell_gradient(fused):
    """At T = 1 with a loss on the outputs no "c" node reaches the loss in the fused form; the
    step's packed [h, c] still gives dL/dc_0 (through h_0 alone), as the composite form does."""
    tr.manual_seed(3)
    model = nn.LSTM(3, 4, fused=fused)
    x = tr.randn(1, 2, 3)
    flow = trace_gradients(model, x, lambda out, state: (out ** 2).sum())
    reference = nn.LSTM(3, 4, fused=False)  # the composite cell's "c" node: dL/dc_0 by retain_grad
    reference.load_state_dict(model.state_dict())
    loss = (reference(x)[0] ** 2).sum()
    c0 = next(n for n in autograd.topological_order(loss) if n.name == "c" and n.step == 0)
    c0.retain_grad()
    loss.backward()
    assert flow.cell_grad_norms.shape == (1, 1) and flow.step_singular_values.shape == (1, 8)
    assert flow.cell_grad_norms[0, 0] == pytest.approx(float(np.linalg.norm(c0.grad.numpy())), rel=1e-12)


def test_finite_gradients_too_large_to_square_are_neither_inf_nor_called_non_finite():
    """dL/dh_t of 1e210 squares to inf: the norms are taken scaled (the largest entry factored
    out), and non-finite means an entry is inf or NaN."""
    model = nn.RNN(3, 6, nonlinearity="relu")
    model.weight_hh_l0.data[...] = 1e30 * np.eye(6)
    model.bias_hh_l0.data[...] = 1.0
    with np.errstate(over="ignore"):
        flow = GradientTracer().record(model, Tensor(1e-280 * np.ones((8, 1, 3))), lambda out, state: out[-1].sum())
    norms = flow.hidden_grad_norms[0]
    np.testing.assert_allclose(norms, np.sqrt(6.0) * 1e30 ** (7 - np.arange(8)), rtol=1e-12)
    np.testing.assert_allclose(flow.hidden_grad_units[0, 0], np.full(6, 1e210), rtol=1e-12)
    assert flow.nonfinite == {} and flow.verdict == "exploding"


def test_radius_half_is_vanishing_at_its_largest_singular_value():
    steps, batch, hidden = 30, 4, 8
    model = nn.RNN(2, hidden, bias=False)
    nn.init.orthogonal_(model.weight_hh_l0, gain=0.5)
    flow = trace_gradients(model, tr.randn(steps, batch, 2) * 0.3, last_output_loss(batch, hidden))
    (matrix,) = flow.recurrent
    assert matrix.spectral_radius == pytest.approx(0.5) and matrix.singular_value == pytest.approx(0.5)
    assert matrix.vanishing_guaranteed  # sigma_1 = 0.5 < 1/gamma = 1
    assert flow.verdict == "vanishing"
    assert flow.attenuation < 1e-8
    # tanh' <= 1 can only shrink the step further: r <= sigma_1, and with small inputs r ~ sigma_1
    assert 0.45 < flow.decay_rate <= 0.5 + 1e-9


def test_large_radius_without_clipping_is_exploding():
    steps, batch, hidden = 30, 4, 8
    model = linear_orthogonal_rnn(1.5, hidden)
    flow = trace_gradients(model, tr.randn(steps, batch, 2) * 1e-10, last_output_loss(batch, hidden))
    assert flow.verdict == "exploding"
    assert flow.decay_rate == pytest.approx(1.5, rel=1e-3)
    assert flow.hidden_grad_norms[0, 0] / flow.hidden_grad_norms[0, -1] == pytest.approx(1.5 ** 29, rel=1e-3)
    stable = trace_gradients(linear_orthogonal_rnn(1.0, hidden), tr.randn(steps, batch, 2) * 1e-10,
                             last_output_loss(batch, hidden))
    assert stable.verdict == "stable"


def test_lstm_with_forget_bias_decays_orders_of_magnitude_less_than_the_rnn():
    steps, batch, hidden = 50, 4, 16
    x = tr.randn(steps, batch, 4)
    loss_fn = last_output_loss(batch, hidden)
    rnn = nn.RNN(4, hidden)
    lstm = nn.LSTM(4, hidden)
    nn.init.forget_gate_bias_(lstm, 1.0)
    f_rnn, f_lstm = (trace_gradients(m, x, loss_fn, jacobians=False) for m in (rnn, lstm))
    reach = [f.hidden_grad_norms[0, 0] / f.hidden_grad_norms[0, -1] for f in (f_rnn, f_lstm)]
    assert reach[1] / reach[0] > 1e6  # measured: about 1e-16 (RNN) against 1e-5 (LSTM)
    assert f_lstm.decay_rate > f_rnn.decay_rate + 0.2
    assert f_lstm.cell_grad_norms[0, 0] / f_lstm.cell_grad_norms[0, -1] > 1e6 * reach[0]
    assert f_rnn.jacobian_norms is None and f_rnn.verdict == "vanishing"


# ---------------------------------------------------------------- the tracer
def test_tracer_logs_clipping_and_keeps_the_history():
    steps, batch, hidden = 10, 2, 4
    model = linear_orthogonal_rnn(1.5, hidden)
    x = tr.randn(steps, batch, 2)
    loss_fn = last_output_loss(batch, hidden)
    tracer = GradientTracer(max_norm=0.1)
    for _ in range(3):
        model.zero_grad()
        flow = tracer.record(model, x, loss_fn)
    assert len(tracer) == 3 and len(tracer.clip_events) == 3
    event = tracer.clip_events[-1]
    assert event.training_step == 2 and event.norm_before > 0.1
    assert event.norm_after == pytest.approx(0.1, rel=1e-4)
    assert event.peak_step == int(np.argmax(flow.hidden_grad_norms[0]))
    total = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in model.parameters()))
    assert total == pytest.approx(0.1, rel=1e-4)  # the update would use the clipped gradient
    assert tracer.hidden_grad_history().shape == (3, steps)
    assert tracer.flows[0].weight_step_terms == {} and flow.weight_step_terms  # the history keeps the lite record

    quiet = GradientTracer()
    model.zero_grad()
    quiet.record(model, x, loss_fn)
    assert quiet.clip_events == [] and quiet.norms_after == quiet.norms_before


@pytest.mark.parametrize("bidirectional", [False, True])
def test_tracer_names_the_time_step_where_non_finite_gradients_start(bidirectional):
    model = nn.RNN(2, 3, bidirectional=bidirectional)
    x = tr.randn(10, 2, 2)
    start = 6
    poisoned = lambda out, state: out.sum() + out[start].sum() * np.inf  # an infinite gradient at step 6
    tracer = GradientTracer()
    tracer.record(model, x, lambda out, state: out.sum())
    with np.errstate(invalid="ignore", over="ignore"):
        flow = tracer.record(model, x, poisoned)
    rows = ["rnn.l0", "rnn.l0.reverse"][:1 + bidirectional]
    assert flow.nonfinite == {row: start for row in rows}
    events = [(e.training_step, e.where, e.time_step) for e in tracer.nonfinite_events]
    assert (1, "loss", None) in events and all((1, row, start) in events for row in rows)
    assert all(e.training_step == 1 for e in tracer.nonfinite_events)
    assert flow.verdict == "exploding"
    assert np.isfinite(flow.hidden_grad_norms[0, start + 1:]).all()  # later steps are untouched
    assert not np.isfinite(flow.hidden_grad_norms[0, :start + 1]).any()


# ---------------------------------------------------------------- guards
def test_trace_rejects_what_it_cannot_read():
    model = nn.RNN(2, 3)
    x = tr.randn(4, 1, 2)
    with pytest.raises(ValueError, match="scalar"):
        trace_gradients(model, x, lambda out, state: out)
    with pytest.raises(ValueError, match="called twice"):
        trace_gradients(model, x, lambda out, state: out.sum() + model(x)[0].sum())
