"""`tinygrad-rnn demo`: an RNN, an LSTM and a GRU on the adding problem, traced and drawn.

1. Train the three (same data, Adam, gradient clipping) on the adding problem at a length where
   the plain RNN cannot learn it and the gated cells can; evaluate every `eval_every` steps.
2. Trace their gradient flow (tinygrad_rnn.trace) on one held-out batch before and after training,
   and ||dL/dh_t|| every `trace_every` steps in between (the heatmap over training).
3. Draw their graphs (viz): each trained cell unrolled over a short sequence in the cells view,
   coloured by gradient; two steps of the LSTM built from elementary ops, with its gates; the
   rolled (folded) LSTM and GRU circuits.
4. Write DIR/results.json (every number), the PNG plots, the SVG drawings and DIR/index.html
   (viz.report).

The full run takes a few minutes on two cores; --quick shrinks everything to seconds (a test).
"""
from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

from .. import __version__
from ..data import adding_problem
from ..factories import manual_seed
from ..optim import Adam
from ..tensor import Tensor
from ..trace import trace_gradients
from .common import HelpFormatter, import_viz, positive_int, writable_folder, write_json
from .errors import UsageError
from .loop import evaluate, train_step
from .progress import Progress
from .render import draw, model_loss
from .tasks import SequenceModel, make_task
from .trace import LABELS, flow_summary, trace_models

__all__ = ["add_parser", "run", "FULL", "QUICK"]

# Measured on 2 cores (seeds 0, 1, 2): at T = 50 the RNN stays at the baseline while the LSTM
# leaves its plateau after 700-1200 steps and the GRU after 300-400, both ending near MSE 1e-3
# or below; 2000 steps leave the LSTM a margin (about 1 to 1.5 minutes in all). H = 32 and
# B = 32 keep the matrix products small enough that OpenBLAS runs them on one thread, so a busy
# machine does not slow them down many times over.
FULL = {"seq_len": 50, "hidden": 32, "batch": 32, "steps": 2000, "lr": 1e-2, "clip": 1.0, "eval_every": 50,
        "trace_every": 50, "validation_size": 1000, "trace_batch": 64, "draw_steps": 8, "draw_batch": 4, "seed": 0}
QUICK = {"seq_len": 8, "hidden": 6, "batch": 8, "steps": 12, "lr": 1e-2, "clip": 1.0, "eval_every": 4,
         "trace_every": 4, "validation_size": 64, "trace_batch": 8, "draw_steps": 3, "draw_batch": 2, "seed": 0}
CELLS = ("rnn", "lstm", "gru")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="RNN vs LSTM vs GRU on the adding problem: training, gradient flow and graphs in an HTML report",
        description="Train a vanilla RNN, an LSTM and a GRU on the adding problem, trace how much gradient reaches "
                    "each time step before and after training, draw their unrolled graphs, and write everything "
                    "to DIR/index.html (open it in a browser) with the numbers in DIR/results.json. A few minutes "
                    "on two CPU cores.",
        epilog="example:\n  tinygrad-rnn demo --out out/ && xdg-open out/index.html",
        formatter_class=HelpFormatter)
    p.add_argument("--out", default="out", metavar="DIR", help="the folder to write into (default out/)")
    p.add_argument("--steps", type=positive_int, metavar="N",
                   help=f"training steps per model (default {FULL['steps']})")
    p.add_argument("--seed", type=int, help=f"seeds the weights and the data (default {FULL['seed']})")
    p.add_argument("--quick", action="store_true", help="tiny sizes and a few steps: a smoke test in seconds")
    p.set_defaults(run=run)


