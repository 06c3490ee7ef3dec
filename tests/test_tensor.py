"""The Tensor as a Python value: truth, length, iteration, conversion to numbers, comparison with
None, and what it is made from. Each follows PyTorch, where NumPy's fallbacks gave wrong answers
(a Tensor without __bool__ was true whenever it had a row: bool(Tensor([0.]) != Tensor([0.]))
was True)."""
import numpy as np
import pytest

from tinygrad_rnn import Tensor


def test_truth_of_one_element_tensors(device):
    assert not bool(Tensor([0.0], device=device) != Tensor([0.0], device=device))
    assert bool(Tensor(1.0, device=device) < 2.0)
    assert not bool(Tensor([[0.0]], device=device))
    assert bool(Tensor([True], device=device)) and not bool(Tensor([False], device=device))
    loss = (Tensor([0.25, 0.5], requires_grad=True, device=device) ** 2).sum()
    assert "small" == ("small" if loss < 1.0 else "large")  # an `if` on a comparison, as a training loop writes it


@pytest.mark.parametrize("shape", [(2,), (2, 3), (0,)])
def test_truth_of_other_tensors_is_ambiguous(device, shape):
    with pytest.raises(RuntimeError, match=rf"truth value of a tensor of shape \({shape[0]},.*ambiguous"):
        bool(Tensor(np.zeros(shape), device=device))


def test_length_and_iteration_follow_the_first_axis(device):
    x = Tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True, device=device)
    assert len(x) == 3
    rows = list(x)
    assert [r.tolist() for r in rows] == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    (rows[0] * 1.0 + rows[2] * 3.0).sum().backward()  # the rows are nodes of the graph
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]])


def test_a_0d_tensor_has_no_length_and_cannot_be_iterated(device):
    x = Tensor(1.0, device=device)
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(x)
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(x)


def test_float_and_int_of_one_element(device):
    assert float(Tensor([2.5], device=device)) == 2.5 and isinstance(float(Tensor(2.5, device=device)), float)
    assert int(Tensor(3.75, device=device)) == 3
    with pytest.raises(ValueError, match="one-element"):
        float(Tensor([1.0, 2.0], device=device))


def test_comparison_with_none_is_false_or_true(device):
    x = Tensor([1.0, 2.0], device=device)
    assert (x == None) is False  # noqa: E711 (the operator itself is under test)
    assert (x != None) is True  # noqa: E711


@pytest.mark.parametrize("data", ["abc", ["a", "b"], b"xy", np.array(["2026-12-01"], dtype="datetime64[D]")],
                         ids=["str", "list-of-str", "bytes", "datetime"])
def test_non_numeric_data_is_refused(device, data):
    with pytest.raises(TypeError, match="cannot make a tensor from .* numbers"):
        Tensor(data, device=device)
