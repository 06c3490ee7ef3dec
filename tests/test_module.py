"""Module API (nn/module.py), the feed-forward layers (nn/layers.py) and the initialisers (nn/init.py)."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.nn import init


class Tagger(nn.Module):
    """LSTM -> Linear -> a list of Linear heads, plus a parameter of its own assigned last."""

    def __init__(self, device=None, dtype=None):
        super().__init__()
        self.rnn = nn.LSTM(3, 4, device=device, dtype=dtype)
        self.head = nn.Linear(4, 2, device=device, dtype=dtype)
        self.extras = [nn.Linear(2, 2, device=device, dtype=dtype),
                       nn.Linear(2, 1, bias=False, device=device, dtype=dtype)]
        self.scale = nn.Parameter(tr.ones(1, device=device, dtype=dtype))

    def forward(self, x):
        y = self.head(self.rnn(x)[0])
        for layer in self.extras:
            y = layer(y)
        return y * self.scale


TAGGER_NAMES = ["scale",  # the module's own parameters first, then each child's (as PyTorch)
                "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
                "head.weight", "head.bias", "extras.0.weight", "extras.0.bias", "extras.1.weight"]


def backward_through(model, device):
    model(tr.randn(5, 2, 3, device=device, dtype=model.head.weight.dtype)).sum().backward()


def message_of(excinfo) -> str:
    return str(excinfo.value.args[0])


# ---------------------------------------------------------------- Module
def test_named_parameters_order_and_names(device):
    model = Tagger(device)
    assert [name for name, _ in model.named_parameters()] == TAGGER_NAMES
    assert [p.shape for _, p in model.named_parameters()] == [
        (1,), (16, 3), (16, 4), (16,), (16,), (2, 4), (2,), (2, 2), (2,), (1, 2)]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for _, p in model.named_parameters())
    assert [id(p) for p in model.parameters()] == [id(p) for _, p in model.named_parameters()]
    assert list(model.state_dict()) == TAGGER_NAMES


def test_module_list_and_shared_parameters(device):
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2, device=device) for _ in range(2)])
            self.tied = nn.Linear(2, 2, device=device)
            self.tied.weight = self.blocks[0].weight  # one Parameter under two names: listed once

    model = Stack()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "tied.bias"]
    every = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    assert every == names[:4] + ["tied.weight", "tied.bias"]
    # the state_dict keeps the tied weight under both names, as PyTorch's, so either loads into the other
    state = model.state_dict()
    assert list(state) == every
    np.testing.assert_array_equal(state["tied.weight"], state["blocks.0.weight"])
    state["tied.weight"] = state["blocks.0.weight"] = np.full((2, 2), 0.5)
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.blocks[0].weight.numpy(), np.full((2, 2), 0.5))
    assert model.tied.weight is model.blocks[0].weight


def test_zero_grad(device):
    model = Tagger(device)
    backward_through(model, device)
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_train_eval_propagate():
    model = Tagger()
    modules = [model, model.rnn, model.head, *model.extras]
    assert all(m.training for m in modules)
    assert model.eval() is model
    assert not any(m.training for m in modules)
    assert model.train() is model
    assert all(m.training for m in modules)
    model.head.eval()  # a submodule alone
    assert model.training and not model.head.training and model.rnn.training


def test_to_dtype_casts_in_place(device):
    model = Tagger(device)
    backward_through(model, device)
    before = [(p, p.numpy().copy()) for p in model.parameters()]
    assert model.to(dtype=np.float64) is model
    after = model.parameters()
    assert [id(p) for p, _ in before] == [id(p) for p in after]  # same objects: optimizers keep working
    for p, values in before:
        assert p.dtype == np.float64 and p.grad.dtype == np.float64 and p.device == model.head.weight.device
        np.testing.assert_array_equal(p.numpy(), values.astype(np.float64))
    backward_through(model, device)  # the model runs in float64 now
    assert model.head.weight.grad.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float64, "float64"], ids=["np.float64", "name"])
def test_to_takes_a_dtype_first_as_pytorch(device, dtype):
    model = Tagger(device)
    assert model.to(dtype) is model
    assert all(p.dtype == np.float64 for p in model.parameters())
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        model.to("gpu")


def test_state_dict_returns_copies(device):
    model = Tagger(device)
    state = model.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    original = model.head.weight.numpy().copy()
    state["head.weight"][...] = 42.0
    np.testing.assert_array_equal(model.head.weight.numpy(), original)
    assert not np.shares_memory(model.state_dict()["head.bias"], state["head.bias"])


def test_load_state_dict_round_trip(device):
    tr.manual_seed(1)
    source = Tagger(device)
    tr.manual_seed(2)
    target = Tagger(device)
    x = tr.randn(5, 2, 3, device=device)
    assert not np.allclose(source(x).numpy(), target(x).numpy())
    target.load_state_dict(source.state_dict())
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(source(x).numpy(), target(x).numpy())


def test_load_state_dict_casts_to_parameter_dtype(device):
    model = nn.Linear(2, 3, device=device)  # float32
    weight = np.arange(6, dtype=np.float64).reshape(3, 2) / 7
    model.load_state_dict({"weight": weight, "bias": np.zeros(3)})
    assert model.weight.dtype == np.float32 and model.weight.device == tr.Tensor(0.0, device=device).device
    np.testing.assert_array_equal(model.weight.numpy(), weight.astype(np.float32))


def test_load_state_dict_non_strict_ignores_keys_but_not_shapes(device):
    model = nn.Linear(2, 3, device=device)
    bias = model.bias.numpy().copy()
    skipped = model.load_state_dict({"weight": np.ones((3, 2)), "extra": np.zeros(1)}, strict=False)
    assert skipped.missing_keys == ["bias"] and skipped.unexpected_keys == ["extra"]  # as PyTorch's NamedTuple
    assert model.load_state_dict(model.state_dict()) == ([], [])
    np.testing.assert_array_equal(model.weight.numpy(), np.ones((3, 2)))
    np.testing.assert_array_equal(model.bias.numpy(), bias)
    with pytest.raises(ValueError) as excinfo:
        model.load_state_dict({"weight": np.ones((2, 3))}, strict=False)
    assert "weight: expected (3, 2), got (2, 3)" in message_of(excinfo)


# ---------------------------------------------------------------- Linear
def test_linear_forward(device):
    layer = nn.Linear(3, 2, device=device)
    x = np.random.default_rng(0).standard_normal((4, 5, 3)).astype(np.float32)
    expected = x @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(tr.Tensor(x, device=device)).numpy(), expected, rtol=1e-6, atol=1e-6)
    no_bias = nn.Linear(3, 2, bias=False, device=device)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    np.testing.assert_allclose(no_bias(tr.Tensor(x, device=device)).numpy(), x @ no_bias.weight.numpy().T,
                               rtol=1e-6, atol=1e-6)


def test_linear_default_init_bound():
    layer = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    for p in (layer.weight, layer.bias):
        assert np.abs(p.numpy()).max() <= bound and np.abs(p.numpy()).max() > 0.95 * bound


def test_linear_gradcheck(device):
    layer = nn.Linear(3, 2, dtype=np.float64, device=device)
    x = tr.randn(4, 3, dtype=np.float64, device=device, requires_grad=True)
    assert tr.gradcheck(lambda x, *params: layer(x), [x, *layer.parameters()])


def test_linear_rejects_wrong_feature_size(device):
    layer = nn.Linear(3, 2, device=device)
    with pytest.raises(ValueError) as excinfo:
        layer(tr.zeros(4, 5, device=device))
    assert "size 3" in message_of(excinfo) and "(4, 5)" in message_of(excinfo)


# ---------------------------------------------------------------- Embedding
def test_embedding_forward_picks_rows(device):
    table = nn.Embedding(10, 4, device=device)
    indices = np.array([[1, 9, 1], [0, 3, 3]])
    np.testing.assert_array_equal(table(indices).numpy(), table.weight.numpy()[indices])
    assert table(np.array(5)).shape == (4,)


def test_embedding_backward_accumulates_repeats(device):
    table = nn.Embedding(6, 3, device=device)
    indices = np.array([2, 4, 2, 2, 0])
    upstream = np.arange(15, dtype=np.float32).reshape(5, 3)
    (table(indices) * upstream).sum().backward()
    expected = np.zeros((6, 3), np.float32)
    for row, g in zip(indices, upstream):
        expected[row] += g
    np.testing.assert_array_equal(table.weight.grad.numpy(), expected)


@pytest.mark.parametrize("padding_idx", [0, -1], ids=["first", "last"])
def test_embedding_padding_row_starts_at_zero_and_gets_no_gradient(device, padding_idx):
    table = nn.Embedding(6, 3, padding_idx=padding_idx, device=device)
    pad = padding_idx % 6
    np.testing.assert_array_equal(table.weight.numpy()[pad], np.zeros(3))
    indices = np.array([2, pad, 2, pad, 0 if pad else 5])
    upstream = np.arange(15, dtype=np.float32).reshape(5, 3)
    out = table(indices)
    np.testing.assert_array_equal(out.numpy(), table.weight.numpy()[indices])
    (out * upstream).sum().backward()
    expected = np.zeros((6, 3), np.float32)
    for row, g in zip(indices, upstream):
        if row != pad:
            expected[row] += g
    np.testing.assert_array_equal(table.weight.grad.numpy(), expected)
    with pytest.raises(ValueError, match=r"padding_idx must lie in \[-6, 6\), got 6"):
        nn.Embedding(6, 3, padding_idx=6)


@pytest.mark.parametrize("indices,low,high", [([0, 6], 0, 6), ([-1, 2], -1, 2)], ids=["too_large", "negative"])
def test_embedding_rejects_out_of_range(indices, low, high, device):
    table = nn.Embedding(6, 3, device=device)
    with pytest.raises(IndexError) as excinfo:
        table(np.array(indices))
    assert "[0, 6)" in message_of(excinfo) and f"from {low} to {high}" in message_of(excinfo)


# ---------------------------------------------------------------- Dropout
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_train_zeroes_and_scales(p, device):
    layer = nn.Dropout(p)
    # (not seed 0: manual_seed(0) is the mask generator's seed, and the same stream would correlate them)
    x = tr.Tensor(np.random.default_rng(99).uniform(1, 2, (400, 500)), dtype=np.float64,
                  device=device, requires_grad=True)
    y = layer(x)
    values, original = y.numpy(), x.numpy()
    dropped = values == 0
    assert abs(dropped.mean() - p) < 0.01
    np.testing.assert_allclose(values[~dropped], original[~dropped] / (1 - p), rtol=1e-12)
    assert abs(values.mean() / original.mean() - 1) < 0.01
    y.sum().backward()  # the gradient is the same mask, scaled
    np.testing.assert_allclose(x.grad.numpy(), np.where(dropped, 0, 1 / (1 - p)), rtol=1e-12)


def test_dropout_eval_and_p0_are_identity(device):
    x = tr.randn(50, 20, device=device)
    np.testing.assert_array_equal(nn.Dropout(0.5).eval()(x).numpy(), x.numpy())
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())


def test_dropout_with_p1_gives_zeros_and_zero_gradients(device):
    x = tr.randn(4, 5, dtype=np.float64, device=device, requires_grad=True)
    y = nn.Dropout(1.0)(x)
    np.testing.assert_array_equal(y.numpy(), np.zeros((4, 5)))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((4, 5)))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError) as excinfo:
        nn.Dropout(p)
    assert "[0, 1]" in message_of(excinfo) and str(p) in message_of(excinfo)


# ---------------------------------------------------------------- init
def test_xavier_uniform_bound(device):
    t = init.xavier_uniform_(tr.zeros(300, 200, device=device), gain=2.0)
    bound = 2.0 * np.sqrt(6 / 500)
    values = t.numpy()
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.99 * bound
    assert abs(values.var() / (bound ** 2 / 3) - 1) < 0.02  # the variance of U(-a, a) is a^2 / 3
    with pytest.raises(ValueError):
        init.xavier_uniform_(tr.zeros(5))


@pytest.mark.parametrize("shape", [(7, 3), (3, 7), (5, 5)], ids=["tall", "wide", "square"])
def test_orthogonal(shape, device):
    q = init.orthogonal_(tr.zeros(shape, dtype=np.float64, device=device), gain=1.5).numpy()
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T  # orthonormal columns (tall) or rows (wide)
    np.testing.assert_allclose(gram, 1.5 ** 2 * np.eye(min(shape)), atol=1e-12)


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.3])
def test_scale_spectral_radius(radius, device):
    t = init.scale_spectral_radius_(tr.randn(20, 20, dtype=np.float64, device=device), radius)
    assert np.max(np.abs(np.linalg.eigvals(t.numpy()))) == pytest.approx(radius, rel=1e-10)
    with pytest.raises(ValueError):
        init.scale_spectral_radius_(tr.zeros(3, 3, device=device), 0.9)


def test_forget_gate_bias(device):
    H = 4
    lstm = nn.LSTM(3, H, num_layers=2, bidirectional=True, device=device)
    before = lstm.state_dict()
    init.forget_gate_bias_(lstm, 2.5)
    after = lstm.state_dict()
    biases = [k for k in after if k.startswith("bias")]
    assert len(biases) == 8  # ih and hh for 2 layers x 2 directions
    for key, values in after.items():
        expected = before[key].copy()
        if key.startswith("bias_ih"):
            expected[H:2 * H] = 2.5
        elif key.startswith("bias_hh"):
            expected[H:2 * H] = 0.0
        np.testing.assert_array_equal(values, expected, err_msg=key)
    with pytest.raises(ValueError):
        init.forget_gate_bias_(nn.LSTM(3, H, bias=False))


def test_forget_gate_bias_touches_only_lstms(device):
    """A GRU's rows H..2H are its update gate: a GRU or RNN is refused, and in a model holding
    an LSTM and a GRU only the LSTM changes."""
    for other in (nn.GRU(3, 4, device=device), nn.RNN(3, 4, device=device), nn.GRUCell(3, 4, device=device)):
        before = other.state_dict()
        with pytest.raises(ValueError, match="has no nn.LSTM or nn.LSTMCell"):
            init.forget_gate_bias_(other, 1.0)
        assert all(np.array_equal(other.state_dict()[k], v) for k, v in before.items())

    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru, self.cell = nn.GRU(3, 4, device=device), nn.LSTMCell(3, 4, device=device)
    model = Both()
    gru_before = model.gru.state_dict()
    init.forget_gate_bias_(model, 1.5)
    np.testing.assert_array_equal(model.cell.bias_ih.numpy()[4:8], np.full(4, 1.5))
    assert all(np.array_equal(model.gru.state_dict()[k], v) for k, v in gru_before.items())


@pytest.mark.parametrize("shape", [(300, 200), (60, 40, 5)], ids=["2d", "3d"])
def test_fans_gains_and_the_xavier_and_kaiming_scales_are_pytorchs(shape):
    """fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (a 3-D tensor's
    fans once left the receptive field out of fan_out); the scales of torch.nn.init's docs."""
    receptive = int(np.prod(shape[2:]))
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    scales = {"xavier_uniform_": (lambda t: init.xavier_uniform_(t, gain=2.0), 2.0 * np.sqrt(6 / (fan_in + fan_out))),
              "kaiming_uniform_": (init.kaiming_uniform_, np.sqrt(3) * np.sqrt(2) / np.sqrt(fan_in)),
              "kaiming_uniform_fan_out": (lambda t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="tanh"),
                                          np.sqrt(3) * 5 / 3 / np.sqrt(fan_out))}
    for name, (fill, bound) in scales.items():
        values = fill(tr.zeros(shape, dtype=np.float64)).numpy()
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.99 * bound, name
    for fill, std in ((init.xavier_normal_, np.sqrt(2 / (fan_in + fan_out))),
                      (lambda t: init.kaiming_normal_(t, a=0.2), np.sqrt(2 / 1.04) / np.sqrt(fan_in))):
        assert fill(tr.zeros(shape, dtype=np.float64)).numpy().std() == pytest.approx(std, rel=0.02)
    assert [init.calculate_gain(n) for n in ("linear", "sigmoid", "tanh", "relu", "selu")] == [1, 1, 5 / 3, np.sqrt(2), 0.75]
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(np.sqrt(2 / 1.04), rel=1e-15)
    with pytest.raises(ValueError, match="unsupported nonlinearity 'softplus'"):
        init.calculate_gain("softplus")
