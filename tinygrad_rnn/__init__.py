"""tinygrad_rnn: reverse-mode autograd from scratch over NumPy/CuPy, and recurrent networks on it."""
from .tensor import Tensor  # first: the engine and the ops build on it
from .autograd import enable_grad, is_grad_enabled, no_grad, scope, time_step
from .backend import cuda_available, default_device, default_dtype, set_default_device, set_default_dtype
from .factories import arange, eye, manual_seed, ones, rand, randn, zeros, zeros_like, ones_like
from .gradcheck import gradcheck
from .ops import cat, stack, where
from . import functional, functional as F, nn, optim  # noqa: E402  (after the engine they build on)
from .bptt import detach_state, train_bptt
from .checkpoint import load, save
from .malloc import keep_freed_memory

__version__ = "0.1.0"

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "time_step", "scope", "cat", "stack",
           "where", "zeros", "ones", "randn", "rand", "arange", "eye", "zeros_like", "ones_like",
           "manual_seed", "gradcheck", "set_default_device", "set_default_dtype", "default_device",
           "default_dtype", "cuda_available", "nn", "functional", "F", "optim", "save", "load",
           "detach_state", "train_bptt", "keep_freed_memory"]
