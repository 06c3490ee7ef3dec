"""Scene -> DOT text: clusters per time step, the parameter rail, lanes, styles and the legend.

Layout (Graphviz `dot`, rankdir=LR, so time runs left to right):
  - the shared parameters sit once in the "shared parameters" rail cluster on the left, one
    column, and send one edge into every step that uses them;
  - unrolled "ops" and "cells" views: one cluster per time step, labelled "t = 0", "t = 1", ...;
    with several layers or directions each step holds one sub-cluster per lane, and in the cells
    view the cells of one step share a rank, so the layers stack in a column;
  - "layers" view: one cluster (a row) per layer and direction, its steps aligned across lanes;
  - rolled: one cluster for the single step drawn, delay edges labelled z⁻¹ looping back;
  - everything without a time step (the fused input projection, output stacking, the total
    loss) outside the clusters, where its edges put it.
Nodes are emitted in the Scene's order, itself the graph's post-order, so the text is the same
bytes for the same graph.
"""
from __future__ import annotations

from .style import (EDGES, FONT, HTML, ROLES, LogScale, color_at, html_label, legend_label, quote,
                    text_color)
from .views import Scene, lane_title

__all__ = ["GRAPH_NAME", "body_lines", "to_text"]

GRAPH_NAME = "tinygrad_rnn"


def to_text(scene: Scene, title: str | None = None, aligned: bool = True) -> str:
    """The DOT source of the scene (what graphviz.Digraph(GRAPH_NAME, body=...).source gives).
    aligned=False leaves out the invisible edges that line the steps up (a fallback layout)."""
    return f"digraph {GRAPH_NAME} {{\n" + "".join(body_lines(scene, title, aligned)) + "}\n"


def _attrs(pairs: dict) -> str:
    parts = []
    for key, value in pairs.items():
        if value is None or value == "":
            continue
        parts.append(f"{key}={value}" if isinstance(value, HTML) else f"{key}={quote(value)}")
    return "[" + ", ".join(parts) + "]"


def body_lines(scene: Scene, title: str | None = None, aligned: bool = True) -> list:
    """The statements of the graph body, one per line, each starting with a tab."""
    scale = LogScale([b.grad_norm for b in scene.boxes] + [l.grad_norm for l in scene.links]) \
        if scene.with_grads else None
    out = ["\t" + "graph " + _attrs(dict(rankdir="LR", newrank="true", fontname=FONT, fontsize="16",
                                        nodesep="0.22", ranksep="0.38", labelloc="t", labeljust="l",
                                        label=title or "", tooltip=title or " ")) + "\n",
           "\t" + "node " + _attrs(dict(fontname=FONT, fontsize="11", margin="0.1,0.04", height="0.32")) + "\n",
           "\t" + "edge " + _attrs(dict(fontname=FONT, fontsize="10")) + "\n"]
    node_line = {b.key: _node_line(b, scale) for b in scene.boxes}
    params = [b for b in scene.boxes if b.role == "param"]
    if params or scale:
        out += _cluster("rail", "shared parameters", dict(style="rounded,filled", fillcolor="#FFFBEF",
                                                           color="#E0C36A", fontcolor="#8A6D10"),
                        [node_line[b.key] for b in params]
                        + ([_legend_line(scene, scale)] if scale else [])
                        + ([f"\t{{rank=same; {'; '.join(b.key for b in params)}}}\n"] if len(params) > 1 else []), 1)
    placed = {b.key for b in params}
    out += _step_clusters(scene, node_line, placed) if scene.view != "layers" else _lane_clusters(scene, node_line, placed)
    out += [node_line[b.key] for b in scene.boxes if b.key not in placed]
    buses, wired = _buses(scene, scale)
    out += buses
    out += [_edge_line(link, scale) for link in scene.links if id(link) not in wired]
    if aligned:
        out += _time_order(scene)
    return out


def _buses(scene: Scene, scale) -> tuple:
    """Wires along the steps instead of fans of long edges, which would pile up beside the step
    clusters. A box outside the steps that feeds several steps (a shared parameter: the rail; the
    fused input projection) runs one wire along them, with a junction dot in each step's column
    and one edge into each step that uses it; a box that collects from several steps (the stacked
    outputs) gathers them on one wire the same way. Returns (lines, ids of the links drawn)."""
    if scene.rolled:
        return [], set()
    step_of = {b.key: b.step for b in scene.boxes}
    fan_out, fan_in = {}, {}
    for link in scene.links:
        if step_of.get(link.tail) is None and step_of.get(link.head) is not None:
            fan_out.setdefault(link.tail, {}).setdefault(step_of[link.head], []).append(link)
        elif step_of.get(link.head) is None and step_of.get(link.tail) is not None and link.kind != "cut":
            fan_in.setdefault(link.head, {}).setdefault(step_of[link.tail], []).append(link)
    lines, wired = [], set()
    for box in scene.boxes:
        if len(fan_out.get(box.key, ())) > 1:
            lines += _bus(scene, box, fan_out[box.key], scale, wired, outward=True)
        if len(fan_in.get(box.key, ())) > 1:
            lines += _bus(scene, box, fan_in[box.key], scale, wired, outward=False)
    return lines, wired


