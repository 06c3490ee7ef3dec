"""viz: Graphviz drawings of the time-unfolded graph.

Golden DOT text for a 3-step tanh RNN in every view (tests/data/viz, see make_golden.py there);
structural checks parsed from the DOT text (one cluster per step, each shared parameter drawn
once with one edge into each step, the z⁻¹ delay edge when rolled, dashed edges where truncated
BPTT detached the state); gradient colours (a vanishing gradient fades towards the first step);
real rendering through Graphviz's `dot` to SVG, PNG and PDF; the install message without `dot`;
a 200-step two-layer LSTM; the node limit of the ops view.
"""
import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn

import viz

DATA = Path(__file__).parent / "data" / "viz"
SUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


def _load_golden_module():
    spec = importlib.util.spec_from_file_location("viz_make_golden", DATA / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOLDEN = _load_golden_module()


# ------------------------------------------------------------------ helpers
def parse(dot: str):
    """Our DOT text as (nodes, edges, cluster_labels): nodes {key: {"cluster", "attrs", "title"}},
    edges [(tail, head, attrs)], cluster_labels {cluster name: label}. Tracks nesting by the
    `subgraph cluster_x {` / `}` lines that dot.py writes."""
    nodes, edges, labels, stack = {}, [], {}, []
    for raw in dot.splitlines():
        line = raw.strip()
        m = re.match(r"subgraph (cluster_\w+) \{$", line)
        if m:
            stack.append(m.group(1))
            continue
        if line == "}":
            if stack:
                stack.pop()
            continue
        m = re.match(r"graph \[(.*)\]$", line)
        if m and stack:
            label = re.search(r'label="([^"]*)"', m.group(1))
            labels[stack[-1]] = label.group(1) if label else ""
            continue
        m = re.match(r"(\w+) -> (\w+) \[(.*)\]$", line)
        if m:
            edges.append((m.group(1), m.group(2), m.group(3)))
            continue
        m = re.match(r"(\w+) \[(.*)\]$", line)
        if m and m.group(1) not in ("graph", "node", "edge"):
            title = re.search(r"<b>(.*?)</b>", m.group(2))
            nodes[m.group(1)] = dict(cluster=stack[-1] if stack else None, clusters=tuple(stack),
                                     attrs=m.group(2), title=title.group(1) if title else None)
    return nodes, edges, labels


def tooltip_number(attrs: str, what: str) -> float:
    m = re.search(re.escape(what) + r" = ([0-9.e+-]+)", attrs)
    return float(m.group(1))


def step_of(node: dict):
    """The time step whose cluster holds a node (from its outermost step cluster), or None."""
    for c in node["clusters"]:
        m = re.fullmatch(r"cluster_t(\d+)", c)
        if m:
            return int(m.group(1))
    return None


def rnn(steps=3, fused=True, hidden=3, kind=nn.RNN, layers=1, bidirectional=False, seed=0):
    tr.manual_seed(seed)
    model = kind(2, hidden, num_layers=layers, fused=fused, bidirectional=bidirectional)
    x = tr.randn(steps, 1, 2)
    out, _ = model(x)
    return model, x, (out ** 2).mean()


def drop_edges(nodes, edges, param_key):
    """Edges that bring a parameter into the graph: from the node itself or from its rail junctions."""
    return [(t, h) for t, h, _ in edges if (t == param_key or t.startswith(param_key + "_t")) and not h.startswith(param_key + "_")]


def key_of(nodes, title):
    keys = [k for k, n in nodes.items() if n["title"] == title]
    assert len(keys) == 1, f"{title!r} drawn {len(keys)} times"
    return keys[0]


# ------------------------------------------------------------------ golden and determinism
@pytest.mark.parametrize("name", sorted(GOLDEN.cases()))
def test_golden_dot(name):
    expected = (DATA / name).read_text(encoding="utf-8")
    assert GOLDEN.cases()[name] == expected, f"{name} changed; if intended, run tests/data/viz/make_golden.py"


def test_same_model_and_input_give_byte_identical_dot():
    texts = []
    for _ in range(2):
        model, _, loss = rnn(steps=4, fused=False, kind=nn.LSTM)
        texts.append(viz.to_dot(loss, view="ops", color="grad", model=model))
    assert texts[0] == texts[1]
    assert "id(" not in texts[0] and "0x" not in texts[0]


# ------------------------------------------------------------------ structure
@pytest.mark.parametrize("view", ["ops", "cells"])
@pytest.mark.parametrize("fused", [True, False])
def test_one_cluster_per_time_step(view, fused):
    model, _, loss = rnn(steps=4, fused=fused, kind=nn.LSTM)
    nodes, _, labels = parse(viz.to_dot(loss, view=view, model=model))
    steps = {c: l for c, l in labels.items() if re.fullmatch(r"cluster_t\d+", c)}
    assert steps == {f"cluster_t{t}": f"t = {t}" for t in range(4)}
    for t in range(4):  # each step's state lives in its own cluster
        inside = [n for n in nodes.values() if n["cluster"] == f"cluster_t{t}"]
        assert inside


@pytest.mark.parametrize("view", ["ops", "cells", "layers"])
def test_each_parameter_drawn_once_with_one_edge_into_each_step(view):
    model, _, loss = rnn(steps=3, fused=False)  # the composite form uses every weight at every step
    nodes, edges, _ = parse(viz.to_dot(loss, view=view, model=model))
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"):
        key = key_of(nodes, name)
        assert nodes[key]["cluster"] == "cluster_rail"
        heads = [h for _, h in drop_edges(nodes, edges, key)]
        if view == "layers":  # lanes instead of step clusters: count the steps of the heads' boxes
            steps = sorted(int(re.search(r"t = (\d+)", nodes[h]["attrs"]).group(1)) for h in heads)
        else:
            steps = sorted(step_of(nodes[h]) for h in heads)
        assert steps == [0, 1, 2], (name, steps)


def test_fused_form_uses_w_hh_at_every_step_and_w_ih_once_outside():
    model, _, loss = rnn(steps=3, fused=True)
    nodes, edges, _ = parse(viz.to_dot(loss, model=model))
    hh = [h for _, h in drop_edges(nodes, edges, key_of(nodes, "rnn.weight_hh_l0"))]
    assert sorted(step_of(nodes[h]) for h in hh) == [0, 1, 2]
    ih = [h for _, h in drop_edges(nodes, edges, key_of(nodes, "rnn.weight_ih_l0"))]
    assert len(ih) == 1 and step_of(nodes[ih[0]]) is None  # the one input projection W_ih x


def test_scene_matches_the_drawing():
    model, _, loss = rnn(steps=3, fused=False)
    scene = viz.drawing(loss, view="cells", model=model)
    cells = [b for b in scene.boxes if b.role == "cell"]
    assert [(b.title, b.step) for b in cells] == [("RNN cell", 0), ("RNN cell", 1), ("RNN cell", 2)]
    w_hh = next(b for b in scene.boxes if b.title == "rnn.weight_hh_l0")
    into = [l for l in scene.links if l.tail == w_hh.key]
    assert sorted(next(b.step for b in cells if b.key == l.head) for l in into) == [0, 1, 2]
    recurrent = [l for l in scene.links if l.kind == "recurrent"]
    assert len(recurrent) == 2 and all(l.label == "h" for l in recurrent)


@pytest.mark.parametrize("fused", [True, False])
def test_cells_view_names_the_cell_and_collapses_a_step_into_one_node(fused):
    for kind, title in ((nn.LSTM, "LSTM cell"), (nn.GRU, "GRU cell"), (nn.RNN, "RNN cell")):
        model, _, loss = rnn(steps=3, fused=fused, kind=kind)
        nodes, edges, _ = parse(viz.to_dot(loss, view="cells", model=model))
        cells = {k: n for k, n in nodes.items() if n["title"] == title}
        assert sorted(step_of(n) for n in cells.values()) == [0, 1, 2]
        chain = [(t, h) for t, h, a in edges if t in cells and h in cells and "invis" not in a]
        assert len(chain) == 2  # cell t -> cell t+1, one edge whatever the states (h, c)


def test_layers_view_has_one_lane_per_layer_and_direction():
    model, _, loss = rnn(steps=3, kind=nn.LSTM, layers=2, bidirectional=True)
    nodes, _, labels = parse(viz.to_dot(loss, view="layers", model=model))
    lanes = sorted(l for c, l in labels.items() if c.startswith("cluster_lane"))
    assert lanes == ["lstm · layer 0", "lstm · layer 0 · reverse", "lstm · layer 1", "lstm · layer 1 · reverse"]
    for cluster in (c for c in labels if c.startswith("cluster_lane")):
        assert sum(n["cluster"] == cluster and n["title"] == "LSTM cell" for n in nodes.values()) == 3


@pytest.mark.parametrize("view", ["ops", "cells", "layers"])
def test_rolled_view_draws_one_step_with_the_delay_edge(view):
    model, _, loss = rnn(steps=4, fused=False)
    nodes, edges, labels = parse(viz.to_dot(loss, view=view, rolled=True, model=model))
    delays = [(t, h) for t, h, a in edges if 'label="z⁻¹' in a]
    assert len(delays) == 1
    tail, head = delays[0]
    if view == "ops":
        assert nodes[tail]["title"] == "hₜ" and nodes[head]["title"] == "matmul"
    else:
        assert tail == head and nodes[tail]["title"] == "RNN cell"  # a loop on the cell
    assert 'constraint="false"' in next(a for t, h, a in edges if (t, h) == (tail, head))
    for name in ("rnn.weight_hh_l0", "rnn.weight_ih_l0"):
        assert len(drop_edges(nodes, edges, key_of(nodes, name))) == 1
    assert not any(re.fullmatch(r"cluster_t\d+", c) for c in labels)


def test_rolled_reverse_direction_is_a_one_step_advance():
    model, _, loss = rnn(steps=3, kind=nn.GRU, bidirectional=True)
    text = viz.to_dot(loss, view="cells", rolled=True, model=model)
    assert text.count('label="z⁻¹') == 1 and text.count('label="z⁺¹') == 1


def test_truncated_bptt_draws_dashed_edges_at_the_cut():
    tr.manual_seed(0)
    cell = nn.RNNCell(2, 3)
    x = tr.randn(4, 1, 2)
    h, losses = None, []
    for t in range(4):
        if t == 2:  # two windows of two steps
            h = tr.detach_state(h)
        with tr.time_step(t):
            h = cell(x[t], h)
            losses.append((h ** 2).sum())
    loss = tr.stack(losses).sum()
    for view in ("ops", "cells"):
        nodes, edges, _ = parse(viz.to_dot(loss, view=view, model=cell))
        cut = key_of(nodes, "h₁ detached")
        assert nodes[cut]["cluster"] is None and "dashed" in nodes[cut]["attrs"]
        into = [(t, a) for t, h, a in edges if h == cut]
        assert len(into) == 1 and 'style="dashed"' in into[0][1] and "detach()" in into[0][1]
        assert step_of(nodes[into[0][0]]) == 1
        out = [(h, a) for t, h, a in edges if t == cut]
        assert out and all('style="dashed"' in a and step_of(nodes[h]) == 2 for h, a in out)


def test_truncated_windows_of_a_layer_follow_each_other_with_the_cut_between():
    tr.manual_seed(0)
    model = nn.LSTM(2, 3)
    x = tr.randn(6, 1, 2)
    out1, state = model(x[:3])
    out2, _ = model(x[3:], tr.detach_state(state))
    loss = (out1 ** 2).mean() + (out2 ** 2).mean()
    nodes, edges, labels = parse(viz.to_dot(loss, view="cells", model=model))
    assert sorted(l for c, l in labels.items() if c.startswith("cluster_t")) == [f"t = {t}" for t in range(6)]
    cells = sorted(step_of(n) for n in nodes.values() if n["title"] == "LSTM cell")
    assert cells == list(range(6))  # the second window's steps 0-2 drawn as 3-5, not merged
    cut = key_of(nodes, "h₂ detached")
    (tail, attrs), = [(t, a) for t, h, a in edges if h == cut]
    assert step_of(nodes[tail]) == 2 and 'style="dashed"' in attrs and "detach()" in attrs
    assert [step_of(nodes[h]) for t, h, a in edges if t == cut and 'style="dashed"' in a] == [3]


def test_per_step_losses_sit_in_their_step_and_the_total_outside():
    tr.manual_seed(0)
    cell = nn.RNNCell(2, 3)
    x = tr.randn(3, 1, 2)
    h, terms = None, []
    for t in range(3):
        with tr.time_step(t):
            h = cell(x[t], h)
            term = (h ** 2).sum()
            term.name = "L"
            terms.append(term)
    total = terms[0] + terms[1] + terms[2]
    nodes, _, _ = parse(viz.to_dot(total, view="cells", model=cell))
    for t in range(3):
        assert step_of(nodes[key_of(nodes, f"L{t}".translate(str.maketrans("012", "₀₁₂")))]) == t
    assert step_of(nodes[key_of(nodes, "L")]) is None  # the root: the sum of the L_t


def test_names_and_unnamed_parameters():
    tr.manual_seed(0)
    w = tr.randn(3, 3, requires_grad=True)
    x = tr.randn(1, 3)
    h = x
    for t in range(2):
        with tr.time_step(t):
            h = (h @ w).tanh()
    loss = h.sum()
    nodes, _, _ = parse(viz.to_dot(loss))
    assert [n["title"] for n in nodes.values() if n["cluster"] == "cluster_rail"] == ["param 0"]
    nodes, _, _ = parse(viz.to_dot(loss, names={w: "W", x: "x_in"}))
    assert key_of(nodes, "W") and key_of(nodes, "x_in")


# ------------------------------------------------------------------ gradient colours
def test_vanishing_gradient_fades_towards_the_first_step():
    tr.manual_seed(0)
    cell = nn.RNNCell(2, 4, fused=False)
    cell.weight_hh.data *= 0.2  # a small recurrent matrix: the gradient vanishes going back
    x = tr.randn(6, 1, 2)
    h, states = None, []
    for t in range(6):
        with tr.time_step(t):
            h = cell(x[t], h)
        h.retain_grad()
        states.append(h)
    loss = (h ** 2).sum()  # the loss sits at the last step only
    text = viz.to_dot(loss, view="ops", color="grad", model=cell)
    nodes, _, _ = parse(text)
    drawn = sorted((int(n["title"][1:].translate(SUB)), n) for n in nodes.values()
                   if n["title"] and re.fullmatch(r"h[₀-₉]+", n["title"]))
    assert [t for t, _ in drawn] == list(range(6))
    norms = [tooltip_number(n["attrs"], "‖grad‖") for _, n in drawn]
    assert all(a < b for a, b in zip(norms, norms[1:])), norms
    assert norms[-1] / norms[0] > 100
    # the fills darken towards the loss: luminance falls step by step
    fills = [re.search(r'fillcolor="#([0-9A-F]{6})"', n["attrs"]).group(1) for _, n in drawn]
    lum = [0.299 * int(f[:2], 16) + 0.587 * int(f[2:4], 16) + 0.114 * int(f[4:], 16) for f in fills]
    assert all(a > b for a, b in zip(lum, lum[1:])), lum
    assert "legend" in text and "log scale" in text
    # the numbers are the gradients backward computes
    loss.backward()
    expected = [float(np.linalg.norm(s.grad.numpy())) for s in states]
    assert np.allclose(norms, expected, rtol=1e-3)


def test_grad_colours_before_and_after_backward_retain_graph_agree():
    model, _, loss = rnn(steps=3, fused=True, kind=nn.LSTM)
    before = viz.to_dot(loss, view="cells", color="grad", model=model)
    assert model.weight_hh_l0.grad is None  # drawing had no side effects
    loss.backward(retain_graph=True)
    after = viz.to_dot(loss, view="cells", color="grad", model=model)
    assert before == after
    grads = model.weight_hh_l0.grad.numpy().copy()
    viz.to_dot(loss, color="grad", model=model)
    assert np.array_equal(grads, model.weight_hh_l0.grad.numpy())  # .grad untouched by drawing


def test_freed_graph_raises_a_clear_error():
    model, _, loss = rnn(steps=2)
    loss.backward()
    with pytest.raises(RuntimeError, match="freed by backward.*retain_graph=True"):
        viz.to_dot(loss)


def test_color_grad_of_a_non_scalar_uses_its_sum():
    model, _, loss = rnn(steps=2)
    out, _ = model(tr.randn(2, 1, 2))
    scene = viz.drawing(out, color="grad")
    assert scene.grad_of == "sum(root)" and any(b.grad_norm for b in scene.boxes)


# ------------------------------------------------------------------ rendering
@pytest.fixture
def drawn():
    model, _, loss = rnn(steps=3, fused=False, kind=nn.LSTM)
    return model, loss


def test_render_svg_through_dot(tmp_path, drawn):
    model, loss = drawn
    path = viz.render(loss, tmp_path / "g.svg", view="cells", color="grad", model=model, title="LSTM")
    assert path == str(tmp_path / "g.svg")
    root = ET.fromstring((tmp_path / "g.svg").read_bytes())
    ns = "{http://www.w3.org/2000/svg}"
    clusters = [g.find(f"{ns}title").text for g in root.iter(f"{ns}g") if g.get("class") == "cluster"]
    assert {"cluster_t0", "cluster_t1", "cluster_t2", "cluster_rail"} <= set(clusters)
    svg = (tmp_path / "g.svg").read_text(encoding="utf-8")
    assert "‖grad‖" in svg and "‖value‖" in svg  # norms in the tooltips
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left nothing behind


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
def test_stacked_fused_layers_are_laid_out_one_above_the_other_without_warnings(kind):
    """In the ops view, a step's layers sit in one column: the h boxes of layer 0 and layer 1 share
    an x (rankdir LR: one rank). Without that, dot put layer 1 beside layer 0 and warned of failed
    spline routing (Graphviz 2.43, 14 of 864 drawings: all fused, two layers, this view)."""
    model, _, loss = rnn(steps=2, kind=kind, layers=2)
    nodes, _, _ = parse(viz.to_dot(loss, view="ops", model=model))
    run = subprocess.run(["dot", "-Tsvg"], input=viz.to_dot(loss, view="ops", model=model).encode(),
                         capture_output=True, check=True)
    assert run.stderr == b""
    root = ET.fromstring(run.stdout)
    ns = "{http://www.w3.org/2000/svg}"
    x_of = {g.find(f"{ns}title").text: float(next(g.iter(f"{ns}text")).get("x"))  # (the text sits in a link)
            for g in root.iter(f"{ns}g") if g.get("class") == "node" and g.find(f".//{ns}text") is not None}
    for t in range(2):
        hs = [k for k, n in nodes.items() if n["title"] == f"h{'₀₁'[t]}" and step_of(n) == t]
        assert len(hs) == 2
        assert x_of[hs[0]] == pytest.approx(x_of[hs[1]], abs=0.5)


def test_render_png_pdf_dot_and_json(tmp_path, drawn):
    model, loss = drawn
    viz.render(loss, tmp_path / "g.png", model=model)
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    viz.render(loss, tmp_path / "g.pdf", view="layers", model=model)
    assert (tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"
    viz.render(loss, tmp_path / "g.dot", view="cells", rolled=True, model=model)
    assert (tmp_path / "g.dot").read_text(encoding="utf-8") == viz.to_dot(loss, view="cells", rolled=True, model=model)
    viz.render(loss, tmp_path / "g.json", view="cells", color="grad", model=model)
    data = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    cells = [n for n in data["nodes"] if n["role"] == "cell"]
    assert [n["step"] for n in cells] == [0, 1, 2] and all(n["grad_norm"] > 0 for n in cells)
    assert {e["kind"] for e in data["edges"]} >= {"param", "recurrent", "data"}


def test_digraph_for_notebooks(drawn):
    import graphviz
    model, loss = drawn
    g = viz.digraph(loss, view="cells", model=model)
    assert isinstance(g, graphviz.Digraph)
    assert g.source == viz.to_dot(loss, view="cells", model=model)
    assert g._repr_image_svg_xml().lstrip().startswith("<?xml")  # what a notebook displays inline


def test_unknown_extension_lists_the_formats(tmp_path, drawn):
    _, loss = drawn
    with pytest.raises(ValueError, match=r"\.svg.*\.png.*\.pdf.*\.dot.*\.json"):
        viz.render(loss, tmp_path / "g.gif")


def test_without_dot_render_says_how_to_install_and_to_dot_still_works(tmp_path, monkeypatch, drawn):
    model, loss = drawn
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz.*brew install graphviz.*conda install graphviz"):
        viz.render(loss, tmp_path / "g.svg", model=model)
    assert not (tmp_path / "g.svg").exists()
    assert viz.to_dot(loss, model=model).startswith("digraph")
    viz.render(loss, tmp_path / "g.dot", model=model)  # text formats need no Graphviz
    assert (tmp_path / "g.dot").exists()


def test_a_dot_failure_is_reported_and_render_retries_a_simpler_layout(tmp_path, monkeypatch, drawn):
    render_module = sys.modules["viz.render"]
    with pytest.raises(render_module.DotFailed, match="exit status 1.*dot said"):
        render_module.pipe("digraph { a -> }", "svg")
    model, loss = drawn
    real, texts = render_module.pipe, []

    def crash_once(text, fmt):
        texts.append(text)
        if len(texts) == 1:
            raise render_module.DotFailed("dot crashed (signal 11)")
        return real(text, fmt)
    monkeypatch.setattr(render_module, "pipe", crash_once)
    viz.render(loss, tmp_path / "g.svg", model=model)
    assert len(texts) == 2 and "style=invis, weight=8" in texts[0] and "style=invis, weight=8" not in texts[1]
    assert ET.fromstring((tmp_path / "g.svg").read_bytes()) is not None


def test_viz_imports_without_matplotlib_or_graphviz():
    code = ("import sys; sys.modules['matplotlib'] = None; sys.modules['graphviz'] = None\n"
            "import tinygrad_rnn as tr, viz\n"
            "x = tr.randn(2, 2, requires_grad=True); print(viz.to_dot((x * x).sum())[:7])")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "digraph"


# ------------------------------------------------------------------ large graphs
def test_two_hundred_step_two_layer_lstm_renders_in_the_cells_view(tmp_path):
    tr.manual_seed(0)
    model = nn.LSTM(4, 8, num_layers=2)
    out, _ = model(tr.randn(200, 2, 4))
    loss = (out ** 2).mean()
    viz.render(loss, tmp_path / "big.svg", view="cells", model=model)
    root = ET.fromstring((tmp_path / "big.svg").read_bytes())
    ns = "{http://www.w3.org/2000/svg}"
    assert sum(g.get("class") == "cluster" for g in root.iter(f"{ns}g")) == 201  # 200 steps and the rail


def test_ops_view_above_the_node_limit_suggests_cells():
    model, _, loss = rnn(steps=120, fused=False, kind=nn.LSTM)
    with pytest.raises(ValueError, match=r"view='cells'.*max_nodes=None"):
        viz.to_dot(loss)
    assert "cluster_t119" in viz.to_dot(loss, view="cells")
    assert viz.to_dot(loss, max_nodes=None).count("subgraph cluster_t") == 120


def test_deep_graphs_are_walked_without_recursion():
    x = tr.randn(1, 2, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        scene = viz.drawing(y.sum(), color="grad", max_nodes=None)
    finally:
        sys.setrecursionlimit(limit)
    assert len(scene.boxes) > 6000
    assert math.isclose(next(b for b in scene.boxes if b.role == "param").grad_norm,
                        math.sqrt(2) * 1.0001 ** 3000, rel_tol=1e-4)


def test_bad_options():
    _, _, loss = rnn(steps=2)
    with pytest.raises(ValueError, match="view"):
        viz.to_dot(loss, view="steps")
    with pytest.raises(ValueError, match="color"):
        viz.to_dot(loss, color="value")
    with pytest.raises(TypeError, match="Tensor"):
        viz.to_dot(np.zeros(3))
