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
