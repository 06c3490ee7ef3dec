"""Recurrent cells and layers (nn/cells.py, nn/rnn.py, fused.py) without PyTorch.

Oracles: the fused form against the composite form (two independent derivations of the same
gradients), finite differences (tr.gradcheck), and the textbook's hand-derived BPTT for a vanilla
RNN with softmax outputs (Goodfellow, Bengio and Courville, Deep Learning, section 10.2.2).
The live comparison with an installed PyTorch is in test_rnn_torch.py.
"""
import collections
import itertools

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
FORMS = pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
LAYER_FORMS = pytest.mark.parametrize("fused", [True, False, "sequence"], ids=["fused", "composite", "sequence"])
FAST_FORMS = pytest.mark.parametrize("form", [True, "sequence"], ids=["fused", "sequence"])


# ---------------------------------------------------------------- helpers
def make_layer(kind, input_size, hidden_size, **options):
    """nn.RNN (tanh or relu), nn.LSTM or nn.GRU for a kind name of KINDS."""
    if kind.startswith("rnn"):
        return nn.RNN(input_size, hidden_size, nonlinearity=kind[4:], **options)
    return {"lstm": nn.LSTM, "gru": nn.GRU}[kind](input_size, hidden_size, **options)


def make_cell(kind, input_size, hidden_size, **options):
    if kind.startswith("rnn"):
        return nn.RNNCell(input_size, hidden_size, nonlinearity=kind[4:], **options)
    return {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](input_size, hidden_size, **options)


def leaf(rng, shape, device, scale=1.0):
    return tr.Tensor(scale * rng.standard_normal(shape), requires_grad=True, dtype=np.float64, device=device)


def state_count(kind) -> int:
    """How many state tensors a kind carries: 2 (h, c) for the LSTM, else 1 (h)."""
    return 2 if kind == "lstm" else 1


def pack_hx(kind, states):
    """The hx argument for a list of initial states: None, h_0, or (h_0, c_0) for the LSTM."""
    if not states:
        return None
    return tuple(states) if kind == "lstm" else states[0]


def unpack_final(kind, final):
    """(h_n,) or (h_n, c_n) from a layer's second output."""
    return tuple(final) if kind == "lstm" else (final,)


def unroll_cell(cell, kind, xs, states):
    """Step a cell over xs[0], xs[1], ... from the given states; returns (h_1..h_T, [c_T])."""
    state = pack_hx(kind, states)
    hs = []
    for t in range(xs.shape[0]):
        state = cell(xs[t], state)
        hs.append(state[0] if kind == "lstm" else state)
    return tuple(hs) + ((state[1],) if kind == "lstm" else ())