def _bus(scene: Scene, box, by_step: dict, scale, wired: set, outward: bool) -> list:
    links = [l for s in scene.steps if s in by_step for l in by_step[s]]
    wire = dict(EDGES[links[0].kind], arrowhead="none", penwidth="1.3")
    wire.pop("weight", None)
    if not all(l.constraint for l in links):
        wire["constraint"] = "false"
    lines, previous = [], None
    steps = [s for s in scene.steps if s in by_step]
    for step in steps:
        tap = f"{box.key}_{'t' if outward else 'from_t'}{step}"
        tip = f"{box.title} {'at' if outward else 'from'} t = {step}"
        lines.append(f"\t{tap} {_attrs(dict(shape='point', width='0.07', color=wire['color'], tooltip=tip))}\n")
        if outward:
            lines.append(f"\t{previous or box.key} -> {tap} {_attrs(wire)}\n")
            lines += [_edge_line(l, scale, tail=tap) for l in by_step[step]]
            lines.append(f"\t{{rank=same; {tap}; {by_step[step][0].head}}}\n")
        else:
            if previous:
                lines.append(f"\t{previous} -> {tap} {_attrs(wire)}\n")
            lines += [_edge_line(l, scale, head=tap, arrowhead="none") for l in by_step[step]]
            lines.append(f"\t{{rank=same; {tap}; {by_step[step][0].tail}}}\n")
        wired.update(id(l) for l in by_step[step])
        previous = tap
    if not outward:
        lines.append(f"\t{previous} -> {box.key} {_attrs(dict(wire, arrowhead='normal'))}\n")
    return lines


def _time_order(scene: Scene) -> list:
    """Invisible edges from the last boxes of each step to the first boxes of the next, so the
    step clusters (or, in the layers view, the steps of each lane) follow each other left to right
    instead of overlapping where a step's input path does not wait for the previous state. Lane
    by lane they also pull the steps into line (weight 8); the last boxes of user code in a step
    (a per-step loss) only order the next step's first boxes (weight 0: pulling across lanes,
    say layer 0 of step t-1 level with layer 1 of step t, would tilt the drawing)."""
    if scene.rolled:
        return []
    out, seen = [], set()
    lane_of = {b.key: b.lane for b in scene.boxes}
    for by_lane, weight in ((True, 8), (False, 0)):
        where = {b.key: (b.lane if by_lane else "", b.step) for b in scene.boxes if b.step is not None}
        inside_out, inside_in = set(), set()
        for link in scene.links:
            if link.tail in where and where[link.tail] == where.get(link.head):
                inside_out.add(link.tail)
                inside_in.add(link.head)
        sinks, sources = {}, {}
        for b in scene.boxes:
            if b.key in where:
                if b.key not in inside_out:
                    sinks.setdefault(where[b.key], []).append(b.key)
                if b.key not in inside_in:
                    sources.setdefault(where[b.key], []).append(b.key)
        for lane in dict.fromkeys(lane for lane, _ in where.values()):
            steps = [s for s in scene.steps if (lane, s) in sinks or (lane, s) in sources]
            for a, b in zip(steps, steps[1:]):
                for x in sinks.get((lane, a), ()):
                    if not by_lane and lane_of[x]:
                        continue  # across lanes, only user code (per-step losses) needs ordering
                    for y in sources.get((lane, b), ()):
                        if (x, y) not in seen:
                            seen.add((x, y))
                            out.append(f"\t{x} -> {y} [style=invis, weight={weight}]\n")
    return out


def _cluster(key: str, label: str, style: dict, lines: list, depth: int) -> list:
    tab = "\t" * depth
    head = f"{tab}subgraph cluster_{key} {{\n"
    attrs = dict(label=label, fontname=FONT, fontsize="14" if depth == 1 else "11", labeljust="l", **style)
    body = [f"{tab}\tgraph {_attrs(attrs)}\n"] + [tab + line for line in lines]
    return [head] + body + [f"{tab}}}\n"]


_STEP_STYLE = dict(style="rounded,filled", fillcolor="#F4F7FB", color="#9FB3CC", fontcolor="#2B4A6F")
_LANE_STYLE = dict(style="rounded,dashed", color="#9FB3CC", fontcolor="#5B6F86")


