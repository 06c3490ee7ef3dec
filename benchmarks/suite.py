"""All the benchmarks in one run, with defaults that take a few minutes on a small machine:

    python -m benchmarks [--out DIR] [--threads N] [--clock wall|cpu] [--device cpu|cuda] [--quick]

1. per-op overhead (benchmarks/overhead.py): 1,000 elementwise ops on one element, ours vs PyTorch;
2. one training step (benchmarks/rnn_step.py) of LSTM, GRU and RNN, ours fused and composite vs
   PyTorch vs a hand-written NumPy BPTT vs the GEMMs alone: configurations (a) and (b) in float32
   and float64, (c) in float32 (the float64 rows of (c) alone take minutes: run
   `python -m benchmarks.rnn_step --configs c --dtypes float64` for them);
3. peak memory (benchmarks/memory.py): a step at (b) against the hand-written BPTT's
   activations, truncated BPTT over T = 100 and 10,000 (CPU only).

Each part writes its JSON into --out (default out/bench/). --quick runs a tiny configuration
only: a smoke test of the harness, in seconds. Each part also runs on its own, e.g.
`python -m benchmarks.rnn_step --help`.
"""
from __future__ import annotations

import argparse
import json
import os

from . import common, memory, overhead, rnn_step


def run_all(argv=None) -> dict:
    """Run overhead, rnn_step and memory; returns {"overhead": ..., "rnn_step": [...], "memory": ...}."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("out", "bench"), help="directory for the JSON files")
    parser.add_argument("--threads", type=int, default=None,
                        help="NumPy's BLAS threads (and PyTorch's); 1 is steadier on a busy machine")
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="cpu: this process's CPU time (with --threads 1), steadier on a shared machine")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (CuPy) for the training steps")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--budget", type=float, default=1.5, help="seconds per timed block before it stops early")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a tiny configuration only (a smoke test)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc malloc's thresholds as they are (see benchmarks/rnn_step.py)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.threads:
        common.set_blas_threads(args.threads)
    common_args = ["--repeats", str(args.repeats), "--budget", str(args.budget), "--device", args.device,
                   "--clock", args.clock]
    common_args += ["--threads", str(args.threads)] if args.threads else []
    common_args += ["--no-torch"] if args.no_torch else []
    common_args += ["--default-malloc"] if args.default_malloc else []
    results = {}

    print("== per-op overhead ==")
    results["overhead"] = overhead.main(["--repeats", "3" if args.quick else "30"] +
                                        (["--ops", "100"] if args.quick else []))

    print("\n== one training step ==")
    if args.quick:
        runs = [["--configs", "tiny", "--dtypes", "float32,float64", "--pause", "0"]]
    else:
        runs = [["--configs", "a,b", "--dtypes", "float32,float64"], ["--configs", "c", "--dtypes", "float32"]]
    results["rnn_step"] = []
    for i, run in enumerate(runs):
        path = os.path.join(args.out, f"rnn_step_{i}.json")
        results["rnn_step"].append(rnn_step.main(run + common_args + ["--json", path]))

    print("\n== memory ==")
    if args.quick:
        mem = ["--config", "tiny", "--short-steps", "20", "--long-steps", "200", "--window", "10",
               "--full-steps", ""]
    else:
        mem = []
    results["memory"] = memory.main(mem + ["--json", os.path.join(args.out, "memory.json")])

    with open(os.path.join(args.out, "overhead.json"), "w") as out:
        json.dump(results["overhead"], out, indent=1)
    print(f"\nJSON in {args.out}/")
    return results


def main(argv=None) -> dict:
    return run_all(argv)
