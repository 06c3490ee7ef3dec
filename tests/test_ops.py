"""Every primitive op: forward against NumPy, gradient against finite differences (float64).

Shapes (and values) are drawn by hypothesis; every test runs once per backend through the
`device` fixture. Values are drawn away from the points where an op is not differentiable
(0 for relu/abs, the bounds for clip, ties for max) so that finite differences are valid.
"""
import operator

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import tinygrad_rnn as tr
from tinygrad_rnn import Tensor, ops

# The `device` fixture only returns a string, so sharing it across hypothesis examples is safe.
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SMALL_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
NONEMPTY_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


# ---------------------------------------------------------------- helpers
def floats_in(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def away_from_zero(lo=0.3, hi=2.0):
    """Floats with lo <= |x| <= hi: keeps kinks (0) and poles (1/0) out of finite differences."""
    return st.one_of(floats_in(-hi, -lo), floats_in(lo, hi))


ANY = floats_in(-2.0, 2.0)
POSITIVE = floats_in(0.3, 2.0)
NONZERO = away_from_zero()


def values(shape, elements=ANY, unique=False):
    return hnp.arrays(np.float64, shape, elements=elements, unique=unique)


def leaf(array, device, dtype=np.float64, requires_grad=True):
    return Tensor(np.asarray(array), dtype=dtype, device=device, requires_grad=requires_grad)


def assert_matches(actual, expected, rtol=1e-12, atol=1e-12):
    """A Tensor equals a NumPy reference in shape and (to rounding) in value."""
    assert isinstance(actual, Tensor), f"expected a Tensor, got {type(actual).__name__}"
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != reference {expected.shape}"
    np.testing.assert_allclose(actual.numpy(), expected, rtol=rtol, atol=atol)


def check_op(fn, reference, arrays, device, grad=True):
    """fn on float64 leaves matches reference on the arrays, and its gradient passes gradcheck."""
    tensors = [leaf(a, device) for a in arrays]
    result = fn(*tensors)
    expected = reference(*arrays)
    if isinstance(expected, (tuple, list)):
        assert len(result) == len(expected)
        for r, e in zip(result, expected):
            assert_matches(r, e)
    else:
        assert_matches(result, expected)
    if grad:
        assert tr.gradcheck(fn, tensors)


def slice_along(array, axis, start, stop):
    return array[(slice(None),) * (axis % array.ndim) + (slice(start, stop),)]


# ---------------------------------------------------------------- binary ops
BINARY = {
    # name: (operator, numpy reference, domain of the left operand, domain of the right operand)
    "add": (operator.add, np.add, ANY, ANY),
    "sub": (operator.sub, np.subtract, ANY, ANY),
    "mul": (operator.mul, np.multiply, ANY, ANY),
    "div": (operator.truediv, np.divide, ANY, NONZERO),
    "pow": (operator.pow, np.power, POSITIVE, ANY),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@FAST
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_binary_op_with_broadcasting(device, name, data, shapes):
    op, reference, left, right = BINARY[name]
    a = data.draw(values(shapes.input_shapes[0], left))
    b = data.draw(values(shapes.input_shapes[1], right))
    check_op(op, reference, [a, b], device)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_op_broadcasts_both_operands(device, name):
    """(3, 1) with (2, 1, 4): each side is expanded along an axis the other one has."""
    op, reference, _, _ = BINARY[name]
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2.0, size=(3, 1))
    b = rng.uniform(0.5, 2.0, size=(2, 1, 4))
    check_op(op, reference, [a, b], device)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_op_names_shapes_that_do_not_broadcast(device, name):
    a, b = leaf(np.ones((3, 4)), device), leaf(np.ones((5, 6)), device)
    with pytest.raises(ValueError, match=rf"^{name}: shapes \(3, 4\) and \(5, 6\) do not broadcast.*reshape"):
        BINARY[name][0](a, b)


def test_where_and_comparisons_name_shapes_that_do_not_broadcast(device):
    a, b = leaf(np.ones((3, 4)), device), leaf(np.ones((5,)), device)
    with pytest.raises(ValueError, match=r"^where: shapes \(3, 4\) and \(3, 4\) and \(5,\) do not broadcast"):
        tr.where(a > 0, a, b)
    with pytest.raises(ValueError, match=r"^lt: shapes \(3, 4\) and \(5,\) do not broadcast"):
        a < b


SCALAR_CASES = {
    # name: (tensor-side function, NumPy reference, domain of the tensor's values)
    "tensor + scalar": (lambda t: t + 2.5, lambda x: x + 2.5, ANY),
    "scalar + tensor": (lambda t: 2.5 + t, lambda x: 2.5 + x, ANY),
    "tensor - scalar": (lambda t: t - 2.5, lambda x: x - 2.5, ANY),
    "scalar - tensor": (lambda t: 2.5 - t, lambda x: 2.5 - x, ANY),
    "tensor * scalar": (lambda t: t * -1.5, lambda x: x * -1.5, ANY),
    "scalar * tensor": (lambda t: -1.5 * t, lambda x: -1.5 * x, ANY),
    "tensor / scalar": (lambda t: t / 4.0, lambda x: x / 4.0, ANY),
    "scalar / tensor": (lambda t: 2.0 / t, lambda x: 2.0 / x, NONZERO),
    "tensor ** float": (lambda t: t ** 2.5, lambda x: x ** 2.5, POSITIVE),
    "tensor ** int": (lambda t: t ** 3, lambda x: x ** 3, ANY),
    "tensor ** negative": (lambda t: t ** -2, lambda x: x ** -2.0, NONZERO),
    "scalar ** tensor": (lambda t: 2.0 ** t, lambda x: 2.0 ** x, ANY),
    "int scalar + tensor": (lambda t: 3 + t, lambda x: 3 + x, ANY),
}


@pytest.mark.parametrize("case", sorted(SCALAR_CASES))
@FAST
@given(data=st.data(), shape=SMALL_SHAPES)
def test_python_scalar_operands(device, case, data, shape):
    fn, reference, domain = SCALAR_CASES[case]
    check_op(fn, reference, [data.draw(values(shape, domain))], device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scalar", [2.0, 2, np.float64(2.0)], ids=["float", "int", "np.float64"])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_python_scalars_never_change_the_dtype(device, dtype, scalar, name):
    op = BINARY[name][0]
    t = Tensor([0.5, 1.0, 1.5], dtype=dtype, device=device, requires_grad=True)
    for result in (op(t, scalar), op(scalar, t)):
        assert result.dtype == np.dtype(dtype)
        result.sum().backward()
        assert t.grad.dtype == np.dtype(dtype)


@pytest.mark.parametrize("tensor, values, expected", [
    ([1, 2], [0.5, 1.5], [1.5, 3.5]),          # floats beside integers: promoted, not truncated to [1, 3]
    ([True, False], 1, [2, 1]),                 # a number beside booleans: counted, not squeezed to True
    ([True, False], [3, 3], [4, 3]),
    ([1, 2], 2, [3, 4]),                        # integers beside integers keep the tensor's dtype
], ids=["int+float-list", "bool+int", "bool+int-list", "int+int"])
def test_numbers_that_would_truncate_are_promoted(device, tensor, values, expected):
    t = Tensor(tensor, device=device)
    for result in (t + values, values + t):
        assert result.tolist() == expected
    assert (t + values).dtype == np.result_type(np.asarray(tensor), np.asarray(values))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lists_of_numbers_take_a_floating_tensors_dtype(device, dtype):
    t = Tensor([0.5, 1.0], dtype=dtype, device=device)
    assert (t + [1, 2]).dtype == np.dtype(dtype) and ([0.25, 0.5] * t).dtype == np.dtype(dtype)


def test_device_arrays_are_operands_on_either_side(device):
    from tinygrad_rnn import backend
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([0.5, -1.0])
    t = leaf(x, device)
    other = backend.to_device(y, backend.normalize_device(device))
    assert_matches(t + other, x + y)
    assert_matches(other - t, y - x)
    assert_matches(other * t, y * x)
    assert_matches(t @ other, x @ y)


# ---------------------------------------------------------------- matmul
MATMUL_SHAPES = {
    # name: (shape of a, shape of b) as functions of (n, k, m, batch_a, batch_b)
    "vec @ vec": lambda n, k, m, ba, bb: ((k,), (k,)),
    "vec @ mat": lambda n, k, m, ba, bb: ((k,), (k, m)),
    "mat @ vec": lambda n, k, m, ba, bb: ((n, k), (k,)),
    "mat @ mat": lambda n, k, m, ba, bb: ((n, k), (k, m)),
    "batched with broadcast batch axes": lambda n, k, m, ba, bb: (ba + (n, k), bb + (k, m)),
    "vec @ batched": lambda n, k, m, ba, bb: ((k,), bb + (k, m)),
    "batched @ vec": lambda n, k, m, ba, bb: (ba + (n, k), (k,)),
}


@pytest.mark.parametrize("case", sorted(MATMUL_SHAPES))
@FAST
@given(data=st.data(), sizes=st.tuples(*[st.integers(1, 4)] * 3),
       batches=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3))
def test_matmul(device, case, data, sizes, batches):
    shape_a, shape_b = MATMUL_SHAPES[case](*sizes, *batches.input_shapes)
    a, b = data.draw(values(shape_a)), data.draw(values(shape_b))
    check_op(operator.matmul, np.matmul, [a, b], device)


# ---------------------------------------------------------------- elementwise
UNARY = {
    # name: (function, NumPy reference, domain)
    "exp": (Tensor.exp, np.exp, ANY),
    "log": (Tensor.log, np.log, POSITIVE),
    "tanh": (Tensor.tanh, np.tanh, ANY),
    "sigmoid": (Tensor.sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x)), floats_in(-6.0, 6.0)),
    "relu": (Tensor.relu, lambda x: np.maximum(x, 0.0), NONZERO),
    "abs": (Tensor.abs, np.abs, NONZERO),
    "sqrt": (Tensor.sqrt, np.sqrt, POSITIVE),
    "neg": (operator.neg, np.negative, ANY),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@FAST
