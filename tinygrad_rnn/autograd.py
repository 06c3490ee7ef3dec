"""The reverse-mode engine: graph nodes, global modes and the backward sweep.

Every Tensor produced by an op while gradients are enabled is a node of the graph: it keeps its
inputs (``_parents``) and the op's ``_backward(node, g) -> (g_parent, ...)``, which reads what
its formula needs from the node (its inputs' data, its own) or from a closure, never from the
node's consumers, so dropping the last reference to a loss frees the whole graph by reference
counting alone.

``backward`` sweeps the graph in decreasing creation index (every tensor is numbered as it is
made, so each node comes after all its consumers): a heap holds the nodes that have received a
gradient, and the next node of a chain is held beside it. No recursion anywhere and no separate
topological sort (an unrolled RNN is tens of thousands of nodes deep). Each node's gradient is
accumulated from all its consumers before it is passed on. Broadcasting's adjoint lives here,
once: a gradient whose shape differs from its input's is summed back to that shape (and cast
back to the input's dtype after type promotion).

Global modes (gradient recording, the current time step, the current module scope, whether the
sweep is releasing the graph) live here and nowhere else; their context managers restore the
previous value in ``finally``.
"""
from __future__ import annotations

import contextlib
from heapq import heapify, heappop, heappush

from .backend import ARRAY_TYPES, array_module
from .record import GradientRecord
from .tensor import Tensor, next_creation_index
from .terms import IndexedGrad, OuterGrad

__all__ = ["no_grad", "enable_grad", "is_grad_enabled", "releasing", "time_step", "scope", "make", "backward",
           "node_grads", "vjp", "GradientRecord", "IndexedGrad", "OuterGrad", "topological_order", "unbroadcast"]

_grad_enabled = True
_step = None  # the time step stamped on new nodes (set by time_step(t))
_scope = ""   # the module scope stamped on new nodes, e.g. "lstm.l0.reverse"
_releasing = False  # inside a sweep that frees the graph as it goes (see releasing())


