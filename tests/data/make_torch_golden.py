"""Record PyTorch reference values for the recurrent layers: rnn_golden.json + rnn_golden.npz.

The tests compare tinygrad_rnn's RNN/LSTM/GRU and RNNCell/LSTMCell/GRUCell against these files,
so they run without PyTorch installed. Everything is float64 and deterministic.

Regenerate (needs PyTorch), from the repository root:

    .venv/bin/python tests/data/make_torch_golden.py            # rewrite both files
    .venv/bin/python tests/data/make_torch_golden.py --check    # recompute in memory, compare
                                                                # to the stored files (1e-12),
                                                                # exit 1 on any mismatch

Configurations
--------------
rnn_golden.json is ``{"torch_version": str, "configs": [config, ...]}`` where each config is

    name           unique and readable, e.g. "lstm_layer_L2_bi_bf_nobias_I4_H3_T5_B3_hx"
    kind           "rnn" | "lstm" | "gru"
    form           "layer" (nn.RNN / nn.LSTM / nn.GRU)
                   | "cell" (nn.RNNCell / nn.LSTMCell / nn.GRUCell stepped over the sequence)
    input_size, hidden_size, num_layers (1 for cells), seq_len, batch      ints
    bidirectional, batch_first (both false for cells), bias, with_hx       bools
    nonlinearity   "tanh" | "relu" (always "tanh" for lstm and gru)

Dropout is always 0. Below, T = seq_len, B = batch, I = input_size, H = hidden_size,
L = num_layers, D = 2 if bidirectional else 1.

What was computed
-----------------
layer: ``output, h_n = module(x, hx)`` (LSTM: ``output, (h_n, c_n) = module(x, (h0, c0))``),
       hx = None when not with_hx.
cell:  ``h_t = cell(x[t], h_{t-1})`` for t = 0..T-1 (LSTM: ``h_t, c_t = cell(x[t], (h, c))``),
       the first step gets (h0, c0), or None when not with_hx;
       output = stack of the h_t (T, B, H), h_n = h_{T-1}, c_n = c_{T-1}.
loss = sum(output * w_out) + sum(h_n * w_h) [+ sum(c_n * w_c) for lstm], then loss.backward().

Random values come from ``numpy.random.default_rng(crc32(name))``, drawn in this order:
every parameter (in named_parameters order) ~ uniform(-0.6, 0.6); x ~ N(0, 1);
h0 then c0 ~ 0.5 * N(0, 1) when with_hx; w_out, w_h, w_c ~ N(0, 1).
So a config's values do not depend on the other configs or on PyTorch's generator.

Arrays
------
rnn_golden.npz (np.savez_compressed, all float64, no pickled objects; load with
``np.load(path, allow_pickle=False)``) holds, for each config NAME:

    NAME/x                    the input as fed: layer (T, B, I), or (B, T, I) if batch_first;
                              cell (T, B, I)
    NAME/h0, NAME/c0          initial states, only when with_hx (c0 only for lstm):
                              layer (L*D, B, H); cell (B, H)
    NAME/param/<name>         every parameter under PyTorch's own name: weight_ih_l0,
                              weight_hh_l1_reverse, bias_ih_l0, ... (layers); weight_ih,
                              weight_hh, bias_ih, bias_hh (cells); gate order as PyTorch's
                              (LSTM i, f, g, o; GRU r, z, n)
    NAME/w_out, NAME/w_h      loss weightings, shaped like output and h_n
    NAME/w_c                  lstm only, shaped like c_n
    NAME/output               layer (T, B, D*H), or (B, T, D*H) if batch_first; cell (T, B, H)
    NAME/h_n                  layer (L*D, B, H); cell (B, H)
    NAME/c_n                  lstm only, same shape as h_n
    NAME/loss                 0-d
    NAME/grad/x               d loss / d x, shaped like x
    NAME/grad/h0, grad/c0     only when with_hx
    NAME/grad/param/<name>    one per parameter (zeros where PyTorch left the gradient None)

With seq_len 1 and no hx the recurrent input is zero, so grad/param/weight_hh (layer 0's, for
layers) is exactly zero there: correct, not a recording fault. No other gradient is all zero.
The .npz bytes differ between runs (zip timestamps); its contents do not: use --check.
"""
import argparse
import dataclasses
import json
import pathlib
import sys
import zlib

