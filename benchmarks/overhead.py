"""Per-op overhead: a chain of 1,000 elementwise ops on shape (1,), forward and backward.

On arrays of one element the arithmetic costs only NumPy's own call overhead (timed apart, as
the same chain on bare arrays), so the rest of the time per op is the engine's: making a node,
recording its backward, and sweeping the graph to run each backward. PyTorch
(CPU, eager) runs the same chain in the same process when it is installed, taking turns with
ours run by run (no BLAS is involved, so no pause is needed between them).

    python -m benchmarks.overhead [--ops 1000] [--repeats 30]

Prints the median microseconds per op, forward and backward apart and together, and the ratios
to PyTorch.
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


def timed(x, w, ops: int):
    """One chain, forward then backward: returns (forward seconds, backward seconds)."""
    def step():
        start = time.perf_counter()
        loss = chain(x, w, ops)
        middle = time.perf_counter()
        loss.backward()
        return middle - start, time.perf_counter() - middle
    return step


def steps(ops: int) -> dict:
    """{"numpy": the bare forward, "ours": the chain timed, "torch": the same in PyTorch (when installed)}."""
    import tinygrad_rnn as tr
    x, w = tr.Tensor(np.array([0.3]), requires_grad=True), tr.Tensor(np.array([0.9]), requires_grad=True)
    found = {"numpy": bare_numpy(ops), "ours": timed(x, w, ops)}
    try:
        import torch
    except ImportError:
        return found
    found["torch"] = timed(torch.tensor([0.3], requires_grad=True), torch.tensor([0.9], requires_grad=True), ops)
    return found


def time_alternating(named_steps: dict, repeats: int) -> dict:
    """{name: [(forward seconds, backward seconds)]}: the steps take turns, one run each per
    round, so that a slow spell of a shared machine (they come and go within a run) falls on all
    of them alike."""
    for step in named_steps.values():
        for _ in range(3):
            step()
    samples = {name: [] for name in named_steps}
    for _ in range(repeats):
        for name, step in named_steps.items():
            samples[name].append(step())
    return samples


def bare_numpy(ops: int):
    """The chain's forward arithmetic on bare NumPy arrays, no graph: the floor under our forward."""
    x, w, half = np.array([0.3]), np.array([0.9]), np.float64(0.5)

    def step():
        start = time.perf_counter()
        y = x
        for _ in range(ops // 4):
            y = np.tanh(y * w + x) - half
        return time.perf_counter() - start, 0.0
    return step


def per_op(samples: list, ops: int) -> dict:
    """Median microseconds per op of the forward, the backward and the two together."""
    return {part: statistics.median(s[i] if i < 2 else s[0] + s[1] for s in samples) / ops * 1e6
            for i, part in enumerate(("forward", "backward", "total"))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    ops = args.ops // 4 * 4
    samples = time_alternating(steps(ops), args.repeats)
    ours = per_op(samples["ours"], ops)
    result = {"ops": ops, "ours_us_per_op": ours["total"],
              "ours_forward_us_per_op": ours["forward"], "ours_backward_us_per_op": ours["backward"]}
    print(f"us per op, median of {args.repeats}:  forward  backward  total")
    print(f"tinygrad_rnn:              {ours['forward']:7.2f}  {ours['backward']:8.2f}  {ours['total']:5.2f}")
    result["numpy_forward_us_per_op"] = per_op(samples["numpy"], ops)["forward"]
    print(f"NumPy alone, no graph:     {result['numpy_forward_us_per_op']:7.2f}")
    if "torch" in samples:
        theirs = per_op(samples["torch"], ops)
        rounds = [(a[0] + a[1]) / (b[0] + b[1]) for a, b in zip(samples["ours"], samples["torch"])]
        result.update(torch_us_per_op=theirs["total"], torch_forward_us_per_op=theirs["forward"],
                      torch_backward_us_per_op=theirs["backward"], ratio=ours["total"] / theirs["total"],
                      ratio_of_rounds=statistics.median(rounds))
        print(f"PyTorch:                   {theirs['forward']:7.2f}  {theirs['backward']:8.2f}  {theirs['total']:5.2f}")
        print(f"ours / PyTorch:            {ours['forward'] / theirs['forward']:7.2f}  "
              f"{ours['backward'] / theirs['backward']:8.2f}  {result['ratio']:5.2f}"
              f"   (median of the rounds' ratios: {result['ratio_of_rounds']:.2f})")
    return result


if __name__ == "__main__":
    main()
