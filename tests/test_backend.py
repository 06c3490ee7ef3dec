"""Backends, devices, dtypes, seeds, tensor construction and numerical care at large |x|."""
import pathlib
import re
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import Tensor, backend, ops

ROOT = pathlib.Path(__file__).resolve().parents[1]
CUPY_IMPORT = re.compile(r"^\s*(import\s+cupy|from\s+cupy)|import_module\(\s*['\"]cupy", re.MULTILINE)
GPU_HINT = "pip install tinygrad-rnn[gpu]"


# ---------------------------------------------------------------- only backend.py knows CuPy
def python_sources():
    for package in ("tinygrad_rnn", "viz"):
        yield from sorted((ROOT / package).rglob("*.py"))


def test_the_cupy_import_pattern_finds_backend_py():
    """The scan below is not vacuous: it recognises the import that backend.py does have."""
    assert CUPY_IMPORT.search((ROOT / "tinygrad_rnn" / "backend.py").read_text())


def test_only_backend_py_imports_cupy():
    backend_py = ROOT / "tinygrad_rnn" / "backend.py"
    offenders = [str(path.relative_to(ROOT)) for path in python_sources()
                 if path != backend_py and CUPY_IMPORT.search(path.read_text())]
    assert offenders == []


# ---------------------------------------------------------------- devices
@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu "])
def test_normalize_device_accepts_cpu(name):
    assert backend.normalize_device(name) == "cpu"


def test_normalize_device_rejects_unknown_devices():
    with pytest.raises(ValueError, match=r"'tpu'.*'cpu'"):
        backend.normalize_device("tpu")
    with pytest.raises(ValueError, match="cuda:N"):
        backend.normalize_device("cuda:one")
    with pytest.raises(ValueError, match="tpu"):
        Tensor([1.0], device="tpu")


@pytest.mark.skipif(backend.cuda_available(), reason="CUDA is available here")
def test_cuda_without_cupy_or_a_device_says_what_is_missing():
    expected = re.escape(GPU_HINT) + "|no CUDA device"
    with pytest.raises(RuntimeError, match=expected):
        backend.normalize_device("cuda")
    with pytest.raises(RuntimeError, match=expected):
        Tensor([1.0], device="cuda:0")


