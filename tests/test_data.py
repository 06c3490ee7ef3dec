"""Sequence tasks, the character-text tools and CharRNN (tinygrad_rnn.data, tinygrad_rnn.text, nn.CharRNN)."""
import math

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import data, nn
from tinygrad_rnn import functional as F

GENERATORS = {
    "adding": lambda seed: data.adding_problem(16, 20, seed=seed),
    "copy": lambda seed: data.copy_task(16, 5, 7, n_symbols=4, seed=seed),
    "sine": lambda seed: data.sine_waves(16, 30, seed=seed),
    "mackey_glass": lambda seed: (data.mackey_glass(200, seed=seed),),
}


# ------------------------------------------------------------ shapes, dtypes, seeds
def test_shapes_and_dtypes():
    x, y = data.adding_problem(3, 10, seed=0)
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((10, 3, 2), np.float64, (3, 1), np.float64)
    x, y = data.copy_task(3, 4, 6, n_symbols=5, seed=0)
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((14, 3, 7), np.float64, (14, 3), np.int64)
    x, y = data.sine_waves(3, 12, seed=0)
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((12, 3, 1), np.float64, (12, 3, 1), np.float64)
    x, y = data.next_step_pairs(np.arange(41), 10)
    assert (x.shape, x.dtype, y.shape) == ((10, 4, 1), np.float64, (10, 4, 1))


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_data_and_different_seeds_differ(name):
    make = GENERATORS[name]
    for a, b in zip(make(7), make(7)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(make(7), make(8)))


@pytest.mark.parametrize("call", [lambda: data.adding_problem(0, 10), lambda: data.adding_problem(2, 1),
                                  lambda: data.copy_task(2, 0, 5), lambda: data.copy_task(2, 3, 0),
                                  lambda: data.sine_waves(2, 5, period_range=(0.0, 4.0)),
                                  lambda: data.windows(np.zeros((4, 2)), 2), lambda: data.windows(np.zeros(3), 4),
                                  lambda: data.adding_problem(True, 5)])  # a bool is no batch size
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


# ------------------------------------------------------------ adding problem
def test_adding_problem_two_markers_one_per_half_and_target_is_their_sum():
    x, y = data.adding_problem(500, 21, seed=1)
    values, markers = x[:, :, 0], x[:, :, 1]
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert (values >= 0).all() and (values < 1).all()
    np.testing.assert_array_equal(markers[:10].sum(axis=0), 1)   # first half [0, T//2)
    np.testing.assert_array_equal(markers[10:].sum(axis=0), 1)   # second half [T//2, T)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=0), rtol=0, atol=1e-12)


def test_adding_problem_constant_predictor_baseline_is_one_sixth():
    _, y = data.adding_problem(40000, 6, seed=2)
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.005


# ------------------------------------------------------------ copy task
def test_copy_task_layout():
    length, delay, k = 4, 6, 5
    x, y = data.copy_task(300, length, delay, n_symbols=k, seed=3)
    np.testing.assert_array_equal(x.sum(axis=2), 1)  # one-hot
    inputs = x.argmax(axis=2)
    symbols = inputs[:length]
    assert symbols.min() >= 1 and symbols.max() <= k and len(np.unique(symbols)) == k
    np.testing.assert_array_equal(inputs[length + delay - 1], k + 1)  # the delimiter, once
    np.testing.assert_array_equal(np.delete(inputs[length:], delay - 1, axis=0), 0)  # blanks elsewhere
    np.testing.assert_array_equal(y[length + delay:], symbols)  # after the delimiter: the symbols again
    np.testing.assert_array_equal(y[:length + delay], 0)


def test_copy_task_memoryless_baseline():
    """A predictor that sees only the time step (the class frequencies at each t) scores the baseline."""
    length, delay, k = 5, 10, 8
    _, y = data.copy_task(4000, length, delay, n_symbols=k, seed=4)
    freq = np.stack([np.bincount(row, minlength=k + 2) / row.size for row in y])  # (T, classes)
    cross_entropy = -np.mean(np.log(np.take_along_axis(freq, y, axis=1)))
    assert data.copy_task_baseline(length, delay, k) == pytest.approx(length * math.log(k) / (2 * length + delay))
    assert cross_entropy == pytest.approx(data.copy_task_baseline(length, delay, k), abs=0.01)


# ------------------------------------------------------------ sines and series
def test_sine_waves_are_next_step_sines_in_the_period_range():
    x, y = data.sine_waves(50, 40, seed=5, period_range=(8.0, 32.0))
    np.testing.assert_array_equal(y[:-1], x[1:])
    s = np.concatenate([x[:, :, 0], y[-1:, :, 0]])  # (T + 1, B)
    # a sampled sine satisfies s(t+1) + s(t-1) = 2 cos(w) s(t); recover w per sequence by least squares
    cos_w = ((s[2:] + s[:-2]) * s[1:-1]).sum(axis=0) / (2 * (s[1:-1] ** 2).sum(axis=0))
    np.testing.assert_allclose(s[2:] + s[:-2], 2 * cos_w * s[1:-1], atol=1e-9)
    periods = 2 * np.pi / np.arccos(cos_w)
    assert periods.min() >= 8.0 - 1e-6 and periods.max() <= 32.0 + 1e-6 and np.ptp(periods) > 10
    assert np.abs(x).max() <= 1.0


def test_windows_and_next_step_pairs_tile_the_series():
    series = np.arange(23.0)
    w = data.windows(series, 5, stride=3)
    assert w.shape == (5, 7)
    np.testing.assert_array_equal(w, 3 * np.arange(7)[None, :] + np.arange(5)[:, None])
    x, y = data.next_step_pairs(series, 5)
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x[0, 1:], y[-1, :-1])  # default stride: window b + 1 starts where b's targets end
    x, y = data.next_step_pairs(data.mackey_glass(300, seed=0), 50)
    assert x.shape == (50, 5, 1) and 0.2 < x.min() and x.max() < 1.5


# ------------------------------------------------------------ vocabulary and corpus
def test_vocabulary_round_trip_and_order():
    text = data.load_text()
    vocab = data.Vocabulary(text)
    assert vocab.chars == "".join(sorted(set(text))) and len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.decode(list(ids[:5])) == text[:5]
    np.testing.assert_array_equal(data.Vocabulary(vocab.chars).encode(text[:500]), ids[:500])
    assert data.Vocabulary("bca").encode("abcc").tolist() == [0, 1, 2, 2]


def test_vocabulary_unknown_characters_are_named():
    vocab = data.Vocabulary("abc")
    with pytest.raises(ValueError, match=r"2 character\(s\) not in the vocabulary: 'x', 'z'"):
        vocab.encode("abzcx")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError):
        data.Vocabulary("")


def test_load_text_default_is_the_packaged_excerpt(tmp_path):
    text = data.load_text()
    assert text.startswith("First Citizen:\nBefore we proceed any further") and text.endswith("\n")
    assert 90_000 < len(text) <= 100_000
    assert data.load_text(max_chars=13) == "First Citizen"
    path = tmp_path / "tiny.txt"
    path.write_text("to be or not to be\n", encoding="utf-8")
    assert data.load_text(path) == "to be or not to be\n" and data.load_text(str(path), max_chars=5) == "to be"
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        data.load_text(tmp_path / "empty.txt")


def test_char_corpus_split():
    corpus = data.CharCorpus("abcdefghij" * 10, validation_fraction=0.25)
    assert (len(corpus.train_ids), len(corpus.validation_ids)) == (75, 25)
    assert corpus.vocab.decode(np.concatenate([corpus.train_ids, corpus.validation_ids])) == corpus.text
    default = data.CharCorpus.from_file(max_chars=1000)
    assert len(default.validation_ids) == 100 and default.text.startswith("First Citizen")
    with pytest.raises(ValueError):
        data.CharCorpus("abc", validation_fraction=1.0)


# ------------------------------------------------------------ truncated-BPTT batches
def test_bptt_batches_continue_each_row():
    ids = np.arange(103)  # ids are positions, so continuity is arithmetic
    windows = list(data.bptt_batches(ids, batch_size=4, seq_len=7))
    rows = 103 // 4  # 25 ids per row; 24 predictions per row in windows of 7, 7, 7, 3
    assert [w[0].shape for w in windows] == [(7, 4), (7, 4), (7, 4), (3, 4)]
    for inputs, targets in windows:
        assert inputs.dtype == np.int64 and targets.dtype == np.int64
        np.testing.assert_array_equal(targets, inputs + 1)  # targets are the inputs shifted by one
    np.testing.assert_array_equal(windows[0][0][0], rows * np.arange(4))  # row b starts at b * n
    for (inputs, targets), (next_inputs, _) in zip(windows, windows[1:]):
        np.testing.assert_array_equal(next_inputs[0], inputs[-1] + 1)  # window k + 1 continues row b
        np.testing.assert_array_equal(next_inputs[0], targets[-1])
    assert windows[-1][1][-1].tolist() == [rows * (b + 1) - 1 for b in range(4)]  # each row's last id


def test_bptt_batches_on_text_shift_by_one_and_reject_short_streams():
    ids = data.Vocabulary("hello world").encode("hello world" * 5)
    for inputs, targets in data.bptt_batches(ids, 3, 6):
        np.testing.assert_array_equal(inputs[1:], targets[:-1])
    with pytest.raises(ValueError, match="at least 2"):
        data.bptt_batches(ids[:5], 3, 6)
    with pytest.raises(ValueError):
        data.bptt_batches(ids.astype(np.float64), 3, 6)


# ------------------------------------------------------------ CharRNN
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_char_rnn_shapes_and_carried_state(cell):
    """Logits of a sequence equal those of its two halves read in turn with the state carried."""
    tr.set_default_dtype(np.float64)
    model = nn.CharRNN(11, hidden_size=6, num_layers=2, cell=cell, embedding_dim=5)
    ids = np.random.default_rng(0).integers(0, 11, size=(9, 3))
    logits, state = model(ids)
    assert logits.shape == (9, 3, 11)
    states = state if cell == "lstm" else (state,)
    assert [s.shape for s in states] == [(2, 3, 6)] * len(states)
    first, state = model(ids[:4])
    second, _ = model(tr.Tensor(ids[4:]), state)
    np.testing.assert_allclose(np.concatenate([first.numpy(), second.numpy()]), logits.numpy(), atol=1e-12)


def test_char_rnn_dropout_acts_only_while_training():
    model = nn.CharRNN(7, hidden_size=8, cell="gru", embedding_dim=4, dropout=0.5)
    ids = np.arange(14).reshape(7, 2) % 7
    assert not np.allclose(model(ids)[0].numpy(), model(ids)[0].numpy())
    model.eval()
    np.testing.assert_array_equal(model(ids)[0].numpy(), model(ids)[0].numpy())


def test_char_rnn_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown cell"):
        nn.CharRNN(5, cell="transformer")
    with pytest.raises(ValueError, match=r"\(T, B\)"):
        nn.CharRNN(5)(np.zeros(4, dtype=np.int64))


# ------------------------------------------------------------ sampling
VOCAB = data.Vocabulary("abcdefgh ")


def tiny_model(cell="lstm"):
    return nn.CharRNN(len(VOCAB), hidden_size=12, cell=cell, embedding_dim=6, dropout=0.3)


def greedy_decode(model, prime, length):
    """argmax at every step, written out independently of data.sample."""
    out = []
    with tr.no_grad():
        logits, state = model(VOCAB.encode(prime).reshape(-1, 1), None)
        for _ in range(length):
            out.append(int(logits.numpy()[-1, 0].argmax()))
            logits, state = model(np.array([[out[-1]]]), state)
    return VOCAB.decode(out)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sample_length_alphabet_and_seed(cell):
    model = tiny_model(cell)
    text = data.sample(model, VOCAB, "ab", 40, temperature=1.5, seed=3)
    assert len(text) == 40 and set(text) <= set(VOCAB.chars)
    assert data.sample(model, VOCAB, "ab", 40, temperature=1.5, seed=3) == text
    assert data.sample(model, VOCAB, "ab", 40, temperature=1.5, seed=4) != text
    assert data.sample(model, VOCAB, "ab", 0) == ""


def test_sample_without_a_seed_follows_manual_seed():
    model = tiny_model("gru")
    tr.manual_seed(11)
    first = data.sample(model, VOCAB, "ab", 40, temperature=1.5)
    tr.manual_seed(11)
    assert data.sample(model, VOCAB, "ab", 40, temperature=1.5) == first


def test_sample_at_low_temperature_is_greedy():
    model = tiny_model().eval()
    assert data.sample(model, VOCAB, "hag", 30, temperature=1e-6, seed=0) == greedy_decode(model, "hag", 30)
    assert data.sample(model, VOCAB, "hag", 30, temperature=1e-300, seed=1) == greedy_decode(model, "hag", 30)


def test_sample_runs_without_graph_in_eval_mode_and_restores_modes():
    class Spy(nn.Module):
        """Records, at each call, whether a graph is recorded and whether dropout is active."""
        def __init__(self, model):
            super().__init__()
            self.model, self.seen = model, []

        def forward(self, ids, state):
            self.seen.append((tr.is_grad_enabled(), self.model.training, self.model.drop.training))
            return self.model(ids, state)
    spy = Spy(tiny_model())
    spy.model.rnn.eval()  # a mixed state that must come back as it was
    before = [m.training for _, m in spy.named_modules()]
    assert before == [True, True, True, True, False, True]
    data.sample(spy, VOCAB, "ab", 3, seed=0)
    assert spy.seen == [(False, False, False)] * 3
    assert [m.training for _, m in spy.named_modules()] == before


def test_char_rnn_and_sample_on_device(device):
    """A model built on `device` with the CPU model's weights samples the same string."""
    tr.set_default_dtype(np.float64)
    reference = tiny_model("gru")
    model = nn.CharRNN(len(VOCAB), hidden_size=12, cell="gru", embedding_dim=6, dropout=0.3, device=device)
    model.load_state_dict(reference.state_dict())
    assert model(np.zeros((2, 1), dtype=np.int64))[0].device == tr.Tensor(0.0, device=device).device
    assert data.sample(model, VOCAB, "bad", 25, seed=5) == data.sample(reference, VOCAB, "bad", 25, seed=5)


def test_sample_rejects_bad_arguments():
    model = tiny_model()
    for temperature in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            data.sample(model, VOCAB, "ab", 5, temperature=temperature)
    with pytest.raises(ValueError, match="prime"):
        data.sample(model, VOCAB, "", 5)
    with pytest.raises(ValueError, match="not in the vocabulary: 'z'"):
        data.sample(model, VOCAB, "az", 5)
    with pytest.raises(ValueError, match=r"\(T, 1, 9\)"):
        data.sample(nn.CharRNN(5), VOCAB, "ab", 5)


# ------------------------------------------------------------ learning
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_char_rnn_learns_a_repetitive_text(cell):
    """Truncated BPTT over bptt_batches with SGD + momentum (written here) drives the per-character
    cross-entropy from about ln V to far below it, and greedy sampling then continues the text."""
    text = "the quick brown fox jumps over the lazy dog. " * 20
    corpus = data.CharCorpus(text, validation_fraction=0.0)
    vocab_size = len(corpus.vocab)
    model = nn.CharRNN(vocab_size, hidden_size=32, cell=cell, embedding_dim=16)
    params = model.parameters()
    velocity = [np.zeros_like(p.data) for p in params]
    lr, momentum = 0.3, 0.9

    def corpus_loss():
        with tr.no_grad():
            logits, _ = model(corpus.train_ids[:-1, None])
            return F.cross_entropy(logits.reshape(-1, vocab_size), corpus.train_ids[1:]).item()
    before = corpus_loss()
    for _ in range(40):  # 40 epochs of 5 windows: 200 steps
        state = None
        for inputs, targets in data.bptt_batches(corpus.train_ids, batch_size=8, seq_len=25):
            logits, state = model(inputs, state)
            loss = F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))
            model.zero_grad()
            loss.backward()
            for p, v in zip(params, velocity):
                v *= momentum
                v += p.grad.data
                p.data -= lr * v
            state = tuple(s.detach() for s in state) if cell == "lstm" else state.detach()
    after = corpus_loss()
    assert abs(before - math.log(vocab_size)) < 0.5
    assert after < 0.1 * math.log(vocab_size), (before, after)
    assert data.sample(model, corpus.vocab, "the ", 16, temperature=1e-3, seed=0) == "quick brown fox "
