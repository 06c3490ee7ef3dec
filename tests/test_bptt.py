"""Truncated BPTT: windows, detach_state, and train_bptt against the same training done by hand
(full BPTT, per-window gradients, carried states, clipping), plus its memory over long sequences."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_rnn as tr
from tinygrad_rnn import F, Tensor, backend, nn, optim
from tinygrad_rnn.bptt import detach_state, train_bptt, windows
from conftest import host



def problem(device="cpu", T=12, B=3, I=4, H=5, seed=0, batch_first=False):
    """A float64 nn.LSTM, a twin with the same weights, inputs and targets (NumPy, time first)."""
    tr.set_default_dtype(np.float64)
    tr.manual_seed(seed)
    model = nn.LSTM(I, H, batch_first=batch_first).to(device)
    twin = nn.LSTM(I, H).to(device)
    twin.load_state_dict(model.state_dict())
    rng = np.random.default_rng(seed)
    return model, twin, rng.normal(size=(T, B, I)), rng.normal(size=(T, B, H))


def params_of(model) -> dict:
    return {name: host(p.data).copy() for name, p in model.named_parameters()}


def grads_of(model) -> dict:
    return {name: host(p.grad.data).copy() for name, p in model.named_parameters()}


def assert_same_arrays(got: dict, want: dict, rtol=1e-12):
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=1e-15, err_msg=key)


def constant_state(state):
    """A fresh leaf copy of an LSTM state (h, c), built without the code under test."""
    return tuple(Tensor(host(s.data).copy(), device=s.device) for s in state)


def by_hand(twin, x, y, k, lr, device, max_norm=None):
    """Truncated BPTT written out: per window a forward from the (cut) state, backward, optional
    clipping, and p <- p - lr * g. Returns losses, input gradients, window gradient norms, last state
    and the last window's parameter gradients (after clipping)."""
    state, losses, x_grads, norms = None, [], [], []
    T = x.shape[0]
    for start in range(0, T, k):
        stop = min(start + k, T)
        xw = Tensor(x[start:stop], requires_grad=True, device=device)
        output, new_state = twin(xw, state)
        loss = F.mse_loss(output, Tensor(y[start:stop], device=device))
        twin.zero_grad()
        loss.backward()
        losses.append(loss.item())
        x_grads.append(host(xw.grad.data))
        grads = grads_of(twin)
        if max_norm is not None:
            norm = float(np.linalg.norm(np.concatenate([g.ravel() for g in grads.values()])))
            norms.append(norm)
            if norm > max_norm:
                grads = {name: g * (max_norm / (norm + 1e-6)) for name, g in grads.items()}
        for name, p in twin.named_parameters():
            p.data = p.data - lr * backend.to_device(grads[name], device)
        state = constant_state(new_state)
    return losses, np.concatenate(x_grads), norms, state, grads


# ---------------------------------------------------------------- windows
def test_windows_of_a_sequence():
    assert list(windows(10, 3)) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert list(windows(10, 5)) == [(0, 5), (5, 10)]
    assert list(windows(4, 10)) == [(0, 4)]
    assert list(windows(0, 3)) == []


@given(length=st.integers(0, 300), k=st.integers(1, 60))
def test_windows_tile_the_range_in_order(length, k):
    spans = list(windows(length, k))
    assert [a for a, _ in spans] == list(range(0, length, k))
    covered = [t for a, b in spans for t in range(a, b)]
    assert covered == list(range(length))  # every step once, in order
    assert all(b - a == k for a, b in spans[:-1])
    assert all(0 < b - a <= k for a, b in spans)


@pytest.mark.parametrize("k", [0, -3])
def test_windows_need_a_positive_length(k):
    with pytest.raises(ValueError, match="window length k must be positive"):
        list(windows(10, k))


def test_train_bptt_refuses_a_window_of_zero():
    """k = 0 is no window (it once ran full BPTT); None is the whole sequence."""
    model = nn.RNN(2, 3)
    with pytest.raises(ValueError, match="window length k must be positive, got 0"):
        train_bptt(model, np.zeros((6, 1, 2)), np.zeros((6, 1, 3)), lambda o, y: (o * 0).sum(),
                   optim.SGD(model.parameters(), lr=0.1), k=0)