@given(data=st.data(), shape=SMALL_SHAPES)
def test_unary_op(device, name, data, shape):
    fn, reference, domain = UNARY[name]
    check_op(fn, reference, [data.draw(values(shape, domain))], device)


# Values at least 0.2 from 0 and from the bounds -1 and 1 of the clip tests.
AWAY_FROM_CLIP_BOUNDS = st.one_of(floats_in(-3.0, -1.2), floats_in(-0.8, -0.2), floats_in(0.2, 0.8),
                                  floats_in(1.2, 3.0))
CLIP_BOUNDS = {"both": (-1.0, 1.0), "min only": (-1.0, None), "max only": (None, 1.0)}


@pytest.mark.parametrize("bounds", sorted(CLIP_BOUNDS))
@FAST
@given(data=st.data(), shape=SMALL_SHAPES)
def test_clip(device, bounds, data, shape):
    lo, hi = CLIP_BOUNDS[bounds]
    x = data.draw(values(shape, AWAY_FROM_CLIP_BOUNDS))
    check_op(lambda t: t.clip(lo, hi), lambda a: np.clip(a, lo, hi), [x], device)


def test_clip_takes_constant_tensor_and_array_bounds(device):
    x = leaf([-2.0, 0.5, 3.0, 0.0], device)
    lo = Tensor([-1.0, 1.0, -1.0, -1.0], dtype=np.float64, device=device)
    y = x.clip(lo, 1.0)
    np.testing.assert_array_equal(y.numpy(), [-1.0, 1.0, 1.0, 0.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="clip: the max bound requires grad"):
        x.clip(None, leaf(1.0, device))


def test_clip_without_bounds_is_an_error(device):
    with pytest.raises(ValueError, match="min"):
        leaf([1.0], device).clip()


# ---------------------------------------------------------------- reductions
@st.composite
def well_separated(draw, shape):
    """Distinct values at least 0.25 apart in random order: no ties within finite-difference reach."""
    order = draw(st.permutations(range(int(np.prod(shape)))))
    return (np.array(order, dtype=np.float64) * 0.25 - 1.0).reshape(shape)


@st.composite
def array_and_axis(draw, separated=False):
    """An array and an axis argument: None, an int (maybe negative) or a tuple of axes."""
    shape = draw(SMALL_SHAPES)
    ndim = len(shape)
    choices = [st.none(), hnp.valid_tuple_axes(ndim, min_size=min(ndim, 1))]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
    axis = draw(st.one_of(*choices))
    return draw(well_separated(shape) if separated else values(shape)), axis


REDUCTIONS = {"sum": np.sum, "mean": np.mean}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@FAST
@given(case=array_and_axis())
def test_sum_and_mean(device, name, keepdims, case):
    x, axis = case
    reference = REDUCTIONS[name]
    check_op(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims),
             lambda a: reference(a, axis=axis, keepdims=keepdims), [x], device)


