"""The course's other recurrent designs: leaky units, output-to-hidden recurrence, teacher forcing."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn, optim
from tinygrad_rnn import functional as F


def f64(*shape, requires_grad=False):
    return tr.randn(*shape, dtype=np.float64, requires_grad=requires_grad)


# ---------------------------------------------------------------- leaky units
def test_leaky_with_alpha_one_is_the_elman_rnn():
    leaky = nn.LeakyRNN(3, 5, alpha=1.0, dtype=np.float64)
    elman = nn.RNN(3, 5, dtype=np.float64)
    elman.load_state_dict({f"{k.split('.')[-1]}_l0": v for k, v in leaky.state_dict().items()})
    x = f64(6, 2, 3)
    np.testing.assert_allclose(leaky(x)[0].numpy(), elman(x)[0].numpy(), rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_leaky_state_decays_by_one_minus_alpha_when_the_drive_is_zero(alpha):
    """With zero weights and biases tanh(...) = 0, so h_t = (1 - alpha)^(t+1) h_0 exactly."""
    model = nn.LeakyRNN(2, 4, alpha=alpha, dtype=np.float64)
    for p in model.parameters():
        nn.init.zeros_(p)
    h0 = f64(1, 3, 4)
    output, _ = model(f64(5, 3, 2), h0)
    expected = np.stack([(1 - alpha) ** (t + 1) * h0.numpy()[0] for t in range(5)])
    np.testing.assert_allclose(output.numpy(), expected, rtol=1e-12)


def test_leaky_gradients_including_a_learned_time_constant():
    model = nn.LeakyRNN(3, 4, alpha=[0.2, 0.4, 0.6, 0.8], learn_alpha=True, dtype=np.float64)
    x = f64(5, 2, 3, requires_grad=True)
    h0 = f64(1, 2, 4, requires_grad=True)
    params = [model.cell.weight_hh, model.alpha_logit]
    assert tr.gradcheck(lambda x, h0, *p: model(x, h0)[0], [x, h0, *params])
    np.testing.assert_allclose(model.alpha.numpy(), [0.2, 0.4, 0.6, 0.8], rtol=1e-12)


def test_leaky_alpha_follows_the_weights_to_their_dtype_and_device(device):
    """A fixed alpha is no Parameter, so .to() did not move it: it stayed float32 after .double()
    (and would have stayed on the CPU after .to('cuda'))."""
    model = nn.LeakyRNN(2, 3, alpha=[0.25, 0.5, 0.75]).double().to(device)
    assert model.alpha.dtype == np.float64 and model.alpha.device == model.cell.weight_hh.device
    np.testing.assert_array_equal(model.alpha.numpy(), [0.25, 0.5, 0.75])
    output, _ = model(tr.randn(4, 2, 2, dtype=np.float64, device=device))
    assert output.dtype == np.float64


def test_leaky_rejects_bad_alpha_and_shapes():
    with pytest.raises(ValueError, match="alpha must lie in"):
        nn.LeakyRNN(2, 3, alpha=1.5)
    with pytest.raises(ValueError, match=r"one number or one per unit \(5\), got shape \(3,\)"):
        nn.LeakyRNN(2, 5, alpha=[0.5] * 3)
    model = nn.LeakyRNN(2, 3)
    with pytest.raises(ValueError, match=r"h_0 must have shape \(1, 4, 3\)"):
        model(tr.randn(5, 4, 2), tr.randn(1, 2, 3))


# ---------------------------------------------------------------- output-to-hidden recurrence
def test_teacher_forcing_decouples_the_steps():
    """Under full teacher forcing h_t sees only x_t and the true y_{t-1}: changing x_0 changes o_0
    alone; running free, the change travels through the fed-back outputs to every later step."""
    model = nn.OutputFeedbackRNN(3, 6, 2, dtype=np.float64)
    x, targets = f64(5, 2, 3), np.random.default_rng(0).standard_normal((5, 2, 2))
    changed = tr.Tensor(x.numpy().copy())
    changed.data[0] += 1.0
    forced = model(x, targets, 1.0).numpy(), model(changed, targets, 1.0).numpy()
    free = model(x).numpy(), model(changed).numpy()
    assert not np.allclose(forced[0][0], forced[1][0])
    np.testing.assert_array_equal(forced[0][1:], forced[1][1:])
    assert all(not np.allclose(free[0][t], free[1][t]) for t in range(5))


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_ratios_one_and_zero_draw_no_coins(ratio):
    """As Seq2Seq: always or never forcing leaves the seeded generator where it was."""
    model = nn.OutputFeedbackRNN(3, 4, 2, dtype=np.float64)
    x, y = tr.randn(6, 2, 3, dtype=np.float64), tr.randn(6, 2, 2, dtype=np.float64)
    tr.manual_seed(5)
    model(x, targets=y, teacher_forcing_ratio=ratio)
    after = tr.randn(3).numpy()
    tr.manual_seed(5)
    np.testing.assert_array_equal(after, tr.randn(3).numpy())


def test_coins_from_a_seed_repeat():
    model = nn.OutputFeedbackRNN(3, 4, 2, dtype=np.float64)
    x, y = tr.randn(8, 2, 3, dtype=np.float64), tr.randn(8, 2, 2, dtype=np.float64)
    first, second = (model(x, targets=y, teacher_forcing_ratio=0.5, rng=7).numpy() for _ in range(2))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, model(x, targets=y, teacher_forcing_ratio=1.0).numpy())


def test_teacher_signal_is_the_previous_target():
    model = nn.OutputFeedbackRNN(2, 4, 3, dtype=np.float64)
    x, targets = f64(4, 1, 2), np.random.default_rng(1).standard_normal((4, 1, 3))
    shifted = targets.copy()
    shifted[2] += 1.0  # only o_3 is fed targets[2]
    a, b = model(x, targets, 1.0).numpy(), model(x, shifted, 1.0).numpy()
    np.testing.assert_array_equal(a[:3], b[:3])
    assert not np.allclose(a[3], b[3])


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_feedback_gradients_through_both_paths(kind):
    model = nn.OutputFeedbackRNN(3, 4, 3, kind=kind, dtype=np.float64)
    rng = np.random.default_rng(2)
    targets = rng.integers(0, 3, (4, 2)) if kind == "classification" else rng.standard_normal((4, 2, 3))
    x = f64(4, 2, 3, requires_grad=True)
    for ratio in (0.0, 0.5, 1.0):
        assert tr.gradcheck(lambda x, w: model(x, targets, ratio, rng=np.random.default_rng(3)),
                            [x, model.weight_yh])


def test_teacher_forced_training_generates_free_running():
    """Counting mod K: x_0 holds a start symbol s (one-hot), the target is y_t = (s + t) mod K.
    Trained with teacher forcing only, the model must then generate whole sequences on its own."""
    tr.manual_seed(0)
    K, T, B = 5, 8, 32
    rng = np.random.default_rng(0)

    def batch():
        start = rng.integers(0, K, B)
        x = np.zeros((T, B, K))
        x[0, np.arange(B), start] = 1.0
        return tr.Tensor(x, dtype=np.float32), (start[None, :] + np.arange(T)[:, None]) % K

    model = nn.OutputFeedbackRNN(K, 24, K, kind="classification")
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        x, y = batch()
        loss = F.cross_entropy(model(x, y, 1.0).reshape(T * B, K), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch()
    with tr.no_grad():
        generated = model(x).numpy().argmax(axis=-1)  # no targets: free running
    assert (generated == y).mean() >= 0.95


def test_feedback_rejects_bad_targets():
    model = nn.OutputFeedbackRNN(2, 3, 4, kind="classification")
    with pytest.raises(ValueError, match=r"class targets must have shape \(T, B\) = \(5, 2\)"):
        model(tr.randn(5, 2, 2), np.zeros((5, 3), dtype=np.int64))
    for bad in (7, -1):  # -1 would have been fed back as the last class's one-hot vector
        with pytest.raises(ValueError, match=r"class targets must be integers in \[0, 4\)"):
            model(tr.randn(5, 2, 2), np.full((5, 2), bad))
    with pytest.raises(ValueError, match="got float64"):
        model(tr.randn(5, 2, 2), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="kind must be one of"):
        nn.OutputFeedbackRNN(2, 3, 4, kind="ranking")
