"""Read-only walk of a Tensor's graph: every node behind it, what made it, and (optionally) its
gradient.

`walk(root)` follows each node's parents (all of them, not only those that require grad, so
inputs and constants appear too), iteratively (an unrolled graph is tens of thousands of nodes
deep: no recursion) and in a fixed order: depth first from the root, parents in argument order.
Nodes are numbered in post-order, so every node comes after its inputs, and the same model and
input always give the same numbers (never Python's id()).

Nothing is written to any tensor. Gradients for colouring come from autograd.node_grads, which
observes d(root)/d(node) for every node without side effects. backward() frees the graph unless
retain_graph=True, so walk before backward, or after backward(retain_graph=True); walking a
freed graph raises a RuntimeError that says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinygrad_rnn import autograd, backend
from tinygrad_rnn.tensor import Tensor

__all__ = ["Node", "Graph", "walk", "parameter_names", "norm"]

# What a node is, for drawing:
#   "param"    a leaf that requires grad, made outside any time step (a weight: drawn once, on the rail)
#   "leaf"     a leaf that requires grad, made inside a time step
#   "input"    a constant: no parents, no gradient (inputs x_t, targets, initial zero states)
#   "detached" the result of detach(): where truncated BPTT cut the graph
#   "op"       anything an op made
KINDS = ("param", "leaf", "input", "detached", "op")


@dataclass(eq=False)
class Node:
    index: int                  # post-order number: parents always have smaller numbers
    op: str                     # "tanh", "matmul", "lstm_step", "leaf", "detach", ...
    name: str | None            # the tensor's own name ("h", "c", "f", "W_ih x") or None
    label: str | None           # the name given by names= or model= ("lstm.weight_hh_l0")
    step: int | None            # the time step stamp (None outside time_step blocks)
    scope: str                  # the module scope stamp ("lstm.l0", "lstm.l0.reverse", "")
    shape: tuple
    dtype: str
    kind: str                   # one of KINDS
    parents: tuple              # indices of the op's inputs, in argument order (repeats kept)
    value_norm: float           # Frobenius norm of the value
    grad_norm: float | None = None  # norm of d(root)/d(node) when walked with gradients
    origin: int | None = None   # for "detached": the node whose value it detached, when drawn
    stamp: int | None = None    # the step stamp as recorded, when `step` had to be moved (below)
    is_zero: bool = False       # a constant whose every entry is 0 (initial states)
    scalar: float | None = None  # the value of a one-element constant (exponents, scales)


@dataclass
class Graph:
    nodes: list                 # Node, in post-order (index == position)
    root: int                   # index of the tensor that was walked from (the last node)
    with_grads: bool = False    # grad_norm filled in from node_grads
    grad_of: str = "root"       # what the gradients are of: "root", or "sum(root)" for non-scalars
    # (leaf index, consumer index) -> that consumer's term of the leaf's gradient (a NumPy
    # array): what each step that uses a shared weight contributes to the weight's gradient
    contributions: dict = field(default_factory=dict)

    def consumers(self) -> list:
        """For each node, the indices of the nodes that take it as an input (each once, in order)."""
        out = [[] for _ in self.nodes]
        for node in self.nodes:
            for p in dict.fromkeys(node.parents):
                out[p].append(node.index)
        return out


def parameter_names(model=None, names=None) -> dict:
    """{id(tensor): label} from a Module (or a list of Modules) and an explicit {tensor: label}.

    A model's parameters get qualified names prefixed by the model's scope name, as its graph
    nodes are ("lstm.weight_hh_l0"); labels in `names` win. The dict is keyed by id() only to
    look tensors up while walking; ids never reach the output.
    """
    labels = {}
    models = () if model is None else (model if isinstance(model, (list, tuple)) else (model,))
    for m in models:
        if not hasattr(m, "named_parameters"):
            raise TypeError(f"viz: model= takes a tinygrad_rnn.nn.Module (or a list of them), got {type(m).__name__}")
        prefix = getattr(m, "_name", "")
        for qualified, p in m.named_parameters(prefix):
            labels[id(p)] = qualified
    for tensor, label in (names or {}).items():  # items(), never a lookup: == on Tensors is elementwise
        if not isinstance(tensor, Tensor):
            raise TypeError(f"viz: names= maps Tensors to labels, got a key of type {type(tensor).__name__}")
        labels[id(tensor)] = str(label)
    return labels


def walk(root: Tensor, labels: dict | None = None, with_grads: bool = False) -> Graph:
    """The graph behind `root`: every node it depends on, numbered in post-order.

    labels: {id(tensor): label} (see parameter_names). with_grads: also record each node's
    gradient norm (d root / d node; for a non-scalar root, of sum(root)) through node_grads.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"viz: expected a tinygrad_rnn Tensor, got {type(root).__name__}")
    labels = labels or {}
    tensors, index_of = _post_order(root)
    nodes = [_node(i, t, index_of, labels.get(id(t))) for i, t in enumerate(tensors)]
    _link_detached(tensors, nodes)
    _separate_calls(nodes)
    graph = Graph(nodes=nodes, root=len(nodes) - 1)
    if with_grads:
        _add_grads(graph, root, tensors, index_of)
    return graph