def weighted_sum(tensors, seed=123):
    """sum_i <w_i, t_i> with fixed random weightings: a scalar that every output feeds."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for t in tensors:
        total = total + (t * rng.standard_normal(t.shape)).sum()
    return total


def run_layer(model, kind, x, states):
    """Forward and backward of weighted_sum(output, h_n[, c_n]); returns {name: array} with the
    values and the gradients of x, the initial states and every parameter."""
    output, final = model(x, pack_hx(kind, states))
    results = (output,) + unpack_final(kind, final)
    weighted_sum(results).backward()
    arrays = {name: r.numpy() for name, r in zip(("output", "h_n", "c_n"), results)}
    for name, t in [("x", x)] + [(f"state{i}", s) for i, s in enumerate(states)]:
        arrays[f"grad/{name}"] = t.grad.numpy()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        arrays[f"grad/{name}"] = p.grad.numpy()
    return arrays


def assert_same(obtained: dict, expected: dict, rtol, atol):
    assert obtained.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(obtained[key], expected[key], rtol=rtol, atol=atol, err_msg=key)


def walk(roots):
    """Every node reachable from roots through `parents`, each once (iterative)."""
    seen, stack, nodes = set(), list(roots), []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(node.parents)
    return nodes


def randomize_learned_states(model):
    """Give a learn_init model random h0 (and c0), which start at zero, so that they count."""
    rng = np.random.default_rng(3)
    model.load_state_dict({k: rng.standard_normal(v.shape) if k in ("h0", "c0") else v
                           for k, v in model.state_dict().items()})
    return model


# ---------------------------------------------------------------- fused == composite
LAYER_GRID = list(itertools.product(KINDS, [1, 2], [False, True], [False, True], [True, False]))


@FAST_FORMS
@pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
@pytest.mark.parametrize("kind,layers,bidirectional,batch_first,bias", LAYER_GRID,
                         ids=["-".join(map(str, row)) for row in LAYER_GRID])
def test_fused_equals_composite(kind, layers, bidirectional, batch_first, bias, with_hx, form, device):
    options = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias,
                   dtype=np.float64, device=device)
    fused = make_layer(kind, 3, 4, fused=form, **options)
    composite = make_layer(kind, 3, 4, fused=False, **options)
    composite.load_state_dict(fused.state_dict())
    T, B, D = 5, 2, 2 if bidirectional else 1
    states_shape = (layers * D, B, 4)

    def results(model):
        rng = np.random.default_rng(7)
        x = leaf(rng, (B, T, 3) if batch_first else (T, B, 3), device)
        n_states = state_count(kind) if with_hx else 0
        return run_layer(model, kind, x, [leaf(rng, states_shape, device, 0.5) for _ in range(n_states)])
    assert_same(results(fused), results(composite), rtol=1e-10, atol=1e-10)


@FAST_FORMS
@pytest.mark.parametrize("kind", KINDS)
def test_fused_equals_composite_learn_init(kind, form, device):
    options = dict(num_layers=2, bidirectional=True, learn_init=True, dtype=np.float64, device=device)
    fused = randomize_learned_states(make_layer(kind, 3, 4, fused=form, **options))
    composite = make_layer(kind, 3, 4, fused=False, **options)
    composite.load_state_dict(fused.state_dict())

    def results(model):
        return run_layer(model, kind, leaf(np.random.default_rng(8), (5, 2, 3), device), [])
    assert_same(results(fused), results(composite), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("unbatched", [False, True], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", KINDS)
def test_cell_fused_equals_composite(kind, bias, unbatched, device):
    fused = make_cell(kind, 3, 4, bias=bias, fused=True, dtype=np.float64, device=device)
    composite = make_cell(kind, 3, 4, bias=bias, fused=False, dtype=np.float64, device=device)
    composite.load_state_dict(fused.state_dict())

    def results(model):
        rng = np.random.default_rng(5)
        batch = () if unbatched else (2,)
        xs = leaf(rng, (5,) + batch + (3,), device)
        states = [leaf(rng, batch + (4,), device, 0.5) for _ in range(state_count(kind))]
        outputs = unroll_cell(model, kind, xs, states)
        weighted_sum(outputs).backward()
        arrays = {f"out{i}": o.numpy() for i, o in enumerate(outputs)}
        arrays.update({f"grad/{i}": t.grad.numpy() for i, t in enumerate([xs] + states)})
        arrays.update({f"grad/{n}": p.grad.numpy() for n, p in model.named_parameters()})
        return arrays
    assert_same(results(fused), results(composite), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- finite differences
@FORMS
@pytest.mark.parametrize("kind", KINDS)
def test_cell_gradcheck(kind, fused, device):
    cell = make_cell(kind, 3, 4, fused=fused, dtype=np.float64, device=device)
    rng = np.random.default_rng(11)
    xs = leaf(rng, (5, 2, 3), device)
    states = [leaf(rng, (2, 4), device, 0.5) for _ in range(state_count(kind))]
    n = 1 + len(states)

    def fn(*inputs):  # the parameters are checked through the closure: gradcheck perturbs them in place
        return unroll_cell(cell, kind, inputs[0], list(inputs[1:n]))
    assert tr.gradcheck(fn, [xs, *states, *cell.parameters()], atol=1e-6, rtol=1e-5)


@LAYER_FORMS
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)], ids=["L1", "L2-bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_layer_gradcheck(kind, layers, bidirectional, fused, device):
    model = make_layer(kind, 3, 4, num_layers=layers, bidirectional=bidirectional, fused=fused,
                       dtype=np.float64, device=device)
    rng = np.random.default_rng(12)
    xs = leaf(rng, (5, 2, 3), device)
    D = 2 if bidirectional else 1
    states = [leaf(rng, (layers * D, 2, 4), device, 0.5) for _ in range(state_count(kind))]
    n = 1 + len(states)

    def fn(*inputs):
        output, final = model(inputs[0], pack_hx(kind, list(inputs[1:n])))
        return (output,) + unpack_final(kind, final)
    # every input (x, the states, each parameter) along 6 random directions: entry by entry
    # would take ~600 forward passes for the 2-layer bidirectional LSTM
    assert tr.gradcheck(fn, [xs, *states, *model.parameters()], atol=1e-6, rtol=1e-5,
                        max_entries=12, directions=6)


# ---------------------------------------------------------------- the textbook's BPTT
def textbook_bptt(x, y, h0, U, W, b, V, c):
    """Deep Learning (Goodfellow et al.), eqs. 10.8-10.11 forward and 10.18-10.28 backward, for
    one sequence x (T, I) with targets y (T,). Returns (L, dU, dW, db, dV, dc)."""
    T = len(y)
    h, yhat, L = [h0], [], 0.0
    for t in range(T):
        a = b + W @ h[-1] + U @ x[t]                            # 10.8
        h.append(np.tanh(a))                                    # 10.9
        o = c + V @ h[-1]                                       # 10.10
        e = np.exp(o - o.max())
        yhat.append(e / e.sum())                                # 10.11
        L -= np.log(yhat[-1][y[t]])
    h = h[1:]  # h[t] is h^(t), t = 0..T-1; h0 is h^(-1)
    do = [yhat[t] - np.eye(len(c))[y[t]] for t in range(T)]     # 10.18
    dh = [None] * T
    dh[T - 1] = V.T @ do[T - 1]                                 # 10.19
    for t in range(T - 2, -1, -1):                              # 10.21
        dh[t] = W.T @ ((1 - h[t + 1] ** 2) * dh[t + 1]) + V.T @ do[t]
    previous = [h0] + h[:-1]
    dc = sum(do)                                                # 10.22
    db = sum((1 - h[t] ** 2) * dh[t] for t in range(T))         # 10.23
    dV = sum(np.outer(do[t], h[t]) for t in range(T))           # 10.24
    dW = sum(np.outer((1 - h[t] ** 2) * dh[t], previous[t]) for t in range(T))  # 10.26
    dU = sum(np.outer((1 - h[t] ** 2) * dh[t], x[t]) for t in range(T))         # 10.28
    return L, dU, dW, db, dV, dc


@LAYER_FORMS
def test_bptt_equals_textbook(fused, device):
    T, I, H, K = 7, 3, 5, 4
    rng = np.random.default_rng(2024)
    x, y, h0 = rng.standard_normal((T, I)), rng.integers(0, K, T), 0.5 * rng.standard_normal(H)
    U, W, V = rng.normal(0, 0.6, (H, I)), rng.normal(0, 0.6, (H, H)), rng.normal(0, 0.6, (K, H))
    b_ih, b_hh, c = rng.standard_normal(H), rng.standard_normal(H), rng.standard_normal(K)

    rnn = nn.RNN(I, H, fused=fused, dtype=np.float64, device=device)
    rnn.load_state_dict({"weight_ih_l0": U, "weight_hh_l0": W, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh})
    head = nn.Linear(H, K, dtype=np.float64, device=device)
    head.load_state_dict({"weight": V, "bias": c})
    hs, _ = rnn(tr.Tensor(x, device=device), tr.Tensor(h0.reshape(1, H), device=device))  # unbatched (T, I)
    loss = F.cross_entropy(head(hs), tr.Tensor(y, device=device), reduction="sum")
    loss.backward()

    L, dU, dW, db, dV, dc = textbook_bptt(x, y, h0, U, W, b_ih + b_hh, V, c)
    expected = {"loss": L, "U": dU, "W": dW, "b_ih": db, "b_hh": db, "V": dV, "c": dc}
    obtained = {"loss": loss.numpy(), "U": rnn.weight_ih_l0.grad.numpy(), "W": rnn.weight_hh_l0.grad.numpy(),
                "b_ih": rnn.bias_ih_l0.grad.numpy(), "b_hh": rnn.bias_hh_l0.grad.numpy(),
                "V": head.weight.grad.numpy(), "c": head.bias.grad.numpy()}
    assert_same(obtained, expected, rtol=1e-10, atol=1e-10)


@LAYER_FORMS
def test_relu_layer_passes_the_gradient_through_a_nan_as_pytorch(fused, device):
    """A NaN input makes every pre-activation NaN; relu'(NaN) = 1 as in PyTorch's relu (0 only
    where the pre-activation is <= 0), so dL/dx = g W_ih stays finite in every form."""
    rnn = nn.RNN(3, 4, nonlinearity="relu", fused=fused, dtype=np.float64, device=device)
    x = tr.Tensor([[[np.nan, 1.0, 2.0]]], requires_grad=True, dtype=np.float64, device=device)  # (T, B, I)
    g = np.array([[[1.0, -2.0, 0.5, 3.0]]])
    output, _ = rnn(x)
    output.backward(g)
    np.testing.assert_allclose(x.grad.numpy(), g @ rnn.weight_ih_l0.numpy(), rtol=1e-15)


@LAYER_FORMS
def test_an_inactive_relu_blocks_an_infinite_gradient(fused, device):
    """relu' = 0 selects, as in PyTorch: a unit whose pre-activation is negative passes nothing
    back, even an inf or NaN dL/dh (the sequence form multiplied by 0: NaN)."""
    rnn = nn.RNN(1, 2, nonlinearity="relu", fused=fused, dtype=np.float64, device=device)
    rnn.load_state_dict({"weight_ih_l0": [[1.0], [-1.0]], "weight_hh_l0": np.zeros((2, 2)),
                         "bias_ih_l0": np.zeros(2), "bias_hh_l0": np.zeros(2)})
    x = tr.Tensor([[[1.0]], [[1.0]]], requires_grad=True, dtype=np.float64, device=device)  # (T, B, I) = (2, 1, 1)
    output, _ = rnn(x)  # unit 0 active (h = 1), unit 1 not (pre-activation -1)
    output.backward(np.array([[[2.0, np.inf]], [[3.0, np.nan]]]))
    np.testing.assert_array_equal(x.grad.numpy().ravel(), [2.0, 3.0])
    np.testing.assert_array_equal(rnn.weight_ih_l0.grad.numpy().ravel(), [5.0, 0.0])


@pytest.mark.parametrize("dtype, bias, state", [(np.float64, -40.0, 1e30), (np.float32, -20.0, 1e4),
                                                (np.float32, -10.0, 1.0)])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@LAYER_FORMS
def test_a_tiny_gate_keeps_its_digits_in_every_form(kind, fused, dtype, bias, state, device):
    """A forget (LSTM) or update (GRU) gate of sigmoid(-40) = 4.2e-18 times a state of 1e30 is
    4.2e12, as PyTorch computes it. The fused kernels' sigmoid was (1 + tanh(x/2))/2, which is 0
    there (and carried a relative error of 1e-4 at sigmoid(-10) in float32)."""
    model = make_layer(kind, 1, 1, fused=fused, dtype=dtype, device=device)
    for p in model.parameters():
        p.data[...] = 0
    model.bias_ih_l0.data[1] = bias  # gate order: LSTM [i, f, g, o], GRU [r, z, n]
    s0 = tr.Tensor(np.full((1, 1, 1), state), dtype=dtype, requires_grad=True, device=device)
    zeros = tr.Tensor(np.zeros((1, 1, 1)), dtype=dtype, device=device)
    _, final = model(zeros, (zeros, s0) if kind == "lstm" else s0)
    carried = final[-1]  # c_n, or the GRU's h_n
    carried.sum().backward()
    gate = 1 / (1 + np.exp(-bias))  # in float64: 4.248e-18 at -40
    rtol = 1e-14 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(carried.numpy().ravel(), [gate * state], rtol=rtol)
    np.testing.assert_allclose(s0.grad.numpy().ravel(), [gate], rtol=rtol)
    np.testing.assert_allclose(model.bias_ih_l0.grad.numpy()[1], gate * (1 - gate) * state, rtol=rtol)


# ---------------------------------------------------------------- bad input
def message_of(excinfo) -> str:
    return str(excinfo.value.args[0])  # KeyError's str() would add quotes


@pytest.mark.parametrize("shape", [(5,), (5, 2, 3, 1), (5, 2, 4), (5, 2)],
                         ids=["1d", "4d", "features", "2d-features"])
@pytest.mark.parametrize("kind", KINDS)
def test_layer_rejects_bad_input_shape(kind, shape, device):
    model = make_layer(kind, 3, 4, device=device)
    with pytest.raises(ValueError) as excinfo:
        model(tr.zeros(shape, device=device))
    assert "(T, B, I)" in message_of(excinfo) and "I = 3" in message_of(excinfo)
    assert str(shape) in message_of(excinfo)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_rejects_bad_input_shape(kind, device):
    cell = make_cell(kind, 3, 4, device=device)
    for shape in [(2, 4), (2, 2, 3)]:
        with pytest.raises(ValueError) as excinfo:
            cell(tr.zeros(shape, device=device))
        assert "(batch, 3)" in message_of(excinfo) and str(shape) in message_of(excinfo)


@pytest.mark.parametrize("kind,bad", [(kind, 0) for kind in KINDS] + [("lstm", 1)],
                         ids=[f"{kind}-h_0" for kind in KINDS] + ["lstm-c_0"])
def test_layer_rejects_bad_state_shape(kind, bad, device):
    model = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, device=device)
    states = [tr.zeros(4, 2, 4, device=device) for _ in range(state_count(kind))]
    states[bad] = tr.zeros(2, 2, 4, device=device)  # L*D = 4 expected
    with pytest.raises(ValueError) as excinfo:
        model(tr.zeros(5, 2, 3, device=device), pack_hx(kind, states))
    message = message_of(excinfo)
    assert ("h_0", "c_0")[bad] in message and "(4, 2, 4)" in message and "got (2, 2, 4)" in message


@pytest.mark.parametrize("bad_shape", [(1, 1, 4), (1, 3), (4,)], ids=["3d", "size", "1d"])
@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_layer_state_shape(kind, bad_shape, device):
    model = make_layer(kind, 3, 4, dtype=np.float64, device=device)
    n_states = state_count(kind)
    x = tr.randn(5, 3, dtype=np.float64, device=device)
    good = [tr.randn(1, 4, dtype=np.float64, device=device) for _ in range(n_states)]
    output, final = model(x, pack_hx(kind, good))  # (T, I) input with (L*D, H) states
    batched, batched_final = model(x.reshape(5, 1, 3), pack_hx(kind, [s.reshape(1, 1, 4) for s in good]))
    np.testing.assert_array_equal(output.numpy(), batched.numpy()[:, 0])
    for s, b in zip(unpack_final(kind, final), unpack_final(kind, batched_final)):
        np.testing.assert_array_equal(s.numpy(), b.numpy()[:, 0])
    with pytest.raises(ValueError) as excinfo:
        model(x, pack_hx(kind, [tr.zeros(bad_shape, dtype=np.float64, device=device)] * n_states))
    assert "(1, 4)" in message_of(excinfo) and str(bad_shape) in message_of(excinfo)


def test_cell_rejects_bad_state_shape(device):
    x = tr.zeros(2, 3, device=device)
    with pytest.raises(ValueError) as excinfo:
        nn.LSTMCell(3, 4, device=device)(x, (tr.zeros(2, 4, device=device), tr.zeros(3, 4, device=device)))
    assert "c must have shape (2, 4)" in message_of(excinfo) and "got (3, 4)" in message_of(excinfo)
    with pytest.raises(ValueError) as excinfo:
        nn.GRUCell(3, 4, device=device)(x, tr.zeros(2, 5, device=device))
    assert "h must have shape (2, 4)" in message_of(excinfo) and "got (2, 5)" in message_of(excinfo)


@pytest.mark.parametrize("hx,got", [(None, "Tensor"), ("triple", "tuple of length 3")], ids=["tensor", "triple"])
def test_lstm_hx_must_be_a_pair(hx, got, device):
    model = nn.LSTM(3, 4, device=device)
    h = tr.zeros(1, 2, 4, device=device)
    with pytest.raises(TypeError) as excinfo:
        model(tr.zeros(5, 2, 3, device=device), h if hx is None else (h, h, h))
    assert "(h_0, c_0)" in message_of(excinfo) and got in message_of(excinfo)


@pytest.mark.parametrize("kind", ["rnn_tanh", "gru"])
def test_single_state_hx_must_be_a_tensor(kind, device):
    model = make_layer(kind, 3, 4, device=device)
    with pytest.raises(TypeError) as excinfo:
        model(tr.zeros(5, 2, 3, device=device), (tr.zeros(1, 2, 4, device=device),))
    assert "Tensor h_0" in message_of(excinfo) and "got tuple" in message_of(excinfo)


@pytest.mark.parametrize("factory", [nn.RNN, nn.RNNCell])
def test_unknown_nonlinearity(factory):
    with pytest.raises(ValueError) as excinfo:
        factory(3, 4, nonlinearity="sigmoid")
    assert all(word in message_of(excinfo) for word in ("'sigmoid'", "'tanh'", "'relu'"))


@pytest.mark.parametrize("kind", KINDS)
def test_layer_rejects_dtype_mismatch(kind, device):
    model = make_layer(kind, 3, 4, dtype=np.float64, device=device)
    with pytest.raises(TypeError) as excinfo:
        model(tr.zeros(5, 2, 3, dtype=np.float32, device=device))
    assert "float32" in message_of(excinfo) and "float64" in message_of(excinfo)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_rejects_dtype_mismatch(kind, device):
    cell = make_cell(kind, 3, 4, dtype=np.float64, device=device)
    with pytest.raises(TypeError) as excinfo:
        cell(tr.zeros(2, 3, dtype=np.float32, device=device))
    assert "float32" in message_of(excinfo) and "float64" in message_of(excinfo)


@LAYER_FORMS
@pytest.mark.parametrize("kind,bad", [(kind, 0) for kind in KINDS] + [("lstm", 1)],
                         ids=[f"{kind}-h_0" for kind in KINDS] + ["lstm-c_0"])
def test_layer_rejects_state_dtype_mismatch(kind, bad, fused, device):
    """A float32 state given to a float64 layer is refused by every form (the fused ones compute on
    the arrays, where NumPy would have demoted the GRU's output to float32 without a word)."""
    model = make_layer(kind, 3, 4, fused=fused, dtype=np.float64, device=device)
    states = [tr.zeros(1, 2, 4, dtype=np.float64, device=device) for _ in range(state_count(kind))]
    states[bad] = tr.zeros(1, 2, 4, dtype=np.float32, device=device)
    with pytest.raises(TypeError) as excinfo:
        model(tr.zeros(5, 2, 3, dtype=np.float64, device=device), pack_hx(kind, states))
    message = message_of(excinfo)
    assert ("h_0", "c_0")[bad] in message and "float32" in message and "float64" in message


@FORMS
@pytest.mark.parametrize("kind", KINDS)
def test_cell_rejects_state_dtype_mismatch(kind, fused, device):
    cell = make_cell(kind, 3, 4, fused=fused, dtype=np.float64, device=device)
    h = tr.zeros(2, 4, dtype=np.float32, device=device)
    with pytest.raises(TypeError) as excinfo:
        cell(tr.zeros(2, 3, dtype=np.float64, device=device), (h, h) if kind == "lstm" else h)
    assert "h is float32" in message_of(excinfo) and "float64" in message_of(excinfo)


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_cell_state_shape(kind, device):
    """An unbatched cell takes states (H,) and names the shapes the caller passed when they differ."""
    cell = make_cell(kind, 3, 4, dtype=np.float64, device=device)
    x = tr.randn(3, dtype=np.float64, device=device)
    good = tr.randn(4, dtype=np.float64, device=device)
    out = cell(x, (good, good) if kind == "lstm" else good)
    batched = cell(x.reshape(1, 3), (good.reshape(1, 4),) * 2 if kind == "lstm" else good.reshape(1, 4))
    for o, b in zip(out if kind == "lstm" else [out], batched if kind == "lstm" else [batched]):
        assert o.shape == (4,)
        np.testing.assert_array_equal(o.numpy(), b.numpy()[0])
    bad = tr.zeros(2, 4, dtype=np.float64, device=device)
    with pytest.raises(ValueError) as excinfo:
        cell(x, (bad, bad) if kind == "lstm" else bad)
    assert "must have shape (4,) for input of shape (3,), got (2, 4)" in message_of(excinfo)


@pytest.mark.parametrize("kind", KINDS)
def test_layer_rejects_an_empty_sequence(kind, device):
    with pytest.raises(ValueError) as excinfo:
        make_layer(kind, 3, 4, device=device)(tr.zeros(0, 2, 3, device=device))
    assert "no time steps" in message_of(excinfo) and "(0, 2, 3)" in message_of(excinfo)


@LAYER_FORMS
@pytest.mark.parametrize("kind", KINDS)
def test_layer_takes_an_empty_batch(kind, fused, device):
    """B = 0 gives empty outputs and states and zero weight gradients in every form, as PyTorch."""
    model = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, fused=fused, dtype=np.float64, device=device)
    x = tr.zeros(5, 0, 3, dtype=np.float64, device=device, requires_grad=True)
    output, final = model(x)
    assert output.shape == (5, 0, 8)
    assert all(s.shape == (4, 0, 4) for s in unpack_final(kind, final))
    (output.sum() + sum(s.sum() for s in unpack_final(kind, final))).backward()
    assert x.grad.shape == (5, 0, 3)
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad.numpy(), np.zeros(p.shape), err_msg=name)