def test_cuda_without_cupy_names_the_install_command(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    with pytest.raises(RuntimeError, match=re.escape(GPU_HINT)):
        backend.normalize_device("cuda")
    assert not backend.cuda_available()


def test_device_environment_variable_is_honoured(device, monkeypatch):
    monkeypatch.setenv("TINYGRAD_RNN_DEVICE", device.upper())
    monkeypatch.setattr(backend, "_default_device", None)
    assert tr.default_device() == backend.normalize_device(device)
    assert Tensor([1.0]).device == backend.normalize_device(device)
    assert tr.zeros(2).device == backend.normalize_device(device)


def test_a_bad_device_environment_variable_is_reported(monkeypatch):
    monkeypatch.setenv("TINYGRAD_RNN_DEVICE", "tpu")
    monkeypatch.setattr(backend, "_default_device", None)
    with pytest.raises(ValueError, match="environment variable TINYGRAD_RNN_DEVICE='tpu' .*unknown device 'tpu'"):
        tr.default_device()


def test_an_empty_device_environment_variable_means_unset(monkeypatch):
    monkeypatch.setenv("TINYGRAD_RNN_DEVICE", "  ")
    monkeypatch.setattr(backend, "_default_device", None)
    assert tr.default_device() == "cpu"


def test_set_default_device(device):
    tr.set_default_device(device)
    assert tr.randn(3).device == backend.normalize_device(device)


# ---------------------------------------------------------------- dtypes
FLOAT_FACTORIES = {
    "Tensor(list)": lambda device: Tensor([1.0, 2.0], device=device),
    "Tensor(float)": lambda device: Tensor(1.5, device=device),
    "zeros": lambda device: tr.zeros(2, 3, device=device),
    "ones": lambda device: tr.ones((2,), device=device),
    "randn": lambda device: tr.randn(4, device=device),
    "rand": lambda device: tr.rand(4, device=device),
    "eye": lambda device: tr.eye(3, device=device),
    "arange(float)": lambda device: tr.arange(0.0, 1.0, 0.25, device=device),
}


@pytest.mark.parametrize("factory", sorted(FLOAT_FACTORIES))
def test_float32_is_the_default(device, factory):
    assert FLOAT_FACTORIES[factory](device).dtype == np.float32


@pytest.mark.parametrize("spelling", [np.float64, "float64", np.dtype("float64")], ids=["type", "name", "dtype"])
@pytest.mark.parametrize("factory", sorted(FLOAT_FACTORIES))
def test_set_default_dtype_float64_applies_to_new_tensors(device, factory, spelling):
    tr.set_default_dtype(spelling)
    assert tr.default_dtype() == np.float64
    assert FLOAT_FACTORIES[factory](device).dtype == np.float64


def test_default_dtype_leaves_integer_tensors_alone(device):
    tr.set_default_dtype(np.float64)
    assert Tensor([1, 2], device=device).dtype == np.int64
    assert tr.arange(3, device=device).dtype == np.int64


@pytest.mark.parametrize("dtype", [np.int64, "int32", bool])
def test_set_default_dtype_rejects_non_floating_dtypes(dtype):
    with pytest.raises(ValueError, match="floating"):
        tr.set_default_dtype(dtype)
    assert tr.default_dtype() == np.float32


def test_an_unknown_dtype_name_is_reported():
    with pytest.raises(TypeError, match="float33"):
        Tensor([1.0], dtype="float33")


# ---------------------------------------------------------------- seeds
RANDOM_FACTORIES = {"randn": tr.randn, "rand": tr.rand}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(RANDOM_FACTORIES))
def test_manual_seed_repeats_bit_for_bit(device, name, dtype):
    factory = RANDOM_FACTORIES[name]
    tr.manual_seed(1234)
    first = factory(3, 5, dtype=dtype, device=device).numpy()
    tr.manual_seed(1234)
    again = factory(3, 5, dtype=dtype, device=device).numpy()
    tr.manual_seed(4321)
    other = factory(3, 5, dtype=dtype, device=device).numpy()
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def test_rand_in_float32_stays_below_one(device):
    """Seed 24's draw 424,357 is within 2^-25 of 1: rounded to float32 it was 1.0, outside [0, 1)."""
    tr.manual_seed(24)
    values = tr.rand(500_000, device=device).numpy()
    assert values.dtype == np.float32 and values.max() < 1.0
    assert values[424_357] == np.nextafter(np.float32(1), np.float32(0))
    tr.manual_seed(24)
    np.testing.assert_array_equal(tr.rand(500_000, dtype=np.float64, device=device).numpy()[:1000].astype(np.float32),
                                  values[:1000])  # the other draws: float64 ones rounded, as documented


def test_arange_takes_pytorchs_arguments(device):
    assert tr.arange(5, step=2, device=device).tolist() == [0, 2, 4]  # step was dropped without a stop
    assert tr.arange(2, 8, 3, device=device).tolist() == [2, 5]
    assert tr.arange(1.0, 0.0, -0.5, device=device).tolist() == [1.0, 0.5]
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        tr.arange(0, 5, 0, device=device)


@pytest.mark.parametrize("shape", [(2.5,), (-1, 2), ((2, True),)], ids=["float", "negative", "bool"])
def test_factories_refuse_sizes_that_are_not_counts(device, shape):
    for factory in (tr.zeros, tr.ones, tr.randn, tr.rand):
        with pytest.raises(TypeError, match=r"sizes must be non-negative integers"):
            factory(*shape, device=device)


def test_draws_after_a_seed_continue_the_stream(device):
    tr.manual_seed(7)
    a, b = tr.randn(4, device=device).numpy(), tr.randn(4, device=device).numpy()
    assert not np.array_equal(a, b)
    tr.manual_seed(7)
    np.testing.assert_array_equal(tr.randn(8, device=device).numpy(), np.concatenate([a, b]))