@pytest.mark.parametrize("keepdims", [False, True])
@FAST
@given(case=array_and_axis(separated=True))  # no ties: max is differentiable there
def test_max(device, keepdims, case):
    x, axis = case
    check_op(lambda t: t.max(axis=axis, keepdims=keepdims),
             lambda a: np.max(a, axis=axis, keepdims=keepdims), [x], device)


def test_max_shares_the_gradient_among_ties(device):
    """As documented (and as PyTorch's full max/amax): equal maxima split the gradient evenly."""
    x = leaf([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]], device)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])


def test_reduction_axis_out_of_range(device):
    with pytest.raises(IndexError, match="sum: axis 2 is out of range for a tensor of 2 dimension"):
        leaf(np.ones((2, 3)), device).sum(axis=2)


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_an_axis_named_twice_is_refused(device, reduction):
    with pytest.raises(ValueError, match=rf"{reduction}: axis \(0, -2\) names an axis more than once"):
        getattr(leaf(np.ones((2, 3)), device), reduction)(axis=(0, -2))


def test_max_gives_the_gradient_to_a_nan(device):
    """A NaN is the max of its row and takes the row's gradient, as in PyTorch (the tie count was
    0 there, and 0/0 spread NaN over every entry)."""
    x = leaf([[np.nan, 1.0, 2.0], [1.0, 3.0, 0.0]], device)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