def test_load_state_dict_names_every_offending_key(device):
    model = nn.LSTM(3, 4, num_layers=2, device=device)
    before = model.state_dict()
    state = dict(before)
    del state["weight_hh_l1"], state["bias_ih_l0"]
    state["weight_ih_l2"] = np.zeros((16, 4), np.float32)
    state["decoder.bias"] = np.zeros(4, np.float32)
    state["weight_hh_l0"] = np.zeros((16, 5), np.float32)

    with pytest.raises(KeyError) as excinfo:
        model.load_state_dict(state)
    message = message_of(excinfo)
    for key in ("weight_hh_l1", "bias_ih_l0", "weight_ih_l2", "decoder.bias"):
        assert key in message
    assert "missing" in message and "unexpected" in message
    assert "weight_hh_l0: expected (16, 4), got (16, 5)" in message
    assert_same(model.state_dict(), before, rtol=0, atol=0)  # nothing changed

    shapes_only = dict(before, weight_hh_l0=np.zeros((16, 5)), bias_hh_l1=np.zeros(4))
    with pytest.raises(ValueError) as excinfo:
        model.load_state_dict(shapes_only)
    message = message_of(excinfo)
    assert "weight_hh_l0: expected (16, 4), got (16, 5)" in message
    assert "bias_hh_l1: expected (16,), got (4,)" in message
    assert_same(model.state_dict(), before, rtol=0, atol=0)


