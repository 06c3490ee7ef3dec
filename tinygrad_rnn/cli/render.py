"""`tinygrad-rnn render`: draw a model's time-unfolded graph to a file (viz.render).

The graph drawn is that of one forward pass and its loss: by default a small fresh model on an
adding-problem batch, or a trained model (--checkpoint) on a batch of its own task.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..data import adding_problem
from ..factories import manual_seed
from ..tensor import Tensor
from .build import restore_model
from .common import DTYPES, HelpFormatter, import_viz, positive_int, read_checkpoint, writable_file
from .errors import UsageError
from .tasks import LAYERS, SequenceModel

__all__ = ["add_parser", "run", "draw"]

VIEWS = ("ops", "cells", "layers")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "render", help="draw a model's unrolled graph (svg, png, pdf, dot, json)",
        description="Draw the computation graph of one forward pass and its loss, unrolled in time: one "
                    "cluster per time step, the shared weights drawn once. The format comes from --out's "
                    "extension; .svg/.png/.pdf need Graphviz's `dot`.",
        epilog="examples:\n"
               "  tinygrad-rnn render --model lstm --steps 5 --view cells --color grad --out lstm.svg\n"
               "  tinygrad-rnn render --model lstm --steps 2 --view ops --composite --out gates.svg\n"
               "  tinygrad-rnn render --model gru --rolled --out gru_rolled.png\n"
               "  tinygrad-rnn render --checkpoint checkpoints/adding-lstm.npz --steps 8 --out trained.svg",
        formatter_class=HelpFormatter)
    p.add_argument("--model", choices=sorted(LAYERS), default="lstm", help="the cell (default lstm)")
    p.add_argument("--steps", type=positive_int, default=5, metavar="T", help="time steps to unroll (default 5)")
    p.add_argument("--hidden", type=positive_int, default=8, metavar="N", help="hidden units (default 8)")
    p.add_argument("--layers", type=positive_int, default=1, metavar="N", help="stacked layers (default 1)")
    p.add_argument("--batch", type=positive_int, default=4, metavar="B", help="sequences in the batch (default 4)")
    p.add_argument("--view", choices=VIEWS, default="cells",
                   help="ops: every elementary op; cells: one box per cell step; layers: one lane per layer "
                        "(default cells)")
    p.add_argument("--rolled", action="store_true", help="fold the steps onto one: the loop with its delay z^-1")
    p.add_argument("--color", choices=("grad", "none"), default="none",
                   help="grad: colour each node by the size of d(loss)/d(node) (default none)")
    p.add_argument("--composite", action="store_true",
                   help="build the cells from elementary ops (every gate visible in the ops view) instead of "
                        "the fused step")
    p.add_argument("--checkpoint", metavar="PATH", help="draw this trained model (of `tinygrad-rnn train`) instead")
    p.add_argument("--title", help="a caption at the top")
    p.add_argument("--seed", type=int, default=0, help="seeds the fresh model and its input (default 0)")
    p.add_argument("--out", default="graph.svg", metavar="FILE", help="the file to write (default graph.svg)")
    p.set_defaults(run=run)


def run(args) -> int:
    viz = import_viz()
    writable_file(args.out, "--out")
    manual_seed(args.seed)
    if args.checkpoint:
        state = read_checkpoint(args.checkpoint)
        if state["args"]["model"] == "esn":
            raise UsageError("an echo state network is not trained by autograd, so it has no graph to draw")
        model, task, settings = restore_model(state, "cpu", fused=not args.composite)
        x, y, loss_fn = _batch_of(task, state, settings, args)
    else:
        model = SequenceModel(args.model, 2, args.hidden, 1, args.layers, last_only=True, fused=not args.composite)
        try:
            x, y = adding_problem(args.batch, args.steps, seed=args.seed)
        except ValueError as error:  # the adding problem needs two steps, one marked in each half
            raise UsageError(f"--steps {args.steps}: {error}") from None
        x, y = Tensor(x, dtype=np.float32), Tensor(y, dtype=np.float32)
        loss_fn = model_loss
    path = draw(viz, model, x, y, loss_fn, args.out, view=args.view, rolled=args.rolled,
                color=None if args.color == "none" else "grad", title=args.title)
    print(f"wrote {path}")
    return 0


def model_loss(prediction, y):
    """The mean squared error of a prediction."""
    return ((prediction - y) ** 2).mean()


def draw(viz, model, x, y, loss_fn, path, **options) -> str:
    """Run prediction, _ = model(x), loss = loss_fn(prediction, y) and draw the loss's graph into
    `path` with viz.render (options: view, rolled, color, title). Errors a user can fix (too many
    nodes, an unknown extension, no Graphviz) become UsageErrors."""
    prediction, _ = model(x)
    loss = loss_fn(prediction, y)
    writable_file(path, "the drawing")
    names = {p: name for name, p in model.named_parameters()}  # "rnn.weight_hh_l0", as in the state_dict
    try:
        return viz.render(loss, path, names=names, **options)
    except (ValueError, RuntimeError) as error:
        raise UsageError(str(error)) from None


def _char_loss(logits, ids):
    """Cross-entropy of (T, B, V) logits against (T, B) next-character ids."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1))


def _batch_of(task, state: dict, settings: dict, args) -> tuple:
    """(x, y, loss_fn): the first --batch sequences of the task's validation batch cut to --steps
    steps; for a character model, characters of its vocabulary."""
    dtype = DTYPES[settings["dtype"]]
    if task is None:  # characters: ids cycling through the vocabulary, each predicting the next
        ids = (np.arange(args.steps + 1)[:, None] + np.arange(args.batch)[None, :]) % len(state["vocab"])
        return ids[:-1], ids[1:], _char_loss
    x, y = task.validation
    if task.last_only:
        x, y = task.tensors(x[:args.steps, :args.batch], y[:args.batch], dtype, "cpu")
    else:
        x, y = task.tensors(x[:args.steps, :args.batch], y[:args.steps, :args.batch], dtype, "cpu")
    return x, y, task.loss
