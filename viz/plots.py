"""Gradient-flow plots (matplotlib): vanishing and exploding gradients, step by step.

Every function takes the records of tinygrad_rnn.trace (a GradientFlow, several of them as
{label: flow}, or a GradientTracer), returns a matplotlib Figure, and writes it to `path` when
one is given (the format from the extension: .png, .svg, .pdf). Figures are made without pyplot,
so nothing is displayed and no global figure list grows; in a notebook the returned Figure shows
itself.

    plot_gradient_norms({"RNN": f1, "LSTM": f2, "GRU": f3}, "norms.png")   ||dL/dh_t|| vs t
    plot_training_heatmap(tracer)       time step x training step
    plot_unit_heatmap(flow)             time step x hidden unit
    plot_jacobians(flow)                ||dh_T/dh_k||, singular values of dh_t/dh_{t-1}, 1/gamma
    plot_weight_steps(flow)             the step-t terms of dL/dW: which steps the update hears
    plot_echo_state({"rho = 0.8": esn1, "rho = 1.5": esn2})   two initial states, converging or not
    plot_clipping(tracer)               total gradient norm before and after clipping
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

__all__ = ["plot_gradient_norms", "plot_training_heatmap", "plot_unit_heatmap", "plot_jacobians",
           "plot_weight_steps", "plot_echo_state", "echo_state_trajectories", "plot_clipping", "MODEL_COLORS"]

MODEL_COLORS = {"RNN": "#d62728", "LSTM": "#1f77b4", "GRU": "#2ca02c"}
_CYCLE = ["#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"]
_GRAD_H = r"$\Vert\partial L/\partial h_t\Vert$"


# ---------------------------------------------------------------- helpers
def _flows(flows) -> list:
    """[(label, flow)] from one GradientFlow, a list of them, or a {label: flow} dict."""
    if isinstance(flows, dict):
        return list(flows.items())
    if hasattr(flows, "hidden_grad_norms"):
        return [(flows.model or "model", flows)]
    return [(f.model or f"model {i}", f) for i, f in enumerate(flows)]


def _color(label: str, i: int) -> str:
    for name, color in MODEL_COLORS.items():
        if label.upper().startswith(name):
            return color
    return _CYCLE[i % len(_CYCLE)]


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _finish(fig: Figure, path):
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


def _positive(values) -> np.ndarray:
    """Values for a log axis: zeros, NaN and infinities become NaN (a gap in the line)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(v) & (v > 0), v, np.nan)


def _log10_image(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(v) & (v > 0), np.log10(np.where(v > 0, v, 1.0)), np.nan)


# ---------------------------------------------------------------- norm against time step
def plot_gradient_norms(flows, path=None, relative: bool = True, cell: bool = False, title: str = None) -> Figure:
    """||dL/dh_t|| against t on a log scale, one line per model (the last layer, forward).

    relative: divide by the norm at the last step, so models start together at 1 and the slope
    is the decay; cell: add a dashed line of ||dL/dc_t|| for LSTMs. Lines: one per model (plus
    one per LSTM with cell=True).
    """
    fig = _figure(8, 4.8)
    ax = fig.add_subplot()
    steps = 0
    for i, (label, flow) in enumerate(_flows(flows)):
        row = flow.row()
        color = _color(label, i)
        series = [(flow.hidden_grad_norms[row], "-", f"{label}: {flow.decay_rate:.3g} per step, {flow.verdict}")]
        if cell and flow.cell_grad_norms is not None:
            cell_label = rf"{label}: cell state, $\Vert\partial L/\partial c_t\Vert$"
            series.append((flow.cell_grad_norms[row], "--", cell_label))
        for norms, style, text in series:
            scale = norms[-1] if relative and np.isfinite(norms[-1]) and norms[-1] > 0 else 1.0
            ax.semilogy(np.arange(len(norms)), _positive(norms / scale), style, color=color, lw=2, label=text)
        steps = max(steps, flow.steps)
    ax.set_xlabel("time step t")
    ax.set_ylabel(_GRAD_H + (r" / $\Vert\partial L/\partial h_{T-1}\Vert$" if relative else ""))
    ax.set_title(title or "How much gradient reaches each time step")
    ax.set_xlim(0, max(steps - 1, 1))
    ax.grid(True, which="major", alpha=0.3)
    ax.annotate("backpropagation through time", xy=(0.04, 0.95), xytext=(0.42, 0.95), xycoords="axes fraction",
                arrowprops={"arrowstyle": "->", "color": "0.4"}, color="0.4", va="center", fontsize=9,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})  # legible over curves
    ax.legend(loc="best", fontsize=9, title="decay rate r (fitted), verdict", title_fontsize=9)
    return _finish(fig, path)


