"""CharRNN: a character-level language model, embedding -> recurrent core -> vocabulary logits."""
from __future__ import annotations

import numpy as np

from .layers import Dropout, Embedding, Linear
from .module import Module
from .rnn import GRU, LSTM, RNN

__all__ = ["CharRNN"]

CORES = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class CharRNN(Module):
    """Next-character model p(c_{t+1} | c_1..c_t) = softmax(logits_t), with V = vocab_size:

        e_t = E[c_t]                                  ids (T, B) -> (T, B, embedding_dim)
        h_t, state = core(dropout(e), state)          -> (T, B, hidden_size)
        logits_t = dropout(h_t) W^T + b               -> (T, B, V)

    core is nn.LSTM, nn.GRU or nn.RNN (tanh) as `cell` = "lstm" | "gru" | "rnn", with num_layers
    layers and dropout between them, in the form `fused` selects (True, False or "sequence", as
    for nn.LSTM); dropout also acts on the embeddings and on the top layer's output while
    training (the placement of Zaremba et al. 2014). Parameters are named
    embedding.weight, rnn.weight_ih_l0, ..., decoder.weight, decoder.bias.

    forward(ids, state=None) -> (logits, state): ids (T, B) integers (array or Tensor), state the
    core's, (h_n, c_n) for the LSTM and h_n otherwise, each (num_layers, B, hidden_size); None
    starts from zeros. For truncated BPTT pass the returned state, detached, to the next window.
    """

    def __init__(self, vocab_size: int, hidden_size: int = 128, num_layers: int = 1, cell: str = "lstm",
                 embedding_dim: int = 64, dropout: float = 0.0, fused=True, dtype=None, device=None):
        if cell not in CORES:
            raise ValueError(f"CharRNN: unknown cell {cell!r}; use one of {sorted(CORES)}")
        super().__init__()
        self.vocab_size, self.cell = vocab_size, cell
        self.embedding = Embedding(vocab_size, embedding_dim, dtype=dtype, device=device)
        self.drop = Dropout(dropout)
        self.rnn = CORES[cell](embedding_dim, hidden_size, num_layers=num_layers, dropout=dropout, fused=fused,
                               dtype=dtype, device=device)
        self.decoder = Linear(hidden_size, vocab_size, dtype=dtype, device=device)

    def forward(self, ids, state=None):
        if np.ndim(ids) != 2:
            raise ValueError(f"CharRNN: expected ids of shape (T, B), got shape {np.shape(ids)}")
        output, state = self.rnn(self.drop(self.embedding(ids)), state)
        return self.decoder(self.drop(output)), state

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, cell={self.cell!r}"
