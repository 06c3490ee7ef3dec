"""What a read-only sweep observed: the gradient of every node, and each consumer's term of
every leaf's gradient (autograd.node_grads and autograd.vjp fill it; viz and trace read it)."""
from __future__ import annotations

from .tensor import Tensor

__all__ = ["GradientRecord"]


class GradientRecord:
    """`grads` maps id(node) to its gradient array (`nodes` maps id(node) to the node), and
    `contributions` maps id(leaf) to [(consumer node, that consumer's gradient term)], so a
    shared weight's gradient can be split into the terms of the steps that used it."""

    def __init__(self):
        self.grads, self.contributions, self.nodes = {}, {}, {}

    def grad(self, tensor: Tensor):
        """The gradient array of `tensor`, or None when it does not reach the root."""
        return self.grads.get(id(tensor))

    def terms(self, leaf: Tensor) -> list:
        """[(consumer node, its term of the leaf's gradient)]: the terms sum to the gradient."""
        return self.contributions.get(id(leaf), [])