# ---------------------------------------------------------------- heatmaps
def plot_training_heatmap(history, path=None, layer: int = -1, reverse: bool = False, title: str = None) -> Figure:
    """Time step x training step: log10 ||dL/dh_t|| for each recorded training step.

    history: a GradientTracer, a list of GradientFlows, or a (training steps, T) array. One image.
    """
    if hasattr(history, "hidden_grad_history"):
        grid = history.hidden_grad_history(layer, reverse)
    elif isinstance(history, np.ndarray):
        grid = history
    else:
        grid = np.array([f.hidden_grad_norms[f.row(layer, reverse)] for f in history])
    fig = _figure(8, 4.8)
    ax = fig.add_subplot()
    image = ax.imshow(_log10_image(grid), aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
    fig.colorbar(image, ax=ax, label=r"$\log_{10}$ " + _GRAD_H)
    ax.set_xlabel("time step t")
    ax.set_ylabel("training step")
    ax.set_title(title or "Gradient reaching each time step, over training")
    return _finish(fig, path)


def plot_unit_heatmap(flow, path=None, layer: int = -1, reverse: bool = False, title: str = None) -> Figure:
    """Time step x hidden unit: log10 of the RMS over the batch of dL/dh_t,j. One image."""
    units = flow.hidden_grad_units[flow.row(layer, reverse)]  # (T, H)
    fig = _figure(8, 4.8)
    ax = fig.add_subplot()
    image = ax.imshow(_log10_image(units.T), aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
    fig.colorbar(image, ax=ax, label=r"$\log_{10}$ RMS$_{batch}\ |\partial L/\partial h_{t,j}|$")
    ax.set_xlabel("time step t")
    ax.set_ylabel("hidden unit j")
    ax.set_title(title or f"{flow.model or 'Model'}: gradient per hidden unit and time step ({flow.verdict})")
    return _finish(fig, path)


# ---------------------------------------------------------------- Jacobians
def plot_jacobians(flows, path=None, title: str = None) -> Figure:
    """Three panels, for one model or several ({label: flow}, each traced with jacobians=True):

    (a) ||dh_{T-1}/dh_k|| against k (log): one line per model;
    (b) singular values of the one-step Jacobian dh_t/dh_{t-1} against t: the largest per model
        (solid; for a single model also the others, faint), and the line 1 between growth and
        decay; for a plain RNN also Pascanu's bound gamma * sigma_1(W_hh) (dotted);
    (c) sigma_1 (bars) and spectral radius (dots) of every recurrent matrix, with its 1/gamma
        (black dash): sigma_1 below 1/gamma guarantees vanishing gradients (Pascanu et al. 2013).
    """
    items = [(label, f) for label, f in _flows(flows) if f.jacobian_norms is not None]
    if not items:
        raise ValueError("plot_jacobians: no flow has Jacobians; trace with trace_gradients(..., jacobians=True)")
    fig = _figure(13, 4.4)
    ax_end, ax_step, ax_w = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 0.8]})
    single = len(items) == 1
    for i, (label, flow) in enumerate(items):
        color = _color(label, i)
        k = np.arange(flow.steps)
        rate = f", fitted {flow.jacobian_decay_rate:.3g} per step" if flow.jacobian_decay_rate is not None else ""
        ax_end.semilogy(k, _positive(flow.jacobian_norms), color=color, lw=2, label=label + rate)
        svals = flow.step_singular_values
        if single:
            for j in range(1, svals.shape[1]):
                ax_step.plot(k, svals[:, j], color=color, lw=0.8, alpha=0.35)
        state = r"$[h_t; c_t]$" if flow.cell_grad_norms is not None else "$h_t$"
        ax_step.plot(k, svals[:, 0], color=color, lw=2, label=rf"{label}: $\sigma_1$, state {state}")
        plain = [m for m in flow.recurrent if m.gate is None and m.parameter.endswith(flow.jacobian_row.split(".")[-1])]
        if plain:
            ax_step.axhline(plain[0].gamma * plain[0].singular_value, color=color, ls=":", lw=1.5,
                            label=rf"{label}: bound $\gamma\,\sigma_1(W_{{hh}})$")
    ax_step.axhline(1.0, color="0.2", lw=1, label="1: grows above, shrinks below")
    shown = np.concatenate([(f.step_singular_values if single else f.step_singular_values[:, :1]).ravel()
                            for _, f in items] + [[1.0]])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    if shown.max() / shown.min() > 30:  # orders of magnitude: a log axis
        ax_step.set_yscale("log")
    else:
        ax_step.set_ylim(bottom=0)
    ax_end.set(xlabel="k", ylabel=r"$\Vert\partial h_{T-1}/\partial h_k\Vert_2$ (batch mean)",
               title="(a) How much of $h_k$ reaches the last state")
    ax_step.set(xlabel="t", ylabel=r"singular values of $\partial h_t/\partial h_{t-1}$",
                title="(b) One step of the recurrence")
    for ax in (ax_end, ax_step):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    _plot_recurrent(ax_w, items)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def _plot_recurrent(ax, items) -> None:
    """Panel (c): sigma_1 and spectral radius of each recurrent matrix against its 1/gamma."""
    names, ticks, x = [], [], 0.0
    for i, (label, flow) in enumerate(items):
        for m in flow.recurrent:
            ax.bar(x, m.singular_value, color=_color(label, i), alpha=0.75, width=0.7)
            ax.plot([x], [m.spectral_radius], "o", color="white", mec="black", ms=5, zorder=3)
            ax.hlines(m.threshold, x - 0.45, x + 0.45, colors="black", lw=2, zorder=4)
            plain = [r for r in flow.recurrent if r.gate is None]
            names.append(f"{label} {m.gate}" if m.gate else
                         label if len(plain) == 1 else f"{label} {m.name.split('.')[-1][len('weight_hh_'):]}")
            ticks.append(x)
            x += 1
        x += 0.5  # a gap between models
    ax.set_xticks(ticks, names, rotation=60, ha="right", fontsize=8)
    ax.set_xlim(min(-0.8, ticks[-1] / 2 - 2), max(ticks[-1] + 0.8, ticks[-1] / 2 + 2))  # few bars: not too wide
    ax.set_title(r"(c) Recurrent matrices against $1/\gamma$")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(handles=[Patch(color="0.6", label=r"$\sigma_1$, largest singular value"),
                       Line2D([], [], ls="", marker="o", color="white", mec="black", label="spectral radius"),
                       Line2D([], [], color="black", lw=2,
                              label=r"$1/\gamma$: a plain RNN's $\sigma_1$ below $\Rightarrow$ vanishing"
                                    "\n(for a gate block: only the path through that gate)")],
              fontsize=8, loc="upper left")
    ax.set_ylim(0, 1.3 * max(max(m.singular_value, m.threshold) for _, f in items for m in f.recurrent))