SPECIAL = [np.nan, 0.0, -0.0, 1.0, -1.0, np.inf, -np.inf]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_passes_the_gradient_through_a_nan_as_pytorch(device, dtype):
    """PyTorch's relu backward is 0 where a <= 0, else g: a NaN input gets g (it was 0 here)."""
    x = leaf(SPECIAL, device, dtype)
    (x.relu() * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 0, 0, 3, 0, 3, 0])
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_abs_gives_a_nan_no_gradient_as_pytorch(device, dtype):
    """PyTorch's sign(NaN) is 0, so |a|'s gradient there is 0 (NumPy's sign made it NaN)."""
    x = leaf(SPECIAL, device, dtype)
    (x.abs() * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 3, -3, 3, -3])
    assert x.grad.dtype == dtype


def test_max_over_an_empty_axis_is_refused_but_not_over_a_full_one(device):
    x = leaf(np.zeros((0, 3)), device)
    assert x.max(axis=1).shape == (0,)
    with pytest.raises(ValueError, match=r"max: cannot reduce over an empty axis \(shape \(0, 3\), axis 0\)"):
        x.max(axis=0)


def test_log_softmax_over_an_empty_axis_is_empty(device):
    x = leaf(np.zeros((2, 0)), device)
    y = ops.log_softmax(x, axis=1)
    assert y.shape == (2, 0)
    y.sum().backward()
    assert x.grad.shape == (2, 0)


@FAST
@given(data=st.data(), shape=NONEMPTY_SHAPES)
def test_log_softmax(device, data, shape):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(values(shape, floats_in(-5.0, 5.0)))
    check_op(lambda t: ops.log_softmax(t, axis=axis),
             lambda a: a - np.logaddexp.reduce(a, axis=axis, keepdims=True), [x], device)


