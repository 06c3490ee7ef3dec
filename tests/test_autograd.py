"""The engine: accumulation, retained and freed graphs, hooks, global modes, deep graphs, memory.

Every test runs once per backend through the `device` fixture.
"""
import gc
import weakref

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import Tensor


# ---------------------------------------------------------------- helpers
def param(values, device, dtype=np.float64):
    """A leaf that requires grad."""
    return Tensor(np.asarray(values, dtype=np.float64), dtype=dtype, device=device, requires_grad=True)


def grad_of(t):
    assert t.grad is not None, "expected a gradient, found None"
    assert isinstance(t.grad, Tensor)
    return t.grad.numpy()


def assert_grad(t, expected):
    np.testing.assert_allclose(grad_of(t), np.asarray(expected, dtype=np.float64), rtol=1e-12, atol=1e-12)


def chain(x, ops):
    """x * 1.0 + 0.0, repeated until `ops` ops are recorded: a graph `ops` nodes deep."""
    y = x
    for _ in range(ops // 2):
        y = y * 1.0 + 0.0
    return y


def weak(obj):
    """A weak reference to obj, or None for objects that do not support them."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return None


class gc_disabled:
    """Turn the cycle collector off, so that whatever is freed is freed by reference counting."""

    def __enter__(self):
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was_enabled:
            gc.enable()
        return False


# ---------------------------------------------------------------- reused nodes
def test_a_tensor_added_to_itself(device):
    a = param([1.0, -2.0, 3.0], device)
    (a + a).sum().backward()
    assert_grad(a, [2.0, 2.0, 2.0])


def test_cube_by_repeated_multiplication(device):
    values = np.array([1.5, -2.0, 0.5])
    x = param(values, device)
    (x * x * x).sum().backward()
    assert_grad(x, 3 * values ** 2)


def test_a_tensor_used_in_two_branches(device):
    values = np.array([0.3, -1.2])
    a = param(values, device)
    ((a * 2.0) * a.exp()).sum().backward()  # d/da (2a e^a) = 2 e^a + 2a e^a
    assert_grad(a, 2 * np.exp(values) + 2 * values * np.exp(values))


def test_an_intermediate_used_many_times(device):
    values = np.array([0.7, -0.4])
    a = param(values, device)
    h = a * 3.0
    total = h * h + h
    for k in range(1, 21):
        total = total + h * float(k)
    total.sum().backward()  # d/da = 3 (2h + 1 + sum k)
    assert_grad(a, 3 * (2 * 3 * values + 1 + 210))


def test_a_zero_dim_tensor_reused_many_times(device):
    """Scalars (shape ()) too: every contribution counts, and .grad is a usable Tensor."""
    x = Tensor(1.5, dtype=np.float64, device=device, requires_grad=True)
    (x * 2.0 + x * 3.0 + x * 4.0 + x * x).backward()
    assert_grad(x, 2.0 + 3.0 + 4.0 + 2 * 1.5)
    assert x.grad.shape == ()
    np.testing.assert_allclose((x.grad + Tensor(1.0, dtype=np.float64, device=device)).numpy(), 13.0)


def test_hook_on_a_reused_node_sees_the_total_gradient_once(device):
    x = param([1.0, 2.0], device)
    y = x * 2.0
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    (y * 3.0 + y * 4.0).sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [7.0, 7.0])
    assert_grad(x, [14.0, 14.0])


def test_slices_and_other_uses_of_one_tensor_all_count(device):
    """A sequence read step by step (x[t]), by integer arrays and as a whole: one gradient."""
    values = np.arange(15.0).reshape(5, 3) / 10.0
    step_weights = np.linspace(0.5, 2.5, 5)
    x = param(values, device)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    total = (x * 2.0).sum() + x[np.array([0, 0, 4])].sum() + x[1:3, ::2].sum()
    for t in range(5):
        total = total + (x[t] * float(step_weights[t])).sum() + x[t, 1]
    total.backward()
    expected = np.full((5, 3), 2.0)
    expected[0] += 2.0
    expected[4] += 1.0
    expected[1:3, ::2] += 1.0
    expected += step_weights[:, None]
    expected[:, 1] += 1.0
    assert_grad(x, expected)
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], expected)


# ---------------------------------------------------------------- accumulation and zeroing
def test_gradients_accumulate_across_backward_calls(device):
    x = param([1.0, 2.0], device)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    assert_grad(x, [3.0 + 2.0, 3.0 + 4.0])


@pytest.mark.parametrize("clear", ["assign None", "zero_grad"])
def test_clearing_grad_restarts_accumulation(device, clear):
    x = param([1.0, 2.0], device)
    (x * 3.0).sum().backward()
    if clear == "assign None":
        x.grad = None
    else:
        x.zero_grad()
    assert x.grad is None
    (x * 5.0).sum().backward()
    assert_grad(x, [5.0, 5.0])


def test_a_grad_handed_out_is_not_changed_by_later_accumulation(device):
    x = param([1.0], device)
    (x * 2.0).sum().backward()
    first = x.grad.numpy().copy()
    x.grad = None
    (x * 7.0).sum().backward()
    np.testing.assert_array_equal(first, [2.0])
    assert_grad(x, [7.0])


# ---------------------------------------------------------------- non-leaf gradients
def test_non_leaf_grads_are_dropped(device):
    x = param([1.0, 2.0], device)
    y = x * 2.0
    z = (y * y).sum()
    z.backward()
    assert y.grad is None and z.grad is None
    assert not y.is_leaf and x.is_leaf


def test_retain_grad_keeps_the_true_gradient(device):
    x = param([1.0, 2.0], device)
    y = x * 2.0
    y.retain_grad()
    z = (y * y).sum()
    z.retain_grad()
    z.backward()
    assert_grad(y, [4.0, 8.0])  # dz/dy = 2y
    assert_grad(z, 1.0)
    assert_grad(x, [8.0, 16.0])


def test_retain_grad_needs_a_tensor_that_requires_grad(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0], device=device).retain_grad()


# ---------------------------------------------------------------- hooks
def test_hook_receives_the_gradient_as_a_tensor(device):
    x = param([1.0, 2.0], device)
    y = x * 2.0
    seen = []
    y.register_hook(lambda g: seen.append(g))
    (y * 3.0).sum().backward()
    assert len(seen) == 1 and isinstance(seen[0], Tensor)
    np.testing.assert_array_equal(seen[0].numpy(), [3.0, 3.0])
    assert_grad(x, [6.0, 6.0])


def test_hook_returning_a_tensor_replaces_the_gradient(device):
    x = param([1.0, 2.0], device)
    y = x * 2.0
    y.register_hook(lambda g: g * 10.0)
    (y * 3.0).sum().backward()
    assert_grad(x, [60.0, 60.0])


def test_hook_on_a_leaf_changes_what_is_accumulated(device):
    x = param([1.0, 2.0], device)
    x.register_hook(lambda g: g + 1.0)
    (x * 3.0).sum().backward()
    assert_grad(x, [4.0, 4.0])


def test_hooks_chain_in_registration_order(device):
    x = param([1.0], device)
    y = x * 1.0
    y.register_hook(lambda g: g * 2.0)
    y.register_hook(lambda g: g + 1.0)
    (y * 3.0).sum().backward()
    assert_grad(x, [7.0])  # (3 * 2) + 1, not (3 + 1) * 2


def test_removed_hook_no_longer_fires(device):
    x = param([1.0, 2.0], device)
    calls = []

    def doubling(g):
        calls.append(1)
        return g * 2.0
    handle = x.register_hook(doubling)
    (x * 3.0).sum().backward()
    assert_grad(x, [6.0, 6.0])
    handle.remove()
    x.grad = None
    (x * 3.0).sum().backward()
    assert_grad(x, [3.0, 3.0])
    assert len(calls) == 1


def test_hook_returning_a_wrong_shape_is_an_error(device):
    x = param([1.0, 2.0], device)
    y = x * 1.0
    y.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"shape"):
        y.sum().backward()


def test_hook_needs_a_tensor_that_requires_grad(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0], device=device).register_hook(lambda g: g)


# ---------------------------------------------------------------- detach and global modes
def test_detach_stops_the_gradient(device):
    x = param([1.0, 3.0], device)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), x.numpy())
    (x * d).sum().backward()  # only the first factor is differentiated
    assert_grad(x, [1.0, 3.0])


def test_no_grad_records_nothing_and_enable_grad_records_again(device):
    x = param([1.0], device)
    with tr.no_grad():
        assert not tr.is_grad_enabled()
        y = x * 2.0
        with tr.enable_grad():
            assert tr.is_grad_enabled()
            z = x * 2.0
        w = x * 2.0
    assert tr.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and not w.requires_grad
    assert z.requires_grad and not z.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    z.sum().backward()
    assert_grad(x, [2.0])


def test_no_grad_is_restored_after_an_exception(device):
    with pytest.raises(ZeroDivisionError):
        with tr.no_grad():
            1 / 0
    assert tr.is_grad_enabled()
    assert (param([1.0], device) * 2.0).requires_grad


# ---------------------------------------------------------------- freed and retained graphs
def test_second_backward_through_a_freed_graph_raises(device):
    x = param([1.0, 2.0], device)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_backward_through_a_freed_shared_intermediate_raises(device):
    x = param([1.0, 2.0], device)
    y = x * x
    y.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (y * 3.0).sum().backward()


def test_retain_graph_allows_a_second_backward(device):
    x = param([1.0, 2.0], device)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    assert_grad(x, [2.0, 4.0])
    loss.backward()
    assert_grad(x, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


# ---------------------------------------------------------------- backward's arguments
def test_backward_of_a_non_scalar_needs_grad(device):
    x = param(np.ones((2, 3)), device)
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\).*grad"):
        (x * 2.0).backward()


def test_backward_with_an_explicit_grad(device):
    x = param(np.ones((2, 3)), device)
    weights = np.arange(6.0).reshape(2, 3)
    (x * 2.0).backward(grad=Tensor(weights, dtype=np.float64, device=device))
    assert_grad(x, 2.0 * weights)


@pytest.mark.parametrize("seed_dtype", [np.float64, np.float16])
def test_an_explicit_grad_of_another_dtype_is_cast_to_the_tensors(device, seed_dtype):
    """The leaves' .grad keeps their own dtype whatever dtype the seed came in (as in PyTorch)."""
    x = param(np.ones(3), device, dtype=np.float32)
    seed = Tensor([1.0, 2.0, 3.0], dtype=seed_dtype, device=device)
    x.backward(grad=seed)  # the root a leaf: the seed itself becomes its .grad
    (x * 2.0).backward(grad=seed)
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), np.array([3.0, 6.0, 9.0], dtype=np.float32))


