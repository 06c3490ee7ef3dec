"""Composites of ops: softmax, losses, dropout, embedding (PyTorch's torch.nn.functional names).

Losses take `reduction` = "mean" | "sum" | "none" as in PyTorch. For padded batches of
sequences, `mask` (1 where a position counts, 0 where it is padding; any shape that broadcasts
to the per-position losses) weights each position, and "mean" then averages over the positions
that count.
"""
from __future__ import annotations

import numpy as np

from . import backend, ops
from .tensor import Tensor

__all__ = ["softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "dropout", "embedding",
           "lengths_to_mask"]


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along axis, computed as x - max - log(sum(exp(x - max)))."""
    return ops.log_softmax(x, axis)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along axis, as exp(log_softmax(x)) (never overflows)."""
    return ops.exp(ops.log_softmax(x, axis))


def nll_loss(log_probs: Tensor, target, ignore_index: int = -100, reduction: str = "mean",
             mask=None) -> Tensor:
    """Negative log-likelihood: loss_n = -log_probs[n, target_n].

    log_probs: (N, C) or (N, C, d1, ...) (class axis 1, as PyTorch) or (C,);
    target: integer class indices of shape (N,) / (N, d1, ...) / (); positions whose target
    equals ignore_index count neither in the sum nor in the mean. When no position counts, the
    mean is 0 (PyTorch's is 0/0, NaN): a batch of padding adds nothing to a training loss.
    """
    return _nll(log_probs, target, ignore_index, reduction, mask, "nll_loss")


def cross_entropy(logits: Tensor, target, ignore_index: int = -100, reduction: str = "mean",
                  mask=None) -> Tensor:
    """Softmax cross-entropy from unnormalised logits: nll_loss(log_softmax(logits, class axis)).

    logits: (N, C), (N, C, d1, ...) or (C,); target: class indices (N,), (N, d1, ...) or ();
    ignore_index, reduction and mask as in nll_loss.
    """
    class_axis = 0 if logits.ndim == 1 else 1
    return _nll(ops.log_softmax(logits, class_axis), target, ignore_index, reduction, mask, "cross_entropy")


def _nll(log_probs: Tensor, target, ignore_index: int, reduction: str, mask, op: str) -> Tensor:
    """nll_loss, with errors that name `op`, the function the caller called."""
    target = _indices(target, log_probs, op)
    flat, targets = _classes_last(log_probs, target, op)
    xp = backend.array_module(flat.data)
    keep = targets != ignore_index
    scored = targets[keep]
    classes = flat.shape[1]
    if scored.size and (int(scored.min()) < 0 or int(scored.max()) >= classes):
        raise IndexError(f"{op}: class indices must lie in [0, {classes}) (or equal "
                         f"ignore_index={ignore_index}), got values from {int(scored.min())} to {int(scored.max())}")
    picked = flat[xp.arange(flat.shape[0]), xp.where(keep, targets, 0)]  # log-probability of each target
    weights = keep.astype(flat.dtype)
    if mask is not None:
        weights = weights * backend.to_device(_mask_array(mask, target.shape).reshape(-1), flat.device).astype(flat.dtype)
    scored = weights != 0
    if not scored.all():  # an unscored position picked class 0 in its target's place, and its
        picked = ops.where(scored, picked, 0.0)  # log-probability may be -inf: -inf * 0 would be NaN
    return _reduce(-picked * weights, weights, reduction, target.shape)


def mse_loss(input: Tensor, target, reduction: str = "mean", mask=None) -> Tensor:
    """Mean squared error: loss_i = (input_i - target_i)^2."""
    if isinstance(target, (Tensor, *backend.ARRAY_TYPES)) and tuple(target.shape) != input.shape:
        raise ValueError(f"mse_loss: input has shape {input.shape} but target has shape {tuple(target.shape)}; "
                         "they must match (a broadcast target would average over pairs the caller never meant)")
    diff = input - target
    if mask is None:
        return _reduce(diff ** 2, None, reduction, diff.shape)
    weights = backend.to_device(_mask_array(mask, diff.shape), input.device).astype(input.dtype)
    scored = weights != 0
    if not scored.all():  # as in nll_loss: an inf or NaN where the mask is 0 must not make 0 * inf = NaN
        diff = ops.where(scored, diff, 0.0)
    return _reduce(diff ** 2 * weights, weights, reduction, diff.shape)


