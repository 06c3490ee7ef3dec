"""`tinygrad-rnn trace`: how much gradient reaches each time step, for one or more models.

For each model: one forward and backward pass on a batch of the task, observed by
tinygrad_rnn.trace.trace_gradients; then the plots of viz.plots and a JSON summary:

    gradient_norms.png      ||dL/dh_t|| against t, every model on one log axis
    jacobians.png           ||dh_{T-1}/dh_k||, one-step singular values, recurrent matrices vs 1/gamma
    weight_steps_<m>.png    the per-step terms of dL/dW_ih, dL/dW_hh
    units_<m>.png           dL/dh_t per hidden unit
    summary.json            the numbers behind them (flow_summary)
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from ..factories import manual_seed
from ..trace import trace_gradients
from .build import SEQ_LEN, restore_model
from .common import HelpFormatter, import_viz, positive_int, read_checkpoint, writable_folder, write_json
from .errors import UsageError
from .tasks import LAYERS, SequenceModel, make_task

__all__ = ["add_parser", "run", "trace_models", "flow_summary", "LABELS"]

LABELS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
TRACE_TASKS = ("adding", "copy", "sine", "mackey-glass")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "trace", help="gradient flow per time step: plots and numbers",
        description="Trace one backward pass of each model on a batch of the task: the norm of dL/dh_t at every "
                    "time step, the Jacobians dh_{T-1}/dh_k, the recurrent matrices against Pascanu's 1/gamma "
                    "bound, the per-step terms of the weight gradients. Writes PNG plots and summary.json.",
        epilog="examples:\n"
               "  tinygrad-rnn trace --model rnn,lstm,gru --task adding --seq-len 50 --out trace/\n"
               "  tinygrad-rnn trace --checkpoint checkpoints/adding-lstm.npz --out trace_trained/",
        formatter_class=HelpFormatter)
    p.add_argument("--model", default="rnn,lstm,gru", type=_models, metavar="M[,M...]",
                   help="comma-separated cells from rnn, lstm, gru (default rnn,lstm,gru)")
    p.add_argument("--task", choices=TRACE_TASKS, default="adding", help="the batch and loss (default adding)")
    p.add_argument("--seq-len", type=positive_int, metavar="T", help="time steps (default: the task's, adding 50)")
    p.add_argument("--hidden", type=positive_int, default=32, metavar="N", help="hidden units (default 32)")
    p.add_argument("--batch", type=positive_int, default=32, metavar="B", help="sequences (default 32)")
    p.add_argument("--checkpoint", action="append", metavar="PATH",
                   help="trace this trained model (repeat for several) instead of fresh --model ones")
    p.add_argument("--seed", type=int, default=0, help="seeds the fresh models and the batch (default 0)")
    p.add_argument("--out", default="trace", metavar="DIR", help="the folder to write into (default trace/)")
    p.set_defaults(run=run)


def _models(text: str) -> list:
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in LAYERS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected cells from {', '.join(LAYERS)} separated by commas, got {text!r}")
    return list(dict.fromkeys(names))


def run(args) -> int:
    viz = import_viz()
    writable_folder(args.out, "--out")
    manual_seed(args.seed)
    models, task = _models_to_trace(args)
    x, y = task.validation
    if task.last_only:
        x, y = x[:, :args.batch], y[:args.batch]
    else:
        x, y = x[:, :args.batch], y[:, :args.batch]
    flows = trace_models(models, task, x, y)
    written = write_plots(viz, flows, args.out)
    summary = {"task": task.name, "steps": int(x.shape[0]), "batch": int(x.shape[1]),
               "models": {label: flow_summary(flow) for label, flow in flows.items()}, "files": written}
    written.append(write_json(summary, os.path.join(args.out, "summary.json")))
    for label, flow in flows.items():
        print(f"{label:5} ||dL/dh_t|| changes by a factor {flow.decay_rate:.3g} per step back in time; "
              f"from t = T-1 to t = 0: x{_ratio(flow):.2g} ({flow.verdict})")
    print(f"wrote {', '.join(os.path.basename(w) for w in written)} in {args.out}")
    return 0


def _models_to_trace(args) -> tuple:
    """({label: model}, task): trained models from --checkpoint, else fresh ones of --model."""
    if not args.checkpoint:
        try:
            task = make_task(args.task, args.seq_len or SEQ_LEN[args.task], args.seed)
        except ValueError as error:  # a length the task cannot have (the adding problem needs two steps)
            raise UsageError(f"--seq-len {args.seq_len}: {error}") from None
        return {LABELS[m]: SequenceModel(m, task.input_size, args.hidden, task.output_size,
                                         last_only=task.last_only) for m in args.model}, task
    models, tasks = {}, set()
    for path in args.checkpoint:
        state = read_checkpoint(path)
        settings = state["args"]
        if settings["task"] not in TRACE_TASKS or settings["model"] not in LAYERS:
            raise UsageError(f"{path}: trace reads RNN, LSTM and GRU models of the tasks {', '.join(TRACE_TASKS)}; "
                             f"this one is --model {settings['model']} --task {settings['task']}")
        model, task, settings = restore_model(state, "cpu")
        tasks.add((settings["task"], settings["seq_len"]))
        label = LABELS[settings["model"]]
        models[label if label not in models else f"{label} ({os.path.basename(path)})"] = model
    if len(tasks) > 1:
        raise UsageError("the checkpoints were trained on different tasks or sequence lengths: "
                         + ", ".join(f"{t} T={n}" for t, n in sorted(tasks)) + "; trace them one at a time")
    return models, task


def trace_models(models: dict, task, x, y) -> dict:
    """{label: GradientFlow} of each model on the batch (x, y) (NumPy) with the task's loss; the
    models' gradients are cleared again afterwards."""
    flows = {}
    for label, model in models.items():
        dtype = model.parameters()[0].dtype
        xt, yt = task.tensors(x, y, dtype, "cpu")
        flows[label] = trace_gradients(model, xt, lambda output, state: task.loss(output, yt))
        model.zero_grad()
    return flows


