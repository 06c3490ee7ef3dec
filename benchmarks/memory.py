"""Peak memory of a training step, against what a hand-written BPTT must keep; truncated BPTT's
peak against the sequence length.

Measured with tracemalloc, which NumPy reports its array allocations to: the peak of everything
allocated during the step above what existed before it (the model, its input and w are made
first, so they do not count; the step's parameter gradients do). A step computes the loss
L = sum(output * w) in the graph, which keeps the product output * w until the product's own turn
in backward, where dL/doutput is made beside it. The hand-written step is handed dL/doutput = w
instead, so the sequence form is also measured that way, as "seq layer": output.backward(w), the
layer alone. The reference is exact: the bytes of the buffers the hand-written BPTT
(benchmarks/handwritten.py) fills in forward and reads in backward (LSTM: gates 4TBH, c and
tanh(c) 2TBH, h TBH; GRU: r, z, n 3TBH, W_hn h + b_hn TBH, h TBH; RNN: h TBH). Its own peak (with
its scratch and gradient buffers) is shown beside it.

    python -m benchmarks.memory [--config b] [--kinds lstm,gru,rnn] [--dtype float32]
                                [--long-steps 10000] [--window 50] [--json PATH]

Truncated BPTT (tinygrad_rnn.train_bptt, SGD, window 50) runs a configuration-(b)-sized LSTM over
T = 100 and T = 10,000 steps: its peak should not depend on T. Full BPTT (window = T) over
T = 100 and 1,000 is shown for contrast: its peak grows with T. The input sequence itself is
made before measuring. CPU (NumPy) only: tracemalloc does not see GPU memory.
"""
from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc

import numpy as np

from .handwritten import KINDS, make_bptt, params_of
from .rnn_step import CONFIGS, make_layer, ours_step

MB = 1024.0 ** 2


