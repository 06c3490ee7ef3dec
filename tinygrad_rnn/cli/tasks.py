"""The sequence tasks of `tinygrad-rnn train` and the demo: data, model, loss and baseline.

Each Task hands out training batches by step number (so a resumed run sees exactly the batches
an uninterrupted one would), a fixed validation batch, the loss, and the score of a model that
has learned nothing, to read the final metric against:

    adding        sum of the two marked values at the last step     MSE, baseline 1/6 (predict 1)
    copy          replay 10 symbols after --seq-len blanks           cross-entropy per step,
                                                                     baseline L ln K / (2L + D)
    sine          next value of a random sine                        MSE, baseline: repeat x_t
    mackey-glass  next value of the chaotic Mackey-Glass series      MSE, baseline: repeat x_t

The character task lives in chars.py. Batches are NumPy (T, B, features), time-major.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import functional as F
from .. import nn
from ..data import adding_problem, copy_task, copy_task_baseline, mackey_glass, next_step_pairs, sine_waves
from ..tensor import Tensor

__all__ = ["Task", "SequenceModel", "make_task", "TASKS", "LAYERS", "COPY_SYMBOLS", "COPY_LENGTH"]

TASKS = ("adding", "copy", "sine", "mackey-glass", "chars")
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
COPY_SYMBOLS, COPY_LENGTH = 8, 10   # the copy task's alphabet K and sequence length L
VALIDATION_SEED = 10 ** 6           # validation batches are drawn from seeds no training step uses
MACKEY_GLASS_SAMPLES = 6000         # the series: the first 80% for training, the rest for validation


class SequenceModel(nn.Module):
    """A recurrent layer and a linear readout (PyTorch-style names: rnn.*, head.*).

        h_1..h_T, state = rnn(x, state)          x: (T, B, input_size)
        y = head(h_T)  (last_only)   or   y_t = head(h_t) for every t

    forward(x, state=None) -> (y, state): y (B, output_size) or (T, B, output_size). The LSTM's
    forget-gate bias starts at 1 (Gers et al. 2000), so it remembers by default.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int, num_layers: int = 1,
                 last_only: bool = False, fused: bool = True, dtype=None, device=None):
        super().__init__()
        self.cell, self.last_only = cell, last_only
        self.rnn = LAYERS[cell](input_size, hidden_size, num_layers=num_layers, fused=fused, dtype=dtype, device=device)
        if cell == "lstm":
            nn.init.forget_gate_bias_(self.rnn, 1.0)
        self.head = nn.Linear(hidden_size, output_size, dtype=dtype, device=device)

    def forward(self, x, state=None):
        output, state = self.rnn(x, state)
        return self.head(output[-1] if self.last_only else output), state

    def extra_repr(self) -> str:
        return f"cell={self.cell!r}, last_only={self.last_only}"


@dataclass
class Task:
    """One task: batch(step, size) -> (x, y) NumPy arrays; loss(prediction, y) -> scalar Tensor."""
    name: str
    input_size: int
    output_size: int
    last_only: bool          # the target is read at the last step only (no truncated BPTT then)
    metric: str              # what loss() measures, for messages
    baseline: float          # the metric of a model that learned nothing
    baseline_note: str
    batch: Callable          # (step, size) -> (x, y)
    validation: tuple        # (x, y): a fixed held-out batch
    classes: bool = False    # y holds class indices (cross-entropy) rather than values (MSE)
    period: int = 0          # > 0: batches continue each other, the state is carried from step to
                             # step and restarts from zero every `period` steps (chars)
    vocab: object = None     # the character task's Vocabulary

    def loss(self, prediction: Tensor, y) -> Tensor:
        if self.classes:
            return F.cross_entropy(prediction.reshape(-1, prediction.shape[-1]), np.asarray(y).reshape(-1))
        return F.mse_loss(prediction, y)

    def tensors(self, x, y, dtype, device) -> tuple:
        """The batch as the model takes it: Tensors of its dtype and device; class targets, and the
        character ids the embedding reads, stay integer arrays."""
        if self.classes:
            return (x if self.vocab is not None else Tensor(x, dtype=dtype, device=device)), y
        return Tensor(x, dtype=dtype, device=device), Tensor(y, dtype=dtype, device=device)


def make_task(name: str, seq_len: int, seed: int, validation_size: int = 256) -> Task:
    """The Task `name` ("adding", "copy", "sine", "mackey-glass") for sequences of seq_len steps;
    training batch `step` is drawn with the seed (seed, step)."""
    def seeded(step: int) -> np.random.SeedSequence:
        return np.random.SeedSequence([seed, step])

    def held_out() -> np.random.SeedSequence:
        return np.random.SeedSequence([seed, VALIDATION_SEED])

    if name == "adding":
        def batch(step, size):
            return adding_problem(size, seq_len, seed=seeded(step))
        return Task(name, 2, 1, True, "MSE", 1 / 6, "predicting 1, the mean of the target",
                    batch, adding_problem(validation_size, seq_len, seed=held_out()))
    if name == "copy":
        def batch(step, size):
            return copy_task(size, COPY_LENGTH, seq_len, COPY_SYMBOLS, seed=seeded(step))
        return Task(name, COPY_SYMBOLS + 2, COPY_SYMBOLS + 2, False, "cross-entropy",
                    copy_task_baseline(COPY_LENGTH, seq_len, COPY_SYMBOLS),
                    "blanks, then a uniform guess over the symbols", batch,
                    copy_task(validation_size, COPY_LENGTH, seq_len, COPY_SYMBOLS, seed=held_out()), classes=True)
    if name == "sine":
        def batch(step, size):
            return sine_waves(size, seq_len, seed=seeded(step))
        validation = sine_waves(validation_size, seq_len, seed=held_out())
        return Task(name, 1, 1, False, "MSE", _persistence(validation), "repeating the last value",
                    batch, validation)
    if name == "mackey-glass":
        return _mackey_glass_task(seq_len, seed, seeded, validation_size)
    raise ValueError(f"unknown task {name!r}; use one of {', '.join(TASKS)}")


def _mackey_glass_task(seq_len: int, seed: int, seeded, validation_size: int) -> Task:
    """Windows of one Mackey-Glass series: training windows start anywhere in its first 80%,
    validation windows tile the rest (at most validation_size of them)."""
    series = mackey_glass(MACKEY_GLASS_SAMPLES, seed=seed)
    cut = int(0.8 * len(series))
    train, held = series[:cut], series[cut:]
    if len(held) < seq_len + 1:
        raise ValueError(f"mackey-glass: --seq-len {seq_len} is longer than the validation part of the series "
                         f"({len(held)} samples); use --seq-len {len(held) - 1} or less")
    x_val, y_val = next_step_pairs(held, seq_len, stride=max((len(held) - seq_len - 1) // validation_size, 1))
    x_val, y_val = x_val[:, :validation_size], y_val[:, :validation_size]

    def batch(step, size):
        starts = np.random.default_rng(seeded(step)).integers(0, len(train) - seq_len, size=size)
        w = train[starts[None, :] + np.arange(seq_len + 1)[:, None]][:, :, None]
        return w[:-1], w[1:]
    return Task("mackey-glass", 1, 1, False, "MSE", _persistence((x_val, y_val)), "repeating the last value",
                batch, (x_val, y_val))


def _persistence(batch) -> float:
    """The MSE of predicting x_{t+1} = x_t on a next-step batch."""
    x, y = batch
    return float(np.mean((x - y) ** 2))
