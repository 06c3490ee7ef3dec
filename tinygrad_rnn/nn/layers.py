"""Linear, Embedding and Dropout: the feed-forward pieces around a recurrent core."""
from __future__ import annotations

import math

from .. import functional as F
from ..factories import zeros
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Embedding", "Dropout"]


class Linear(Module):
    """y = x W^T + b.   x: (*, in_features) -> y: (*, out_features).

    weight: (out_features, in_features), bias: (out_features,), both U(-1/sqrt(in), 1/sqrt(in))
    as PyTorch's default.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        self.weight = init.uniform_(Parameter(zeros(out_features, in_features, dtype=dtype, device=device)), -bound, bound)
        self.bias = init.uniform_(Parameter(zeros(out_features, dtype=dtype, device=device)), -bound, bound) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input's last axis must have "
                             f"size {self.in_features}, got shape {x.shape}")
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """y = weight[indices].   indices: integers of any shape (*) -> y: (*, embedding_dim).

    weight: (num_embeddings, embedding_dim) ~ N(0, 1) as PyTorch's default; the backward
    scatter-adds into the rows that were picked. With padding_idx, as PyTorch's, that row starts
    at zeros and gets no gradient, so padding embeds as zeros throughout training.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int = None, dtype=None, device=None):
        super().__init__()
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx must lie in [-{num_embeddings}, {num_embeddings}), "
                             f"got {padding_idx}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        self.weight = init.normal_(Parameter(zeros(num_embeddings, embedding_dim, dtype=dtype, device=device)))
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


class Dropout(Module):
    """Zero entries with probability p while training and scale the rest by 1/(1-p); identity in eval()."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