# ---------------------------------------------------------------- dropout between layers
def dropout_pair(kind, layers, device):
    """(model with dropout=0.5, model with dropout=0), same weights, and an input."""
    dropped = make_layer(kind, 3, 8, num_layers=layers, dropout=0.5, dtype=np.float64, device=device)
    plain = make_layer(kind, 3, 8, num_layers=layers, dtype=np.float64, device=device)
    plain.load_state_dict(dropped.state_dict())
    return dropped, plain, tr.randn(6, 4, 3, dtype=np.float64, device=device)


def output_with_seed(model, x, seed):
    tr.manual_seed(seed)
    return model(x)[0].numpy()


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_between_layers(kind, device):
    dropped, plain, x = dropout_pair(kind, 2, device)
    first, second = output_with_seed(dropped, x, 1), output_with_seed(dropped, x, 2)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, output_with_seed(dropped, x, 1))  # the seed decides the mask
    evaluated = output_with_seed(dropped.eval(), x, 1)
    assert not np.allclose(first, evaluated)
    np.testing.assert_array_equal(evaluated, output_with_seed(plain, x, 1))


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_with_one_layer_changes_nothing(kind, device):
    dropped, plain, x = dropout_pair(kind, 1, device)
    np.testing.assert_array_equal(output_with_seed(dropped.train(), x, 1), output_with_seed(plain, x, 1))