# ---------------------------------------------------------------- per-step weight terms
def plot_weight_steps(flow, path=None, names=None, title: str = None) -> Figure:
    """||step-t term of dL/dW|| against t (log) for shared weights: dL/dW = sum_t of these, so
    this is which time steps the weight update hears. names: parameters to show (default the
    last layer's forward weight_ih and weight_hh). One line per parameter."""
    if names is None:
        suffix = flow.rows[flow.row()].split(".")[-1]
        wanted = (f"weight_ih_{suffix}", f"weight_hh_{suffix}")
        names = sorted((n for n in flow.weight_step_norms if n.split(".")[-1] in wanted),
                       key=lambda n: "weight_hh" in n)
    if not names:
        raise ValueError("plot_weight_steps: no per-step weight terms; trace with weight_terms=True")
    fig = _figure(8, 4.4)
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        norms = flow.weight_step_norms[name]
        ax.semilogy(np.arange(len(norms)), _positive(norms), lw=2, color=_CYCLE[i % len(_CYCLE)], label=name)
    ax.set(xlabel="time step t", ylabel=r"$\Vert$ step-$t$ term of $\partial L/\partial W\Vert$",
           title=title or f"{flow.model or 'Model'}: which time steps the weight update hears")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return _finish(fig, path)


# ---------------------------------------------------------------- echo state property
def echo_state_trajectories(esn, inputs, x0_a, x0_b) -> tuple:
    """(states_a, states_b, distance): the reservoir driven by the same inputs (T, I) from two
    initial states; distance[t] = ||x_t - x'_t||. The echo state property: it goes to 0."""
    a = np.asarray(esn.states(np.asarray(inputs), np.asarray(x0_a)), dtype=np.float64)
    b = np.asarray(esn.states(np.asarray(inputs), np.asarray(x0_b)), dtype=np.float64)
    return a, b, np.linalg.norm(a - b, axis=-1)


