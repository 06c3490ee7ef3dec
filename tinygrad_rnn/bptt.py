"""Backpropagation through time over long sequences: full, or truncated to windows of k steps.

Truncated BPTT (Williams and Peng, 1990; Sutskever, 2013) cuts a sequence of length T into
windows of k steps. Each window runs forward from the state the previous one ended in, but that
state is detached first (`detach_state`), so gradients flow back at most k steps and the graph,
hence memory, never spans more than one window. Full BPTT is the case k = T.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .tensor import Tensor

__all__ = ["detach_state", "windows", "train_bptt", "BPTTResult"]


def detach_state(state):
    """The same state (a Tensor, or nested tuples/lists of them, or None) cut from its graph."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"detach_state: expected a Tensor or a tuple of Tensors, got {type(state).__name__}")


def windows(length: int, k: int):
    """(start, stop) of consecutive windows of k steps covering 0..length (the last may be shorter)."""
    if k <= 0:
        raise ValueError(f"windows: the window length k must be positive, got {k}")
    for start in range(0, length, k):
        yield start, min(start + k, length)


@dataclass
class BPTTResult:
    """What one pass of train_bptt did: the loss of each window, the gradient norm before
    clipping of each window (when clipping), and the state the sequence ended in."""
    losses: list = field(default_factory=list)
    grad_norms: list = field(default_factory=list)
    state: object = None


def train_bptt(model, inputs, targets, loss_fn, optimizer, k: int = None, state=None,
               max_norm: float = None, time_axis: int = 0) -> BPTTResult:
    """One pass over a long sequence with (truncated) BPTT, one optimizer step per window.

    model(x_window, state) -> (output, state), as nn.RNN/LSTM/GRU; loss_fn(output, y_window)
    -> scalar Tensor; inputs/targets Tensors or arrays with time along `time_axis`; k the window
    (None: the whole sequence, i.e. full BPTT); max_norm: clip_grad_norm_ before each step.
    """
    from .nn.utils import clip_grad_norm_

    if not isinstance(inputs, Tensor):  # an array: the model's layers take Tensors
        inputs = Tensor(inputs)
    length = inputs.shape[time_axis]
    result = BPTTResult(state=state)
    for start, stop in windows(length, length if k is None else k):  # k = 0 is an error, not full BPTT
        index = (slice(None),) * time_axis + (slice(start, stop),)
        output, state = model(inputs[index], detach_state(result.state))
        loss = loss_fn(output, targets[index])
        optimizer.zero_grad()
        loss.backward()
        if max_norm is not None:
            result.grad_norms.append(clip_grad_norm_(optimizer.params, max_norm))
        optimizer.step()
        result.losses.append(loss.item())
        result.state = detach_state(state)
    return result