# ---------------------------------------------------------------- shape ops
@FAST
@given(data=st.data(), shape=SMALL_SHAPES)
def test_reshape(device, data, shape):
    size = int(np.prod(shape))
    targets = [(-1,), (size, 1), (1, size), tuple(reversed(shape)), (size,)] + ([()] if size == 1 else [])
    target = data.draw(st.sampled_from(targets))
    x = data.draw(values(shape))
    check_op(lambda t: t.reshape(target), lambda a: a.reshape(target), [x], device)
    check_op(lambda t: t.reshape(*target), lambda a: a.reshape(target), [x], device, grad=False)


def test_reshape_to_a_wrong_size_names_both_shapes(device):
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        leaf(np.ones((2, 3)), device).reshape(4)


@FAST
@given(data=st.data(), shape=hnp.array_shapes(min_dims=2, max_dims=4, max_side=3))
def test_transpose(device, data, shape):
    ndim = len(shape)
    dim0, dim1 = data.draw(st.integers(-ndim, ndim - 1)), data.draw(st.integers(-ndim, ndim - 1))
    check_op(lambda t: t.transpose(dim0, dim1), lambda a: np.swapaxes(a, dim0, dim1),
             [data.draw(values(shape))], device)


@FAST
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=3))
def test_permute(device, data, shape):
    dims = tuple(data.draw(st.permutations(range(len(shape)))))
    x = data.draw(values(shape))
    check_op(lambda t: t.permute(dims), lambda a: np.transpose(a, dims), [x], device)
    check_op(lambda t: t.permute(*dims), lambda a: np.transpose(a, dims), [x], device, grad=False)


@FAST
@given(data=st.data(), shape=SMALL_SHAPES)
def test_T_reverses_the_axes(device, data, shape):
    check_op(lambda t: t.T, lambda a: a.T, [data.draw(values(shape))], device)


# ---------------------------------------------------------------- indexing
@FAST
@given(data=st.data(), shape=NONEMPTY_SHAPES)
def test_basic_indexing(device, data, shape):
    index = data.draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))
    check_op(lambda t: t[index], lambda a: a[index], [data.draw(values(shape))], device)


@FAST
@given(data=st.data(), shape=NONEMPTY_SHAPES)
def test_integer_array_indexing(device, data, shape):
    index = data.draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2,
                                                                                     max_side=5)))
    check_op(lambda t: t[index], lambda a: a[index], [data.draw(values(shape))], device)


def test_repeated_indices_accumulate_the_gradient(device):
    """x[[0, 2, 0, 0, 3]]: entry 0 is read three times, so its gradient is the sum of three."""
    index = np.array([0, 2, 0, 0, 3])
    weights = np.array([1.0, 10.0, 100.0, 1000.0, 10000.0])
    x = leaf(np.arange(5.0), device)
    (x[index] * weights).sum().backward()
    expected = np.zeros(5)
    for position, i in enumerate(index):
        expected[i] += weights[position]
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    assert tr.gradcheck(lambda t: t[index], [leaf(np.arange(5.0), device)])


def test_repeated_rows_of_a_matrix_and_a_list_index(device):
    x = np.arange(12.0).reshape(4, 3)
    check_op(lambda t: t[[1, 1, 3]], lambda a: a[[1, 1, 3]], [x], device)
    check_op(lambda t: t[np.array([2, 2]), 1:], lambda a: a[np.array([2, 2]), 1:], [x], device)


@FAST
@given(data=st.data(), shape=NONEMPTY_SHAPES)
def test_boolean_mask_indexing(device, data, shape):
    mask = data.draw(hnp.arrays(bool, shape))
    x = data.draw(values(shape))
    check_op(lambda t: t[mask], lambda a: a[mask], [x], device)
    mask_tensor = Tensor(mask, device=device)
    check_op(lambda t: t[mask_tensor], lambda a: a[mask], [x], device)


def test_index_out_of_range_names_the_shape(device):
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        leaf(np.ones((2, 3)), device)[5]


