"""The benchmarks' reference and harness (benchmarks/): no timing assertions.

The hand-written BPTT (benchmarks/handwritten.py) is the yardstick our layers are measured
against, so it must compute the same gradients: float64, to 1e-10, against nn.LSTM/GRU/RNN.
The harnesses run end to end on a tiny configuration and write JSON with the expected keys.
"""
import json

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn

from benchmarks import common, memory, overhead, rnn_step
from benchmarks.handwritten import KINDS, make_bptt, params_of

LAYERS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def ours(kind, x, w, h0=None, c0=None, input_grad=False):
    """Our layer's output and gradients for L = sum(output * w), all float64 NumPy arrays."""
    T, B, I = x.shape
    layer = LAYERS[kind](I, w.shape[-1], dtype=np.float64)
    xt = tr.Tensor(x, requires_grad=input_grad, dtype=np.float64)
    states = [tr.Tensor(s[None], requires_grad=True, dtype=np.float64) for s in (h0, c0) if s is not None]
    hx = None if not states else (tuple(states) if kind == "lstm" else states[0])
    output, _ = layer(xt, hx)
    loss = (output * w).sum()
    loss.backward()
    grads = {name: getattr(layer, f"{name}_l0").grad.numpy() for name in params_of(layer)}
    if input_grad:
        grads["x"] = xt.grad.numpy()
        for name, s in zip(("h0", "c0"), states):
            grads[name] = s.grad.numpy()[0]
    return layer, output.numpy(), loss.item(), grads


