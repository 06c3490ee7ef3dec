"""Gradient terms that the engine adds in its own way instead of as dense arrays.

An op's backward may return, for an input, one of these in place of a gradient array:
``OuterGrad`` (a weight's a^T b, kept unmultiplied so that all time steps' terms become one
GEMM) or ``IndexedGrad`` (a slice's gradient, added into one buffer instead of a zero array per
slice). autograd's sweep recognizes them; everything else is an ordinary array.
"""
from __future__ import annotations

from .backend import array_module, scatter_add

__all__ = ["OuterGrad", "IndexedGrad"]


class OuterGrad:
    """The gradient term a^T b of a weight, a: (B, m), b: (B, n) -> (m, n), left unmultiplied.

    A recurrent weight gets one such term per time step. The engine keeps them until the weight's
    turn and then forms their sum as one GEMM, [a_1; ...; a_T]^T [b_1; ...; b_T], instead of T
    small ones (T outer products when B = 1) and T full-size additions.
    """
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b

    def dense(self):
        return self.a.T @ self.b

    @staticmethod
    def sum(terms: list):
        if len(terms) == 1:
            return terms[0].dense()
        xp = array_module(terms[0].a)
        return xp.concatenate([t.a for t in terms]).T @ xp.concatenate([t.b for t in terms])


class IndexedGrad:
    """The gradient of an indexing op: `values` at `index` of an array that is zero elsewhere.

    The engine adds it into one buffer per input (in place, repeated integer indices
    accumulating), so taking T slices of a sequence costs O(T) in backward, not T full arrays.
    """
    __slots__ = ("index", "values", "basic")

    def __init__(self, index, values, basic: bool):
        self.index, self.values, self.basic = index, values, basic

    def add_into(self, buffer) -> None:
        if self.basic:
            buffer[self.index] += self.values
        else:
            scatter_add(buffer, self.index, self.values)