# ---------------------------------------------------------------- global modes
@contextlib.contextmanager
def no_grad():
    """Within this block ops record no graph: results have requires_grad=False."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Re-enable graph recording inside a no_grad block."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def releasing() -> bool:
    """True while backward() sweeps without retain_graph: each node's backward then runs for the
    last time, so it may overwrite what its forward saved (sequence.py's nodes turn their gates'
    buffer into the gradient). False in vjp/node_grads and with retain_graph=True."""
    return _releasing


@contextlib.contextmanager
def _sweeping(releases: bool):
    global _releasing
    previous, _releasing = _releasing, releases
    try:
        yield
    finally:
        _releasing = previous


class time_step:
    """Stamp every node created in this block with time step `t` (read by viz and trace); the
    previous step comes back on exit, exception or not. A class, not a generator: it runs at
    every step of every layer, and this is four times cheaper."""
    __slots__ = ("t", "previous")

    def __init__(self, t: int):
        self.t = int(t)

    def __enter__(self):
        global _step
        self.previous, _step = _step, self.t
        return self

    def __exit__(self, *exc) -> bool:
        global _step
        _step = self.previous
        return False


class scope:
    """Append `name` to the module scope stamped on new nodes ("lstm", then "lstm.l0", ...) in
    this block, as time_step does the step (and a class for the same reason: every module call)."""
    __slots__ = ("name", "previous")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        global _scope
        self.previous = _scope
        _scope = f"{_scope}.{self.name}" if _scope else self.name
        return self

    def __exit__(self, *exc) -> bool:
        global _scope
        _scope = self.previous
        return False


# ---------------------------------------------------------------- nodes
def make(data, parents: tuple, backward, op: str) -> Tensor:
    """The output Tensor of an op: a graph node when recording and any parent requires grad.

    data: the forward result (a backend array); parents: the op's Tensor inputs;
    backward: (node, g) -> tuple with one gradient array (or None) per parent, where node is
    the Tensor returned here (node.data is `data`, node._parents is `parents`) and g its
    gradient; op: a short name.
    """
    if data.__class__ not in ARRAY_TYPES:  # NumPy returns scalars from 0-d ufuncs
        data = array_module(data).asarray(data)
    out = Tensor.__new__(Tensor)
    out.data = data
    out.grad = None
    out.name = None
    out._hooks = None
    out._retain = False
    out._index = next_creation_index()
    out._op = op
    out._step = _step
    out._scope = _scope
    if _grad_enabled:
        for parent in parents:
            if parent.requires_grad:
                out.requires_grad = True
                out._parents = parents
                out._backward = backward
                return out
    out.requires_grad = False
    out._parents = ()
    out._backward = None
    return out


class _GraphFreed(Exception):
    """Raised by the backward of a node whose graph an earlier backward() released."""


def _graph_freed(node, g):
    raise _GraphFreed


# ---------------------------------------------------------------- the sweep
def topological_order(root: Tensor) -> list:
    """Nodes that require grad and reach `root`, root first, each after all its consumers.

    An iterative depth-first post-order (parents before children), reversed.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        key = id(node)
        if key in visited:
            continue
        visited.add(key)
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def unbroadcast(grad, shape: tuple):
    """Sum `grad` over the axes that broadcasting expanded so that it has `shape`.

    Broadcasting's adjoint: leading axes added by broadcasting are summed away, and axes where
    the input had size 1 are summed with keepdims.
    """
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    grad = grad.reshape(shape)
    return grad if grad.__class__ in ARRAY_TYPES else array_module(grad).asarray(grad)  # NumPy sums to scalars


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's .grad (weighted by `grad` for non-scalars).

    Non-leaf gradients are dropped unless the node called retain_grad(). Unless retain_graph,
    each node's backward and inputs are released as soon as its gradient has been passed on.
    """
    seeds = {root: _seed_gradient(root, grad, "backward")}
    with _sweeping(not retain_graph):
        _sweep(seeds, retain_graph, None)


def node_grads(root: Tensor, grad=None) -> "GradientRecord":
    """d(root)/dv for every node v that reaches root, leaves included, observed without side
    effects: no .grad is written, no hook runs and the graph is kept (read by viz and trace)."""
    return vjp({root: grad})


def vjp(seeds: dict, within=None) -> "GradientRecord":
    """Vector-Jacobian products observed like node_grads, from several seeds at once:
    seeds maps tensors to the gradients they start with (None: ones, for one-element tensors).
    With `within`, a predicate on nodes, the sweep expands only the nodes it accepts; the others
    are recorded with the gradient that reached them but not swept through, so a region's
    products with its inputs (one time step's Jacobian, say) come without the rest of the graph.
    """
    record = GradientRecord()
    seeds = {t: _seed_gradient(t, g, "vjp") for t, g in seeds.items()}
    with _sweeping(False):
        _sweep(seeds, True, record, within)
    return record


def _dense_term(leaf: Tensor, pg):
    """A consumer's gradient term of `leaf` as a dense array of leaf's shape (for GradientRecord)."""
    data = leaf.data
    if pg.__class__ is OuterGrad:
        return pg.dense()
    if pg.__class__ is IndexedGrad:
        dense = array_module(data).zeros(data.shape, dtype=data.dtype)
        pg.add_into(dense)
        return dense
    return unbroadcast(pg, data.shape) if pg.shape != data.shape else pg


def _sweep(seeds: dict, retain_graph: bool, record, within=None) -> None:
    """The reverse sweep shared by backward (record None) and vjp (record given).

    Nodes are visited in decreasing creation index: every consumer of a node was made after it,
    so by the time a node is visited all its gradient contributions have arrived, and no separate
    topological sort is needed. The nodes that have received a gradient wait in a heap, except
    the one of highest index, held in `top`: in a chain, each node's input is the next node to
    visit and never enters the heap. Every gradient kept in `grads` is a backend array, never a
    NumPy scalar.
    """
    grads = dict(seeds)
    owned = set()  # nodes whose gradient buffer the engine allocated itself: added into in place
    outer = {}  # node -> [OuterGrad]: a shared weight's per-step terms, summed by one GEMM at its turn
    pending = [(-t._index, t) for t in grads]
    heapify(pending)
    pop, get = grads.pop, grads.get
    top = None  # the pending node of highest index, held out of the heap: in a chain, the next node
    while top is not None or pending:
        if top is not None:
            node, top = top, None
        else:
            node = heappop(pending)[1]
        g = pop(node, None)
        if outer and node in outer:
            summed = OuterGrad.sum(outer.pop(node))
            g = summed if g is None else g + summed
        if record is not None:
            record.grads[id(node)] = g
            record.nodes[id(node)] = node
            if within is not None and not within(node):
                continue
        elif node._hooks:
            g = _run_hooks(node, g)
        fn = node._backward
        if fn is None:  # a leaf: accumulate into .grad, which owns its memory
            if record is None:
                _accumulate(node, g)
            continue
        if node._retain and record is None:
            _accumulate(node, g)
        try:
            terms = fn(node, g)
        except _GraphFreed:
            raise RuntimeError(
                f"backward: the graph through '{node._op}' was already freed by an earlier backward(); "
                "pass retain_graph=True to the first backward() to go through the graph twice") from None
        for parent, pg in zip(node._parents, terms):
            if pg is None or not parent.requires_grad:
                continue
            if record is not None and parent._backward is None:
                record.contributions.setdefault(id(parent), []).append((node, _dense_term(parent, pg)))
            previous = get(parent)
            if previous is None and parent not in outer:  # parent becomes pending
                highest = top._index if top is not None else -pending[0][0] if pending else -1  # pending so far
                if parent._index > highest:  # it is the next node to visit
                    if top is not None:
                        heappush(pending, (-top._index, top))
                    top = parent
                else:
                    heappush(pending, (-parent._index, parent))
            pdata = parent.data
            if pg.__class__ not in ARRAY_TYPES:
                if pg.__class__ is OuterGrad:  # kept aside: all of a weight's terms become one GEMM
                    outer.setdefault(parent, []).append(pg)
                    continue
                if pg.__class__ is IndexedGrad:  # a slice's gradient: add into one buffer, no zeros per slice
                    if parent not in owned:
                        buffer = array_module(pdata).zeros(pdata.shape, dtype=pdata.dtype)
                        if previous is not None:
                            buffer += previous
                        grads[parent] = previous = buffer
                        owned.add(parent)
                    pg.add_into(previous)
                    continue
                pg = array_module(pdata).asarray(pg)  # NumPy's 0-d arithmetic returns scalars
            if pg.shape != pdata.shape or pg.dtype is not pdata.dtype:
                pg = _fit(pg, pdata)
            if previous is None:
                grads[parent] = pg  # may alias another gradient: never written in place
            elif parent in owned:
                previous += pg
            else:
                previous = previous + pg
                if previous.__class__ not in ARRAY_TYPES:  # a 0-d NumPy sum is a scalar
                    previous = array_module(pdata).asarray(previous)
                grads[parent] = previous
                if previous.size > 1:  # NumPy adds into one element in place twice as slowly as it makes a new sum
                    owned.add(parent)
        terms = pg = None  # let go of this node's terms before the next node makes its own
        if not retain_graph:
            node._backward = _graph_freed
            node._parents = ()


def _fit(grad, data):
    """`grad` made a gradient of `data`: broadcasting's adjoint sums it back to data's shape,
    and type promotion's adjoint casts it back to data's dtype."""
    if grad.shape != data.shape:
        grad = unbroadcast(grad, data.shape)
    if grad.dtype != data.dtype:
        grad = grad.astype(data.dtype)
    return grad


def _seed_gradient(root: Tensor, grad, caller: str):
    if not root.requires_grad:
        raise RuntimeError(f"{caller}: this tensor does not require grad and has no graph "
                           "(was it made under no_grad(), detached, or from tensors that do not require grad?)")
    xp = array_module(root.data)
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"{caller}: grad can be implied only for a scalar output, but this tensor has shape "
                f"{tuple(root.shape)}; reduce it first (loss.sum() or loss.mean()) or pass backward(grad=...) "
                "of the same shape")
        return xp.ones_like(root.data)
    g = grad.data if isinstance(grad, Tensor) else grad
    if isinstance(g, ARRAY_TYPES) and array_module(g) is not xp:
        raise RuntimeError(f"{caller}: grad is on a different device than the tensor; move it with .to()")
    g = xp.asarray(g, dtype=root.data.dtype)  # the tensor's dtype, as the leaves' .grad will have
    if g.shape != root.data.shape:
        raise RuntimeError(f"{caller}: grad has shape {tuple(g.shape)} but the tensor has shape "
                           f"{tuple(root.data.shape)}; they must match")
    return g


def _accumulate(node: Tensor, g) -> None:
    if node.grad is None:
        node.grad = Tensor._wrap(g.copy())
    else:
        node.grad.data += g


def _run_hooks(node: Tensor, g):
    for hook in list(node._hooks.values()):
        result = hook(Tensor._wrap(g))
        if result is not None:
            new = result.data if isinstance(result, Tensor) else result
            if new.shape != g.shape:
                raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of shape "
                                   f"{tuple(new.shape)} for a tensor of shape {tuple(g.shape)}")
            g = new
    return g