import numpy as np
import torch
from torch import nn

DATA_DIR = pathlib.Path(__file__).resolve().parent
JSON_PATH = DATA_DIR / "rnn_golden.json"
NPZ_PATH = DATA_DIR / "rnn_golden.npz"
TOLERANCE = 1e-12
PARAM_RANGE = 0.6
STATE_SCALE = 0.5

# kind -> (cell class, layer class)
TORCH_CLASSES = {
    "rnn": (nn.RNNCell, nn.RNN),
    "lstm": (nn.LSTMCell, nn.LSTM),
    "gru": (nn.GRUCell, nn.GRU),
}
KINDS = tuple(TORCH_CLASSES)

SMALL_IN, WIDE_OUT = (4, 3), (2, 5)   # (input_size, hidden_size): I > H and I < H

# Layer grid, used for every kind. The first twelve rows cover every pair of values of
# (num_layers, bidirectional, batch_first, bias, with_hx, batch, sizes); seq_len runs over 1..7.
# The last two rows are "everything on": 3 layers, bidirectional, batch_first, no bias, hx.
#   (num_layers, bidirectional, batch_first, bias, with_hx, seq_len, batch, (I, H))
LAYER_ROWS = [
    (1, False, False, True, False, 1, 1, SMALL_IN),
    (1, True, True, False, True, 7, 3, WIDE_OUT),
    (1, False, True, True, True, 4, 3, SMALL_IN),
    (1, True, False, False, False, 2, 1, WIDE_OUT),
    (2, False, False, False, True, 5, 3, WIDE_OUT),
    (2, True, True, True, False, 3, 1, SMALL_IN),
    (2, True, False, True, True, 7, 1, SMALL_IN),
    (2, False, True, False, False, 6, 3, WIDE_OUT),
    (3, False, False, True, True, 3, 3, WIDE_OUT),
    (3, False, True, False, False, 5, 3, SMALL_IN),
    (3, True, True, False, True, 1, 1, SMALL_IN),
    (3, True, False, True, False, 6, 3, WIDE_OUT),
    (3, True, True, False, True, 7, 3, SMALL_IN),
    (3, True, True, False, True, 5, 3, WIDE_OUT),
]
# Extra nn.RNN(nonlinearity="relu") configs: every option both ways, and rows whose draws leave
# no relu direction dead (row 5, for one, zeroes weight_hh_l0's whole gradient under relu).
RELU_LAYER_ROWS = [LAYER_ROWS[i] for i in (1, 3, 6, 8, 9, 12)]

# Cell grid, used for every kind: every pair of (bias, with_hx, seq_len, batch) values.
#   (bias, with_hx, seq_len, batch, (I, H))
CELL_ROWS = [
    (True, False, 1, 1, SMALL_IN),
    (True, True, 5, 3, WIDE_OUT),
    (False, True, 5, 1, SMALL_IN),
    (False, False, 1, 3, WIDE_OUT),
    (True, False, 5, 3, SMALL_IN),
    (False, True, 1, 3, SMALL_IN),
]
RELU_CELL_ROWS = [CELL_ROWS[i] for i in (1, 2, 3)]   # extra nn.RNNCell(nonlinearity="relu")


@dataclasses.dataclass(frozen=True)
class Config:
    kind: str
    form: str
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    batch_first: bool
    bias: bool
    nonlinearity: str
    seq_len: int
    batch: int
    with_hx: bool

    @property
    def name(self):
        parts = [self.kind, self.form]
        if self.form == "layer":
            parts.append(f"L{self.num_layers}")
            parts += ["bi"] * self.bidirectional + ["bf"] * self.batch_first
        parts += ["relu"] * (self.nonlinearity == "relu") + ["nobias"] * (not self.bias)
        parts += [f"I{self.input_size}", f"H{self.hidden_size}", f"T{self.seq_len}",
                  f"B{self.batch}"]
        parts += ["hx"] * self.with_hx
        return "_".join(parts)

    def as_json(self):
        return {"name": self.name, **dataclasses.asdict(self)}

    @property
    def is_lstm(self):
        return self.kind == "lstm"

    @property
    def directions(self):
        return 2 if self.bidirectional else 1

    def x_shape(self):
        if self.batch_first:
            return (self.batch, self.seq_len, self.input_size)
        return (self.seq_len, self.batch, self.input_size)

    def output_shape(self):
        features = self.directions * self.hidden_size
        if self.batch_first:
            return (self.batch, self.seq_len, features)
        return (self.seq_len, self.batch, features)

    def state_shape(self):
        if self.form == "cell":
            return (self.batch, self.hidden_size)
        return (self.num_layers * self.directions, self.batch, self.hidden_size)