def test_backward_with_a_grad_of_the_wrong_shape(device):
    x = param(np.ones((2, 3)), device)
    with pytest.raises(RuntimeError, match=r"\(3, 2\).*\(2, 3\)"):
        (x * 2.0).backward(grad=Tensor(np.ones((3, 2)), dtype=np.float64, device=device))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_non_floating_tensors_cannot_require_grad(device, dtype):
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=name):
        Tensor([1, 0, 1], dtype=dtype, device=device, requires_grad=True)
    with pytest.raises(TypeError, match=name):
        Tensor([1, 0, 1], dtype=dtype, device=device).requires_grad_()


def test_integer_factories_cannot_require_grad(device):
    with pytest.raises(TypeError, match="int64"):
        tr.arange(3, device=device, requires_grad=True)


# ---------------------------------------------------------------- time steps and scopes
def test_time_step_and_scope_stamp_new_nodes(device):
    x = param([1.0], device)
    with tr.scope("lstm"):
        with tr.time_step(3):
            with tr.scope("l0"):
                a = x * 2.0
            b = a + 1.0
            with tr.time_step(4):
                c = b.tanh()
            d = c * 1.0
        e = d - 1.0
    f = e * 1.0
    assert (a.step, a.scope) == (3, "lstm.l0")
    assert (b.step, b.scope) == (3, "lstm")
    assert (c.step, c.scope) == (4, "lstm")
    assert (d.step, d.scope) == (3, "lstm")
    assert (e.step, e.scope) == (None, "lstm")
    assert (f.step, f.scope) == (None, "")