def _post_order(root: Tensor):
    """Tensors in depth-first post-order from root (parents in argument order), iteratively."""
    order, index_of = [], {}
    seen = set()
    stack = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            index_of[id(t)] = len(order)
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        if not t.is_leaf and not t.parents:
            raise RuntimeError(
                f"viz: the graph through '{t.op}' was freed by backward(); draw it before calling "
                "backward(), or call backward(retain_graph=True) first (color='grad' computes the "
                "gradients itself, read-only, so it needs no backward at all)")
        stack.append((t, True))
        for parent in reversed(t.parents):
            if id(parent) not in seen:
                stack.append((parent, False))
    return order, index_of


def _host(t: Tensor) -> np.ndarray:
    return backend.to_numpy(t.data)


def norm(array) -> float:
    a = np.asarray(array)
    if a.dtype.kind not in "fc":
        a = a.astype(np.float64)
    return float(np.linalg.norm(a.ravel()))


def _node(i: int, t: Tensor, index_of: dict, label) -> Node:
    host = _host(t)
    if t.op == "detach":
        kind = "detached"
    elif t.parents:
        kind = "op"
    elif t.requires_grad:
        kind = "param" if t.step is None else "leaf"
    else:
        kind = "input"
    return Node(index=i, op=t.op, name=t.name, label=label, step=t.step, scope=t.scope,
                shape=tuple(t.shape), dtype=str(t.dtype), kind=kind,
                parents=tuple(index_of[id(p)] for p in t.parents), value_norm=norm(host),
                is_zero=kind == "input" and host.size > 1 and not np.any(host),
                scalar=float(host.reshape(-1)[0].real) if kind == "input" and host.size == 1 and host.dtype.kind in "biufc" else None)


def _link_detached(tensors: list, nodes: list) -> None:
    """Where truncated BPTT cut the graph, and from what.

    A detached tensor shares its value's memory with the tensor it was detached from: when that
    tensor is in the graph too (two windows drawn together), remember it. A layer given a
    detached state indexes it first, and indexing a tensor that needs no gradient records no
    parent, so the cut reaches the graph as a constant: a constant outside the steps that feeds
    a module's steps and holds exactly the values of a state ("h", "c") of that module drawn
    earlier is taken for that state, detached.
    """
    by_data = {}
    for t, node in zip(tensors, nodes):
        if node.kind != "detached":
            by_data.setdefault(id(t.data), node.index)
    for t, node in zip(tensors, nodes):
        if node.kind == "detached":
            node.origin = by_data.get(id(t.data))
    feeds = {}
    for n in nodes:
        for p in n.parents:
            if n.step is not None and n.scope:
                feeds.setdefault(p, set()).add(n.scope)
    states = {}
    for n in nodes:
        if n.name in ("h", "c") and n.step is not None:
            states.setdefault((n.scope, n.shape, n.dtype), []).append(n.index)
    for n in nodes:
        if n.kind != "input" or n.step is not None or n.is_zero or n.scalar is not None:
            continue
        for scope in sorted(feeds.get(n.index, ())):
            value = _host(tensors[n.index])
            same = [i for i in states.get((scope, n.shape, n.dtype), ())
                    if np.array_equal(_host(tensors[i]), value)]
            if same:
                n.kind, n.origin = "detached", same[-1]
                break


def _separate_calls(nodes: list) -> None:
    """A module called twice in one graph (truncated BPTT windows, or a shared encoder) stamps
    the same steps twice. Within a module scope, the stepped nodes joined by edges form one call;
    when two calls share step numbers, the later call's steps move past the earlier's (window 2
    of 3 steps is drawn as t = 3, 4, 5), keeping the stamp in `stamp`."""
    parent = {}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for n in nodes:
        if n.step is not None and n.scope:
            parent[n.index] = n.index
    for n in nodes:
        if n.index in parent:
            for p in n.parents:
                if p in parent and nodes[p].scope == n.scope:
                    a, b = find(p), find(n.index)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    calls = {}
    for i in parent:  # per scope: {root: [indices]}, in order of first node
        calls.setdefault(nodes[i].scope, {}).setdefault(find(i), []).append(i)
    for groups in calls.values():
        if len(groups) < 2:
            continue
        taken, offset_of = set(), {}
        for root, members in groups.items():
            steps = {nodes[i].step for i in members}
            offset = 0
            if taken & steps:
                offset = max(taken) + 1 - min(steps)
            offset_of[root] = offset
            taken |= {s + offset for s in steps}
        for root, members in groups.items():
            if offset_of[root]:
                for i in members:
                    nodes[i].stamp, nodes[i].step = nodes[i].step, nodes[i].step + offset_of[root]


def _add_grads(graph: Graph, root: Tensor, tensors: list, index_of: dict) -> None:
    if not root.requires_grad:
        raise RuntimeError("viz: color='grad' needs a tensor that requires grad (this one has no graph: "
                           "made under no_grad(), detached, or from tensors that do not require grad)")
    seed = None
    if root.data.size != 1:  # colour by the gradient of sum(root), as backward(ones) would
        seed = Tensor._wrap(backend.array_module(root.data).ones_like(root.data))
        graph.grad_of = "sum(root)"
    record = autograd.node_grads(root, seed)
    graph.with_grads = True
    for t, node in zip(tensors, graph.nodes):
        g = record.grad(t)
        node.grad_norm = None if g is None else norm(backend.to_numpy(g))
    for t, node in zip(tensors, graph.nodes):
        if node.kind not in ("param", "leaf"):
            continue
        terms = {}
        for consumer, term in record.contributions.get(id(t), ()):
            c = index_of.get(id(consumer))
            if c is not None:
                terms[c] = term if c not in terms else terms[c] + term
        for c in sorted(terms):
            graph.contributions[(node.index, c)] = backend.to_numpy(terms[c])
