"""One training step of an LSTM, GRU and RNN layer, side by side: ours (fused and composite),
PyTorch's, a hand-written NumPy BPTT, and the GEMMs alone.

A step is: forward over T steps, L = sum(output * w) with one fixed random w (the same for every
implementation, so dL/doutput = w and the loss costs nothing), full backward. Each number is the
median over repeats after a warm-up. Implementations:

    fused      our nn.LSTM/GRU/RNN (fused=True: one node per time step, hand-derived backward)
    sequence   the same layer with fused="sequence" (one node for the whole sequence)
    composite  the same layer with fused=False (every gate a node); skipped at (c) unless asked
    torch      PyTorch's nn.LSTM/GRU/RNN with the same weights, threads set to NumPy's BLAS count
    hand       benchmarks/handwritten.py: the limit an autograd over NumPy can reach
    gemm       the hand-written step's GEMMs alone, back to back: the hardware limit

Configurations (B batch, T steps, I inputs, H hidden): (a) 1, 25, 65, 100 (the classic character
model); (b) 32, 50, 64, 128; (c) 64, 100, 256, 512; "tiny" 2, 4, 3, 5 (a smoke test).

Timing: ours, the hand-written step and the GEMMs run round-robin (one step of each per round),
so a slow spell of a shared machine hits them alike and their ratios stay steady (--blocks: each
in its own block instead); PyTorch runs in its own block after a 0.2 s pause, because OpenBLAS's
worker threads spin for about 0.1 s after each NumPy call and would slow it down several times.
On a machine that other jobs keep busy, --threads 1 (NumPy's BLAS and PyTorch) is much steadier,
and --clock cpu (this process's CPU time, with --threads 1) steadier still.

The process keeps freed memory for reuse (tinygrad_rnn.keep_freed_memory, as `tinygrad-rnn`
does), so that no implementation pays glibc for faulting its buffers in again every step;
--default-malloc measures with glibc's own thresholds, under which a step's cost also depends on
what ran before it in the process (round-robin hides most of an LSTM's faults, a loop of one
layer alone pays them all).

    python -m benchmarks.rnn_step [--configs a,b,c] [--kinds lstm,gru,rnn] [--dtypes float32,float64]
                                  [--repeats N] [--json PATH] [--device cpu|cuda] [--composite auto|always|never]

Prints a table of times (ms) and ratios and, with --json, writes every median, every sample and
the machine's metadata (library versions, BLAS, thread counts, load average).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from tinygrad_rnn import keep_freed_memory

from . import common
from .handwritten import KINDS, make_bptt, params_of

CONFIGS = {
    "a": {"B": 1, "T": 25, "I": 65, "H": 100},
    "b": {"B": 32, "T": 50, "I": 64, "H": 128},
    "c": {"B": 64, "T": 100, "I": 256, "H": 512},
    "tiny": {"B": 2, "T": 4, "I": 3, "H": 5},
}
IMPLEMENTATIONS = ("fused", "sequence", "composite", "torch", "hand", "gemm")
RATIOS = (("fused/hand", "fused", "hand"), ("seq/hand", "sequence", "hand"), ("fused/torch", "fused", "torch"),
          ("seq/torch", "sequence", "torch"), ("composite/fused", "composite", "fused"),
          ("hand/gemm", "hand", "gemm"), ("torch/hand", "torch", "hand"))


def targets(config: str, kind: str) -> list:
    """The issue's targets for one row: (ratio name, bound) pairs; a ratio must be <= its bound.
    The speed targets are checked for both fast forms, per step ("fused") and whole-sequence ("seq")."""
    found = []
    for form in ("fused", "seq"):
        if kind == "lstm":
            bound = {"a": 1.5, "b": 1.25, "c": 1.1}.get(config)
            if bound:
                found.append((f"{form}/hand", bound))
            if config == "a":
                found.append((f"{form}/torch", 1.0))
        elif config in ("a", "b", "c"):
            found.append((f"{form}/torch", 1.0))
    if config == "b":
        found.append(("composite/fused", 3.0))
    return found


# ---------------------------------------------------------------- the implementations
def make_layer(kind: str, size: dict, dtype, device: str, fused):
    from tinygrad_rnn import nn
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
    return cls(size["I"], size["H"], fused=fused, dtype=dtype, device=device)


def ours_step(model, x, w):
    """Our training step: zero the gradients, forward, L = sum(output * w), backward."""
    def step():
        model.zero_grad()
        output, _ = model(x)
        (output * w).sum().backward()
    return step


def torch_setup(torch, kind: str, size: dict, dtype: str, device: str, state: dict, x, w):
    """PyTorch's layer with our weights, and its step; None when PyTorch cannot run on `device`."""
    if device != "cpu" and not torch.cuda.is_available():
        return None
    where = "cpu" if device == "cpu" else "cuda"
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    model = cls(size["I"], size["H"]).to(dtype=getattr(torch, dtype), device=where)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(state[name])))
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(where)
    wt = torch.from_numpy(np.ascontiguousarray(w)).to(where)

    def step():
        model.zero_grad(set_to_none=True)
        output, _ = model(xt)
        (output * wt).sum().backward()
    sync = torch.cuda.synchronize if where == "cuda" else None
    return step, sync