def layer_config(kind, row, nonlinearity="tanh"):
    num_layers, bidirectional, batch_first, bias, with_hx, seq_len, batch, (i, h) = row
    return Config(kind, "layer", i, h, num_layers, bidirectional, batch_first, bias,
                  nonlinearity, seq_len, batch, with_hx)


def cell_config(kind, row, nonlinearity="tanh"):
    bias, with_hx, seq_len, batch, (i, h) = row
    return Config(kind, "cell", i, h, 1, False, False, bias, nonlinearity, seq_len, batch,
                  with_hx)


def all_configs():
    configs = []
    for kind in KINDS:
        configs += [layer_config(kind, row) for row in LAYER_ROWS]
        if kind == "rnn":
            configs += [layer_config(kind, row, "relu") for row in RELU_LAYER_ROWS]
        configs += [cell_config(kind, row) for row in CELL_ROWS]
        if kind == "rnn":
            configs += [cell_config(kind, row, "relu") for row in RELU_CELL_ROWS]
    names = [c.name for c in configs]
    assert len(set(names)) == len(names), "config names must be unique"
    return configs


def build_module(config):
    """The torch module of a config, float64, dropout 0."""
    cell_class, layer_class = TORCH_CLASSES[config.kind]
    kwargs = {"bias": config.bias, "dtype": torch.float64}
    if config.kind == "rnn":
        kwargs["nonlinearity"] = config.nonlinearity
    if config.form == "cell":
        return cell_class(config.input_size, config.hidden_size, **kwargs)
    return layer_class(config.input_size, config.hidden_size, num_layers=config.num_layers,
                       batch_first=config.batch_first, bidirectional=config.bidirectional,
                       dropout=0.0, **kwargs)


def draw_inputs(config, module):
    """All random values of a config as numpy float64, drawn in the documented order."""
    rng = np.random.default_rng(zlib.crc32(config.name.encode()))
    arrays = {}
    for name, param in module.named_parameters():
        arrays[f"param/{name}"] = rng.uniform(-PARAM_RANGE, PARAM_RANGE, tuple(param.shape))
    arrays["x"] = rng.standard_normal(config.x_shape())
    if config.with_hx:
        arrays["h0"] = STATE_SCALE * rng.standard_normal(config.state_shape())
        if config.is_lstm:
            arrays["c0"] = STATE_SCALE * rng.standard_normal(config.state_shape())
    arrays["w_out"] = rng.standard_normal(config.output_shape())
    arrays["w_h"] = rng.standard_normal(config.state_shape())
    if config.is_lstm:
        arrays["w_c"] = rng.standard_normal(config.state_shape())
    return arrays


def load_parameters(module, arrays):
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(torch.from_numpy(arrays[f"param/{name}"]))


def initial_state(config, leaves):
    """hx as the torch module takes it: None, h0, or (h0, c0)."""
    if not config.with_hx:
        return None
    return (leaves["h0"], leaves["c0"]) if config.is_lstm else leaves["h0"]


def split_state(config, state):
    """(h, c) from a module's returned state; c is None except for lstm."""
    return state if config.is_lstm else (state, None)


def run_layer(config, module, x, hx):
    output, state = module(x, hx)
    return (output, *split_state(config, state))


def run_cell(config, cell, x, hx):
    state, hs = hx, []
    for x_t in x:
        state = cell(x_t, state)
        hs.append(split_state(config, state)[0])
    return (torch.stack(hs), *split_state(config, state))