def _step_clusters(scene: Scene, node_line: dict, placed: set) -> list:
    """One cluster per time step (one in all when rolled); in the ops view a sub-cluster per lane
    inside (a cell's label names its layer already)."""
    out = []
    for step in scene.steps:
        boxes = [b for b in scene.boxes if b.step == step and b.key not in placed]
        present = {b.lane for b in boxes if b.lane}
        lanes = [lane for lane in scene.lanes if lane in present] if scene.view == "ops" else []  # one order every step
        lines = []
        for i, lane in reversed(list(enumerate(lanes if len(lanes) > 1 else ()))):  # top layer first: it is drawn on top
            inner = [node_line[b.key] for b in boxes if b.lane == lane]
            lines += _cluster(f"{_step_key(step)}_{i}", lane_title(lane), _LANE_STYLE, inner, 1)
        grouped = set(lanes) if len(lanes) > 1 else set()
        if grouped:
            lines += _across_lanes(boxes, lanes)
        lines += [node_line[b.key] for b in boxes if b.lane not in grouped]
        if scene.view == "cells":
            lines += _column(scene, boxes)
        out += _cluster(_step_key(step), _step_label(scene, step), _STEP_STYLE, lines, 1)
        placed.update(b.key for b in boxes)
    return out


def _across_lanes(boxes: list, lanes: list) -> list:
    """The ops view's lanes of one step, stacked: the k-th box of the same role and title in each
    lane (layer 0's and layer 1's h_t, say) on one rank. Nothing else ties the lanes of a step
    together (a stacked layer's input comes through its projection outside the steps, whose links
    do not constrain), and dot then laid the lanes out side by side, layer 1 first."""
    ranks, count = {}, {}
    for b in boxes:
        if b.lane in lanes:
            what = (b.role, b.title)
            k = count[(b.lane, what)] = count.get((b.lane, what), -1) + 1
            ranks.setdefault(what + (k,), []).append(b.key)
    return [f"\t{{rank=same; {'; '.join(keys)}}}\n" for keys in ranks.values() if len(keys) > 1]


def _column(scene: Scene, boxes: list) -> list:
    """A step's cells in one column, so that the layers stack (layer 0, layer 1, ...)."""
    lane_rank = {lane: i for i, lane in enumerate(scene.lanes)}
    column = sorted((b for b in boxes if b.role == "cell"), key=lambda b: lane_rank.get(b.lane, 0))
    if len(column) < 2:
        return []
    keys = [b.key for b in column]
    order = " ".join(f"{a} -> {b} [style=invis];" for a, b in zip(keys, keys[1:]))
    return [f"\t{{rank=same; {'; '.join(keys)}; {order}}}\n"]


def _step_key(step) -> str:
    return f"t{step}"


def _step_label(scene: Scene, step) -> str:
    if step == "t":
        return "every step t (rolled)"
    return f"t = {step}"


def _lane_clusters(scene: Scene, node_line: dict, placed: set) -> list:
    """The layers view: one cluster (a row) per layer and direction; steps aligned across lanes."""
    out = []
    for i, lane in enumerate(scene.lanes):
        if not lane:
            continue
        boxes = [b for b in scene.boxes if b.lane == lane and b.step is not None and b.key not in placed]
        if not boxes:
            continue
        out += _cluster(f"lane{i}", lane_title(lane), _STEP_STYLE, [node_line[b.key] for b in boxes], 1)
        placed.update(b.key for b in boxes)
    if not scene.rolled:
        for step in scene.steps:
            out += _column(scene, [b for b in scene.boxes if b.step == step])
    return out


def _node_line(box, scale) -> str:
    attrs = dict(ROLES[box.role])
    fontcolor = "#000000"
    if scale is not None:  # fill by gradient norm; white where no gradient reaches
        attrs["fillcolor"] = scale.color(box.grad_norm) or "#FFFFFF"
        fontcolor = text_color(attrs["fillcolor"])
    attrs["label"] = html_label(box.title, box.subtitle, fontcolor)
    attrs["tooltip"] = "\n".join(box.tooltip)
    return f"\t{box.key} {_attrs(attrs)}\n"


def _edge_line(link, scale, tail=None, head=None, arrowhead=None) -> str:
    attrs = dict(EDGES[link.kind])
    if arrowhead:
        attrs["arrowhead"] = arrowhead
    if not link.constraint:
        attrs["constraint"] = "false"
    if link.label:  # an xlabel is placed after layout: labels on many edges would double the ranks
        attrs["label" if link.kind in ("delay", "cut") else "xlabel"] = link.label
    if scale is not None and link.kind == "param":
        x = scale.position(link.grad_norm)
        if x is not None:
            attrs["color"] = color_at(0.15 + 0.85 * x)
            attrs["penwidth"] = f"{0.6 + 2.4 * x:.2f}"
            attrs["tooltip"] = f"this step's term of the gradient: {link.grad_norm:.4g}"
    return f"\t{tail or link.tail} -> {head or link.head} {_attrs(attrs)}\n"


def _legend_line(scene: Scene, scale) -> str:
    what = "‖∂L/∂v‖" if scene.grad_of == "root" else "‖∂ sum(root)/∂v‖"
    return f"\tlegend {_attrs(dict(shape='plaintext', label=legend_label(scale, what), tooltip='gradient colour scale'))}\n"
