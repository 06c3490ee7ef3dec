"""Speed and memory benchmarks (run from the repository root).

    python -m benchmarks                 # everything: overhead, training steps, memory (a few minutes)
    python -m benchmarks --quick         # a smoke run in seconds
    python -m benchmarks.overhead        # per-op engine overhead against PyTorch
    python -m benchmarks.rnn_step        # one training step: ours (fused, composite), PyTorch,
                                         # a hand-written NumPy BPTT, the GEMMs alone
    python -m benchmarks.memory          # peak memory of a step; truncated BPTT over long sequences

`make bench` and `tinygrad-rnn bench` run the first. Timings are medians over repeats after a
warm-up; ratios are taken within one run, since these machines are shared and noisy.
"""
