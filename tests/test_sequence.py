"""The whole-sequence form (fused="sequence", tinygrad_rnn/sequence.py) beyond its equality with
the other forms and with PyTorch (test_rnn.py, test_rnn_golden.py, test_rnn_torch.py): its graph,
a retained graph, dropout between layers, float32, and what it refuses."""
import collections
import gc
import tracemalloc

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import kernels, nn
from tinygrad_rnn.trace import trace_gradients

from test_rnn import KINDS, assert_same, leaf, make_layer, run_layer, unpack_final, walk, weighted_sum


@pytest.mark.parametrize("kind", KINDS)
def test_one_node_per_layer_and_direction(kind, device):
    """The graph has L * D sequence nodes and the same number of nodes whatever T is."""
    sizes = []
    for T in (3, 40):
        model = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, fused="sequence", device=device)
        output, final = model(tr.randn(T, 2, 3, device=device))
        nodes = walk([output, *unpack_final(kind, final)])
        ops = collections.Counter(node.op for node in nodes)
        assert sum(n for op, n in ops.items() if op.endswith("_sequence")) == 4, ops
        assert all(node.step is None for node in nodes)
        sizes.append(len(nodes))
    assert sizes[0] == sizes[1]


@pytest.mark.parametrize("kind", KINDS)
def test_backward_leaves_the_saved_buffers_intact(kind, device):
    """A retained graph gives the same gradients twice (so exactly double after two backwards),
    and backward writes nothing into what forward kept."""
    model = make_layer(kind, 3, 4, bidirectional=True, fused="sequence", dtype=np.float64, device=device)
    x = tr.Tensor(np.random.default_rng(0).standard_normal((6, 2, 3)), requires_grad=True, device=device)
    output, final = model(x)
    before = output.numpy().copy()
    loss = weighted_sum((output, *unpack_final(kind, final)))
    loss.backward(retain_graph=True)
    once = {name: p.grad.numpy().copy() for name, p in model.named_parameters()}
    loss.backward()
    np.testing.assert_array_equal(output.numpy(), before)
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad.numpy(), 2 * once[name], err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_between_layers_matches_the_per_step_form(kind, device):
    """The dropout masks are drawn in the same order, so with one seed both forms agree."""
    results = []
    for form in (True, "sequence"):
        tr.manual_seed(5)
        model = make_layer(kind, 3, 4, num_layers=3, dropout=0.5, fused=form, dtype=np.float64, device=device)
        x = tr.Tensor(np.random.default_rng(1).standard_normal((5, 2, 3)), requires_grad=True, device=device)
        results.append(run_layer(model, kind, x, []))
    assert_same(results[1], results[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_agrees_with_float64(kind, device):
    results = {}
    for dtype in (np.float64, np.float32):
        tr.manual_seed(2)
        model = make_layer(kind, 3, 8, num_layers=2, fused="sequence", dtype=np.float64, device=device)
        model = model.to(dtype=dtype)
        x = tr.Tensor(np.random.default_rng(3).standard_normal((12, 4, 3)), requires_grad=True, dtype=dtype,
                      device=device)
        results[dtype] = run_layer(model, kind, x, [])
    for key, expected in results[np.float64].items():
        obtained = results[np.float32][key]
        assert obtained.dtype == np.float32, key
        np.testing.assert_allclose(obtained, expected, rtol=2e-4, atol=2e-5, err_msg=key)


def test_fused_must_be_one_of_three_forms():
    with pytest.raises(ValueError, match=r"fused must be True .* or 'sequence'.*got 'seq'"):
        nn.LSTM(3, 4, fused="seq")


def test_trace_says_to_use_a_per_step_form():
    model = nn.GRU(3, 4, fused="sequence")
    with pytest.raises(ValueError, match=r"fused='sequence'.*fused=True"):
        trace_gradients(model, tr.randn(5, 2, 3), lambda output, state: output.sum())


def test_repr_names_the_form():
    assert "fused='sequence'" in repr(nn.RNN(3, 4, fused="sequence"))


def test_char_model_in_either_form_computes_the_same(device):
    """CharRNN passes `fused` to its core (the CLI's train uses the whole-sequence form)."""
    results = []
    for form in (True, "sequence"):
        tr.manual_seed(4)
        model = nn.CharRNN(11, 8, num_layers=2, cell="lstm", embedding_dim=5, fused=form, dtype=np.float64,
                           device=device)
        ids = np.random.default_rng(6).integers(0, 11, (7, 3))
        logits, _ = model(ids)
        weighted_sum([logits]).backward()
        results.append([logits.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for obtained, expected in zip(*results):
        np.testing.assert_allclose(obtained, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("steps_per_block", [1, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_backward_in_blocks_of_steps(kind, steps_per_block, monkeypatch, device):
    """Backward computes its step-independent factors a block of steps at a time (sized for the
    cache); with blocks of one step, or of three (which do not divide T = 7), nothing changes."""
    from tinygrad_rnn import sequence
    reference = make_layer(kind, 3, 4, bidirectional=True, fused=True, dtype=np.float64, device=device)
    model = make_layer(kind, 3, 4, bidirectional=True, fused="sequence", dtype=np.float64, device=device)
    model.load_state_dict(reference.state_dict())
    gates = {"lstm": 4, "gru": 3}.get(kind, 1)
    monkeypatch.setattr(sequence, "_BLOCK_BYTES", steps_per_block * 2 * gates * 4 * 8)  # B * G*H * 8 bytes a step
    assert len(sequence._blocks(7, False, 2 * gates * 4 * 8)) == (7 if steps_per_block == 1 else 3)
    results = []
    for m in (reference, model):
        x = tr.Tensor(np.random.default_rng(9).standard_normal((7, 2, 3)), requires_grad=True, device=device)
        results.append(run_layer(m, kind, x, []))
    assert_same(results[1], results[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_observing_the_gradients_first_changes_nothing(kind, device):
    """node_grads (used by viz) sweeps without releasing the graph, so the backward that follows
    gives what a plain backward gives; that one may reuse the saved gates for d_a."""
    from tinygrad_rnn.autograd import node_grads
    results = []
    for observe in (False, True):
        model = make_layer(kind, 3, 4, num_layers=2, fused="sequence", dtype=np.float64, device=device)
        model.load_state_dict({k: np.full(v.shape, 0.1) + 0.01 * np.arange(v.size).reshape(v.shape) % 0.3
                               for k, v in model.state_dict().items()})
        x = tr.Tensor(np.random.default_rng(2).standard_normal((6, 2, 3)), device=device)
        output, _ = model(x)
        loss = weighted_sum([output])
        if observe:
            node_grads(loss)
        loss.backward()
        results.append([p.grad.numpy() for p in model.parameters()])
    for observed, plain in zip(results[1], results[0]):
        np.testing.assert_array_equal(observed, plain)


# A freeing backward's peak, in output-sized arrays (T, B, H): what forward keeps (as a hand-written
# BPTT: the LSTM's gates (4), c and h, but not tanh(c), which backward takes again; the GRU's r, z,
# n, W_hn h + b_hn and h; the RNN's h), then dL/doutput and one more: the loss's product output * w
# (the graph keeps it until its node's turn), the LSTM's dL/dS or the RNN's d_pre (it keeps no
# gates to form it over); and the blocks' scratch (256 KiB: 0.3 here) with the weights' gradients.
PEAK_BOUND = {"lstm": 6 + 2.4, "gru": 5 + 2.4, "rnn_tanh": 1 + 2.6, "rnn_relu": 1 + 2.6}


@pytest.mark.parametrize("kind", KINDS)
def test_peak_memory_of_a_training_step(kind):
    """One training step's peak (tracemalloc, above what existed before it) stays within what a
    hand-written BPTT keeps plus the few output-sized arrays any backward needs: no (T, B, 4H)
    gradient of the gates (it is formed over the gates) and no scratch that grows with T."""
    T, B, I, H = 200, 16, 8, 32
    model = make_layer(kind, I, H, fused="sequence", dtype=np.float64)
    rng = np.random.default_rng(0)
    x, w = tr.Tensor(rng.standard_normal((T, B, I))), rng.standard_normal((T, B, H))

    def step():
        model.zero_grad()
        output, _ = model(x)
        (output * w).sum().backward()
    step()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    output_bytes = T * B * H * 8
    assert peak <= PEAK_BOUND[kind] * output_bytes, (kind, peak / output_bytes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_sigmoid_is_exact_in_relative_terms(dtype):
    """sigmoid(x) to a few ulps of its own size from x = -800 to 40, tiny gates included, and
    exactly 0 without a warning where it underflows (exp(-x) overflows there)."""
    x = np.linspace(-800, 40, 40_001).astype(dtype)
    reference = 1 / (1 + np.exp(-x.astype(np.longdouble)))  # 80-bit on x86-64 (float64 elsewhere)
    obtained = -x
    kernels.negated_sigmoid(np, obtained)  # the suite turns a RuntimeWarning into an error
    info = np.finfo(dtype)
    normal = reference >= info.tiny
    relative = np.abs(obtained[normal] - reference[normal]) / reference[normal]
    assert relative.max() <= 4 * info.eps, relative.max()
    assert np.all(np.abs(obtained[~normal] - reference[~normal]) <= info.tiny)
    assert obtained[0] == 0 and obtained[-1] == 1


@pytest.mark.parametrize("scale", [False, True], ids=["plain", "scaled"])
def test_recurrent_t_is_w_transposed_either_way(scale):
    """Under 32 steps W's transposed view (of W scaled, with a scale); from 32 on a C-contiguous
    copy, made in blocks of rows: the same values exactly."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4 * 70, 70)).astype(np.float32)  # 280 rows: blocks of 64 and a short one
    k = np.where(np.arange(4 * 70) < 140, 0.5, 1.0).astype(np.float32) if scale else None
    expected = (w if k is None else w * k[:, None]).T
    few, many = kernels.recurrent_t(w, 31, k), kernels.recurrent_t(w, 32, k)
    np.testing.assert_array_equal(few, expected)
    np.testing.assert_array_equal(many, expected)
    assert many.flags.c_contiguous and not few.flags.c_contiguous
    assert np.shares_memory(few, w) is (k is None)


@pytest.mark.parametrize("kind", KINDS)
def test_long_sequences_agree_across_forms(kind, device):
    """From 32 steps on the fast forms run their GEMMs over a W_hh^T of its own: still equal to
    the composite form, both directions, to 1e-10 in float64."""
    models = {form: make_layer(kind, 3, 4, bidirectional=True, fused=form, dtype=np.float64, device=device)
              for form in (False, True, "sequence")}
    for model in models.values():
        model.load_state_dict(models[False].state_dict())
    results = {form: run_layer(model, kind, leaf(np.random.default_rng(3), (33, 2, 3), device), [])
               for form, model in models.items()}
    assert_same(results[True], results[False], rtol=1e-10, atol=1e-10)
    assert_same(results["sequence"], results[False], rtol=1e-10, atol=1e-10)
