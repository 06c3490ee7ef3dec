"""Live comparison with an installed PyTorch: weights copied both ways, then outputs, final
states and every gradient compared (float64 to 1e-6 relative, float32 to 1e-4).

Skipped as a whole without PyTorch; test_rnn_golden.py holds recorded PyTorch numbers for that case.
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from test_rnn import KINDS, make_cell, make_layer, pack_hx, state_count, unpack_final

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

I, H, T, B = 3, 4, 5, 2
DTYPES = {"float64": (np.float64, torch.float64, dict(rtol=1e-6, atol=1e-9)),
          "float32": (np.float32, torch.float32, dict(rtol=1e-4, atol=1e-5))}
DIRECTIONS = ["torch_to_ours", "ours_to_torch"]
# the composite form only in float64: test_rnn.py holds it equal to the fused form to 1e-10
VARIANTS = pytest.mark.parametrize("dtype,fused", [("float64", True), ("float64", False), ("float32", True)],
                                   ids=["float64-fused", "float64-composite", "float32-fused"])
LAYER_VARIANTS = pytest.mark.parametrize(
    "dtype,fused", [("float64", True), ("float64", False), ("float32", True), ("float64", "sequence"),
                    ("float32", "sequence")],
    ids=["float64-fused", "float64-composite", "float32-fused", "float64-sequence", "float32-sequence"])


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """These matrices are tiny: PyTorch's thread pool costs more than it saves."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_module(kind, layer: bool, dtype, **options):
    if kind.startswith("rnn"):
        cls, options = (torch.nn.RNN if layer else torch.nn.RNNCell), dict(options, nonlinearity=kind[4:])
    else:
        cls = {"lstm": (torch.nn.LSTMCell, torch.nn.LSTM), "gru": (torch.nn.GRUCell, torch.nn.GRU)}[kind][layer]
    return cls(I, H, dtype=dtype, **options)


def copy_weights(ours, theirs, direction):
    """Load one module's state_dict into the other (torch's with strict=True), after checking that
    both have the same keys in the same order with the same shapes."""
    mine, its = ours.state_dict(), theirs.state_dict()
    assert [(k, v.shape) for k, v in mine.items()] == [(k, tuple(v.shape)) for k, v in its.items()]
    if direction == "torch_to_ours":
        ours.load_state_dict({k: v.detach().numpy() for k, v in its.items()})
    else:
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in mine.items()}, strict=True)


def random_inputs(x_shape, state_shape, n_states, dtype):
    rng = np.random.default_rng(17)
    x = rng.standard_normal(x_shape).astype(dtype)
    return x, [(0.5 * rng.standard_normal(state_shape)).astype(dtype) for _ in range(n_states)]


def loss_weights(results):
    rng = np.random.default_rng(29)
    return [rng.standard_normal(tuple(r.shape)) for r in results]


def ours_run(module, forward, x, states, device):
    """Forward with forward(module, x, states) -> tuple of results, backward of the weighted sum;
    returns ({name: array}) of results and gradients."""
    leaves = [tr.Tensor(a, requires_grad=True, device=device) for a in [x] + states]
    results = forward(module, leaves[0], leaves[1:])
    loss = sum((r * w.astype(r.dtype)).sum() for r, w in zip(results, loss_weights(results)))
    loss.backward()
    arrays = {f"result{i}": r.numpy() for i, r in enumerate(results)}
    arrays.update({f"grad/input{i}": t.grad.numpy() for i, t in enumerate(leaves)})
    arrays.update({f"grad/{n}": p.grad.numpy() for n, p in module.named_parameters()})
    return arrays


def torch_run(module, forward, x, states):
    leaves = [torch.tensor(a, requires_grad=True) for a in [x] + states]
    results = forward(module, leaves[0], leaves[1:])
    loss = sum((r * torch.from_numpy(w).to(r.dtype)).sum() for r, w in zip(results, loss_weights(results)))
    loss.backward()
    arrays = {f"result{i}": r.detach().numpy() for i, r in enumerate(results)}
    arrays.update({f"grad/input{i}": t.grad.numpy() for i, t in enumerate(leaves)})
    arrays.update({f"grad/{n}": p.grad.numpy() for n, p in module.named_parameters()})
    return arrays