def plot_echo_state(esns, inputs=None, steps: int = 200, seed: int = 0, unit: int = 0, path=None,
                    title: str = None) -> Figure:
    """Two trajectories of each reservoir from different initial states, same inputs.

    esns: {label: nn.ESN} (or a list; labelled by spectral radius). inputs: (T, I); default
    sin(2 pi t / 25) on every input channel for `steps` steps. The initial states are drawn
    U(-1, 1) from np.random.default_rng(seed). Top row, one panel per reservoir: unit `unit`
    from both starts (2 lines each); bottom: ||x_t - x'_t|| per reservoir (log; one line each).
    """
    items = list(esns.items()) if isinstance(esns, dict) else \
        [(rf"$\rho$ = {e.spectral_radius:g}, a = {e.leak_rate:g}", e) for e in esns]
    fig = _figure(4.2 * max(len(items), 2), 6.4)
    grid = fig.add_gridspec(2, len(items), height_ratios=[1, 1.1])
    bottom = fig.add_subplot(grid[1, :])
    rng = np.random.default_rng(seed)
    for i, (label, esn) in enumerate(items):
        u = inputs if inputs is not None else np.repeat(np.sin(2 * np.pi * np.arange(steps) / 25)[:, None],
                                                        esn.input_size, axis=1)
        x0_a, x0_b = rng.uniform(-1, 1, esn.reservoir_size), rng.uniform(-1, 1, esn.reservoir_size)
        a, b, distance = echo_state_trajectories(esn, u, x0_a, x0_b)
        color = _CYCLE[i % len(_CYCLE)] if i else "#1f77b4"
        ax = fig.add_subplot(grid[0, i])
        ax.plot(a[:, unit], color=color, lw=1.6, label="from $x_0$")
        ax.plot(b[:, unit], color="black", lw=1.2, ls="--", label="from $x_0'$")
        ax.set(title=label, xlabel="t", ylabel=f"unit {unit} of $x_t$")
        ax.legend(fontsize=8, loc="best")
        ax.grid(True, alpha=0.3)
        bottom.semilogy(np.maximum(distance, 1e-17), color=color, lw=2, label=label)  # identical: drawn at 1e-17
    bottom.axhline(1e-16, color="0.5", lw=1, ls=":")
    bottom.text(1, 2e-16, "float64 round-off", color="0.4", fontsize=8, va="bottom")
    bottom.set(xlabel="time step t", ylabel=r"$\Vert x_t - x_t'\Vert$",
               title="Echo state property: do the two trajectories forget where they started?")
    bottom.grid(True, alpha=0.3)
    bottom.legend(fontsize=9)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


# ---------------------------------------------------------------- clipping
def plot_clipping(tracer, path=None, title: str = None) -> Figure:
    """The total gradient norm before and after clipping over training (log), the max_norm line,
    clipping events (dots) and non-finite events (red vertical lines).
    Lines: before, after, max_norm (when set), one per training step with a non-finite event."""
    before, after = np.asarray(tracer.norms_before, float), np.asarray(tracer.norms_after, float)
    steps = np.arange(len(before))
    fig = _figure(8, 4.6)
    ax = fig.add_subplot()
    ax.semilogy(steps, _positive(before), color="#d62728", lw=1.8, label="before clipping")
    ax.semilogy(steps, _positive(after), color="#1f77b4", lw=1.8, label="after clipping (what the update uses)")
    if tracer.max_norm is not None:
        ax.axhline(tracer.max_norm, color="black", ls="--", lw=1, label=f"max_norm = {tracer.max_norm:g}")
    clipped = [e.training_step for e in tracer.clip_events if np.isfinite(e.norm_before)]
    if clipped:
        ax.scatter(clipped, _positive(before[clipped]), s=18, color="#d62728", zorder=3,
                   label=f"clipped ({len(tracer.clip_events)} of {len(before)} steps)")
    for j, step in enumerate(sorted({e.training_step for e in tracer.nonfinite_events})):
        ax.axvline(step, color="red", lw=1, alpha=0.6, label="non-finite gradient" if j == 0 else None)
    ax.set(xlabel="training step", ylabel="total gradient norm",
           title=title or "Gradient clipping (Pascanu et al. 2013): norm before and after")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return _finish(fig, path)
