"""The losses of functional.py against their formulas in NumPy, their gradients against finite
differences (float64), PyTorch's when it is installed, and their errors on bad targets.

cross_entropy(x, y) = mean over the scored positions of -log_softmax(x)[n, y_n], the class
axis 1 (or 0 for one sample); positions whose target is ignore_index are not scored, and a
mask weights each position (the mean divides by the sum of the weights).
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import Tensor, functional as F

RNG = np.random.default_rng(0)


def log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def reference_cross_entropy(x, y, ignore_index=-100, reduction="mean", weights=None):
    """The formula, with the class axis 1 ((N, C, d1, ...)) or 0 (one sample of shape (C,))."""
    logp = log_softmax(x, 0 if x.ndim == 1 else 1)
    if x.ndim == 1:
        logp, y = logp[None], np.asarray(y)[None]
    picked = np.take_along_axis(logp, np.where(y == ignore_index, 0, y)[:, None], axis=1)[:, 0]
    kept = (y != ignore_index).astype(np.float64)
    if weights is not None:
        kept = kept * weights
    losses = -picked * kept
    if reduction == "none":
        return losses.reshape(np.shape(y) if x.ndim > 1 else ())
    return losses.sum() if reduction == "sum" else losses.sum() / kept.sum()


CASES = {
    # name: (logits shape, targets of the positions (None: random), keyword arguments)
    "(N, C)": ((6, 5), None, {}),
    "(N, C), sum": ((6, 5), None, {"reduction": "sum"}),
    "(N, C), none": ((6, 5), None, {"reduction": "none"}),
    "(N, C), ignore_index": ((6, 5), [0, 4, -100, 2, -100, 1], {}),
    "(N, C), ignore_index 3": ((6, 5), [3, 4, 3, 2, 0, 1], {"ignore_index": 3}),
    "(N, C, d)": ((4, 3, 5), None, {}),
    "(C,)": ((7,), 2, {}),
}


def case(name):
    shape, targets, kwargs = CASES[name]
    x = RNG.standard_normal(shape) * 3
    if targets is None:
        targets = RNG.integers(0, shape[1], size=(shape[0],) + shape[2:])
    return x, np.asarray(targets), kwargs


@pytest.mark.parametrize("name", sorted(CASES))
def test_cross_entropy_is_its_formula(device, name):
    x, y, kwargs = case(name)
    logits = Tensor(x, dtype=np.float64, device=device, requires_grad=True)
    loss = F.cross_entropy(logits, Tensor(y, device=device), **kwargs)
    expected = reference_cross_entropy(x, y, **kwargs)
    assert loss.shape == np.shape(expected)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert tr.gradcheck(lambda t: F.cross_entropy(t, Tensor(y, device=device), **kwargs), [logits])


@pytest.mark.parametrize("name", sorted(CASES))
def test_nll_loss_of_log_softmax_is_cross_entropy(device, name):
    x, y, kwargs = case(name)
    logits = Tensor(x, dtype=np.float64, device=device)
    log_probs = tr.ops.log_softmax(logits, 0 if x.ndim == 1 else 1)
    np.testing.assert_allclose(F.nll_loss(log_probs, y, **kwargs).numpy(),
                               F.cross_entropy(logits, y, **kwargs).numpy(), rtol=1e-12, atol=1e-12)


def test_a_mask_weights_the_positions_and_the_mean(device):
    x, y = RNG.standard_normal((3, 4, 5)), RNG.integers(0, 4, size=(3, 5))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    logits = Tensor(x, dtype=np.float64, device=device, requires_grad=True)
    loss = F.cross_entropy(logits, y, mask=mask)
    expected = reference_cross_entropy(x.transpose(0, 2, 1).reshape(15, 4), y.reshape(-1),
                                       weights=mask.reshape(-1).astype(np.float64))
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)
    assert tr.gradcheck(lambda t: F.cross_entropy(t, y, mask=mask), [logits])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_is_its_formula(device, reduction):
    a, b = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    x = Tensor(a, dtype=np.float64, device=device, requires_grad=True)
    squares = (a - b) ** 2
    expected = {"mean": squares.mean(), "sum": squares.sum(), "none": squares}[reduction]
    np.testing.assert_allclose(F.mse_loss(x, Tensor(b, device=device), reduction=reduction).numpy(),
                               expected, rtol=1e-12)
    assert tr.gradcheck(lambda t: F.mse_loss(t, Tensor(b, device=device), reduction=reduction).sum(), [x])


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(CASES))
def test_cross_entropy_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    x, y, kwargs = case(name)
    ours = Tensor(x, dtype=np.float64, requires_grad=True)
    loss = F.cross_entropy(ours, y, **kwargs)
    loss.sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(theirs, torch.tensor(y), **kwargs)
    expected.sum().backward()
    np.testing.assert_allclose(loss.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("bad", [5, -1, 7], ids=["C", "-1", "C + 2"])
def test_a_class_index_out_of_range_is_an_error_naming_the_loss(device, fn, bad):
    """-1 too: NumPy would read it as the last class, a silent wrong loss."""
    x = Tensor(np.zeros((3, 5)), device=device)
    with pytest.raises(IndexError, match=rf"^{fn}: class indices must lie in \[0, 5\).*from -?\d+ to {max(bad, 2)}"):
        getattr(F, fn)(x, np.array([0, bad, 2]))


def test_ignored_positions_may_hold_any_value_but_ignore_index(device):
    x = Tensor(np.zeros((3, 5)), device=device)
    assert np.isfinite(F.cross_entropy(x, np.array([0, -100, 2])).item())
    with pytest.raises(IndexError, match="cross_entropy"):
        F.cross_entropy(x, np.array([0, -100, 2]), ignore_index=-1)


def test_float_targets_and_wrong_target_shapes_are_errors_naming_the_loss(device):
    x = Tensor(np.zeros((3, 5)), device=device)
    with pytest.raises(TypeError, match=r"^cross_entropy: expected integer .* got dtype float"):
        F.cross_entropy(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"^nll_loss: input of shape \(3, 5\) .* needs a target of shape \(3,\)"):
        F.nll_loss(x, np.array([0, 1]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_an_ignored_position_with_a_minus_inf_log_probability_adds_nothing(reduction):
    """An ignored position reads class 0 in its target's place; where that log-probability is
    -inf, multiplying it by its weight 0 gave NaN (and a warning) instead of nothing."""
    x = RNG.standard_normal((3, 4))
    x[1, 0] = -np.inf
    logits = Tensor(x, dtype=np.float64, requires_grad=True)
    loss = F.cross_entropy(logits, [1, -100, 2], reduction=reduction)
    expected = reference_cross_entropy(np.where(np.isinf(x), 0.0, x), np.array([1, -100, 2]), reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)
    loss.sum().backward()
    assert np.all(np.isfinite(logits.grad.numpy())) and not np.any(logits.grad.numpy()[1])
    # a position masked out (weight 0) whose target's log-probability is -inf adds nothing either
    log_probs = Tensor([[-np.inf, np.log(0.5), np.log(0.5)], [np.log(0.25), np.log(0.25), np.log(0.5)]],
                       dtype=np.float64)
    masked = F.nll_loss(log_probs, [0, 0], mask=np.array([0.0, 1.0]), reduction=reduction)
    np.testing.assert_allclose(masked.numpy(), {"none": [0.0, np.log(4.0)]}.get(reduction, np.log(4.0)), rtol=1e-15)


def test_the_mean_over_no_scored_position_is_zero():
    """Documented: PyTorch's is 0/0 (NaN); a batch of padding adds nothing to a training loss."""
    logits = Tensor(RNG.standard_normal((3, 4)), dtype=np.float64, requires_grad=True)
    loss = F.cross_entropy(logits, [-100, -100, -100])
    assert loss.item() == 0.0
    loss.backward()
    np.testing.assert_array_equal(logits.grad.numpy(), np.zeros((3, 4)))