def traced_peak(fn) -> int:
    """Peak bytes allocated while fn() runs, above what was allocated when it started."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


def step_memory(config: str, kind: str, dtype: str = "float32", seed: int = 0) -> dict:
    """One training step's peak, ours (fused and composite) and the hand-written BPTT's, against
    the activations the hand-written BPTT keeps."""
    import tinygrad_rnn as tr
    size = CONFIGS[config]
    B, T, I, H = size["B"], size["T"], size["I"], size["H"]
    tr.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = tr.Tensor(rng.standard_normal((T, B, I)), dtype=dtype)
    w = rng.standard_normal((T, B, H)).astype(dtype)
    row = {"config": config, **size, "kind": kind, "dtype": dtype}
    fused = make_layer(kind, size, dtype, "cpu", fused=True)
    forms = {"fused": fused}
    for name, form in (("sequence", "sequence"), ("composite", False)):
        forms[name] = make_layer(kind, size, dtype, "cpu", fused=form)
        forms[name].load_state_dict(fused.state_dict())
    for name, model in forms.items():
        step = ours_step(model, x, w)
        step()  # warm: whatever is made once, lazily, is not the step's
        row[f"{name}_peak_bytes"] = traced_peak(step)
    row["sequence_layer_peak_bytes"] = traced_peak(layer_step(forms["sequence"], x, w))
    params = params_of(fused)
    hand = make_bptt(kind, T, B, I, H, dtype=dtype)
    row["hand_activation_bytes"] = hand.activation_bytes()
    row["hand_peak_bytes"] = traced_peak(lambda: make_bptt(kind, T, B, I, H, dtype=dtype).step(x.data, params, w))
    row["param_bytes"] = sum(int(p.nbytes) for p in params.values())
    act = row["hand_activation_bytes"]
    for name in (*forms, "sequence_layer"):
        row[f"{name}/hand_activations"] = row[f"{name}_peak_bytes"] / act
        row[f"{name}/hand_peak"] = row[f"{name}_peak_bytes"] / row["hand_peak_bytes"]
    return row


def layer_step(model, x, w):
    """The layer alone, as the hand-written BPTT runs it: forward, then backward from
    dL/doutput = w (no loss in the graph)."""
    def step():
        model.zero_grad()
        output, _ = model(x)
        output.backward(w)
    return step


def bptt_memory(steps: int, window, size: dict, dtype: str = "float32", seed: int = 0) -> dict:
    """Peak of one pass of train_bptt (LSTM, SGD) over `steps` steps with windows of `window`
    (None: full BPTT), and its wall time."""
    import tinygrad_rnn as tr
    from tinygrad_rnn import nn, optim
    B, I, H = size["B"], size["I"], size["H"]
    tr.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = nn.LSTM(I, H, dtype=dtype)
    optimizer = optim.SGD(model.parameters(), lr=1e-3)
    inputs = tr.Tensor(rng.standard_normal((steps, B, I)), dtype=dtype)
    targets = rng.standard_normal((steps, B, 1)).astype(dtype)  # L = sum(output * y), y broadcast over H

    def loss_fn(output, y):
        return (output * y).sum()
    start = time.perf_counter()
    peak = traced_peak(lambda: tr.train_bptt(model, inputs, targets, loss_fn, optimizer, k=window))
    return {"T": steps, "window": window or steps, "B": B, "I": I, "H": H, "dtype": dtype,
            "peak_bytes": peak, "seconds": time.perf_counter() - start,
            "input_bytes": int(inputs.data.nbytes)}


def format_steps(rows: list) -> str:
    """Peaks in MB, each form's peak over the hand-written BPTT's kept activations (the target:
    at most 1.3) and over the hand-written step's own peak; "seq layer" is the sequence form
    without the loss (output.backward(w)), as the hand-written step runs."""
    lines = [f"{'cfg':>4} {'kind':>4} {'dtype':>7} | {'fused':>7} {'seq':>7} {'seq layer':>9} {'comp':>7} "
             f"{'hand kept':>9} {'hand peak':>9} MB | {'fused/kept':>10} {'seq/kept':>8} {'layer/kept':>10} "
             f"{'comp/kept':>9} {'seq/hpeak':>9} | target */kept <= 1.3"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        marks = ", ".join(f"{label} " + ("ok" if r[f"{name}/hand_activations"] <= 1.3 else "MISS")
                          for name, label in (("fused", "fused"), ("sequence", "seq"), ("sequence_layer", "layer")))
        lines.append(f"{r['config']:>4} {r['kind']:>4} {r['dtype']:>7} | {r['fused_peak_bytes'] / MB:7.2f} "
                     f"{r['sequence_peak_bytes'] / MB:7.2f} {r['sequence_layer_peak_bytes'] / MB:9.2f} "
                     f"{r['composite_peak_bytes'] / MB:7.2f} {r['hand_activation_bytes'] / MB:9.2f} "
                     f"{r['hand_peak_bytes'] / MB:9.2f}    | {r['fused/hand_activations']:10.2f} "
                     f"{r['sequence/hand_activations']:8.2f} {r['sequence_layer/hand_activations']:10.2f} "
                     f"{r['composite/hand_activations']:9.2f} {r['sequence/hand_peak']:9.2f} | {marks}")
    return "\n".join(lines)


def format_bptt(rows: list) -> str:
    lines = [f"{'T':>7} {'window':>7} | {'peak MB':>8} {'input MB':>8} {'seconds':>8}"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append(f"{r['T']:>7} {r['window']:>7} | {r['peak_bytes'] / MB:8.2f} {r['input_bytes'] / MB:8.2f} "
                     f"{r['seconds']:8.2f}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="b", choices=sorted(CONFIGS))
    parser.add_argument("--kinds", default="lstm,gru,rnn")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--short-steps", type=int, default=100)
    parser.add_argument("--long-steps", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--full-steps", default="100,1000",
                        help="T of the full-BPTT contrast rows (comma-separated; empty for none)")
    parser.add_argument("--bptt-size", default=None,
                        help="B,I,H of the truncated-BPTT LSTM (default: those of --config)")
    parser.add_argument("--json", default=None)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    for kind in kinds:
        if kind not in KINDS:
            raise SystemExit(f"unknown kind {kind!r}: choose from {', '.join(KINDS)}")
    steps_rows = [step_memory(args.config, kind, args.dtype) for kind in kinds]
    print(f"Peak memory of one training step (tracemalloc), configuration ({args.config}) {CONFIGS[args.config]}:")
    print(format_steps(steps_rows))
    size = dict(CONFIGS[args.config])
    if args.bptt_size:
        size.update(zip(("B", "I", "H"), (int(v) for v in args.bptt_size.split(","))))
    bptt_rows = [bptt_memory(args.short_steps, args.window, size, args.dtype),
                 bptt_memory(args.long_steps, args.window, size, args.dtype)]
    bptt_rows += [bptt_memory(int(t), None, size, args.dtype) for t in args.full_steps.split(",") if t.strip()]
    growth = bptt_rows[1]["peak_bytes"] / bptt_rows[0]["peak_bytes"]
    print(f"\ntrain_bptt (LSTM B={size['B']} I={size['I']} H={size['H']}, SGD): truncated (window {args.window}) "
          "and full BPTT (window = T)")
    print(format_bptt(bptt_rows))
    print(f"truncated peak at T={args.long_steps} / at T={args.short_steps}: {growth:.2f} "
          "(independent of T when about 1)")
    result = {"steps": steps_rows, "bptt": bptt_rows, "truncated_growth": growth, "args": vars(args)}
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