INTEGER_INDICES = {
    # name: an index of a (3, 4, 5) array holding an integer array
    "rows in range": np.array([0, 2, -3]),
    "a row past the end": np.array([0, 3]),
    "a row before the start": np.array([-4, 1]),
    "a list past the end": [1, 3],
    "a 0-d array": np.array(3),
    "after a slice": (slice(None), np.array([3, 4])),
    "after a slice, past the end": (slice(None), np.array([1, 4])),
    "after a mask": (np.array([True, False, True]), np.array([0, 5])),
    "after an ellipsis": (Ellipsis, np.array([4, -5])),
    "after an ellipsis, past the end": (Ellipsis, np.array([5])),
    "beside a new axis": (None, np.array([[2]]), slice(None), np.array([-6])),
    "two arrays": (np.array([0, 2]), np.array([1, 4]), np.array([0, 4])),
}


@pytest.mark.parametrize("name", sorted(INTEGER_INDICES))
def test_integer_index_check_agrees_with_numpy(name):
    """CuPy wraps out-of-range integer-array indices around; getitem checks them there itself,
    and that check must raise exactly where NumPy's indexing does."""
    from tinygrad_rnn.shapes import _check_integer_indices
    index, data = INTEGER_INDICES[name], np.zeros((3, 4, 5))
    try:
        data[index]
    except IndexError as error:
        with pytest.raises(IndexError, match=r"^getitem: index -?\d+ is out of bounds for axis \d with size \d"):
            _check_integer_indices(index, data.shape)
        assert "out of bounds" in str(error)
    else:
        _check_integer_indices(index, data.shape)


def test_an_integer_index_out_of_range_is_an_error_on_every_device(device):
    t = leaf(np.ones((3, 4)), device)
    with pytest.raises(IndexError, match=r"out of bounds.*\(3, 4\)"):
        t[np.array([0, 3])]
    with pytest.raises(IndexError, match=r"out of bounds.*\(3, 4\)"):
        t[:, np.array([-5])]


# ---------------------------------------------------------------- joining and splitting
@FAST
@given(data=st.data(), shape=NONEMPTY_SHAPES, count=st.integers(1, 3))
def test_cat(device, data, shape, count):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    arrays = []
    for _ in range(count):
        piece_shape = list(shape)
        piece_shape[axis] = data.draw(st.integers(1, 3))
        arrays.append(data.draw(values(tuple(piece_shape))))
    check_op(lambda *ts: tr.cat(ts, axis=axis), lambda *xs: np.concatenate(xs, axis=axis), arrays, device)


@FAST
@given(data=st.data(), shape=SMALL_SHAPES, count=st.integers(1, 3))
def test_stack(device, data, shape, count):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    arrays = [data.draw(values(shape)) for _ in range(count)]
    check_op(lambda *ts: tr.stack(ts, axis=axis), lambda *xs: np.stack(xs, axis=axis), arrays, device)


@pytest.mark.parametrize("call, message", [
    (lambda x: x.transpose(0, 5), "transpose: axis 5 is out of range for a tensor of 2 dimension"),
    (lambda x: x[0].transpose(), "transpose: axis -2 is out of range for a tensor of 1 dimension"),
    (lambda x: tr.stack([x, x], axis=4), "stack: axis 4 is out of range"),
    (lambda x: tr.cat([x, x], axis=-3), "cat: axis -3 is out of range"),
    (lambda x: tr.cat([x[0, 0], x[0, 1]]), "cat: 0-d tensors have no axis to join along; use tr.stack"),
    (lambda x: x[0, 0].split(1), "split: axis 0 is out of range .* a 0-d tensor has no axes"),
    (lambda x: x.chunk(2, axis=2), "chunk: axis 2 is out of range"),
    (lambda x: ops.log_softmax(x, axis=2), "log_softmax: axis 2 is out of range"),
], ids=["transpose", "transpose-1d", "stack", "cat", "cat-0d", "split-0d", "chunk", "log_softmax"])
def test_axis_errors_name_the_op(device, call, message):
    with pytest.raises((IndexError, ValueError), match=message):
        call(leaf(np.ones((2, 3)), device))


def test_an_empty_axis_splits_as_in_pytorch(device):
    """One empty piece from split, `chunks` empty pieces from chunk (both gave none)."""
    x = leaf(np.zeros((0, 3)), device)
    assert [p.shape for p in x.split(2)] == [(0, 3)]
    assert [p.shape for p in x.chunk(3)] == [(0, 3)] * 3
    assert [p.shape for p in x.split(2, axis=1)] == [(0, 2), (0, 1)]


