"""Per-op overhead: a chain of 1,000 elementwise ops on shape (1,), forward and backward.

On arrays of one element the arithmetic is free, so the time per op is the engine's own cost:
making a node, recording the closure, and sweeping the graph to run each backward. PyTorch
(CPU, eager) runs the same chain in the same process when it is installed.

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


def time_ours(ops: int, repeats: int) -> list:
    import tinygrad_rnn as tr
    x = tr.Tensor(np.array([0.3]), requires_grad=True)
    w = tr.Tensor(np.array([0.9]), requires_grad=True)
    return _time(lambda: chain(x, w, ops).backward(), repeats)


def time_torch(ops: int, repeats: int):
    try:
        import torch
    except ImportError:
        return None
    x = torch.tensor([0.3], requires_grad=True)
    w = torch.tensor([0.9], requires_grad=True)
    time.sleep(0.2)  # let OpenBLAS worker threads from NumPy calls go idle first
    return _time(lambda: chain(x, w, ops).backward(), repeats)


def _time(step, repeats: int) -> list:
    for _ in range(3):
        step()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    return samples


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    ops = args.ops // 4 * 4
    ours = statistics.median(time_ours(ops, args.repeats)) / ops * 1e6
    result = {"ops": ops, "ours_us_per_op": ours}
    print(f"tinygrad_rnn: {ours:6.2f} us per op (forward + backward, median of {args.repeats})")
    torch_samples = time_torch(ops, args.repeats)
    if torch_samples is not None:
        theirs = statistics.median(torch_samples) / ops * 1e6
        result.update(torch_us_per_op=theirs, ratio=ours / theirs)
        print(f"PyTorch:      {theirs:6.2f} us per op;  ours / PyTorch = {ours / theirs:.2f}")
    return result


if __name__ == "__main__":
    main()
