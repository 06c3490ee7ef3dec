"""GradientTracer: the gradient flow of every training step, with clipping and non-finite events.

    tracer = GradientTracer(max_norm=1.0)
    for step in range(steps):
        optimizer.zero_grad()
        flow = tracer.record(model, x, loss_fn)   # forward, backward, clip (logged)
        optimizer.step()
    tracer.hidden_grad_history()   # (training steps, T): the heatmap over training time
    tracer.clip_events, tracer.nonfinite_events

`record` is trace_gradients (so .grad is exactly a plain backward's) followed, only when
max_norm is given, by nn.utils.clip_grad_norm_(params, max_norm): the same clipping a training
loop would do, logged instead of silent. Each record keeps a GradientFlow without its per-step
weight terms (GradientFlow.lite), so the history stays small.

Events:
- ClipEvent(training_step, norm_before, norm_after, max_norm, peak_step): the total gradient
  norm exceeded max_norm and was rescaled; peak_step is the time step whose dL/dh_t (last
  layer, forward) was largest, i.e. where the gradient that had to be clipped was concentrated.
- NonFiniteEvent(training_step, where, time_step): a NaN or infinity, with `where` one of
  "loss" (the forward pass already overflowed; time_step None), a row scope such as "rnn.l0"
  (dL/dh_t or dL/dc_t of that layer; time_step is where backpropagation first meets it: the
  largest such t for a forward row, since BPTT runs from T-1 down), or "parameters" (a .grad
  with no state to blame; time_step None).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..nn.utils import clip_grad_norm_, grad_norm
from .gradients import trace_gradients

__all__ = ["GradientTracer", "ClipEvent", "NonFiniteEvent"]


@dataclass(frozen=True)
class ClipEvent:
    training_step: int
    norm_before: float
    norm_after: float
    max_norm: float
    peak_step: int | None


@dataclass(frozen=True)
class NonFiniteEvent:
    training_step: int
    where: str
    time_step: int | None


class GradientTracer:
    """Records a GradientFlow per training step; optionally clips, and logs what happened.

    max_norm: clip the total gradient norm to this (None: never clip; norms are still logged).
    jacobians, weight_terms: passed to trace_gradients (Jacobians off by default: they cost
    H (T - 1) extra sweeps per step).
    """

    def __init__(self, max_norm: float = None, jacobians: bool = False, weight_terms: bool = True):
        if max_norm is not None and max_norm <= 0:
            raise ValueError(f"GradientTracer: max_norm must be positive or None, got {max_norm}")
        self.max_norm, self.jacobians, self.weight_terms = max_norm, jacobians, weight_terms
        self.flows = []               # one GradientFlow (lite) per recorded training step
        self.norms_before = []        # total gradient norm after backward, before clipping
        self.norms_after = []         # ... after clipping (equal when not clipped)
        self.clip_events = []
        self.nonfinite_events = []

    def __len__(self) -> int:
        return len(self.flows)

    def record(self, model, x, loss_fn, hx=None, params=None):
        """trace_gradients(model, x, loss_fn, hx), then clipping when max_norm is set; returns the
        full GradientFlow. params: what to clip and measure (default model.parameters())."""
        step = len(self.flows)
        flow = trace_gradients(model, x, loss_fn, hx, jacobians=self.jacobians, weight_terms=self.weight_terms)
        params = model.parameters() if params is None else list(params)
        before = grad_norm(params)
        after = before
        if self.max_norm is not None:
            clip_grad_norm_(params, self.max_norm)
            after = grad_norm(params)
            if before > self.max_norm or not math.isfinite(before):
                row = flow.hidden_grad_norms[flow.row()]
                peak = int(np.nanargmax(row)) if np.isfinite(row).any() else None
                self.clip_events.append(ClipEvent(step, before, after, self.max_norm, peak))
        self._log_nonfinite(step, flow, before)
        self.flows.append(flow.lite())
        self.norms_before.append(before)
        self.norms_after.append(after)
        return flow

    def _log_nonfinite(self, step: int, flow, total: float) -> None:
        if not math.isfinite(flow.loss):
            self.nonfinite_events.append(NonFiniteEvent(step, "loss", None))
        for row, t in flow.nonfinite.items():
            self.nonfinite_events.append(NonFiniteEvent(step, row, t))
        if math.isfinite(flow.loss) and not flow.nonfinite and not math.isfinite(total):
            self.nonfinite_events.append(NonFiniteEvent(step, "parameters", None))

    def hidden_grad_history(self, layer: int = -1, reverse: bool = False) -> np.ndarray:
        """(training steps, T) of ||dL/dh_t|| for one layer and direction; NaN-padded to the
        longest T when sequence lengths differ."""
        rows = [f.hidden_grad_norms[f.row(layer, reverse)] for f in self.flows]
        out = np.full((len(rows), max((len(r) for r in rows), default=0)), np.nan)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out

    def verdicts(self) -> list:
        return [f.verdict for f in self.flows]

    def __repr__(self) -> str:
        return (f"GradientTracer({len(self)} steps, max_norm={self.max_norm}, "
                f"{len(self.clip_events)} clipped, {len(self.nonfinite_events)} non-finite events)")