def test_cat_and_stack_reject_mismatched_shapes(device):
    a, b = leaf(np.ones((2, 3)), device), leaf(np.ones((2, 4)), device)
    with pytest.raises(ValueError, match="cat"):
        tr.cat([a, b], axis=0)
    with pytest.raises(ValueError, match="stack"):
        tr.stack([a, b])


def pieces_of_size(array, axis, size):
    """Reference for split(int): consecutive pieces of `size` along axis, the last maybe smaller."""
    length = array.shape[axis]
    return [slice_along(array, axis, start, min(start + size, length)) for start in range(0, length, size)]


@FAST
@given(data=st.data(), shape=NONEMPTY_SHAPES)
def test_split_by_size(device, data, shape):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    size = data.draw(st.integers(1, shape[axis] + 1))
    check_op(lambda t: t.split(size, axis=axis), lambda a: pieces_of_size(a, axis, size),
             [data.draw(values(shape))], device)


@FAST
@given(data=st.data(), shape=NONEMPTY_SHAPES)
def test_split_by_sections(device, data, shape):
    axis = data.draw(st.integers(0, len(shape) - 1))
    cuts = sorted(data.draw(st.lists(st.integers(0, shape[axis]), max_size=3)))
    bounds = [0] + cuts + [shape[axis]]
    sections = [hi - lo for lo, hi in zip(bounds[:-1], bounds[1:])]
    check_op(lambda t: t.split(sections, axis=axis),
             lambda a: [slice_along(a, axis, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])],
             [data.draw(values(shape))], device)


def test_split_sections_must_cover_the_axis(device):
    with pytest.raises(ValueError, match="add up to 4"):
        leaf(np.ones(5), device).split([1, 3])


@FAST
@given(data=st.data(), shape=NONEMPTY_SHAPES, chunks=st.integers(1, 5))
def test_chunk(device, data, shape, chunks):
    """As PyTorch's chunk: pieces of ceil(n / chunks) entries, the last one smaller."""
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    size = -(-shape[axis] // chunks)
    check_op(lambda t: t.chunk(chunks, axis=axis), lambda a: pieces_of_size(a, axis, size),
             [data.draw(values(shape))], device)


def test_chunk_counts_follow_pytorch(device):
    pieces = leaf(np.arange(5.0), device).chunk(4)
    assert [p.shape for p in pieces] == [(2,), (2,), (1,)]


# ---------------------------------------------------------------- where and astype
@pytest.mark.parametrize("cond_kind", ["tensor", "array"])
@FAST
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3))
def test_where(device, cond_kind, data, shapes):
    cond_shape, a_shape, b_shape = shapes.input_shapes
    cond = data.draw(hnp.arrays(bool, cond_shape))
    condition = Tensor(cond, device=device) if cond_kind == "tensor" else cond
    a, b = data.draw(values(a_shape)), data.draw(values(b_shape))
    check_op(lambda x, y: tr.where(condition, x, y), lambda x, y: np.where(cond, x, y), [a, b], device)


def test_where_with_a_scalar_branch(device):
    x = np.array([[-1.0, 2.0], [3.0, -4.0]])
    cond = x > 0
    check_op(lambda t: tr.where(cond, t, 0.0), lambda a: np.where(cond, a, 0.0), [x], device)
    check_op(lambda t: tr.where(t > 0, -1.0, t), lambda a: np.where(cond, -1.0, a), [x], device)


@pytest.mark.parametrize("source, target", [(np.float64, np.float32), (np.float32, np.float64)])
def test_astype(device, source, target):
    x = np.array([[0.1, -2.5], [3.25, 7.0]])
    t = leaf(x, device, dtype=source)
    y = t.astype(target)
    assert y.dtype == np.dtype(target)
    np.testing.assert_array_equal(y.numpy(), x.astype(source).astype(target))
    weights = np.array([[1.0, 2.0], [3.0, 4.0]])
    (y * Tensor(weights, dtype=target, device=device)).sum().backward()
    assert t.grad.dtype == np.dtype(source)  # the gradient comes back in the input's dtype
    np.testing.assert_allclose(t.grad.numpy(), weights)


