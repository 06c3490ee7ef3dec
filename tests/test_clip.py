"""Gradient clipping: clip_grad_norm_ (total norm, rescaling, norm types, non-finite norms) and
clip_grad_value_, against NumPy and, when installed, torch.nn.utils."""
import math

import numpy as np
import pytest

from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.nn.utils import clip_grad_norm_, clip_grad_value_
from conftest import host

SHAPES = [(3, 4), (5,), (2, 2, 3)]



def make_params(device, scale=1.0, seed=0, dtype=np.float64):
    """Parameters with gradients set; returns (params, the gradients as NumPy arrays)."""
    rng = np.random.default_rng(seed)
    params, grads = [], []
    for shape in SHAPES:
        p = nn.Parameter(rng.normal(size=shape).astype(dtype), device=device)
        g = (scale * rng.normal(size=shape)).astype(dtype)
        p.grad = Tensor(g, device=device)
        params.append(p)
        grads.append(g)
    return params, grads


def numpy_norm(grads, norm_type) -> float:
    return float(np.linalg.norm(np.concatenate([g.astype(np.float64).ravel() for g in grads]), ord=norm_type))


# ---------------------------------------------------------------- clip_grad_norm_
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf], ids=["l2", "l1", "inf"])
def test_norm_above_max_is_returned_and_grads_rescaled_to_max_norm(device, norm_type):
    params, grads = make_params(device, scale=10.0)
    before = numpy_norm(grads, norm_type)
    max_norm = before / 7.0
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(before, rel=1e-12)  # the norm before clipping
    after = [host(p.grad) for p in params]
    assert numpy_norm(after, norm_type) == pytest.approx(max_norm, rel=1e-6)
    # one common factor for every gradient: the direction is kept
    factor = max_norm / (before + 1e-6)
    for g_after, g in zip(after, grads):
        np.testing.assert_allclose(g_after, g * factor, rtol=1e-12)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf], ids=["l2", "l1", "inf"])
@pytest.mark.parametrize("ratio", [2.0, 1.0 + 1e-3])
def test_norm_below_max_leaves_grads_untouched(device, norm_type, ratio):
    params, grads = make_params(device)
    before = numpy_norm(grads, norm_type)
    total = clip_grad_norm_(params, before * ratio, norm_type=norm_type)
    assert total == pytest.approx(before, rel=1e-12)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(host(p.grad), g)


def test_norm_of_float32_grads_is_accumulated_in_float64(device):
    params, grads = make_params(device, dtype=np.float32)
    total = clip_grad_norm_(params, 1e-3)
    assert total == pytest.approx(numpy_norm(grads, 2.0), rel=1e-12)
    assert all(p.grad.dtype == np.float32 for p in params)
    assert numpy_norm([host(p.grad) for p in params], 2.0) == pytest.approx(1e-3, rel=1e-5)


def test_parameters_without_grad_are_ignored(device):
    params, grads = make_params(device, scale=5.0)
    bystander = nn.Parameter(np.ones((4, 4)), device=device)
    total = clip_grad_norm_(params[:1] + [bystander] + params[1:], 1.0)
    assert total == pytest.approx(numpy_norm(grads, 2.0), rel=1e-12)
    assert bystander.grad is None
    assert numpy_norm([host(p.grad) for p in params], 2.0) == pytest.approx(1.0, rel=1e-6)


def test_no_grads_at_all_gives_zero_norm(device):
    params = [nn.Parameter(np.ones(3), device=device)]
    assert clip_grad_norm_(params, 1.0) == 0.0
    assert params[0].grad is None


def test_a_single_parameter_is_accepted(device):
    params, grads = make_params(device, scale=10.0)
    total = clip_grad_norm_(params[0], 0.5)
    assert total == pytest.approx(np.linalg.norm(grads[0]), rel=1e-12)
    assert np.linalg.norm(host(params[0].grad)) == pytest.approx(0.5, rel=1e-6)
    np.testing.assert_array_equal(host(params[1].grad), grads[1])  # not passed, not touched


def test_a_generator_of_parameters_is_accepted(device):
    params, grads = make_params(device, scale=10.0)
    total = clip_grad_norm_((p for p in params), 1.0)
    assert total == pytest.approx(numpy_norm(grads, 2.0), rel=1e-12)
    assert numpy_norm([host(p.grad) for p in params], 2.0) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("norm_type", [2.0, math.inf], ids=["l2", "inf"])
def test_error_if_nonfinite_raises_naming_the_norm(device, bad, norm_type):
    params, grads = make_params(device)
    poisoned = grads[1].copy()
    poisoned[2] = bad
    params[1].grad = Tensor(poisoned, device=device)
    with pytest.raises(RuntimeError, match=r"total gradient norm is (nan|inf)"):
        clip_grad_norm_(params, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    for p, g in zip(params, [grads[0], poisoned, grads[2]]):  # nothing was rescaled
        np.testing.assert_array_equal(host(p.grad), g)


def test_nonfinite_norm_without_error_flag_is_returned(device):
    params, grads = make_params(device)
    poisoned = grads[0].copy()
    poisoned[0, 0] = np.nan
    params[0].grad = Tensor(poisoned, device=device)
    assert math.isnan(clip_grad_norm_(params, 1.0))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0])
