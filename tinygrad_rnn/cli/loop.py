"""One training step and one evaluation, shared by `train` and `demo`."""
from __future__ import annotations

import math

from .. import autograd
from ..bptt import detach_state, train_bptt
from ..nn.utils import clip_grad_norm_
from .tasks import Task

__all__ = ["train_step", "evaluate"]


def train_step(model, task: Task, optimizer, x, y, clip: float = None, bptt: int = None, carry=None) -> tuple:
    """One training step on the batch (x, y), as the model takes it (Task.tensors).

    Full BPTT (bptt None) is one forward, backward and update; with bptt = k the sequence is cut
    into windows of k steps, one update each, the state carried (detached) between them. carry:
    the state a stateful task's previous step ended in. clip: clip_grad_norm_ before each update.
    Returns (mean loss over the windows, largest gradient norm before clipping (NaN when not
    clipping), the state to carry into the next step (None unless the task is stateful)).
    """
    if task.last_only:  # the target sits at the end: only full BPTT can reach the markers
        prediction, _ = model(x)
        loss = task.loss(prediction, y)
        optimizer.zero_grad()
        loss.backward()
        norm = clip_grad_norm_(optimizer.params, clip) if clip else math.nan
        optimizer.step()
        return loss.item(), norm, None
    result = train_bptt(model, x, y, task.loss, optimizer, k=bptt, state=carry, max_norm=clip or None)
    mean = sum(result.losses) / len(result.losses)
    norm = max(result.grad_norms) if result.grad_norms else math.nan
    return mean, norm, (detach_state(result.state) if task.period else None)


def evaluate(model, task: Task, dtype, device) -> float:
    """The task's loss on its validation batch (no gradients, eval mode)."""
    x, y = task.tensors(*task.validation, dtype, device)
    model.eval()
    try:
        with autograd.no_grad():
            prediction, _ = model(x)
            return task.loss(prediction, y).item()
    finally:
        model.train()