def assert_close(obtained, expected, tolerance):
    assert obtained.keys() == expected.keys()
    for key in expected:
        assert obtained[key].dtype == expected[key].dtype, key
        np.testing.assert_allclose(obtained[key], expected[key], err_msg=key, **tolerance)


def layer_forward(kind):
    def forward(module, x, states):
        output, final = module(x, pack_hx(kind, states))
        return (output,) + unpack_final(kind, final)
    return forward


def cell_forward(kind):
    def forward(module, xs, states):
        state, hs = pack_hx(kind, states), []
        for t in range(xs.shape[0]):
            state = module(xs[t], state)
            hs.append(state[0] if kind == "lstm" else state)
        return tuple(hs) + ((state[1],) if kind == "lstm" else ())
    return forward


#           layers, bidirectional, batch_first, bias, unbatched, with_hx
LAYER_CONFIGS = [(1, False, False, True, False, False),
                 (1, True, True, True, False, True),
                 (2, False, True, False, False, True),
                 (2, True, False, True, True, True),
                 (3, True, True, False, False, False),
                 (3, False, False, True, True, False)]


def config_id(row):
    layers, bi, bf, bias, unbatched, hx = row
    return f"L{layers}" + "-bi" * bi + "-bf" * bf + "-nobias" * (not bias) + "-unbatched" * unbatched + "-hx" * hx


@LAYER_VARIANTS
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=config_id)
@pytest.mark.parametrize("kind", KINDS)
def test_layer_matches_torch(kind, config, dtype, direction, fused, device):
    layers, bidirectional, batch_first, bias, unbatched, with_hx = config
    np_dtype, torch_dtype, tolerance = DTYPES[dtype]
    options = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    torch.manual_seed(0)
    theirs = torch_module(kind, True, torch_dtype, **options)
    ours = make_layer(kind, I, H, fused=fused, dtype=np_dtype, device=device, **options)
    copy_weights(ours, theirs, direction)

    LD = layers * (2 if bidirectional else 1)
    x_shape = (T, I) if unbatched else (B, T, I) if batch_first else (T, B, I)
    state_shape = (LD, H) if unbatched else (LD, B, H)
    n_states = state_count(kind) if with_hx else 0
    x, states = random_inputs(x_shape, state_shape, n_states, np_dtype)
    forward = layer_forward(kind)
    assert_close(ours_run(ours, forward, x, states, device), torch_run(theirs, forward, x, states), tolerance)


#          bias, unbatched, with_hx
CELL_CONFIGS = [(True, False, False), (False, False, True), (True, True, True), (False, True, False)]


@VARIANTS
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("bias,unbatched,with_hx", CELL_CONFIGS,
                         ids=["bias", "nobias-hx", "bias-unbatched-hx", "nobias-unbatched"])
@pytest.mark.parametrize("kind", KINDS)
def test_cell_matches_torch(kind, bias, unbatched, with_hx, dtype, direction, fused, device):
    np_dtype, torch_dtype, tolerance = DTYPES[dtype]
    torch.manual_seed(1)
    theirs = torch_module(kind, False, torch_dtype, bias=bias)
    ours = make_cell(kind, I, H, bias=bias, fused=fused, dtype=np_dtype, device=device)
    copy_weights(ours, theirs, direction)

    batch = () if unbatched else (B,)
    n_states = state_count(kind) if with_hx else 0
    x, states = random_inputs((T,) + batch + (I,), batch + (H,), n_states, np_dtype)
    forward = cell_forward(kind)
    assert_close(ours_run(ours, forward, x, states, device), torch_run(theirs, forward, x, states), tolerance)