def lengths_to_mask(lengths, max_len: int, batch_first: bool = False) -> np.ndarray:
    """A (T, B) float mask (or (B, T) with batch_first) with 1 for t < lengths[b], else 0."""
    lengths = np.asarray(lengths.numpy() if isinstance(lengths, Tensor) else lengths)
    mask = (np.arange(max_len)[:, None] < lengths[None, :]).astype(np.float64)
    return mask.T if batch_first else mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each entry with probability p and scale the rest by 1 / (1 - p) (inverted dropout);
    the identity when not training or p = 0, zeros at p = 1 (as PyTorch). The mask is drawn from
    the host's seeded generator, so a seed gives the same mask on every device."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:  # nothing kept, and no 1 / (1 - p) to scale by
        return x * 0.0
    keep = backend.random_state().random(x.shape) >= p  # drawn on the host: one seed, one mask everywhere
    return x * backend.to_device((keep / (1.0 - p)).astype(x.dtype), x.device)


def embedding(indices, weight: Tensor, padding_idx: int = None) -> Tensor:
    """Rows of weight (num, dim) picked by integer indices of any shape -> (*indices.shape, dim);
    the backward scatter-adds into the picked rows (repeated indices accumulate), except into row
    padding_idx (when given; negative counts from the end), which gets no gradient, as PyTorch's."""
    idx = _indices(indices, weight, "embedding")
    num = weight.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num):
        raise IndexError(f"embedding: indices must lie in [0, {num}), got values from "
                         f"{int(idx.min())} to {int(idx.max())}")
    if padding_idx is None:
        return weight[idx]
    if not -num <= padding_idx < num:
        raise IndexError(f"embedding: padding_idx must lie in [-{num}, {num}), got {padding_idx}")
    padding = (idx == padding_idx % num)[..., None]
    return ops.where(padding, weight.detach()[idx], weight[idx])


def _indices(indices, like: Tensor, op: str):
    data = indices.data if isinstance(indices, Tensor) else indices
    data = backend.to_device(np.asarray(data) if not isinstance(data, backend.ARRAY_TYPES) else data, like.device)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer class/row indices, got dtype {data.dtype}; "
                        "convert with .astype(np.int64)")
    return data


def _classes_last(log_probs: Tensor, target, op: str):
    """(N*, C) rows of log-probabilities and the flat targets (N*,) they are scored against."""
    if log_probs.ndim == 1:
        if target.ndim != 0:
            raise ValueError(f"{op}: input of shape {log_probs.shape} (one sample) needs a 0-d target, "
                             f"got shape {tuple(target.shape)}")
        return log_probs.reshape(1, -1), target.reshape(1)
    expected = (log_probs.shape[0],) + log_probs.shape[2:]
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: input of shape {log_probs.shape} (N, C, ...) needs a target of shape "
                         f"{expected}, got {tuple(target.shape)}")
    moved = log_probs if log_probs.ndim == 2 else ops.permute(
        log_probs, (0,) + tuple(range(2, log_probs.ndim)) + (1,))
    return moved.reshape(-1, log_probs.shape[1]), target.reshape(-1)


def _mask_array(mask, shape) -> np.ndarray:
    array = mask.numpy() if isinstance(mask, Tensor) else backend.to_numpy(mask) \
        if isinstance(mask, backend.ARRAY_TYPES) else np.asarray(mask)
    try:
        return np.broadcast_to(array.astype(np.float64), shape)
    except ValueError:
        raise ValueError(f"mask of shape {array.shape} does not broadcast to the losses' shape {tuple(shape)}") from None


def _reduce(losses: Tensor, weights, reduction: str, shape) -> Tensor:
    if reduction == "none":
        return losses.reshape(shape)
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        if weights is None:
            return losses.mean()
        return losses.sum() / max(float(weights.sum()), 1e-12)
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
