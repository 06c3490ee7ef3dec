"""Our RNN/LSTM/GRU cells and layers against PyTorch's recorded numbers (tests/data/rnn_golden.*).

Every configuration is loaded with PyTorch's weights, run forward on the recorded input, and
differentiated through the recorded weighted-sum loss; outputs, final states, the loss and every
gradient (input, initial states, each parameter) must agree to 1e-6 relative in float64, in
each form (fused per step, composite, and for layers the whole-sequence form). No PyTorch needed: make_torch_golden.py wrote the data.
"""
import json
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn

DATA = Path(__file__).parent / "data"
CONFIGS = json.loads((DATA / "rnn_golden.json").read_text())["configs"]
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


@pytest.fixture(scope="module")
def golden():
    with np.load(DATA / "rnn_golden.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def build(config, fused):
    """Our module for a golden configuration, in float64, with PyTorch's constructor options."""
    extra = {"nonlinearity": config["nonlinearity"]} if config["kind"] == "rnn" else {}
    common = dict(bias=config["bias"], fused=fused, dtype=np.float64, **extra)
    if config["form"] == "cell":
        return CELLS[config["kind"]](config["input_size"], config["hidden_size"], **common)
    return LAYERS[config["kind"]](config["input_size"], config["hidden_size"], num_layers=config["num_layers"],
                                  batch_first=config["batch_first"], bidirectional=config["bidirectional"], **common)


def run(module, config, arrays):
    """Forward on the recorded input; returns (loss, output, h_n, c_n, x, h0, c0)."""
    lstm = config["kind"] == "lstm"
    x = tr.Tensor(arrays["x"], requires_grad=True)
    h0 = tr.Tensor(arrays["h0"], requires_grad=True) if config["with_hx"] else None
    c0 = tr.Tensor(arrays["c0"], requires_grad=True) if config["with_hx"] and lstm else None
    if config["form"] == "cell":
        state = (h0, c0) if lstm and h0 is not None else h0
        hs = []
        for t in range(x.shape[0]):
            state = module(x[t], state)
            hs.append(state[0] if lstm else state)
        output = tr.stack(hs)
        h_n, c_n = (state if lstm else (state, None))
    else:
        output, final = module(x, (h0, c0) if lstm and h0 is not None else h0)
        h_n, c_n = final if lstm else (final, None)
    loss = (output * arrays["w_out"]).sum() + (h_n * arrays["w_h"]).sum()
    if lstm:
        loss = loss + (c_n * arrays["w_c"]).sum()
    return loss, output, h_n, c_n, x, h0, c0


def close(obtained, expected, what):
    np.testing.assert_allclose(obtained, expected, rtol=1e-6, atol=1e-9, err_msg=what)


FORMS = {"fused": True, "composite": False, "sequence": "sequence"}  # cells have no sequence form
CASES = [(c, form) for c in CONFIGS for form in FORMS if not (form == "sequence" and c["form"] == "cell")]


@pytest.mark.parametrize("config,form", CASES, ids=[f"{c['name']}-{form}" for c, form in CASES])
def test_matches_pytorch(config, form, golden):
    fused = FORMS[form]
    name = config["name"]
    arrays = {key[len(name) + 1:]: value for key, value in golden.items() if key.startswith(name + "/")}
    module = build(config, fused)
    module.load_state_dict({k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")})
    loss, output, h_n, c_n, x, h0, c0 = run(module, config, arrays)
    loss.backward()

    close(output.numpy(), arrays["output"], "output")
    close(h_n.numpy(), arrays["h_n"], "h_n")
    if c_n is not None:
        close(c_n.numpy(), arrays["c_n"], "c_n")
    close(loss.numpy(), arrays["loss"], "loss")
    close(x.grad.numpy(), arrays["grad/x"], "grad of x")
    for label, state in (("h0", h0), ("c0", c0)):
        if state is not None:
            close(state.grad.numpy(), arrays[f"grad/{label}"], f"grad of {label}")
    for pname, p in module.named_parameters():
        expected = arrays[f"grad/param/{pname}"]
        obtained = np.zeros_like(expected) if p.grad is None else p.grad.numpy()
        close(obtained, expected, f"grad of {pname}")