@pytest.mark.parametrize("target", [np.int64, np.int32, bool])
def test_a_cast_to_integers_is_a_constant(device, target):
    """No gradient flows through rounding (as in PyTorch): x * x.astype(int) differentiates to the
    integer factor alone, and the cast itself does not require grad."""
    x = leaf([1.25, 2.5, -3.75], device)
    xi = x.astype(target)
    assert not xi.requires_grad and xi.dtype == np.dtype(target)
    (x * xi).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.array([1.25, 2.5, -3.75]).astype(target).astype(np.float64))


def test_pow_with_a_zero_exponent_has_zero_gradient_also_at_zero(device):
    """d(a^0)/da = 0 everywhere, where b a^(b-1) is 0 * inf at a = 0 (NaN, and a warning); and
    d(a^b)/db = a^b log(a) is 0 at a = 0 for b >= 0, with no warning from log(0)."""
    x = leaf([0.0, 1.0, -2.0], device)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    a, b = leaf([0.0, 2.0, 0.0], device), leaf([0.0, 0.0, 2.0], device)
    (a ** b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.0, np.log(2.0), 0.0], rtol=1e-15)


def test_pow_exponent_gradient_where_the_base_is_not_positive_is_pytorchs(device):
    """d(a^b)/db = a^b log(a), as PyTorch: -inf at a = 0 for b < 0 (inf times log 0), and NaN
    where a < 0 (a^b has no real derivative in b there) or a is NaN. It was 0 for all of them."""
    a, b = leaf([0.0, 0.0, -2.0, -2.0, np.nan, 0.0], device), leaf([-1.0, -2.5, 2.0, 3.0, 1.0, 0.0], device)
    with np.errstate(divide="ignore", invalid="ignore"):  # NumPy warns of log(0) and log(-2)
        (a ** b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [-np.inf, -np.inf, np.nan, np.nan, np.nan, 0.0])


def test_div_denominator_gradient_rounds_as_pytorchs(device):
    """d(a/b)/db = -g (a/b)/b, PyTorch's order of operations: -0.16 at a = 1, b = 2.5, where
    -(g/b)(a/b) gave -0.16000000000000003."""
    a, b = leaf([1.0, -1.0], device), leaf([2.5, -2.5], device)
    (a / b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [-0.16, 0.16])


# ---------------------------------------------------------------- dtype preservation
FLOAT32_OPS = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y, "pow": lambda x, y: x ** y, "matmul": lambda x, y: x @ y.T,
    "exp": lambda x, y: x.exp(), "log": lambda x, y: x.log(), "tanh": lambda x, y: x.tanh(),
    "sigmoid": lambda x, y: x.sigmoid(), "relu": lambda x, y: x.relu(), "abs": lambda x, y: x.abs(),
    "sqrt": lambda x, y: x.sqrt(), "clip": lambda x, y: x.clip(0.6, 0.8), "sum": lambda x, y: x.sum(0),
    "mean": lambda x, y: x.mean(1), "max": lambda x, y: x.max(), "log_softmax": lambda x, y: ops.log_softmax(x),
    "index": lambda x, y: x[[0, 0]], "mask": lambda x, y: x[np.array([True, False])],
    "cat": lambda x, y: tr.cat([x, y]), "stack": lambda x, y: tr.stack([x, y]),
    "where": lambda x, y: tr.where(np.array([True, False]), x, y.T),
    "split": lambda x, y: x.split(1, axis=1)[0], "neg": lambda x, y: -x,
}


@pytest.mark.parametrize("name", sorted(FLOAT32_OPS))
def test_float32_stays_float32_through_forward_and_backward(device, name):
    x = Tensor([[0.5, 0.7], [0.9, 1.1]], device=device, requires_grad=True)
    y = Tensor([[1.5, 0.25], [2.0, 0.75]], device=device, requires_grad=True)
    out = FLOAT32_OPS[name](x, y)
    assert out.dtype == np.float32
    out.sum().backward()
    for t in (x, y):
        assert t.grad is None or t.grad.dtype == np.float32