def test_time_step_and_scope_are_restored_after_an_exception(device):
    x = param([1.0], device)
    with pytest.raises(KeyError):
        with tr.scope("encoder"), tr.time_step(7):
            with tr.scope("cell"):
                raise KeyError("boom")
    y = x * 2.0
    assert y.step is None and y.scope == ""


# ---------------------------------------------------------------- deep graphs and memory
def test_backward_through_a_200k_op_chain_without_recursion(device):
    x = param([0.5], device)
    loss = chain(x, 200_000)
    loss.backward()
    assert_grad(x, [1.0])


def test_dropping_a_200k_op_loss_frees_it_by_refcounting(device):
    x = param([0.5], device)
    y = chain(x, 100_000)
    middle, middle_data = weak(y), weak(y.data)
    loss = chain(y, 100_000)
    with gc_disabled():
        del y
        assert middle() is not None  # still held by the graph of `loss`
        del loss
        assert middle() is None
        assert middle_data is None or middle_data() is None


def test_backward_releases_the_graph_unless_retained(device):
    x = param([0.5, 1.5], device)
    with gc_disabled():
        for retain in (False, True):
            y = x.tanh()
            intermediate, buffer = weak(y), weak(y.data)
            loss = (y * 2.0).sum()
            del y
            loss.backward(retain_graph=retain)
            assert (intermediate() is None) is (not retain)
            del loss
            assert intermediate() is None
            assert buffer is None or buffer() is None


def test_an_ops_backward_is_handed_its_node(device):
    """make's contract: backward(out, g) gets the very tensor make returned (its data, its parents)."""
    from tinygrad_rnn.autograd import make
    x = param([0.5, -1.0], device)
    seen = []

    def backward(out, g):
        seen.append(out)
        return (g * 3.0 * out._parents[0].data ** 2,)
    y = make(x.data ** 3, (x,), backward, "cube")
    y.sum().backward()
    assert len(seen) == 1 and seen[0] is y
    assert_grad(x, [0.75, 3.0])