def run(args) -> int:
    viz = import_viz()
    if shutil.which("dot") is None:
        raise UsageError("the demo draws graphs with Graphviz's `dot`, which is not installed: "
                         "sudo apt-get install graphviz (macOS: brew install graphviz), or run `make demo`")
    settings = dict(QUICK if args.quick else FULL, quick=args.quick)
    if args.steps is not None:
        settings["steps"] = args.steps
    if args.seed is not None:
        settings["seed"] = args.seed
    writable_folder(args.out, "--out")
    began = time.perf_counter()
    timings = {}
    task = make_task("adding", settings["seq_len"], settings["seed"], settings["validation_size"])
    probe = (task.validation[0][:, :settings["trace_batch"]], task.validation[1][:settings["trace_batch"]])
    print(f"adding problem, T = {settings['seq_len']}: training an RNN, an LSTM and a GRU for {settings['steps']} "
          f"steps each; the baseline (always answer 1) scores MSE {task.baseline:.3f}", flush=True)

    trained, models, flows = {}, {}, {}
    for cell in CELLS:
        label = LABELS[cell]
        manual_seed(settings["seed"])
        model = SequenceModel(cell, task.input_size, settings["hidden"], task.output_size, last_only=True)
        start = trace_models({label: model}, task, *probe)[label]
        record = _train(model, task, settings, probe, label)
        end = trace_models({label: model}, task, *probe)[label]
        trained[label] = model
        models[label] = dict(record, flow_start=flow_summary(start), flow_end=flow_summary(end),
                             parameters=sum(p.data.size for p in model.parameters()))
        flows[label] = (start, end)
        timings[f"training {label}"] = record["train_seconds"]
        print(f"{label:5} validation MSE {record['final_mse']:.4f}; ||dL/dh_0|| / ||dL/dh_T-1|| = "
              f"{models[label]['flow_end']['first_to_last']:.2g} after training "
              f"({models[label]['flow_start']['first_to_last']:.2g} before)", flush=True)

    tick = time.perf_counter()
    figures = _plots(viz, models, flows, settings, task.baseline, args.out)
    timings["plots"] = time.perf_counter() - tick
    tick = time.perf_counter()
    drawings = _drawings(viz, trained, settings, args.out)
    timings["drawings"] = time.perf_counter() - tick
    timings["total"] = time.perf_counter() - began

    results = {"created": datetime.datetime.now().isoformat(timespec="seconds"), "task": "adding",
               "settings": settings, "baseline_mse": task.baseline, "models": models,
               "figures": figures, "drawings": drawings, "timings": timings, "versions": _versions()}
    write_json(results, os.path.join(args.out, "results.json"))
    page = viz.report.write_report(results, args.out)
    print(f"done in {timings['total']:.0f} s: open {page}")
    return 0


def _train(model, task, settings: dict, probe: tuple, label: str) -> dict:
    """Train one model; the losses, gradient norms, validation curve and gradient-flow history."""
    optimizer = Adam(model.parameters(), lr=settings["lr"])
    losses, norms, eval_steps, eval_mse, history, history_steps = [], [], [], [], [], []
    x_probe, y_probe = task.tensors(*probe, np.float32, "cpu")
    began = time.perf_counter()
    with Progress(settings["steps"], label) as bar:
        for step in range(settings["steps"]):
            if step % settings["trace_every"] == 0:  # ||dL/dh_t|| on the probe batch, no update
                flow = trace_gradients(model, x_probe, lambda out, state: task.loss(out, y_probe),
                                       jacobians=False, weight_terms=False)
                model.zero_grad()
                history.append(flow.hidden_grad_norms[flow.row()])
                history_steps.append(step)
            x, y = task.tensors(*task.batch(step, settings["batch"]), np.float32, "cpu")
            loss, norm, _ = train_step(model, task, optimizer, x, y, settings["clip"])
            losses.append(loss)
            norms.append(norm)
            if (step + 1) % settings["eval_every"] == 0 or step + 1 == settings["steps"]:
                eval_steps.append(step + 1)
                eval_mse.append(evaluate(model, task, np.float32, "cpu"))
                bar.update(loss=float(np.mean(losses[-50:])), val=eval_mse[-1])
            else:
                bar.update(loss=float(np.mean(losses[-50:])))
    clip = settings["clip"]
    return {"final_mse": eval_mse[-1], "losses": losses, "grad_norms": norms, "eval_steps": eval_steps,
            "eval_mse": eval_mse, "clipped_fraction": float(np.mean(np.asarray(norms) > clip)),
            "hidden_grad_history": np.asarray(history), "history_steps": history_steps,
            "train_seconds": time.perf_counter() - began}