def write_plots(viz, flows: dict, out: str, prefix: str = "") -> list:
    """The trace plots of `flows` as PNG files in `out`; returns their paths."""
    written = [os.path.join(out, f"{prefix}gradient_norms.png"), os.path.join(out, f"{prefix}jacobians.png")]
    viz.plots.plot_gradient_norms(flows, written[0])
    viz.plots.plot_jacobians(flows, written[1])
    for label, flow in flows.items():
        name = label.lower().split()[0]
        for kind, plot in (("weight_steps", viz.plots.plot_weight_steps), ("units", viz.plots.plot_unit_heatmap)):
            written.append(os.path.join(out, f"{prefix}{kind}_{name}.png"))
            plot(flow, written[-1])
    return written


def flow_summary(flow) -> dict:
    """The numbers of a GradientFlow that fit in JSON (the last layer, forward direction)."""
    row = flow.row()
    return {
        "hidden_grad_norms": flow.hidden_grad_norms[row],
        "cell_grad_norms": None if flow.cell_grad_norms is None else flow.cell_grad_norms[row],
        "decay_rate": flow.decay_rate, "attenuation": flow.attenuation, "verdict": flow.verdict,
        "first_to_last": _ratio(flow),
        "jacobian_norms": flow.jacobian_norms, "jacobian_decay_rate": flow.jacobian_decay_rate,
        "largest_step_singular_value": None if flow.step_singular_values is None
        else np.nanmean(flow.step_singular_values[:, 0]),
        "recurrent": [{"name": m.name, "spectral_radius": m.spectral_radius, "singular_value": m.singular_value,
                       "threshold": m.threshold} for m in flow.recurrent],
        "loss": flow.loss,
    }


def _ratio(flow) -> float:
    """||dL/dh_0|| / ||dL/dh_{T-1}|| measured (not fitted), last layer, forward."""
    norms = flow.hidden_grad_norms[flow.row()]
    return float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan")
