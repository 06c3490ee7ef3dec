"""Where our training step spends its time: cProfile over repeated steps of one layer.

    python -m benchmarks.profile_step [--config b] [--kind lstm] [--dtype float32] [--form fused|sequence|composite]
                                      [--steps 30] [--top 15]

Prints the time per step of ours and of the hand-written BPTT (benchmarks/handwritten.py), the
profile's own time summed per source file (the engine in autograd.py, the cells in fused.py, the
ops in ops.py, NumPy's Python wrappers, ...), and the functions with the most own time. cProfile
sees Python functions: a NumPy call's time lands in the function that made it.
"""
from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import time

import numpy as np

from .handwritten import KINDS, make_bptt, params_of
from .rnn_step import CONFIGS, make_layer, ours_step


FORMS = {"fused": True, "sequence": "sequence", "composite": False}


def profile(config: str, kind: str, dtype: str, fused, steps: int):
    """(stats, ms per step of ours, ms per step of the hand-written BPTT), after a warm-up."""
    import tinygrad_rnn as tr
    size = CONFIGS[config]
    rng = np.random.default_rng(0)
    model = make_layer(kind, size, dtype, "cpu", fused=fused)
    x = tr.Tensor(rng.standard_normal((size["T"], size["B"], size["I"])), dtype=dtype)
    w = rng.standard_normal((size["T"], size["B"], size["H"])).astype(dtype)
    step = ours_step(model, x, w)
    hand = make_bptt(kind, size["T"], size["B"], size["I"], size["H"], dtype=dtype)
    params = params_of(model)
    for _ in range(3):
        step()
        hand.step(x.data, params, w)
    start = time.process_time()
    for _ in range(steps):
        hand.step(x.data, params, w)
    hand_ms = (time.process_time() - start) / steps * 1e3
    profiler = cProfile.Profile()
    start = time.process_time()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    ours_ms = (time.process_time() - start) / steps * 1e3
    return pstats.Stats(profiler), ours_ms, hand_ms


def per_file(stats: pstats.Stats) -> list:
    """[(file, own seconds)] summed over each source file's functions, largest first."""
    totals = collections.Counter()
    for (filename, _, name), (_, _, own, _, _) in stats.stats.items():
        key = "built-in / C" if filename == "~" else os.path.relpath(filename) if "tinygrad_rnn" in filename \
            else os.path.basename(filename)
        totals[key] += own
    return totals.most_common()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="b", choices=sorted(CONFIGS))
    parser.add_argument("--kind", default="lstm", choices=KINDS)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--form", default="fused", choices=sorted(FORMS), help="which form of the layer")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    stats, ours_ms, hand_ms = profile(args.config, args.kind, args.dtype, FORMS[args.form], args.steps)
    print(f"{args.kind} ({args.form}) at ({args.config}) {CONFIGS[args.config]}, {args.dtype}: ours {ours_ms:.2f} ms "
          f"per step under the profiler (CPU time), hand-written {hand_ms:.2f} ms")
    total = sum(own for _, own in per_file(stats))
    print("\nown time per source file:")
    for name, own in per_file(stats)[:10]:
        print(f"  {own / args.steps * 1e3:8.2f} ms/step  {own / total:6.1%}  {name}")
    print()
    stats.sort_stats("tottime").print_stats(args.top)
    return {"ours_ms": ours_ms, "hand_ms": hand_ms, "per_file_s": per_file(stats)}


if __name__ == "__main__":
    main()
