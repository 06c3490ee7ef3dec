"""viz: Graphviz drawings of tinygrad_rnn's time-unfolded computation graphs.

    import viz
    out, (h, c) = lstm(x)
    loss = (out ** 2).mean()
    viz.render(loss, "lstm.svg", view="cells", model=lstm)      # format from the file name
    viz.render(loss, "grads.png", color="grad", model=lstm)     # before loss.backward()
    text = viz.to_dot(loss, view="ops", rolled=True)           # DOT text, no Graphviz needed
    viz.digraph(loss, view="layers")                           # a graphviz.Digraph: shows inline in notebooks

Options (the same for to_dot, render and digraph; drawing takes all but title):
  view     "ops"    every elementary op and tensor;
           "cells"  each cell step one box (the fused form's step node; the composite form's
                    gate ops collapsed by module scope and time step);
           "layers" the cells as one lane (row) per layer and direction.
  rolled   False: one cluster per time step ("t = 0", "t = 1", ...), time left to right, layers
           stacked. True: the compact circuit, every step folded onto one, the recurrent edge a
           one-step delay labelled z⁻¹.
  color    None, or "grad": fill each node by the norm of d(loss)/d(node) on one log scale across
           all steps, with a legend, so a vanishing gradient fades from right to left; the rail's
           edges show each step's term of a shared weight's gradient. The gradients are computed
           read-only by autograd.node_grads, so draw BEFORE loss.backward() (which frees the graph),
           or after loss.backward(retain_graph=True). Drawing a freed graph raises RuntimeError.
  model    a Module (or list of them): its parameters get qualified names ("lstm.weight_hh_l0").
  names    {tensor: label} for any tensor of the graph (wins over model's names).
  title    a caption at the top of the drawing.
  max_nodes  2000: above it, raise ValueError (suggesting view="cells" or rolled=True); None: no limit.

Shared parameters (leaves that require grad, made outside any time step) are drawn once, on a
rail at the left; a parameter used at several steps runs a wire along them with one edge into
each step that uses it. Nodes without a time step (the fused form's input projection W_ih x,
the stacked outputs, a total loss) sit outside the step clusters; a per-step loss L_t computed
inside `tr.time_step(t)` sits in its step's cluster.

Truncated BPTT: where a detached state (tr.detach_state, Tensor.detach) enters an op, as in a
loop over a cell, its edges are dashed, and the edge from the tensor it was detached from (when
drawn) is labelled "detach()". nn.RNN/LSTM/GRU index a given hx by layer first, and indexing a
tensor that needs no gradient records no parent, so there the cut reaches the graph as a
constant: one that feeds a module's steps with exactly the values of a state of that module
drawn earlier is drawn as that state, detached (a state not in the drawing, such as the last c
when only outputs reach the loss, stays an "initial c"). A module called twice in one graph
(two windows) stamps the same steps twice; the later call's steps are drawn after the earlier's
(t = 3, 4, 5 for the second window of 3), the stamp kept in the tooltip.

Modules: graph.py (the read-only walk), views.py (what each view draws), dot.py (layout and DOT
text), style.py (palette, labels, colour scale), render.py (files). viz.plots holds the
gradient-flow plots (matplotlib; import it explicitly: `from viz import plots`).
"""
from __future__ import annotations

from . import dot as _dot
from . import render as _render
from .graph import parameter_names, walk
from .views import VIEWS, Scene, build

__all__ = ["to_dot", "render", "digraph", "drawing", "VIEWS", "Scene"]

MAX_NODES = 2000


def drawing(tensor, view: str = "ops", rolled: bool = False, color=None, *, model=None, names=None,
            max_nodes=MAX_NODES) -> Scene:
    """The structure that would be drawn: a Scene of boxes (nodes) and links (edges), with each
    box's title, members, time step, lane and gradient norm (options as to_dot's).
    Useful for checks and tools; to_dot and render draw it."""
    if color not in (None, "grad"):
        raise ValueError(f"viz: color must be None or 'grad', got {color!r}")
    if view not in VIEWS:
        raise ValueError(f"viz: unknown view {view!r}; use one of {', '.join(map(repr, VIEWS))}")
    graph = walk(tensor, parameter_names(model, names), with_grads=color == "grad")
    if max_nodes is not None and view == "ops" and not rolled and len(graph.nodes) > max_nodes:
        raise ValueError(_too_many(len(graph.nodes), max_nodes, view, rolled))
    scene = build(graph, view, rolled)
    if max_nodes is not None and len(scene.boxes) > max_nodes:
        raise ValueError(_too_many(len(scene.boxes), max_nodes, view, rolled))
    return scene


def _too_many(count: int, limit: int, view: str, rolled: bool) -> str:
    hint = ("draw it with view='cells' (one node per cell step) or rolled=True" if view == "ops"
            else "draw it rolled (rolled=True)" if not rolled else "draw a part of it")
    return (f"viz: the {view!r} view of this graph has {count} nodes, more than max_nodes={limit} "
            f"(too many to read or lay out quickly); {hint}, or pass max_nodes=None to draw it anyway")


def to_dot(tensor, view: str = "ops", rolled: bool = False, color=None, *, model=None, names=None,
           title=None, max_nodes=MAX_NODES) -> str:
    """The DOT text of the graph behind `tensor` (options in the module docstring).

    Deterministic: the same model and input give byte-identical text. Needs no Graphviz.
    """
    scene = drawing(tensor, view, rolled, color, model=model, names=names, max_nodes=max_nodes)
    return _dot.to_text(scene, title)


def render(tensor, path, **options) -> str:
    """Draw the graph behind `tensor` into `path`, the format taken from its extension:
    .svg, .png, .pdf (through Graphviz's `dot`), .dot (the DOT text) or .json (the nodes and
    edges with their attributes). Returns the path. Options as to_dot's.

    Raises ValueError for an unknown extension and RuntimeError, saying how to install Graphviz,
    when svg/png/pdf is asked for and the `dot` program is missing. For color="grad", render
    before loss.backward(), or after loss.backward(retain_graph=True).
    """
    fmt = _render.format_of(path)
    if fmt in ("svg", "png", "pdf"):
        _render.require_dot()  # fail before the work, with the install hint
    title = options.pop("title", None)
    scene = drawing(tensor, **options)
    if fmt == "json":
        return _render.write(path, _render.scene_json(scene).encode("utf-8"))
    text = _dot.to_text(scene, title)
    if fmt == "dot":
        return _render.write(path, text.encode("utf-8"))
    try:
        data = _render.pipe(text, fmt)
    except _render.DotFailed:  # old dot versions can crash on big clustered graphs: lay out more simply
        data = _render.pipe(_dot.to_text(scene, title, aligned=False), fmt)
    return _render.write(path, data)


def digraph(tensor, **options):
    """A graphviz.Digraph of the drawing (options as to_dot's): notebooks display it inline,
    and .render()/.pipe() work as usual. Its .source equals to_dot(tensor, **options)."""
    import graphviz

    title = options.pop("title", None)
    scene = drawing(tensor, **options)
    return graphviz.Digraph(_dot.GRAPH_NAME, body=_dot.body_lines(scene, title))