@pytest.mark.parametrize("input_grad", [False, True], ids=["params", "params+inputs"])
@pytest.mark.parametrize("kind", KINDS)
def test_handwritten_bptt_equals_our_gradients(kind, input_grad):
    T, B, I, H = 6, 3, 4, 5
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))
    h0 = rng.standard_normal((B, H)) if input_grad else None
    c0 = rng.standard_normal((B, H)) if input_grad and kind == "lstm" else None
    layer, output, loss, expected = ours(kind, x, w, h0, c0, input_grad)

    hand = make_bptt(kind, T, B, I, H, dtype=np.float64, input_grad=input_grad)
    params = params_of(layer)
    np.testing.assert_allclose(hand.forward(x, params, h0, c0), output, rtol=0, atol=1e-12)
    got = hand.backward(w, params)
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-10, err_msg=f"{kind} d{name}")
    if not input_grad:  # the benchmark's entry point (zero initial state): the same numbers
        step_loss, step_grads = hand.step(x, params, w)
        assert abs(float(step_loss) - loss) < 1e-10
        np.testing.assert_allclose(step_grads["weight_hh"], expected["weight_hh"], rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_handwritten_gemms_and_activations(kind):
    T, B, I, H = 5, 2, 3, 4
    G = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    hand = make_bptt(kind, T, B, I, H, dtype=np.float32)
    shapes = hand.gemm_shapes()
    assert len(shapes) == 1 + T + (T - 1) + 2  # projection, T forward, T-1 backward, dW_hh, dW_ih
    assert shapes[0] == (T * B, I, G * H)
    kept = {"lstm": 4 * T + 3 * T + 2, "gru": 4 * T + T + 1, "rnn": T + 1}[kind] * B * H * 4
    assert hand.activation_bytes() == kept
    rng = np.random.default_rng(0)
    layer = LAYERS[kind](I, H)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    hand.step(x, params_of(layer), rng.standard_normal((T, B, H)).astype(np.float32))
    hand.gemms(x, params_of(layer))  # runs on the same buffers


def test_rnn_step_harness_end_to_end(tmp_path):
    path = tmp_path / "step.json"
    result = rnn_step.main(["--configs", "tiny", "--kinds", "lstm,gru,rnn", "--dtypes", "float32,float64",
                            "--repeats", "2", "--budget", "0.1", "--pause", "0", "--no-torch",
                            "--json", str(path), "--quiet"])
    saved = json.loads(path.read_text())
    assert set(saved) >= {"meta", "args", "configs", "results"}
    assert set(saved["meta"]) >= {"numpy", "torch", "numpy_blas", "numpy_blas_threads", "openblas_kernel",
                                  "env_openblas", "freed_memory_kept", "torch_threads", "cpu_count", "timestamp_utc"}
    assert len(saved["results"]) == 6 == len(result["results"])
    for row in saved["results"]:
        assert set(row["times"]) == {"fused", "sequence", "composite", "hand", "gemm"}
        assert row["skipped"]["torch"]
        for timing in row["times"].values():
            assert timing["median_s"] > 0 and len(timing["samples_s"]) >= 2
        assert set(row["ratios"]) == {"fused/hand", "seq/hand", "composite/fused", "hand/gemm"}
        assert row["activation_bytes_hand"] > 0


def test_a_forced_openblas_kernel_is_reported(monkeypatch):
    """OPENBLAS_CORETYPE (read when NumPy loads) decides the GEMMs' speed: a benchmark names the
    kernel that ran and warns when the environment forced it."""
    kernel = common.openblas_kernel()
    if "openblas" in json.dumps(common.numpy_blas_info()).lower():
        assert isinstance(kernel, str) and kernel
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    note = common.forced_kernel_note()
    assert "OPENBLAS_CORETYPE=Haswell" in note and "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" in note
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert common.forced_kernel_note() is None


@pytest.mark.torch
def test_rnn_step_harness_with_torch(tmp_path):
    pytest.importorskip("torch")
    result = rnn_step.main(["--configs", "tiny", "--kinds", "gru", "--dtypes", "float64", "--repeats", "2",
                            "--budget", "0.1", "--pause", "0", "--composite", "never", "--blocks", "--quiet"])
    row = result["results"][0]
    assert "torch" in row["times"] and "fused/torch" in row["ratios"]
    assert row["skipped"] == {"composite": "--composite never"}
    assert result["meta"]["torch_threads"] >= 1


def test_overhead_harness_times_forward_and_backward_apart():
    result = overhead.main(["--ops", "40", "--repeats", "2"])
    assert result["ops"] == 40
    for key in ("ours_forward_us_per_op", "ours_backward_us_per_op", "ours_us_per_op", "numpy_forward_us_per_op"):
        assert result[key] > 0, key


@pytest.mark.torch
def test_overhead_chain_is_the_same_computation_in_both_engines():
    torch = pytest.importorskip("torch")
    x, w = tr.Tensor(np.array([0.3]), requires_grad=True), tr.Tensor(np.array([0.9]), requires_grad=True)
    xt, wt = (torch.tensor([v], dtype=torch.float64, requires_grad=True) for v in (0.3, 0.9))
    ours_loss, theirs = overhead.chain(x, w, 40), overhead.chain(xt, wt, 40)
    ours_loss.backward()
    theirs.backward()
    np.testing.assert_allclose(ours_loss.item(), theirs.item(), rtol=1e-12)
    np.testing.assert_allclose([x.grad.item(), w.grad.item()], [xt.grad.item(), wt.grad.item()], rtol=1e-12)


def test_rnn_step_skips_composite_at_c_unless_asked():
    assert rnn_step.targets("b", "lstm") == [("fused/hand", 1.25), ("seq/hand", 1.25), ("composite/fused", 3.0)]
    assert rnn_step.targets("a", "gru") == [("fused/torch", 1.0), ("seq/torch", 1.0)]


def test_memory_harness_end_to_end(tmp_path):
    path = tmp_path / "memory.json"
    result = memory.main(["--config", "tiny", "--kinds", "lstm,rnn", "--short-steps", "8", "--long-steps", "40",
                          "--window", "4", "--full-steps", "8", "--json", str(path)])
    saved = json.loads(path.read_text())
    assert set(saved) >= {"steps", "bptt", "truncated_growth"}
    for row in saved["steps"]:
        assert row["fused_peak_bytes"] > 0 and row["hand_activation_bytes"] > 0
        for form in ("fused", "sequence", "composite", "sequence_layer"):
            assert row[f"{form}/hand_activations"] == row[f"{form}_peak_bytes"] / row["hand_activation_bytes"]
    assert [r["T"] for r in saved["bptt"]] == [8, 40, 8]
    assert [r["window"] for r in saved["bptt"]] == [4, 4, 8]
    assert result["truncated_growth"] > 0