def _plots(viz, models: dict, flows: dict, settings: dict, baseline: float, out: str) -> dict:
    """The PNG figures of the training records (models) and the GradientFlows at the start and
    end of training ({label: (start, end)}); returns {name: file name}."""
    plots, figures = viz.plots, {}

    def save(name, plot, *args, **kwargs):
        figures[name] = f"{name.lower()}.png"
        plot(*args, path=os.path.join(out, figures[name]), **kwargs)

    starts = {label: start for label, (start, _) in flows.items()}
    ends = {label: end for label, (_, end) in flows.items()}
    T = settings["seq_len"]
    save("training", viz.report.plot_training, {"models": models, "settings": settings, "baseline_mse": baseline})
    save("gradient_norms_start", plots.plot_gradient_norms, starts, title=f"Before training (T = {T})")
    save("gradient_norms_end", plots.plot_gradient_norms, ends, title=f"After {settings['steps']} training steps")
    save("jacobians_start", plots.plot_jacobians, starts, title="Before training")
    save("jacobians_end", plots.plot_jacobians, ends, title="After training")
    for label, m in models.items():
        fig = plots.plot_training_heatmap(m["hidden_grad_history"], title=f"{label}: gradient reaching each step")
        rows = np.unique(np.linspace(0, len(m["history_steps"]) - 1, 6).round().astype(int))
        fig.axes[0].set_yticks(rows, [str(m["history_steps"][r]) for r in rows])  # rows are every trace_every steps
        figures[f"heatmap_{label}"] = f"heatmap_{label.lower()}.png"
        fig.savefig(os.path.join(out, figures[f"heatmap_{label}"]), dpi=150)
        save(f"weight_steps_{label}", plots.plot_weight_steps, ends[label], title=f"{label}: per-step terms of dL/dW")
    return figures


def _drawings(viz, trained: dict, settings: dict, out: str) -> list:
    """The SVG drawings of the trained models, on one short adding-problem batch; returns
    [{file, title, caption}] in the order the page shows them."""
    x_np, y_np = adding_problem(settings["draw_batch"], settings["draw_steps"], seed=settings["seed"])
    y = Tensor(y_np, dtype=np.float32)
    drawings = []

    def add(name, model, steps, title, caption, **options):
        x = Tensor(x_np[:steps], dtype=np.float32)
        path = draw(viz, model, x, y, model_loss, os.path.join(out, name), title=title, color="grad", **options)
        drawings.append({"file": os.path.basename(path), "title": title, "caption": caption})

    for label, model in trained.items():
        add(f"cells_{label.lower()}.svg", model, settings["draw_steps"],
            f"{label}, trained, unrolled over {settings['draw_steps']} steps",
            "Cells view: one box per cell step, the readout and the loss at the right.", view="cells")
    composite = {}  # the same weights in cells built from elementary ops, so that the gates show
    for cell in ("lstm", "gru"):
        composite[cell] = SequenceModel(cell, 2, settings["hidden"], 1, last_only=True, fused=False)
        composite[cell].load_state_dict(trained[LABELS[cell]].state_dict())
    add("ops_lstm.svg", composite["lstm"], 2, "Two LSTM steps, every operation",
        "Ops view of the trained LSTM built from elementary ops (fused=False): the gates i, f, g, o as sigmoid "
        "and tanh nodes, and the cell state's update c = f c + i g.", view="ops")
    for cell in ("lstm", "gru"):
        add(f"rolled_{cell}.svg", composite[cell], settings["draw_steps"], f"{LABELS[cell]}, rolled",
            "Ops view folded in time: every step drawn onto one, the recurrent edge marked with the one-step "
            "delay z<sup>-1</sup>: the circuit of the textbook figures.", view="ops", rolled=True)
    return drawings


def _versions() -> dict:
    try:
        dot = subprocess.run(["dot", "-V"], capture_output=True, text=True, timeout=10).stderr.strip()
    except (OSError, subprocess.SubprocessError):
        dot = "unknown"
    import matplotlib  # here, not at the top: the command line must start without it

    return {"tinygrad_rnn": __version__, "python": sys.version.split()[0], "numpy": np.__version__,
            "matplotlib": matplotlib.__version__, "graphviz": dot, "platform": platform.platform(),
            "cpu cores": os.cpu_count()}