def measure(config: str, kind: str, dtype: str, repeats: int, device: str = "cpu", composite: str = "auto",
            torch=None, budget_s: float = 3.0, pause_s: float = common.PAUSE_S, seed: int = 0,
            interleave: bool = True, clock: str = "wall") -> dict:
    """Time every implementation on one (configuration, kind, dtype); returns one result row.
    Every timed block starts after `pause_s` (OpenBLAS's and OpenMP's spinning threads). With
    `interleave`, ours, the hand-written step and the GEMMs run round-robin, one of each per round."""
    import tinygrad_rnn as tr
    from tinygrad_rnn import backend
    size = CONFIGS[config]
    B, T, I, H = size["B"], size["T"], size["I"], size["H"]
    tr.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_host = rng.standard_normal((T, B, I)).astype(dtype)
    w_host = rng.standard_normal((T, B, H)).astype(dtype)
    fused = make_layer(kind, size, dtype, device, fused=True)
    x = tr.Tensor(x_host, dtype=dtype, device=device)
    xp = backend.array_module(x.data)
    w = backend.to_device(w_host, fused.weight_ih_l0.device)
    sync = common.synchronizer(xp)
    times, skipped = {}, {}

    clock_fn = common.CLOCKS[clock]

    def timed(step, sync=sync):
        return common.time_block(step, repeats, sync, budget_s, pause_s=pause_s, clock=clock_fn)

    hand = make_bptt(kind, T, B, I, H, dtype=dtype, xp=xp)
    params = params_of(fused)
    numpy_steps = {"hand": lambda: hand.step(x.data, params, w),
            "gemm": lambda: hand.gemms(x.data, params),  # after "hand": on the values the real step left
            "fused": ours_step(fused, x, w)}
    whole = make_layer(kind, size, dtype, device, fused="sequence")
    whole.load_state_dict(fused.state_dict())
    numpy_steps["sequence"] = ours_step(whole, x, w)
    if composite == "always" or (composite == "auto" and config != "c"):
        layer = make_layer(kind, size, dtype, device, fused=False)
        layer.load_state_dict(fused.state_dict())
        numpy_steps["composite"] = ours_step(layer, x, w)
    else:
        skipped["composite"] = ("skipped at (c): slow; pass --composite always" if composite == "auto"
                                else "--composite never")
    if interleave:  # the NumPy implementations round-robin; PyTorch alone, after a pause
        times.update(common.time_interleaved(numpy_steps, repeats, sync, budget_s, pause_s, clock_fn))
    else:
        times.update({name: timed(step) for name, step in numpy_steps.items()})
    if torch is None:
        skipped["torch"] = "PyTorch not installed (or --no-torch)"
    else:
        setup = torch_setup(torch, kind, size, dtype, device, fused.state_dict(), x_host, w_host)
        if setup is None:
            skipped["torch"] = "PyTorch has no CUDA here"
        else:
            times["torch"] = timed(setup[0], setup[1])  # after the pause: OpenBLAS idle
    medians = {name: t["median_s"] for name, t in times.items()}
    mins = {name: t["min_s"] for name, t in times.items()}
    ratios = {name: medians[a] / medians[b] for name, a, b in RATIOS if a in medians and b in medians}
    ratios_min = {name: mins[a] / mins[b] for name, a, b in RATIOS if a in mins and b in mins}
    checks = [{"ratio": name, "bound": bound, "value": ratios.get(name),
               "ok": None if name not in ratios else ratios[name] <= bound} for name, bound in targets(config, kind)]
    return {"config": config, **size, "kind": kind, "dtype": dtype, "device": device,
            "activation_bytes_hand": hand.activation_bytes(), "gemm_count": len(hand.gemm_shapes()),
            "gemm_flops": sum(2 * m * k * n for m, k, n in hand.gemm_shapes()),
            "times": times, "medians_ms": {k: v * 1e3 for k, v in medians.items()}, "ratios": ratios,
            "mins_ms": {k: v * 1e3 for k, v in mins.items()}, "ratios_of_mins": ratios_min,
            "targets": checks, "skipped": skipped}