def record(config):
    """Every array of one config, keyed without the NAME/ prefix."""
    module = build_module(config)
    arrays = draw_inputs(config, module)
    load_parameters(module, arrays)
    leaves = {key: torch.tensor(arrays[key], requires_grad=True)
              for key in ("x", "h0", "c0") if key in arrays}
    run = run_cell if config.form == "cell" else run_layer
    output, h_n, c_n = run(config, module, leaves["x"], initial_state(config, leaves))

    loss = (output * torch.from_numpy(arrays["w_out"])).sum()
    loss = loss + (h_n * torch.from_numpy(arrays["w_h"])).sum()
    if config.is_lstm:
        loss = loss + (c_n * torch.from_numpy(arrays["w_c"])).sum()
    loss.backward()

    arrays["output"], arrays["h_n"] = output.detach().numpy(), h_n.detach().numpy()
    if config.is_lstm:
        arrays["c_n"] = c_n.detach().numpy()
    arrays["loss"] = loss.detach().numpy()
    for key, leaf in leaves.items():
        arrays[f"grad/{key}"] = leaf.grad.numpy()
    for name, param in module.named_parameters():
        grad = param.grad if param.grad is not None else torch.zeros_like(param)
        arrays[f"grad/param/{name}"] = grad.numpy()
    return {key: np.asarray(value, dtype=np.float64).copy() for key, value in arrays.items()}


def generate():
    """(json document, {npz key: array}) for all configs."""
    torch.set_default_dtype(torch.float64)
    configs = all_configs()
    arrays = {}
    for config in configs:
        arrays.update({f"{config.name}/{key}": value for key, value in record(config).items()})
    document = {"torch_version": torch.__version__,
                "configs": [config.as_json() for config in configs]}
    return document, arrays


def json_text(document):
    """The document with one config per line (short diffs when the grid changes)."""
    configs = ",\n".join("    " + json.dumps(config) for config in document["configs"])
    return (f'{{\n  "torch_version": {json.dumps(document["torch_version"])},\n'
            f'  "configs": [\n{configs}\n  ]\n}}\n')


def write(document, arrays):
    JSON_PATH.write_text(json_text(document))
    np.savez_compressed(NPZ_PATH, **arrays)


def mismatches(document, arrays):
    """Human-readable differences between the stored files and a fresh generation."""
    missing = [path.name for path in (JSON_PATH, NPZ_PATH) if not path.exists()]
    if missing:
        return [f"missing file: {name}" for name in missing]
    stored_document = json.loads(JSON_PATH.read_text())
    problems = []
    if stored_document["configs"] != document["configs"]:
        problems.append("rnn_golden.json: configs differ")
    with np.load(NPZ_PATH, allow_pickle=False) as stored:
        stored_keys, fresh_keys = set(stored.files), set(arrays)
        problems += [f"missing from npz: {key}" for key in sorted(fresh_keys - stored_keys)]
        problems += [f"unexpected in npz: {key}" for key in sorted(stored_keys - fresh_keys)]
        for key in sorted(stored_keys & fresh_keys):
            old, new = stored[key], arrays[key]
            if old.shape != new.shape or old.dtype != new.dtype:
                problems.append(f"{key}: {old.dtype}{old.shape} != {new.dtype}{new.shape}")
            elif not np.allclose(old, new, rtol=TOLERANCE, atol=TOLERANCE):
                problems.append(f"{key}: max abs diff {np.max(np.abs(old - new)):.3g}")
    if stored_document["torch_version"] != document["torch_version"]:
        print(f"note: stored with torch {stored_document['torch_version']}, "
              f"checked with {document['torch_version']}")
    return problems


def summary(document, arrays):
    configs = document["configs"]
    by_kind_form = {}
    for config in configs:
        key = f"{config['kind']}/{config['form']}"
        by_kind_form[key] = by_kind_form.get(key, 0) + 1
    lines = [f"torch {document['torch_version']}: {len(configs)} configs, {len(arrays)} arrays, "
             f"{sum(a.size for a in arrays.values())} floats",
             "  " + ", ".join(f"{key} {count}" for key, count in by_kind_form.items())]
    for path in (JSON_PATH, NPZ_PATH):
        if path.exists():
            lines.append(f"  {path.name}: {path.stat().st_size / 1024:.1f} KiB")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="recompute in memory and compare with the stored files; write nothing")
    args = parser.parse_args(argv)
    document, arrays = generate()
    if args.check:
        problems = mismatches(document, arrays)
        for problem in problems:
            print(problem)
        print(f"{'FAIL' if problems else 'OK'}: {len(arrays)} arrays checked "
              f"against {NPZ_PATH.name} (tolerance {TOLERANCE})")
        return 1 if problems else 0
    write(document, arrays)
    print(summary(document, arrays))
    return 0


if __name__ == "__main__":
    sys.exit(main())
