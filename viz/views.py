"""What a view draws: from a walked Graph to a Scene of boxes and links, unrolled or rolled.

Views:
  "ops"     every elementary op and tensor is a box.
  "cells"   every cell step is one box: the ops that share a module scope and a time step
            ("lstm.l0" at t = 3) collapse into "LSTM cell"; the fused form's step node is one
            already. Chains of plumbing outside the steps (the fused input projection
            reshape -> matmul -> add -> reshape) collapse into one box named after its named op.
  "layers"  the cells, drawn as one lane per layer and direction (dot.py makes the lanes).

Rolled: every step's boxes fold onto one copy (a box at step t is matched to the others by its
role: op, name and rank among the same op and name in its lane and step), and an edge that
crossed from step t-1 to t becomes one "delay" link labelled z⁻¹ (z⁺¹ for a reverse direction,
which reads the sequence backwards).

Edges from a shared parameter are "param" links, one per box that uses it (so one per step);
edges between steps of the same lane are "recurrent"; edges out of a detached state (truncated
BPTT) are dashed "cut" links, with one from the tensor it was detached from when that is drawn.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .graph import Graph, norm
from .style import fmt, shape_text, subscript

__all__ = ["VIEWS", "Box", "Link", "Scene", "build", "lane_title"]

VIEWS = ("ops", "cells", "layers")
GATES = frozenset("ifgorzn")
STATES = frozenset(("h", "c"))
CELL_OPS = {"lstm_step": "LSTM", "gru_step": "GRU", "rnn_step": "RNN"}


@dataclass(eq=False)
class Box:
    key: str                # DOT node id, from the number of its main graph node ("n12")
    members: list           # graph node indices it stands for
    main: int               # the member whose value and gradient it shows (a cell's "h")
    role: str               # a key of style.ROLES
    step: object            # the step cluster it sits in: an int, "t" (rolled) or None (outside)
    lane: str | None        # the scope of a stepped box ("lstm.l0"); None outside the steps
    title: str
    subtitle: str
    tooltip: list = field(default_factory=list)
    grad_norm: float | None = None


@dataclass(eq=False)
class Link:
    tail: str
    head: str
    kind: str               # a key of style.EDGES: data, param, recurrent, delay, cut
    label: str = ""
    grad_norm: float | None = None  # param links: the norm of this use's term of the gradient
    constraint: bool = True  # False: the link does not pull its head to the right of its tail


@dataclass
class Scene:
    view: str
    rolled: bool
    boxes: list
    links: list
    steps: list             # the step clusters in order (ints, or ["t"] rolled)
    lanes: list             # the scopes of stepped boxes, in order of appearance
    with_grads: bool = False
    grad_of: str = "root"


def lane_title(scope: str) -> str:
    """"lstm.l0.reverse" -> "lstm · layer 0 · reverse"; other scopes as they are ("" -> "user code")."""
    if not scope:
        return "user code"
    parts = scope.split(".")
    reverse = parts[-1] == "reverse"
    if reverse:
        parts = parts[:-1]
    match = re.fullmatch(r"l(\d+)", parts[-1])
    if not match:
        return scope
    return " · ".join([".".join(parts[:-1]) or "layer", f"layer {match.group(1)}"] + (["reverse"] if reverse else []))


def _short_lane(scope: str) -> str:
    """"lstm.l0.reverse" -> "l0 reverse", "rnn.l1" -> "l1"; other scopes as they are."""
    parts = scope.split(".")
    if len(parts) >= 2 and parts[-1] == "reverse":
        return f"{parts[-2]} reverse"
    return parts[-1]


def build(graph: Graph, view: str = "ops", rolled: bool = False) -> Scene:
    """The Scene that `view` draws of `graph` (see the module docstring)."""
    if view not in VIEWS:
        raise ValueError(f"viz: unknown view {view!r}; use one of {', '.join(map(repr, VIEWS))}")
    nodes, consumers = graph.nodes, graph.consumers()
    groups = _groups(graph, consumers, view)
    hints = _initial_states(graph, consumers)  # {index: "initial h"} and {index: "param k"}
    unnamed = [n.index for n in nodes if n.kind == "param" and not n.label]
    hints.update({i: f"param {k}" for k, i in enumerate(unnamed)})
    boxes = [_box(graph, members, consumers, hints) for members in groups]
    box_of = {}
    for box in boxes:
        for m in box.members:
            box_of[m] = box
    if rolled:
        boxes, box_of = _roll(graph, boxes, box_of)
    links = _links(graph, box_of, rolled, view)
    _free_fanouts(boxes, links)
    lanes = list(dict.fromkeys(n.scope for n in nodes if n.step is not None))
    steps = ["t"] if rolled else sorted({b.step for b in boxes if b.step is not None})
    return Scene(view=view, rolled=rolled, boxes=boxes, links=links, steps=steps, lanes=lanes,
                 with_grads=graph.with_grads, grad_of=graph.grad_of)


# ------------------------------------------------------------------ grouping
def _groups(graph: Graph, consumers: list, view: str) -> list:
    """Lists of node indices, one per box, in order of their first member."""
    nodes = graph.nodes
    owner = list(range(len(nodes)))
    if view != "ops":
        cells = {}
        for n in nodes:  # a cell step: the ops of one module scope at one time step
            if n.step is not None and n.kind == "op" and n.scope:
                owner[n.index] = cells.setdefault((n.scope, n.step), n.index)
        cell_heads = set(cells.values())
        for n in reversed(nodes):  # plumbing outside the steps: fold a node into its only consumer
            if n.step is None and n.kind == "op" and n.scope and len(consumers[n.index]) == 1:
                c = nodes[consumers[n.index][0]]
                if c.step is None and c.kind == "op" and c.scope == n.scope:
                    owner[n.index] = owner[c.index]
        for n in nodes:  # a scalar constant used inside one cell only (the 1 of 1 - z) belongs to it
            if n.scalar is not None and consumers[n.index]:
                owners = {owner[c] for c in consumers[n.index]}
                if len(owners) == 1 and next(iter(owners)) in cell_heads:
                    owner[n.index] = owners.pop()
    members = {}
    for i, o in enumerate(owner):
        members.setdefault(o, []).append(i)
    return sorted(members.values(), key=lambda m: m[0])


def _box(graph: Graph, members: list, consumers: list, hints: dict) -> Box:
    nodes = graph.nodes
    if len(members) == 1:
        box = _single(graph, nodes[members[0]], consumers, hints)
    else:
        box = _group(graph, members)
    box.grad_norm = nodes[box.main].grad_norm
    box.tooltip = _tooltip(graph, box)
    return box


def _initial_states(graph: Graph, consumers: list) -> dict:
    """{index: "initial h"} for the constants that start a recurrence: a constant that feeds a
    step's op in the place where the same op one step later takes the state "h" (or "c") of the
    same scope."""
    nodes, same = graph.nodes, {}
    for n in nodes:
        if n.step is not None:
            same.setdefault((n.scope, n.step, n.op, n.name), []).append(n.index)
    found = {}
    for n in nodes:
        if n.kind != "input":
            continue
        for c in consumers[n.index]:
            v = nodes[c]
            if v.step is None:
                continue
            key = (v.scope, v.step, v.op, v.name)
            k = same[key].index(c)
            for later in (v.step + 1, v.step - 1):
                twins = same.get((v.scope, later, v.op, v.name), ())
                if k < len(twins):
                    twin = nodes[twins[k]]
                    for mine, theirs in zip(v.parents, twin.parents):
                        if mine == n.index and nodes[theirs].name in STATES and nodes[theirs].scope == v.scope:
                            found.setdefault(n.index, f"initial {nodes[theirs].name}")
    return found


def _single(graph: Graph, n, consumers: list, hints: dict) -> Box:
    step, lane = n.step, (n.scope if n.step is not None else None)
    sub = shape_text(n.shape, n.dtype)
    if n.kind == "param":
        return Box(f"n{n.index}", [n.index], n.index, "param", None, None, n.label or n.name or hints[n.index], sub)
    if n.kind == "leaf":
        return Box(f"n{n.index}", [n.index], n.index, "leaf", step, lane, n.label or subscript(n.name or "w", step), sub)
    if n.kind == "detached":
        origin = graph.nodes[n.origin] if n.origin is not None else None
        what = subscript(origin.name, origin.step) if origin is not None and origin.name else "state"
        return Box(f"n{n.index}", [n.index], n.index, "detached", None, None, n.label or f"{what} detached",
                   "detach(): no gradient")
    if n.kind == "input":
        into_module = any(graph.nodes[c].scope for c in consumers[n.index])
        if n.label or n.name:
            role, title = "const", n.label or subscript(n.name, step)
        elif n.index in hints:
            role, title = ("zeros" if n.is_zero else "const"), hints[n.index]
            sub = ("zeros · " if n.is_zero else "") + sub
        elif n.scalar is not None:
            role, title = "const", f"{n.scalar:g}"
        elif into_module and not n.is_zero:
            role, title = "x", subscript("x", step)
        elif n.is_zero:
            role, title = "zeros", "zeros"
        else:
            role, title = "const", "const"
        return Box(f"n{n.index}", [n.index], n.index, role, step, lane, title, sub)
    # an op's result
    if n.index == graph.root:
        title = n.label or (subscript(n.name, step) if n.name else ("L" if not n.shape else n.op))
        return Box(f"n{n.index}", [n.index], n.index, "root", step, lane, title, f"{n.op} · {sub}")
    in_cell = n.step is not None  # gate and state colours only for the nodes of a time step
    role = "state" if in_cell and n.name in STATES else "gate" if in_cell and n.name in GATES else "op"
    if n.label or n.name:
        return Box(f"n{n.index}", [n.index], n.index, role, step, lane, n.label or subscript(n.name, step),
                   f"{n.op} · {sub}")
    return Box(f"n{n.index}", [n.index], n.index, role, step, lane, n.op, sub)


def _group(graph: Graph, members: list) -> Box:
    nodes = graph.nodes
    first = next(nodes[i] for i in members if nodes[i].kind == "op")
    states = [m for m in members if nodes[m].name == "h"]
    main = states[-1] if states else members[-1]
    m = nodes[main]
    if first.step is not None:  # a cell step
        title = f"{_cell_kind(nodes, members, first.scope)} cell"
        return Box(f"n{main}", members, main, "cell", first.step, first.scope, title,
                   f"{_short_lane(first.scope)} · t = {first.step}")
    named = [nodes[i].label or nodes[i].name for i in members if nodes[i].label or nodes[i].name]
    title = named[-1] if named else m.op
    role = "root" if graph.root in members else "block"
    return Box(f"n{main}", members, main, role, None, None, title,
               f"{len(members)} ops · {shape_text(m.shape, m.dtype)}")


def _cell_kind(nodes: list, members: list, scope: str) -> str:
    for i in members:
        if nodes[i].op in CELL_OPS:
            return CELL_OPS[nodes[i].op]
    names = {nodes[i].name for i in members}
    if {"i", "f", "g", "o"} <= names:
        return "LSTM"
    if {"r", "z", "n"} <= names:
        return "GRU"
    if "h" in names:
        return "RNN"
    return scope.split(".")[0]


def _tooltip(graph: Graph, box: Box) -> list:
    nodes = graph.nodes
    m = nodes[box.main]
    lines = []
    if len(box.members) > 1:
        counts = {}
        for i in box.members:
            counts[nodes[i].op] = counts.get(nodes[i].op, 0) + 1
        lines.append(f"{len(box.members)} ops: " + ", ".join(f"{op} ×{k}" if k > 1 else op for op, k in counts.items()))
        lines.append(f"shown: {m.name or m.op}")
    else:
        lines.append(f"op: {m.op}")
    if m.label or m.name:
        lines.append(f"name: {m.label or m.name}")
    if m.scope:
        lines.append(f"scope: {m.scope}")
    if m.step is not None:
        lines.append(f"step: {m.step}" + (f" (stamped {m.stamp}: a later call of the module)" if m.stamp is not None else ""))
    lines.append(f"shape: {m.shape}")
    lines.append(f"dtype: {m.dtype}")
    lines.append(f"‖value‖ = {fmt(m.value_norm)}")
    if graph.with_grads:
        lines.append(f"‖grad‖ = {fmt(m.grad_norm)}")
    return lines


# ------------------------------------------------------------------ rolling
def _roll(graph: Graph, boxes: list, box_of: dict):
    """Fold every step onto one copy: boxes of the same lane and role become one box at step "t"."""
    rank = {}
    roles = {}
    for box in boxes:
        if box.step is None:
            continue
        m = graph.nodes[box.main]
        what = ("cell",) if box.role == "cell" else (m.op, m.name, m.kind)
        k = rank.get((box.lane, box.step, what), 0)
        rank[(box.lane, box.step, what)] = k + 1
        roles.setdefault((box.lane, what, k), []).append(box)
    folded = {}
    for same in roles.values():
        keep = same[0]
        keep.members = [i for b in same for i in b.members]
        keep.step = "t"
        norms = [b.grad_norm for b in same if b.grad_norm is not None]
        keep.grad_norm = math.sqrt(sum(x * x for x in norms)) if norms else None
        _roll_labels(graph, keep, len(same))
        for b in same:
            folded[id(b)] = keep
    rolled = [b for b in boxes if folded.get(id(b), b) is b]
    new_box_of = {i: folded.get(id(b), b) for i, b in box_of.items()}
    return rolled, new_box_of


def _roll_labels(graph: Graph, box: Box, copies: int) -> None:
    m = graph.nodes[box.main]
    if box.role == "cell":
        box.subtitle = f"{_short_lane(box.lane)} · every t"
    elif box.role == "x":
        box.title = subscript("x", "t")
    elif m.name and not m.label and box.title.startswith(m.name):
        box.title = subscript(m.name, "t")
    box.tooltip = [line for line in box.tooltip if not line.startswith(("step:", "‖"))]
    box.tooltip.append(f"rolled: {copies} steps drawn as one")
    if graph.with_grads:
        box.tooltip.append(f"‖grad‖ over all steps = {fmt(box.grad_norm)}")


# ------------------------------------------------------------------ links
def _links(graph: Graph, box_of: dict, rolled: bool, view: str) -> list:
    nodes = graph.nodes
    links, names, terms = {}, {}, {}
    for n in nodes:
        head = box_of[n.index]
        for p in dict.fromkeys(n.parents):
            tail, src = box_of[p], nodes[p]
            crosses = src.step is not None and n.step is not None and src.step != n.step
            if src.kind == "param":
                kind = "param"
            elif src.kind == "detached":
                kind = "cut"
            elif rolled and crosses:
                kind = "delay"
            elif crosses and src.scope == n.scope:
                kind = "recurrent"  # (a reverse direction's runs against time: it must not pull)
            else:
                kind = "data"
            if tail is head and kind not in ("delay", "recurrent"):
                continue  # inside a cell
            key = (tail.key, head.key, kind, "z⁻¹" if kind != "delay" or src.step < n.step else "z⁺¹")
            if key not in links:
                links[key] = Link(tail.key, head.key, kind, constraint=not (crosses and src.step > n.step))
                names[key] = []
            if src.name and src.name not in names[key]:
                names[key].append(src.name)
            if kind == "param" and (p, n.index) in graph.contributions:
                term = graph.contributions[(p, n.index)]
                terms[key] = term if key not in terms else terms[key] + term
        if n.kind == "detached" and n.origin is not None:
            key = (box_of[n.origin].key, head.key, "cut", "")
            links.setdefault(key, Link(box_of[n.origin].key, head.key, "cut", "detach()  ✂"))
    for key, link in links.items():
        if link.kind == "delay":
            link.label = key[3] + (f"  ({', '.join(names[key])})" if view != "ops" and names[key] else "")
        elif link.kind == "recurrent" and view != "ops":
            link.label = ", ".join(names[key])
        if key in terms:
            link.grad_norm = norm(terms[key])
    return list(links.values())


def _free_fanouts(boxes: list, links: list) -> None:
    """A box outside the steps that both depends on steps and feeds steps (layer k's stacked
    outputs, layer k+1's input projection) would push the next layer's steps to the right of
    all of this layer's; its links into steps do not constrain the layout, so layers stack."""
    stepped = {b.key for b in boxes if b.step is not None}
    out, into = {}, {}
    for link in links:
        out.setdefault(link.tail, []).append(link.head)
        into.setdefault(link.head, []).append(link.tail)
    after, before = _reach(stepped, out), _reach(stepped, into)
    for link in links:
        if link.tail in after and link.tail in before and link.tail not in stepped and link.head in stepped:
            link.constraint = False


def _reach(start: set, adjacency: dict) -> set:
    """Keys reachable from `start` in one or more steps along `adjacency` (iteratively)."""
    seen, stack = set(), list(start)
    while stack:
        for nxt in adjacency.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen
