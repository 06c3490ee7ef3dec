"""Encoder-decoder with attention (nn/seq2seq.py).

Oracles: attention recomputed independently in NumPy, finite differences (tr.gradcheck, float64)
through attention and through an unrolled decoder, hand-written decoding loops for what the
decoder is fed (teacher forcing vs. its own argmax), bit-for-bit repeated training runs, and the
task itself: learning to reverse digit sequences.
"""
import time

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn.seq2seq import reversal_task

KINDS = ["dot", "general", "additive"]
PAD, SOS, EOS = 0, 1, 2
VOCAB = 13  # reversal_task with n_digits=10


def tensor(rng, shape, device="cpu", requires_grad=False):
    return tr.Tensor(rng.standard_normal(shape), requires_grad=requires_grad, dtype=np.float64, device=device)


def attention_inputs(rng, kind, device="cpu", requires_grad=False):
    """An Attention (float64), a query (B, Hq), keys (S, B, Hk) and a mask (S, B) with padding."""
    tr.set_default_dtype(np.float64)
    hq, hk = (5, 5) if kind == "dot" else (4, 6)
    attention = nn.Attention(hq, hk, kind, device=device)
    query, keys = tensor(rng, (3, hq), device, requires_grad), tensor(rng, (7, 3, hk), device, requires_grad)
    mask = np.arange(7)[:, None] < np.array([7, 4, 1])[None, :]
    return attention, query, keys, mask


def numpy_attention(attention, q, k, mask):
    """Scores, softmax and context straight from the equations, in NumPy."""
    params = {name: p.numpy() for name, p in attention.named_parameters()}
    if attention.kind == "dot":
        scores = np.einsum("bh,sbh->sb", q, k)
    elif attention.kind == "general":
        scores = np.einsum("bi,ij,sbj->sb", q, params["query_proj.weight"].T, k)
    else:
        hidden = np.tanh(q @ params["query_proj.weight"].T + k @ params["key_proj.weight"].T)
        scores = hidden @ params["v"]
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=0))
    weights /= weights.sum(axis=0)
    return np.einsum("sb,sbh->bh", weights, k), weights.T