@pytest.mark.parametrize("wrap", [np.asarray, Tensor], ids=["ndarray", "Tensor"])
def test_mse_loss_refuses_a_target_of_another_shape(wrap):
    """(3, 1) against (3,) would broadcast to 9 pairs: an array target is refused as a Tensor is."""
    with pytest.raises(ValueError, match=r"input has shape \(3, 1\) but target has shape \(3,\)"):
        F.mse_loss(Tensor(np.zeros((3, 1))), wrap(np.zeros(3)))



@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_ignores_an_inf_or_nan_where_the_mask_is_zero(device, reduction):
    """As cross_entropy's mask does: a masked position adds nothing, whatever it holds (its
    squared error times 0 was 0 * inf = NaN)."""
    x = Tensor([np.inf, 1.0, np.nan, 2.0], requires_grad=True, dtype=np.float64, device=device)
    loss = F.mse_loss(x, np.zeros(4), reduction=reduction, mask=[0, 1, 0, 1])
    expected = {"mean": 2.5, "sum": 5.0, "none": [0.0, 1.0, 0.0, 4.0]}[reduction]
    np.testing.assert_array_equal(loss.numpy(), expected)
    loss.sum().backward()
    scale = 0.5 if reduction == "mean" else 1.0
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 2.0 * scale, 0.0, 4.0 * scale])