def test_a_finite_norm_too_large_to_square_is_finite(device, norm_type):
    """Gradients of 1e200 have a finite 2-norm though their squares overflow: the largest entry is
    factored out first (and no overflow warning is raised, which the suite would fail on)."""
    p = nn.Parameter(np.zeros(4), device=device)
    p.grad = Tensor(np.full(4, 1e200), device=device)
    total = clip_grad_norm_([p], 1.0, norm_type=norm_type)
    assert total == pytest.approx(4 ** (1 / norm_type) * 1e200, rel=1e-12)
    np.testing.assert_allclose(host(p.grad), np.full(4, 4 ** (-1 / norm_type)), rtol=1e-5)


def test_negative_max_norm_is_rejected():
    params, _ = make_params("cpu")
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm must be non-negative, got -1.0"):
        clip_grad_norm_(params, -1.0)


def test_zero_max_norm_zeroes_the_gradients(device):
    """As PyTorch: the coefficient max_norm / (n + 1e-6) is 0."""
    params, grads = make_params(device)
    assert clip_grad_norm_(params, 0.0) == pytest.approx(numpy_norm(grads, 2), rel=1e-12)
    assert all(not np.any(host(p.grad)) for p in params)


def test_the_norm_type_may_be_the_string_inf(device):
    params, grads = make_params(device, scale=3.0)
    assert clip_grad_norm_(params, 0.5, norm_type="inf") == pytest.approx(numpy_norm(grads, math.inf), rel=1e-12)
    assert numpy_norm([host(p.grad) for p in params], math.inf) == pytest.approx(0.5, rel=1e-5)


def test_norm_type_0_counts_the_non_zero_entries(device):
    params, grads = make_params(device)
    params[0].grad.data[0] = 0
    count = sum(int(np.count_nonzero(host(p.grad))) for p in params)
    assert clip_grad_norm_(params, 1e9, norm_type=0) == count


@pytest.mark.parametrize("norm_type", [-1.0, "l2", None])
def test_what_is_no_norm_is_rejected(norm_type):
    params, _ = make_params("cpu")
    with pytest.raises(ValueError, match="clip_grad_norm_: norm_type must be"):
        clip_grad_norm_(params, 1.0, norm_type=norm_type)


# ---------------------------------------------------------------- clip_grad_value_
@pytest.mark.parametrize("clip_value", [0.0, 0.5, 2.0, 100.0])
def test_clip_grad_value_clamps_every_entry(device, clip_value):
    params, grads = make_params(device, scale=2.0)
    bystander = nn.Parameter(np.ones(2), device=device)
    assert clip_grad_value_(params + [bystander], clip_value) is None
    assert bystander.grad is None
    for p, g in zip(params, grads):
        got = host(p.grad)
        np.testing.assert_array_equal(got, np.minimum(np.maximum(g, -clip_value), clip_value))
        assert np.abs(got).max() <= clip_value
    if clip_value == 0.5:  # not vacuous: some entries were inside, some outside
        every = np.concatenate([g.ravel() for g in grads])
        assert (np.abs(every) < 0.5).any() and (np.abs(every) > 0.5).any()


def test_clip_grad_value_rejects_negative_values():
    params, _ = make_params("cpu")
    with pytest.raises(ValueError, match="clip_value must be non-negative"):
        clip_grad_value_(params, -1.0)


# ---------------------------------------------------------------- live PyTorch
@pytest.mark.torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, "inf"], ids=["l2", "l1", "l3", "inf", "inf-str"])
@pytest.mark.parametrize("max_norm", [0.5, 1e6, 0.0], ids=["clipped", "unclipped", "zero"])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    params, grads = make_params("cpu", scale=3.0)
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    t_params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(t_params, grads):
        tp.grad = torch.tensor(g)
    t_total = torch.nn.utils.clip_grad_norm_(t_params, max_norm, norm_type=norm_type, foreach=False)
    assert total == pytest.approx(t_total.item(), rel=1e-12)
    for p, tp in zip(params, t_params):
        np.testing.assert_allclose(host(p.grad), tp.grad.numpy(), rtol=1e-12, atol=0)


@pytest.mark.torch
def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    params, grads = make_params("cpu", scale=2.0)
    clip_grad_value_(params, 0.7)
    t_params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(t_params, grads):
        tp.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(t_params, 0.7)
    for p, tp in zip(params, t_params):
        np.testing.assert_array_equal(host(p.grad), tp.grad.numpy())