# ---------------------------------------------------------------- construction
def test_a_list_of_floats_is_float32(device):
    t = Tensor([0.1, 0.2, 0.3], device=device)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), np.array([0.1, 0.2, 0.3], dtype=np.float32))


def test_a_float64_array_keeps_its_dtype_and_is_copied(device):
    source = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = Tensor(source, device=device)
    assert t.dtype == np.float64
    source[0, 0] = 99.0
    assert t.numpy()[0, 0] == 1.0
    t.data[1, 1] = -1.0
    assert source[1, 1] == 4.0


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int32])
def test_arrays_keep_their_dtype(device, dtype):
    assert Tensor(np.zeros(3, dtype=dtype), device=device).dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_one_keeps_the_dtype_and_cannot_be_written(device, dtype):
    like = Tensor(np.full(3, 0.5, dtype=dtype), device=device).data
    one = backend.one(like)
    assert (one + like).dtype == np.dtype(dtype)
    np.testing.assert_array_equal(backend.to_numpy(one - like), np.full(3, 0.5, dtype=dtype))
    if isinstance(one, np.ndarray):  # NumPy's is shared by every caller: it must stay 1
        assert backend.one(like) is one
        with pytest.raises(ValueError):
            one += 1


def test_an_explicit_dtype_wins(device):
    assert Tensor([1.0, 2.0], dtype=np.float64, device=device).dtype == np.float64
    assert Tensor(np.zeros(2), dtype="float32", device=device).dtype == np.float32


def test_objects_that_are_not_numbers_are_rejected():
    with pytest.raises(TypeError, match="cannot make a tensor"):
        Tensor([object(), object()])


# ---------------------------------------------------------------- numerical care at large |x|
LARGE = np.array([-1e4, -1e3, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1e3, 1e4])


def reference_sigmoid(x):
    """1 / (1 + e^-x) = exp(-log(1 + e^-x)), which never overflows and keeps its digits in relative
    terms also where the value is tiny (0.5 (1 + tanh(x / 2)) would not)."""
    return np.exp(-np.logaddexp(0.0, -x))


def reference_log_softmax(x, axis):
    return x - np.logaddexp.reduce(x, axis=axis, keepdims=True)


def forward_and_grad(fn, values, dtype, device):
    """fn's output and the gradient of sum(w * fn(x)) for fixed weights w, with every warning an error."""
    x = Tensor(values, dtype=dtype, device=device, requires_grad=True)
    weights = np.linspace(-1.0, 2.0, values.size).reshape(values.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(x)
        (y * Tensor(weights, dtype=dtype, device=device)).sum().backward()
    return y.numpy(), x.grad.numpy(), weights


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_at_large_inputs(device, dtype):
    y, grad, weights = forward_and_grad(Tensor.sigmoid, LARGE, dtype, device)
    assert y.dtype == dtype and grad.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad))
    assert np.all((y >= 0) & (y <= 1))
    expected = reference_sigmoid(LARGE)
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected.astype(dtype), rtol=tolerance, atol=0)  # rounded: float32's subnormals
    np.testing.assert_allclose(grad, weights * expected * (1 - expected), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_is_stable_at_large_inputs(device, dtype):
    rows = np.stack([LARGE, LARGE[::-1], np.full_like(LARGE, 1e4), np.full_like(LARGE, -1e4)])
    for axis in (0, 1, -1):
        y, grad, weights = forward_and_grad(lambda t: ops.log_softmax(t, axis=axis), rows, dtype, device)
        assert y.dtype == dtype and grad.dtype == dtype
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad))
        assert np.all(y <= 0)
        expected = reference_log_softmax(rows, axis)
        np.testing.assert_allclose(y, expected, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-3)
        softmax = np.exp(expected)
        expected_grad = weights - softmax * weights.sum(axis=axis, keepdims=True)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-5)