# ---------------------------------------------------------------- attention
@pytest.mark.parametrize("kind", KINDS)
def test_attention_weights_sum_to_one_and_vanish_where_masked(kind, device):
    attention, query, keys, mask = attention_inputs(np.random.default_rng(0), kind, device)
    context, weights = attention(query, keys, mask)
    w = weights.numpy()
    assert context.shape == (3, keys.shape[2]) and weights.shape == (3, 7)
    assert np.all(w[~mask.T] == 0.0) and np.all(w[mask.T] > 0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
    _, unmasked = attention(query, keys)
    assert np.all(unmasked.numpy() > 0)
    np.testing.assert_allclose(unmasked.numpy().sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_attention_matches_numpy(kind, device):
    attention, query, keys, mask = attention_inputs(np.random.default_rng(1), kind, device)
    for m in (mask, None):
        context, weights = attention(query, keys, m)
        expected_context, expected_weights = numpy_attention(attention, query.numpy(), keys.numpy(),
                                                             np.ones((7, 3), bool) if m is None else m)
        np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(context.numpy(), expected_context, rtol=1e-12, atol=1e-15)


def test_attention_with_precomputed_keys_is_the_same():
    attention, query, keys, mask = attention_inputs(np.random.default_rng(2), "additive")
    context, weights = attention(query, keys, mask)
    again, weights_again = attention(query, keys, mask, attention.project_keys(keys))
    assert np.array_equal(context.numpy(), again.numpy()) and np.array_equal(weights.numpy(), weights_again.numpy())


@pytest.mark.parametrize("kind", KINDS)
def test_attention_gradcheck(kind):
    attention, query, keys, mask = attention_inputs(np.random.default_rng(3), kind, requires_grad=True)
    params = attention.parameters()
    assert tr.gradcheck(lambda q, k, *_: attention(q, k, mask), [query, keys, *params])


def test_attention_rejects_bad_arguments():
    with pytest.raises(ValueError, match="query_size == key_size"):
        nn.Attention(4, 6, "dot")
    with pytest.raises(ValueError, match="unknown kind"):
        nn.Attention(4, 4, "cosine")
    attention, query, keys, mask = attention_inputs(np.random.default_rng(4), "general")
    with pytest.raises(ValueError, match="mask must have shape"):
        attention(query, keys, mask.T)
    with pytest.raises(ValueError, match="expected query"):
        attention(keys, query)


# ---------------------------------------------------------------- encoder, decoder, model
def small_model(cell="gru", attention="general", **options):
    return nn.Seq2Seq(VOCAB, VOCAB, embed=5, hidden=6, cell=cell, attention=attention, **options)


def test_reversal_task():
    src, tgt, lengths = reversal_task(50, 2, 5, n_digits=4, seed=0)
    assert src.shape == (5, 50) and tgt.shape == (6, 50) and lengths.shape == (50,)
    assert lengths.min() >= 2 and lengths.max() <= 5
    for b, n in enumerate(lengths):
        assert np.all((src[:n, b] >= 3) & (src[:n, b] < 7)) and np.all(src[n:, b] == PAD)
        assert np.array_equal(tgt[:n, b], src[:n, b][::-1]) and tgt[n, b] == EOS and np.all(tgt[n + 1:, b] == PAD)
    assert all(np.array_equal(a, b) for a, b in zip(reversal_task(50, 2, 5, 4, seed=0), (src, tgt, lengths)))


@pytest.mark.parametrize("cell, bidirectional, layers", [("gru", False, 1), ("lstm", True, 2)])
def test_encoder_shapes_and_final_state(cell, bidirectional, layers):
    encoder = nn.Encoder(VOCAB, 5, 6, cell, num_layers=layers, bidirectional=bidirectional, state_size=6)
    src, _, lengths = reversal_task(4, 2, 5, seed=1)
    states, final = encoder(src, lengths)
    d = 2 if bidirectional else 1
    assert states.shape == (5, 4, 6 * d) and final.shape == (4, 6)
    assert (encoder.bridge is not None) == bidirectional
    summary = np.stack([states.numpy()[n - 1, b, :6] for b, n in enumerate(lengths)])
    if bidirectional:
        summary = np.concatenate([summary, states.numpy()[0, :, 6:]], axis=1)
        w, b = encoder.bridge.weight.numpy(), encoder.bridge.bias.numpy()
        summary = np.tanh(summary @ w.T + b)
    np.testing.assert_allclose(final.numpy(), summary, rtol=1e-6)


def test_source_lengths_given_as_a_tensor_or_an_array_mean_the_same():
    src, tgt, given = reversal_task(4, 2, 5, seed=1)
    model = nn.Seq2Seq(VOCAB, VOCAB, 5, 6)
    expected = model(src, tgt, src_lengths=list(given)).numpy()
    for form in (np.asarray(given), tr.Tensor(np.asarray(given))):
        np.testing.assert_array_equal(model(src, tgt, src_lengths=form).numpy(), expected)


def test_dot_attention_after_a_bidirectional_encoder_is_refused_by_name():
    with pytest.raises(ValueError, match=r"Seq2Seq: dot attention .* 2 x 6; use attention='general'"):
        nn.Seq2Seq(VOCAB, VOCAB, 5, 6, attention="dot", bidirectional=True)


@pytest.mark.parametrize("lengths, message", [
    ([0, 3, 5, 5], r"must lie in \[1, 5\].*\[0, 3, 5, 5\]"),    # read as index -1: the last step's state
    ([-1, 3, 5, 5], r"must lie in \[1, 5\]"),
    ([6, 3, 5, 5], r"must lie in \[1, 5\]"),
    ([5, 3, 5], r"4 integers, one per source column, got int64 of shape \(3,\)"),
    ([5.0, 3.0, 5.0, 5.0], r"4 integers, one per source column, got float64"),
], ids=["zero", "negative", "past-the-end", "too-few", "floats"])
def test_source_lengths_are_checked_before_they_index(lengths, message):
    src, _, _ = reversal_task(4, 2, 5, seed=1)
    encoder = nn.Encoder(VOCAB, 5, 6, "gru")
    with pytest.raises(ValueError, match=message):
        encoder(src, lengths)
    model = nn.Seq2Seq(VOCAB, VOCAB, 5, 6)
    with pytest.raises(ValueError, match=message):
        model(src, src[:3], src_lengths=lengths)


@pytest.mark.parametrize("cell, attention, bidirectional", [("gru", "general", False), ("lstm", "additive", True),
                                                            ("gru", "dot", False)])
def test_seq2seq_gradcheck_three_decoder_steps(cell, attention, bidirectional):
    tr.set_default_dtype(np.float64)
    model = nn.Seq2Seq(7, 7, embed=3, hidden=4, cell=cell, attention=attention, bidirectional=bidirectional)
    src, tgt, lengths = reversal_task(3, 1, 3, n_digits=4, seed=2)
    params = model.parameters()  # entries of the larger ones checked along 4 random directions
    assert tr.gradcheck(lambda *_: model(src, tgt, 1.0, lengths), params, max_entries=30, directions=4)


def decode_by_hand(model, src, tgt, lengths, choose):
    """The decoding loop written out: choose(t, logits_t) gives the input tokens of step t + 1."""
    keys, mask, projected, state, context = model.encode(src, lengths)
    prev, logits = np.full(src.shape[1], SOS), []
    for t in range(tgt.shape[0]):
        if t > 0:
            prev = choose(t - 1, logits[-1])
        step, state, context, _ = model.decoder(prev, state, context, keys, mask, projected)
        logits.append(step.numpy())
    return np.stack(logits)


@pytest.mark.parametrize("ratio", [1.0, 0.0, 0.5])
def test_forward_feeds_targets_or_argmax_as_the_coins_say(ratio):
    model = small_model()
    src, tgt, lengths = reversal_task(8, 3, 6, seed=3)
    coins = np.random.default_rng(7)

    def choose(t, logits):
        teacher = ratio == 1.0 or (ratio > 0.0 and coins.random() < ratio)
        return tgt[t] if teacher else logits.argmax(axis=-1)
    expected = decode_by_hand(model, src, tgt, lengths, choose)
    logits = model(src, tgt, ratio, lengths, rng=7)
    assert logits.shape == (7, 8, VOCAB)
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(model(src, tgt, ratio, lengths, rng=7).numpy(), logits.numpy())


def test_teacher_forcing_inputs_do_not_depend_on_predictions():
    """Pushing every prediction to one token shifts the logits by exactly that push when the
    decoder is fed the targets (its states are unchanged); free running feeds the pushed token
    back, so from step 1 on the states and the logits change beyond the push."""
    model = small_model()
    src, tgt, lengths = reversal_task(8, 3, 6, seed=4)
    before = {ratio: model(src, tgt, ratio, lengths).numpy() for ratio in (1.0, 0.0)}
    token = np.bincount(before[0.0].argmax(axis=-1).ravel(), minlength=VOCAB).argmin()  # the rarest guess
    push = np.zeros(VOCAB, np.float32)
    push[token] = 50.0  # every argmax becomes token
    model.decoder.out.bias.data += push
    forced, free = model(src, tgt, 1.0, lengths).numpy(), model(src, tgt, 0.0, lengths).numpy()
    assert np.all(forced.argmax(axis=-1) == token) and np.mean(before[0.0].argmax(axis=-1) != token) > 0.9
    np.testing.assert_allclose(forced, before[1.0] + push, atol=1e-4)
    np.testing.assert_allclose(free[0], before[0.0][0] + push, atol=1e-4)
    assert np.abs(free[1:] - (before[0.0][1:] + push)).max() > 1e-2


def test_greedy_decode_matches_free_running_and_stops_at_eos():
    model = small_model("lstm", "additive")
    src, tgt, lengths = reversal_task(16, 3, 6, seed=5)
    free = model(src, tgt, 0.0, lengths).numpy().argmax(axis=-1)
    tokens, weights = model.greedy_decode(src, tgt.shape[0], lengths)
    steps = tokens.shape[0]
    assert tokens.dtype == np.int64 and weights.shape == (steps, 16, 6)
    for b in range(16):
        ends = np.flatnonzero(free[:steps, b] == EOS)
        n = ends[0] + 1 if ends.size else steps
        assert np.array_equal(tokens[:n, b], free[:n, b]) and np.all(tokens[n:, b] == PAD)
        assert np.all(weights[n:, b] == 0) and np.all(weights[:n, b, lengths[b]:] == 0)
        np.testing.assert_allclose(weights[:n, b].sum(axis=-1), 1.0, rtol=1e-5)
    model.decoder.out.bias.data[EOS] += 100.0
    tokens, weights = model.greedy_decode(src, 10, lengths)
    assert tokens.shape == (1, 16) and np.all(tokens == EOS)


def test_seq2seq_on_a_device_matches_the_cpu(device):
    model = small_model("gru", "additive", bidirectional=True)
    src, tgt, lengths = reversal_task(8, 3, 6, seed=7)
    expected = model(src, tgt, 1.0, lengths).numpy()
    expected_tokens, expected_weights = model.greedy_decode(src, 7, lengths)
    model.to(device)
    np.testing.assert_allclose(model(tr.Tensor(src, device=device), tgt, 1.0, lengths).numpy(), expected,
                               rtol=1e-4, atol=1e-5)
    tokens, weights = model.greedy_decode(src, 7, lengths)
    assert np.array_equal(tokens, expected_tokens)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-4, atol=1e-5)


def test_decoder_steps_are_stamped_with_their_time_step():
    model = small_model()
    src, tgt, lengths = reversal_task(4, 3, 6, seed=6)
    logits = model(src, tgt, 1.0, lengths)
    assert [p.step for p in logits.parents] == list(range(tgt.shape[0]))
    assert all(p.scope == "seq2seq.decoder.out" for p in logits.parents)


# ---------------------------------------------------------------- training
def train(model, steps, lr, batch=64, teacher_forcing_ratio=1.0, seed=0):
    """Adam with a linearly decaying learning rate and gradient clipping on fresh reversal batches."""
    opt = optim.Adam(model.parameters(), lr=lr)
    data = np.random.default_rng(seed)
    for s in range(steps):
        src, tgt, lengths = reversal_task(batch, 3, 6, seed=data)
        logits = model(src, tgt, teacher_forcing_ratio, lengths)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tgt.reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.lr = lr * (1 - s / steps)
        opt.step()
    return loss.item()


def test_training_is_reproducible_to_the_bit():
    def run(seed):
        tr.manual_seed(seed)
        model = small_model("lstm", "additive", bidirectional=True)
        train(model, 3, 1e-2, batch=16, teacher_forcing_ratio=0.5)  # coins from the seeded generator
        return model.state_dict()
    first, second, other = run(11), run(11), run(12)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert not all(np.array_equal(first[k], other[k]) for k in first)


def exact_match(tokens, tgt) -> float:
    """The fraction of columns decoded exactly (every token through eos, then padding)."""
    tokens = np.concatenate([tokens, np.full((tgt.shape[0] - tokens.shape[0], tokens.shape[1]), PAD)])
    return float(np.mean(np.all(tokens == tgt, axis=0)))


def anti_diagonal(weights, lengths) -> float:
    """The fraction of output steps t < L whose attention peaks at source position L - 1 - t."""
    hits = [weights[t, b].argmax() == n - 1 - t for b, n in enumerate(lengths) for t in range(min(n, len(weights)))]
    return float(np.mean(hits))


def test_learns_to_reverse_digit_sequences(capsys):
    tr.manual_seed(0)
    model = nn.Seq2Seq(VOCAB, VOCAB, embed=16, hidden=32, cell="gru", attention="general")
    src, tgt, lengths = reversal_task(500, 3, 6, seed=123)  # held out: training draws from seed 0
    assert exact_match(model.greedy_decode(src, tgt.shape[0], lengths)[0], tgt) < 0.05
    start = time.perf_counter()
    loss = train(model, 250, 2e-2)
    seconds = time.perf_counter() - start
    tokens, weights = model.greedy_decode(src, tgt.shape[0], lengths)
    accuracy, aligned = exact_match(tokens, tgt), anti_diagonal(weights, lengths)
    b = next(b for b in range(500) if lengths[b] == 6 and len(set(src[:6, b])) == 6)
    table = "\n".join(f"  {tokens[t, b] - 3}: " + " ".join(f"{w:.2f}" for w in weights[t, b]) for t in range(6))
    with capsys.disabled():
        print(f"\nreversal: loss {loss:.4f}, exact match {accuracy:.3f}, attention anti-diagonal {aligned:.3f}, "
              f"training {seconds:.1f} s\nattention of {src[:, b] - 3} (rows: output digits; columns: source):\n{table}")
    assert accuracy >= 0.9
    assert aligned >= 0.9  # reversal attends along the anti-diagonal
