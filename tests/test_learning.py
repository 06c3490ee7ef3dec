"""Training works, not only shapes: the course's lessons reproduced as checks that could fail.

- The adding problem at T = 20: an LSTM and a GRU reach an MSE far below the 0.167 baseline of
  predicting the mean (Hochreiter & Schmidhuber 1997).
- Stacked and bidirectional: predicting the next input y_t = x_{t+1} needs the future, so a
  2-layer bidirectional GRU learns it while the same stack reading forward only cannot.
- Training is reproducible to the bit with a fixed seed.
(The character model's falling loss is in test_data.py, seq2seq's reversal in test_seq2seq.py.)
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import data, nn, optim
from tinygrad_rnn import functional as F

BASELINE = 1 / 6  # MSE of predicting the constant 1 on the adding problem


class LastStepRegressor(nn.Module):
    """y = Linear(h_T): a recurrent core read at its last step."""

    def __init__(self, core, hidden):
        super().__init__()
        self.core, self.head = core, nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.core(x)
        return self.head(out[-1])


def adding_batch(batch, length, seed):
    x, y = data.adding_problem(batch, length, seed=seed)
    return tr.Tensor(x, dtype=np.float32), tr.Tensor(y, dtype=np.float32)


def train_on_adding(kind, steps, length=20, hidden=32, seed=0):
    """Adam with clipping on fresh batches; returns (model, test MSE on 1000 new sequences)."""
    tr.manual_seed(seed)
    core = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](2, hidden)
    if kind == "lstm":
        nn.init.forget_gate_bias_(core, 1.0)
    model = LastStepRegressor(core, hidden)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps):
        x, y = adding_batch(64, length, seed=seed * 100_000 + step)
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    x, y = adding_batch(1000, length, seed=999)
    with tr.no_grad():
        return model, F.mse_loss(model(x), y).item()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gated_cells_solve_the_adding_problem(kind):
    _, mse = train_on_adding(kind, steps=300)
    assert mse < BASELINE / 10, f"{kind}: test MSE {mse:.4f} is not well below the baseline {BASELINE:.3f}"


def test_training_is_reproducible_to_the_bit():
    first, _ = train_on_adding("lstm", steps=5)
    second, _ = train_on_adding("lstm", steps=5)
    other, _ = train_on_adding("lstm", steps=5, seed=1)
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


class Tagger(nn.Module):
    """y_t = Linear(h_t) on a 2-layer GRU, bidirectional or not."""

    def __init__(self, bidirectional, hidden=16):
        super().__init__()
        self.core = nn.GRU(1, hidden, num_layers=2, bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 1)

    def forward(self, x):
        out, _ = self.core(x)
        return self.head(out)


def lookahead_batch(batch, length, rng):
    """y_t = x_{t+1} (0 at the last step), x_t ~ N(0, 1): the target lies in the future."""
    x = rng.standard_normal((length, batch, 1))
    y = np.concatenate([x[1:], np.zeros((1, batch, 1))])
    return tr.Tensor(x, dtype=np.float32), tr.Tensor(y, dtype=np.float32)


def train_tagger(bidirectional, steps=200):
    tr.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Tagger(bidirectional)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        x, y = lookahead_batch(32, 12, rng)
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = lookahead_batch(256, 12, np.random.default_rng(1))
    with tr.no_grad():
        return F.mse_loss(model(x), y).item()


def test_a_stacked_bidirectional_gru_reads_the_future():
    """The forward-only stack cannot beat the variance of the future input (about 11/12 here,
    the last target being 0); the bidirectional one predicts it almost exactly."""
    forward_only, bidirectional = train_tagger(False), train_tagger(True)
    assert forward_only > 0.8
    assert bidirectional < 0.01
