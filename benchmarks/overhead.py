"""Per-op overhead: a chain of 1,000 elementwise ops on shape (1,), forward and backward.

On arrays of one element the arithmetic is free, so the time per op is the engine's own cost:
making a node, recording its backward, and sweeping the graph to run each backward. PyTorch
(CPU, eager) runs the same chain in the same process when it is installed, taking turns with
ours run by run (no BLAS is involved, so no pause is needed between them).

    python -m benchmarks.overhead [--ops 1000] [--repeats 30]

Prints the median microseconds per op (forward + backward) and the ratio to PyTorch.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def chain(x, w, ops: int):
    """ops elementwise ops: a repeating mix of binary (tensor, tensor), scalar and unary ops."""
    y = x
    for i in range(ops // 4):
        y = y * w          # binary, both tensors
        y = y + x          # binary, both tensors
        y = y.tanh()       # unary
        y = y - 0.5        # with a Python scalar
    return y.sum()


def steps(ops: int) -> dict:
    """{"ours": one chain forward and backward, "torch": the same in PyTorch (when installed)}."""
    import tinygrad_rnn as tr
    x = tr.Tensor(np.array([0.3]), requires_grad=True)
    w = tr.Tensor(np.array([0.9]), requires_grad=True)
    found = {"ours": lambda: chain(x, w, ops).backward()}
    try:
        import torch
    except ImportError:
        return found
    xt = torch.tensor([0.3], requires_grad=True)
    wt = torch.tensor([0.9], requires_grad=True)
    found["torch"] = lambda: chain(xt, wt, ops).backward()
    return found


def time_alternating(named_steps: dict, repeats: int) -> dict:
    """{name: [seconds]}: the steps take turns, one run each per round, so that a slow spell of
    a shared machine (they come and go within a run) falls on all of them alike."""
    for step in named_steps.values():
        for _ in range(3):
            step()
    samples = {name: [] for name in named_steps}
    for _ in range(repeats):
        for name, step in named_steps.items():
            start = time.perf_counter()
            step()
            samples[name].append(time.perf_counter() - start)
    return samples


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    ops = args.ops // 4 * 4
    samples = time_alternating(steps(ops), args.repeats)
    ours = statistics.median(samples["ours"]) / ops * 1e6
    result = {"ops": ops, "ours_us_per_op": ours}
    print(f"tinygrad_rnn: {ours:6.2f} us per op (forward + backward, median of {args.repeats})")
    if "torch" in samples:
        theirs = statistics.median(samples["torch"]) / ops * 1e6
        ratios = [a / b for a, b in zip(samples["ours"], samples["torch"])]
        result.update(torch_us_per_op=theirs, ratio=ours / theirs, ratio_of_rounds=statistics.median(ratios))
        print(f"PyTorch:      {theirs:6.2f} us per op;  ours / PyTorch = {ours / theirs:.2f} "
              f"(median of the rounds' ratios: {result['ratio_of_rounds']:.2f})")
    return result


if __name__ == "__main__":
    main()
