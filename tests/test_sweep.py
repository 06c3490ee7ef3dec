"""The backward sweep's visiting order and the operand fast paths, on graphs drawn at random.

The sweep visits nodes in decreasing creation index from a heap, holding a chain's next node
beside the heap; these graphs reuse old intermediates, fan out and join again, so that nodes
become pending in every order. Gradients are checked against finite differences (float64), and
vjp from several seeds against one backward of the same weighted sum.
"""
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import tinygrad_rnn as tr
from tinygrad_rnn import Tensor, autograd, backend

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# name: (number of operands, function); operands are earlier nodes of the graph
STEPS = {
    "add": (2, lambda x, y: x + y),
    "mul": (2, lambda x, y: x * y),
    "sub": (2, lambda x, y: x - y),
    "tanh": (1, lambda x: x.tanh()),
    "minus scalar": (1, lambda x: x - 0.5),
    "scalar minus": (1, lambda x: 0.5 - x),
    "scaled": (1, lambda x: 0.7 * x),
    "row sum": (1, lambda x: x.sum(axis=0, keepdims=True)),  # (1, 3): broadcast back by the next binary op
}

# a step: its name and, per operand, a fraction in [0, 1) picking one of the nodes made so far
STEP = st.tuples(st.sampled_from(sorted(STEPS)), st.lists(st.floats(0, 0.999), min_size=2, max_size=2))
PROGRAMS = st.lists(STEP, min_size=1, max_size=25)


def run(program, outputs, *leaves):
    """The nodes of `program` built on `leaves`; returns the nodes picked by `outputs`."""
    nodes = list(leaves)
    for name, picks in program:
        arity, fn = STEPS[name]
        nodes.append(fn(*(nodes[int(p * len(nodes))] for p in picks[:arity])))
    return tuple(nodes[int(p * len(nodes))] for p in outputs)


def leaves(device, rng):
    return [Tensor(rng.uniform(-1, 1, size=shape), dtype=np.float64, device=device, requires_grad=True)
            for shape in [(2, 3), (2, 3), (1, 3)]]


@FAST
@given(program=PROGRAMS, outputs=st.lists(st.floats(0, 0.999), min_size=1, max_size=3))
def test_random_graphs_match_finite_differences(device, program, outputs):
    inputs = leaves(device, np.random.default_rng(0))
    assert tr.gradcheck(lambda *xs: run(program, outputs, *xs), inputs)


@FAST
@given(program=PROGRAMS, outputs=st.lists(st.floats(0, 0.999), min_size=2, max_size=4))
def test_vjp_from_several_seeds_equals_one_backward(device, program, outputs):
    rng = np.random.default_rng(1)
    inputs = leaves(device, rng)
    roots = [r for r in run(program, outputs, *inputs) if r.requires_grad]
    seeds = {}
    for r in roots:  # a root picked twice is seeded once
        seeds.setdefault(r, Tensor(rng.standard_normal(r.shape), dtype=np.float64, device=device))
    record = autograd.vjp(seeds)
    total = sum(((r * s).sum() for r, s in seeds.items()), Tensor(0.0, dtype=np.float64, device=device))
    total.backward()
    for x in inputs:
        expected = record.grad(x)
        if x.grad is None:
            assert expected is None
        else:
            np.testing.assert_allclose(backend.to_numpy(expected), x.grad.numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- operand fast paths
def test_mixed_float_dtypes_promote_forward_and_cast_gradients_back(device):
    a = Tensor([0.5, 1.5], dtype=np.float32, device=device, requires_grad=True)
    b = Tensor([2.0, 3.0], dtype=np.float64, device=device, requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.numpy(), [2.0, 3.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 1.5])


def test_a_parameter_and_a_tensor_as_operands(device):
    """A Parameter is a Tensor subclass: it takes the general operand path on either side."""
    w = tr.nn.Parameter([1.0, 2.0], device=device)
    x = Tensor([3.0, 4.0], device=device, requires_grad=True)
    for out in (w * x, x * w, w + x, x - w):
        out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3 + 3 + 1 - 1, 4 + 4 + 1 - 1])
    np.testing.assert_allclose(x.grad.numpy(), [1 + 1 + 1 + 1, 2 + 2 + 1 + 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_zero_dim_chain_keeps_its_dtype_and_gives_arrays(device, dtype):
    """NumPy's arithmetic on 0-d arrays returns scalars: results, hooks and .grad get arrays."""
    x = Tensor(0.3, dtype=dtype, device=device, requires_grad=True)
    seen = []
    y = ((x * x).tanh() - 0.5) * 2.0
    y.register_hook(lambda g: seen.append(g))
    y.backward()
    assert y.shape == () and y.dtype == dtype
    assert isinstance(seen[0].data, backend.ARRAY_TYPES)
    assert isinstance(x.grad.data, backend.ARRAY_TYPES) and x.grad.dtype == dtype
    t = np.tanh(0.09)
    np.testing.assert_allclose(x.grad.item(), 2.0 * (1 - t * t) * 2 * 0.3, rtol=1e-6)



def test_a_0d_input_broadcast_over_a_vector_gets_an_array_gradient(device):
    """Broadcasting's adjoint sums every axis away here, which NumPy returns as a scalar."""
    s = Tensor(2.0, dtype=np.float64, device=device, requires_grad=True)
    seen = []
    s.register_hook(lambda g: seen.append(g))
    (s * Tensor([1.0, 2.0, 3.0], dtype=np.float64, device=device)).sum().backward()
    assert isinstance(seen[0].data, backend.ARRAY_TYPES) and isinstance(s.grad.data, backend.ARRAY_TYPES)
    assert s.grad.shape == () and s.grad.item() == 6.0

# ---------------------------------------------------------------- accumulation
@pytest.mark.parametrize("shape", [(), (1,), (3,)])
def test_terms_summed_into_one_input_never_write_a_shared_gradient(device, shape):
    """a + b hands one array to both inputs; a's later terms (from uses made earlier, so swept
    later) go to a buffer of its own, added into in place or, for one element, summed anew,
    never into the array that b was given."""
    a = Tensor(np.full(shape, 2.0), dtype=np.float64, device=device, requires_grad=True)
    b = Tensor(np.full(shape, 3.0), dtype=np.float64, device=device, requires_grad=True)
    uses = [a * float(k) for k in range(4)]
    total = a + b
    for use in uses:
        total = total + use
    total.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.full(shape, 1.0 + 0 + 1 + 2 + 3))
    np.testing.assert_allclose(b.grad.numpy(), np.full(shape, 1.0))


# ---------------------------------------------------------------- releasing
def test_releasing_only_inside_a_backward_that_frees_the_graph():
    """autograd.releasing() tells a node's backward that it runs for the last time."""
    seen = []
    x = Tensor(np.ones(3), requires_grad=True)
    y = x * 2.0
    y.register_hook(lambda g: seen.append(autograd.releasing()))
    loss = (y * y).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert seen == [False, True] and not autograd.releasing()