# ---------------------------------------------------------------- learned initial states
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_learn_init(kind, bidirectional, device):
    model = randomize_learned_states(make_layer(kind, 3, 4, num_layers=2, bidirectional=bidirectional,
                                                learn_init=True, dtype=np.float64, device=device))
    names = ["h0", "c0"] if kind == "lstm" else ["h0"]
    params = dict(model.named_parameters())
    LD = 2 * (2 if bidirectional else 1)
    for name in names:
        assert isinstance(params[name], nn.Parameter) and params[name].shape == (LD, 4)
    x = tr.Tensor(np.random.default_rng(4).standard_normal((5, 3, 3)), device=device)
    output, final = model(x)
    weighted_sum((output,) + unpack_final(kind, final)).backward()

    # the same model fed the learned states explicitly, repeated over the batch
    explicit = [tr.Tensor(np.repeat(params[n].numpy()[:, None, :], 3, axis=1), requires_grad=True, device=device)
                for n in names]
    output2, final2 = model(x, pack_hx(kind, explicit))
    np.testing.assert_allclose(output2.numpy(), output.numpy(), rtol=1e-12, atol=1e-12)
    weighted_sum((output2,) + unpack_final(kind, final2)).backward()
    for name, state in zip(names, explicit):
        grad = params[name].grad.numpy()
        assert np.abs(grad).max() > 1e-3, f"{name} received no gradient"
        np.testing.assert_allclose(grad, state.grad.numpy().sum(axis=1), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- scope and step stamps
@FORMS
def test_lstm_states_carry_scope_and_step(fused, device):
    T = 4
    model = nn.LSTM(3, 4, num_layers=2, bidirectional=True, fused=fused, device=device)
    output, (h_n, c_n) = model(tr.randn(T, 2, 3, device=device))
    stamps = collections.Counter((node.name, node.scope, node.step) for node in walk([output, h_n, c_n])
                                 if node.name in ("h", "c"))
    scopes = ["lstm.l0", "lstm.l0.reverse", "lstm.l1", "lstm.l1.reverse"]
    expected = collections.Counter((name, scope, t) for name in ("h", "c") for scope in scopes for t in range(T))
    assert stamps == expected

    h = {(node.scope, node.step): node for node in walk([output]) if node.name == "h"}
    for scope in scopes:  # the state stamped t comes from the one stamped t - 1 (t + 1 in reverse)
        reverse = scope.endswith("reverse")
        for t in range(T - 1):
            earlier, later = (h[scope, t + 1], h[scope, t]) if reverse else (h[scope, t], h[scope, t + 1])
            assert any(node is earlier for node in walk([later])), (scope, t)
    for t in range(T):  # and the last layer's h stamped t is the output at t
        for d, scope in enumerate(["lstm.l1", "lstm.l1.reverse"]):
            np.testing.assert_array_equal(h[scope, t].numpy(), output.numpy()[t, :, 4 * d:4 * (d + 1)])


def test_scope_follows_attribute_name(device):
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.GRU(3, 4, device=device)

        def forward(self, x):
            return self.encoder(x)[0]

    output = Model()(tr.randn(3, 1, 3, device=device))
    scopes = {(node.scope, node.step) for node in walk([output]) if node.name == "h"}
    assert scopes == {("model.encoder.l0", t) for t in range(3)}