# ---------------------------------------------------------------- micrograd's README example
def test_micrograd_readme_example(device):
    def scalar(v):
        return Tensor(v, dtype=np.float64, device=device, requires_grad=True)
    a = scalar(-4.0)
    b = scalar(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    # the values published in karpathy/micrograd's README (and matched there by PyTorch)
    assert abs(g.item() - 24.7041) < 1e-4
    assert abs(a.grad.item() - 138.8338) < 1e-4
    assert abs(b.grad.item() - 645.5773) < 1e-4


# ---------------------------------------------------------------- gradcheck itself
def product_with_doubled_gradient_for_y(x, y):
    """x * y whose backward doubles the gradient reaching y: a deliberately wrong gradient."""
    scaled = y * 1.0
    if scaled.requires_grad:  # gradcheck evaluates under no_grad too, where there is no graph
        scaled.register_hook(lambda g: g * 2.0)
    return x * scaled


def test_gradcheck_passes_a_correct_gradient(device):
    x, y = param([0.5, -1.0], device), param([2.0, 3.0], device)
    assert tr.gradcheck(lambda a, b: a * b, [x, y])


def test_gradcheck_names_the_input_and_entry_of_a_wrong_gradient(device):
    x, y = param([0.5, -1.0], device), param([2.0, 3.0], device)
    with pytest.raises(AssertionError, match=r"input 1 .*entry"):
        tr.gradcheck(product_with_doubled_gradient_for_y, [x, y])


def test_gradcheck_passes_an_input_the_output_does_not_read(device):
    """Its gradient is exactly 0, which finite differences confirm (backward of a result that
    needs no gradient used to raise first)."""
    x, y = param([0.5, -1.0], device), Tensor([2.0, 3.0], dtype=np.float64, device=device)
    assert tr.gradcheck(lambda a, b: b * 2.0, [x, y])
    assert tr.gradcheck(lambda a, b: (a * 0 + b, b), [x, y])


def test_gradcheck_leaves_the_inputs_grad_as_it_was(device):
    x = param([0.5, -1.0], device)
    assert tr.gradcheck(lambda a: a * a, [x]) and x.grad is None
    x.grad = Tensor([7.0, 8.0], dtype=np.float64, device=device)
    assert tr.gradcheck(lambda a: a * a, [x])
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 8.0])


def test_gradcheck_counts_a_nan_among_the_entries_outside(device):
    """sqrt at 0: finite differences give NaN (sqrt(-eps)), backward inf: 1 of 2 entries is off."""
    x = param([0.0, 1.0], device)
    with np.errstate(divide="ignore", invalid="ignore"), pytest.raises(AssertionError, match=r"entry \(0,\): expected nan .*obtained inf .*1 of 2 entries outside"):
        tr.gradcheck(lambda a: a.sqrt(), [x])


def test_gradcheck_needs_float64(device):
    x = param([0.5], device, dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        tr.gradcheck(lambda a: a * 2.0, [x])


# ---------------------------------------------------------------- error messages
def test_matmul_shape_mismatch_names_both_shapes(device):
    a, b = param(np.ones((2, 3)), device), param(np.ones((4, 5)), device)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b


def test_matmul_batch_mismatch_names_the_batch_axes(device):
    a, b = param(np.ones((5, 2, 3)), device), param(np.ones((4, 3, 4)), device)
    with pytest.raises(ValueError, match=r"matmul: .*batch axes \(5,\) and \(4,\) do not broadcast"):
        a @ b


def test_matmul_dtype_mismatch_names_both_dtypes(device):
    a = param(np.ones((2, 3)), device, dtype=np.float32)
    b = param(np.ones((3, 2)), device, dtype=np.float64)
    with pytest.raises(TypeError, match=r"float32.*float64"):
        a @ b


@pytest.mark.parametrize("operand, type_name", [("a", "str"), (None, "NoneType"), ({}, "dict")])
def test_unsupported_operand_types_are_named(device, operand, type_name):
    t = param([1.0], device)
    for apply in (lambda: t + operand, lambda: operand * t, lambda: t @ operand):
        with pytest.raises(TypeError, match=type_name):
            apply()


def test_to_is_the_identity_on_the_tensors_own_device(device):
    x = tr.Tensor([1.0, 2.0], requires_grad=True, device=device)
    assert x.to(device) is x


@pytest.mark.skipif(not tr.cuda_available(), reason="needs CuPy and a CUDA device")
def test_to_is_differentiable_across_devices():
    x = tr.Tensor([1.0, 2.0], requires_grad=True, device="cuda")
    (x.to("cpu") * 3.0).sum().backward()
    assert x.grad.device == x.device and np.allclose(x.grad.numpy(), 3.0)