# ---------------------------------------------------------------- detach_state
def made_by_an_op(device):
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True, device=device)
    return x, x * 2.0


def test_detach_state_cuts_a_tensor_from_its_graph(device):
    x, h = made_by_an_op(device)
    d = detach_state(h)
    assert isinstance(d, Tensor) and d is not h
    assert d.is_leaf and not d.requires_grad
    np.testing.assert_array_equal(host(d), host(h))
    (detach_state(h) * x).sum().backward()  # only the direct path to x counts
    np.testing.assert_array_equal(host(x.grad), host(h))


def test_detach_state_keeps_tuples_lists_and_nesting(device):
    x, h = made_by_an_op(device)
    _, c = made_by_an_op(device)
    state = (h, [c, (h, None)])
    d = detach_state(state)
    assert type(d) is tuple and type(d[1]) is list and type(d[1][1]) is tuple
    leaves = [d[0], d[1][0], d[1][1][0]]
    assert all(isinstance(t, Tensor) and t.is_leaf and not t.requires_grad for t in leaves)
    assert d[1][1][1] is None
    np.testing.assert_array_equal(host(d[1][0]), host(c))


def test_detach_state_of_none_is_none():
    assert detach_state(None) is None


def test_detach_state_rejects_other_types():
    with pytest.raises(TypeError, match="expected a Tensor or a tuple of Tensors, got ndarray"):
        detach_state(np.zeros(3))


# ---------------------------------------------------------------- train_bptt: full BPTT
@pytest.mark.parametrize("k", [None, 12, 50], ids=["none", "T", "more-than-T"])
def test_one_window_is_one_full_bptt_step(device, k):
    model, twin, x, y = problem(device)
    lr = 0.1
    result = train_bptt(model, Tensor(x, device=device), Tensor(y, device=device), F.mse_loss,
                        optim.SGD(model.parameters(), lr=lr), k=k)
    output, (h, c) = twin(Tensor(x, device=device))
    loss = F.mse_loss(output, Tensor(y, device=device))
    loss.backward()
    expected = {name: host(p.data) - lr * host(p.grad.data) for name, p in twin.named_parameters()}
    assert result.losses == [pytest.approx(loss.item(), rel=1e-13)]
    assert result.grad_norms == []
    assert_same_arrays(params_of(model), expected)
    np.testing.assert_allclose(host(result.state[0]), host(h), rtol=1e-13)
    np.testing.assert_allclose(host(result.state[1]), host(c), rtol=1e-13)
    assert all(s.is_leaf and not s.requires_grad for s in result.state)


# ---------------------------------------------------------------- train_bptt: truncation
def test_a_window_sends_no_gradient_to_inputs_before_it(device):
    """Only the last window has a loss (the other targets are zero weights); with truncation the
    gradient reaches the inputs of that window only, with full BPTT it reaches back further."""
    T, k = 12, 4
    model, twin, x, _ = problem(device, T=T)
    weights = np.zeros((T, 3, 5))
    weights[-k:] = np.random.default_rng(1).normal(size=(k, 3, 5))

    def weighted_sum(output, w):
        return (output * w).sum()

    grads = {}
    for name, window, m in (("truncated", k, model), ("full", None, twin)):
        xt = Tensor(x, requires_grad=True, device=device)
        train_bptt(m, xt, Tensor(weights, device=device), weighted_sum, optim.SGD(m.parameters(), lr=0.0), k=window)
        grads[name] = host(xt.grad.data)
    assert np.all(grads["truncated"][:T - k] == 0.0)
    assert np.abs(grads["truncated"][T - k:]).min() > 0
    assert np.abs(grads["full"][:T - k]).max() > 1e-6  # not vacuous: the untruncated gradient is there
    np.testing.assert_allclose(grads["truncated"][T - k:], grads["full"][T - k:], rtol=1e-12)