# ---------------------------------------------------------------- output
def format_table(rows: list, stat: str = "median") -> str:
    """Times (ms) and ratios of the medians (stat="min": of the fastest samples) of each row."""
    times_key, ratios_key = ("medians_ms", "ratios") if stat == "median" else ("mins_ms", "ratios_of_mins")
    head = (f"{'cfg':>4} {'kind':>4} {'dtype':>7} | {'fused':>8} {'seq':>8} {'comp':>8} {'torch':>8} {'hand':>8} "
            f"{'gemm':>8} ms | {'f/hand':>6} {'s/hand':>6} {'f/torch':>7} {'s/torch':>7} {'c/f':>5} {'h/gemm':>6}"
            " | targets")
    lines = [head, "-" * len(head)]
    for row in rows:
        ms = row[times_key]
        cells = " ".join(f"{ms[name]:8.2f}" if name in ms else f"{'-':>8}"
                         for name in ("fused", "sequence", "composite", "torch", "hand", "gemm"))
        r = row[ratios_key]
        ratios = " ".join(f"{r[name]:{width}.2f}" if name in r else f"{'-':>{width}}"
                          for name, width in (("fused/hand", 6), ("seq/hand", 6), ("fused/torch", 7),
                                              ("seq/torch", 7), ("composite/fused", 5), ("hand/gemm", 6)))
        marks = ", ".join(f"{c['ratio']}<={c['bound']:g} " + ("-" if c["ratio"] not in r else
                                                                "ok" if r[c["ratio"]] <= c["bound"] else "MISS")
                          for c in row["targets"])
        lines.append(f"{row['config']:>4} {row['kind']:>4} {row['dtype']:>7} | {cells}    | {ratios} | {marks}")
    return "\n".join(lines)


def metadata(torch, torch_threads_default, torch_threads) -> dict:
    info = common.machine_info()
    info["torch"] = None if torch is None else torch.__version__
    info["torch_threads_default"] = torch_threads_default
    info["torch_threads"] = torch_threads
    info["pause_before_block_s"] = common.PAUSE_S
    return info


def _list(text: str, allowed) -> list:
    items = [s.strip() for s in text.split(",") if s.strip()]
    for item in items:
        if item not in allowed:
            raise SystemExit(f"unknown value {item!r}: choose from {', '.join(allowed)}")
    return items


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rnn_step", description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="a,b,c", help="comma-separated of a, b, c, tiny")
    parser.add_argument("--kinds", default="lstm,gru,rnn")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per block (fewer once --budget is spent)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per timed block before it stops early")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (CuPy)")
    parser.add_argument("--composite", default="auto", choices=("auto", "always", "never"),
                        help="auto: all configurations but (c)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    parser.add_argument("--clock", default="wall", choices=sorted(common.CLOCKS),
                        help="wall (default) or cpu: this process's CPU time, steadier on a shared machine "
                             "but meaningful only with --threads 1")
    parser.add_argument("--blocks", action="store_true",
                        help="time each implementation in its own block (default: the NumPy ones round-robin)")
    parser.add_argument("--threads", type=int, default=None,
                        help="set NumPy's BLAS threads (default: as it is; 1 is steadier on a busy machine)")
    parser.add_argument("--torch-threads", type=int, default=None, help="default: NumPy's BLAS thread count")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--pause", type=float, default=common.PAUSE_S,
                        help="seconds to sleep before each timed block (BLAS threads go idle)")
    parser.add_argument("--quiet", action="store_true", help="print only the final table")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc malloc's thresholds as they are (default: keep freed memory, as the CLI)")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    configs = _list(args.configs, CONFIGS)
    kinds = _list(args.kinds, KINDS)
    dtypes = _list(args.dtypes, ("float32", "float64"))
    kept = False if args.default_malloc else keep_freed_memory()
    if args.threads and not common.set_blas_threads(args.threads):
        print(f"could not set NumPy's BLAS threads to {args.threads} (no threadpoolctl, no OpenBLAS found)")
    torch = None if args.no_torch else common.import_torch()
    threads_default = threads = None
    if torch is not None:
        threads_default = torch.get_num_threads()
        threads = args.torch_threads or common.blas_threads() or threads_default
        torch.set_num_threads(threads)
    meta = metadata(torch, threads_default, threads)
    meta["freed_memory_kept"] = kept
    if not args.quiet:
        print(f"NumPy {meta['numpy']} (BLAS threads {meta['numpy_blas_threads']}, kernel {meta['openblas_kernel']}), "
              f"freed memory {'kept' if kept else 'returned (glibc defaults)'}, PyTorch {meta['torch']} "
              f"(threads {threads}, default {threads_default}), {meta['cpu_model']}, "
              f"load {meta.get('load_average')}")
        print("\n".join(format_table([]).splitlines()[:2]))
    rows = []
    for config in configs:
        for kind in kinds:
            for dtype in dtypes:
                row = measure(config, kind, dtype, args.repeats, args.device, args.composite, torch, args.budget,
                              args.pause, interleave=not args.blocks, clock=args.clock)
                rows.append(row)
                if not args.quiet:
                    print(format_table([row]).splitlines()[-1], flush=True)
    meta["load_average_end"] = common.machine_info().get("load_average")
    result = {"meta": meta, "args": vars(args), "configs": {c: CONFIGS[c] for c in configs}, "results": rows}
    if args.quiet:
        print(format_table(rows))
    print("\nThe same, from each block's fastest sample (steadier when other jobs share the machine):")
    print(format_table(rows, "min"))
    notes = sorted({f"{name}: {reason}" for row in rows for name, reason in row["skipped"].items()})
    for note in notes:
        print(f"  ({note})")
    forced = common.forced_kernel_note()
    if forced:
        print(f"  (note: {forced})")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1, default=_jsonable)
        print(f"wrote {args.json}")
    return result


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    main()