@pytest.mark.parametrize("k", [4, 5], ids=["even", "ragged"])
def test_each_window_is_trained_alone_from_the_carried_state(device, k):
    """train_bptt equals truncated BPTT by hand: same losses, same gradients w.r.t. every input
    (each window's, from its own window only), same last-window parameter gradients, same updates."""
    model, twin, x, y = problem(device)
    lr = 0.05
    xt = Tensor(x, requires_grad=True, device=device)
    result = train_bptt(model, xt, Tensor(y, device=device), F.mse_loss, optim.SGD(model.parameters(), lr=lr), k=k)
    losses, x_grads, _, state, last_grads = by_hand(twin, x, y, k, lr, device)
    assert len(result.losses) == len(losses) == -(-12 // k)
    np.testing.assert_allclose(result.losses, losses, rtol=1e-12)
    np.testing.assert_allclose(host(xt.grad.data), x_grads, rtol=1e-12, atol=1e-15)
    assert_same_arrays(grads_of(model), last_grads)
    assert_same_arrays(params_of(model), params_of(twin))
    for got, want in zip(result.state, state, strict=True):
        np.testing.assert_allclose(host(got), host(want), rtol=1e-12)


class StraightThrough(nn.Module):
    """h_t = h_{t-1} + (u_t - stop_gradient(u_t)) with u_t = x_t W; output_t = h_t * u_t.

    The state's value never changes, yet its graph reaches back to every earlier input with
    dh_t/dW = sum_{s <= t} x_s. So earlier inputs can reach a window's gradient only through
    that graph, which truncation cuts: a clean probe of the cut."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.w = nn.Parameter(np.random.default_rng(4).normal(size=(input_size, hidden_size)))

    def forward(self, x, h):
        outputs = []
        for t in range(x.shape[0]):
            u = x[t] @ self.w
            h = h + (u - u.detach())  # exactly h in value
            outputs.append(h * u)
        return tr.stack(outputs), h


@pytest.mark.parametrize("k", [4, None], ids=["truncated", "full"])
def test_perturbing_an_earlier_input_leaves_the_window_gradient_unchanged(device, k):
    """Only the last window has a loss. Perturbing the inputs before it leaves that window's
    parameter gradient bit-identical under truncation, and changes it under full BPTT."""
    T, window = 12, 4
    tr.set_default_dtype(np.float64)
    rng = np.random.default_rng(5)
    x, h0 = rng.normal(size=(T, 3, 2)), Tensor(rng.normal(size=(3, 5)), device=device)
    weights = np.zeros((T, 3, 5))
    weights[-window:] = rng.normal(size=(window, 3, 5))
    perturbed = x.copy()
    perturbed[:T - window] += rng.normal(size=(T - window, 3, 2))

    def weighted_sum(output, w):
        return (output * w).sum()

    grads = []
    for inputs in (x, perturbed):
        model = StraightThrough(2, 5).to(device)
        train_bptt(model, Tensor(inputs, device=device), Tensor(weights, device=device), weighted_sum,
                   optim.SGD(model.parameters(), lr=0.0), k=k, state=h0)
        grads.append(host(model.w.grad.data))
    if k is None:
        assert not np.allclose(grads[0], grads[1], rtol=1e-6)
    else:
        np.testing.assert_array_equal(grads[0], grads[1])


@pytest.mark.parametrize("k", [1, 5, 12])
def test_the_carried_state_is_the_true_forward_state(device, k):
    """With lr = 0, the state after the last window equals one forward over the whole sequence."""
    model, twin, x, y = problem(device)
    rng = np.random.default_rng(3)
    h0 = Tensor(rng.normal(size=(1, 3, 5)), device=device)
    c0 = Tensor(rng.normal(size=(1, 3, 5)), device=device)
    result = train_bptt(model, Tensor(x, device=device), Tensor(y, device=device), F.mse_loss,
                        optim.SGD(model.parameters(), lr=0.0), k=k, state=(h0, c0))
    with tr.no_grad():
        _, (h, c) = twin(Tensor(x, device=device), (h0, c0))
    np.testing.assert_allclose(host(result.state[0]), host(h), rtol=1e-12)
    np.testing.assert_allclose(host(result.state[1]), host(c), rtol=1e-12)
    with tr.no_grad():
        _, (h_zero, _) = twin(Tensor(x, device=device))
    assert not np.allclose(host(h), host(h_zero))  # the given initial state mattered


def test_a_given_initial_state_is_cut_from_its_graph_too(device):
    """A state that comes out of earlier computation (an encoder, a previous batch) is detached
    before the first window: no gradient flows into what made it."""
    model, _, x, y = problem(device)
    source = Tensor(np.random.default_rng(6).normal(size=(1, 3, 5)), requires_grad=True, device=device)
    state = (source * 2.0, source * 0.5)
    train_bptt(model, Tensor(x, device=device), Tensor(y, device=device), F.mse_loss,
               optim.SGD(model.parameters(), lr=0.1), k=5, state=state)
    assert source.grad is None
    assert all(p.grad is not None for p in model.parameters())


def test_time_axis_one_equals_time_first(device):
    model, twin, x, y = problem(device, batch_first=True)
    results = [train_bptt(model, Tensor(x.transpose(1, 0, 2), device=device),
                          Tensor(y.transpose(1, 0, 2), device=device), F.mse_loss,
                          optim.SGD(model.parameters(), lr=0.1), k=5, time_axis=1),
               train_bptt(twin, Tensor(x, device=device), Tensor(y, device=device), F.mse_loss,
                          optim.SGD(twin.parameters(), lr=0.1), k=5)]
    np.testing.assert_allclose(results[0].losses, results[1].losses, rtol=1e-12)
    assert_same_arrays(params_of(model), params_of(twin))


def test_numpy_inputs_and_targets_are_accepted():
    """The docstring promises arrays as well as Tensors."""
    model, twin, x, y = problem()
    a = train_bptt(model, x, y, F.mse_loss, optim.SGD(model.parameters(), lr=0.1), k=5)
    b = train_bptt(twin, Tensor(x), Tensor(y), F.mse_loss, optim.SGD(twin.parameters(), lr=0.1), k=5)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-12)
    assert_same_arrays(params_of(model), params_of(twin))


# ---------------------------------------------------------------- clipping
def test_max_norm_clips_each_window_and_records_its_norm(device):
    model, twin, x, y = problem(device)
    lr, k, max_norm = 0.1, 4, 1e-2
    result = train_bptt(model, Tensor(x, device=device), Tensor(y, device=device), F.mse_loss,
                        optim.SGD(model.parameters(), lr=lr), k=k, max_norm=max_norm)
    losses, _, norms, _, last_grads = by_hand(twin, x, y, k, lr, device, max_norm=max_norm)
    assert len(result.grad_norms) == len(result.losses) == 3
    np.testing.assert_allclose(result.grad_norms, norms, rtol=1e-12)
    assert min(norms) > max_norm  # every window was clipped
    np.testing.assert_allclose(result.losses, losses, rtol=1e-12)
    assert_same_arrays(grads_of(model), last_grads)
    clipped = np.linalg.norm(np.concatenate([g.ravel() for g in grads_of(model).values()]))
    assert clipped == pytest.approx(max_norm * norms[-1] / (norms[-1] + 1e-6), rel=1e-9)  # PyTorch's 1e-6
    assert_same_arrays(params_of(model), params_of(twin))


# ---------------------------------------------------------------- memory
def peak_memory(T, k, B=4, I=4, H=16):
    """Peak bytes traced while train_bptt runs an nn.LSTM over T steps (inputs made beforehand)."""
    tr.set_default_dtype(np.float64)
    tr.manual_seed(0)
    model = nn.LSTM(I, H)
    opt = optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    x, y = Tensor(rng.normal(size=(T, B, I))), Tensor(rng.normal(size=(T, B, H)))
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = train_bptt(model, x, y, F.mse_loss, opt, k=k)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert len(result.losses) == -(-T // (k or T))
    return peak


def test_truncated_memory_does_not_grow_with_the_sequence_length():
    """numpy reports its buffers to tracemalloc: the graph of one window is the peak, whatever T."""
    short, long = peak_memory(50, 25), peak_memory(600, 25)  # 2 windows vs 24
    full = peak_memory(600, None)
    assert long < 1.5 * short, (short, long)
    assert full > 8 * long, (long, full)
