"""Encoder-decoder (seq2seq) with attention: Attention, Encoder, Decoder, Seq2Seq, a toy task.

The encoder reads the source x_1..x_S into states h_1..h_S; the decoder writes y_1..y_T one
step at a time, each step looking back at all encoder states through attention:

    s_t = cell([E_y[y_{t-1}]; c_{t-1}], s_{t-1})       (input feeding, Luong et al. 2015)
    e_{t,s} = score(d_t, h_s);  a_{t,s} = softmax_s(e_{t,s});  c_t = sum_s a_{t,s} h_s
    p(y_t | y_<t, x) = softmax(W_o [d_t; c_t] + b_o)

where d_t is the cell's output (s_t for a GRU, the h of s_t = (h, m) for an LSTM), y_0 is the
start token (sos) and c_0 = 0. While training, y_{t-1} is the true previous target
with probability teacher_forcing_ratio (one coin per step, for the whole batch) and the model's
own argmax otherwise; greedy decoding always feeds the argmax (train on the truth, test on the
model's own output). Shapes: S source steps, T target steps, B batch, V vocabulary, E embedding,
H hidden units; token ids are (S, B) / (T, B) integer arrays (time first, as nn.GRU).

Source padding is at the end of each column: src_lengths[b] real tokens, then pad. The encoder
reads the pad tokens like any others (no packed sequences), but attention never looks at them
(their weights are exactly 0) and the summary handed to the decoder is the forward direction's
state at the last real token.
"""
from __future__ import annotations

import math

import numpy as np

from .. import autograd, backend, ops
from .. import functional as F
from ..factories import zeros
from ..tensor import Tensor
from . import init
from .cells import GRUCell, LSTMCell
from .feedback import coin_source, teacher_forces
from .layers import Embedding, Linear
from .module import Module, Parameter
from .rnn import GRU, LSTM

__all__ = ["Attention", "Encoder", "Decoder", "Seq2Seq", "reversal_task", "MASKED_SCORE"]

MASKED_SCORE = -1e9  # the score of a padded position: exp(-1e9 - max) is exactly 0, never NaN
ATTENTION_KINDS = ("dot", "general", "additive")
CELLS = {"gru": (GRU, GRUCell), "lstm": (LSTM, LSTMCell)}


class Attention(Module):
    """Soft attention of a query over S keys (the keys are also the values).

        dot:       e_s = q . k_s                               (query_size == key_size)
        general:   e_s = q W k_s,  W: (Hq, Hk)                 (Luong et al. 2015)
        additive:  e_s = v^T tanh(W_q q + W_k k_s)             (Bahdanau et al. 2015)
        a_s = softmax_s(e_s) over the unmasked s (a_s = 0 exactly where masked);  c = sum_s a_s k_s

    forward(query (B, Hq), keys (S, B, Hk), mask=None, projected_keys=None)
    -> (context (B, Hk), weights (B, S)). mask: (S, B), true/nonzero where a key counts; every
    column needs at least one such key. projected_keys: project_keys(keys), computed once per
    source and passed at every decoder step (only the additive score has a key projection).
    Parameters: general query_proj.weight (Hk, Hq) = W^T; additive query_proj.weight (A, Hq) =
    W_q, key_proj.weight (A, Hk) = W_k and v (A,), with A = attention_size (default Hk).
    """

    def __init__(self, query_size: int, key_size: int, kind: str = "general", attention_size: int = None,
                 dtype=None, device=None):
        super().__init__()
        if kind not in ATTENTION_KINDS:
            raise ValueError(f"Attention: unknown kind {kind!r}; use one of {ATTENTION_KINDS}")
        if kind == "dot" and query_size != key_size:
            raise ValueError(f"Attention: the dot score needs query_size == key_size, got {query_size} and "
                             f"{key_size}; use kind='general' or 'additive'")
        self.query_size, self.key_size, self.kind = query_size, key_size, kind
        if kind == "general":
            self.query_proj = Linear(query_size, key_size, bias=False, dtype=dtype, device=device)
        elif kind == "additive":
            size = attention_size or key_size
            self.query_proj = Linear(query_size, size, bias=False, dtype=dtype, device=device)
            self.key_proj = Linear(key_size, size, bias=False, dtype=dtype, device=device)
            bound = 1.0 / math.sqrt(size)
            self.v = init.uniform_(Parameter(zeros(size, dtype=dtype, device=device)), -bound, bound)

    def project_keys(self, keys: Tensor) -> Tensor:
        """W_k k_s for every s, (S, B, A), for the additive score; the keys themselves otherwise."""
        return self.key_proj(keys) if self.kind == "additive" else keys

    def forward(self, query: Tensor, keys: Tensor, mask=None, projected_keys: Tensor = None) -> tuple:
        if query.ndim != 2 or keys.ndim != 3 or query.shape != (keys.shape[1], self.query_size) \
                or keys.shape[2] != self.key_size:
            raise ValueError(f"Attention: expected query (B, {self.query_size}) and keys (S, B, {self.key_size}), "
                             f"got {query.shape} and {keys.shape}")
        projected = self.project_keys(keys) if projected_keys is None else projected_keys
        if self.kind == "additive":
            scores = (projected + self.query_proj(query)).tanh() @ self.v        # (S, B)
        else:
            u = query if self.kind == "dot" else self.query_proj(query)        # (B, Hk)
            scores = (projected * u).sum(axis=-1)                               # (S, B)
        if mask is not None:
            scores = ops.where(_bool_mask(mask, scores), scores, MASKED_SCORE)
        weights = F.softmax(scores, axis=0)                                     # (S, B)
        context = (weights.reshape(*weights.shape, 1) * keys).sum(axis=0)      # (B, Hk)
        return context, weights.T

    def extra_repr(self) -> str:
        return f"{self.query_size}, {self.key_size}, kind={self.kind!r}"


class Encoder(Module):
    """Embedding -> nn.GRU / nn.LSTM over the source, and a bridge to the decoder's state size.

        states = rnn(E_x[src])                        src (S, B) -> states (S, B, D*H)
        summary = [->h_{len-1}; <-h_0]                the top layer's final states, (B, D*H)
        final = tanh(W_b summary + b_b)               (B, state_size)

    D = 2 if bidirectional else 1; ->h_{len-1} is the forward direction at the last real token
    (src_lengths - 1; S - 1 without lengths), <-h_0 the reverse direction after reading back to
    the first token. The bridge Linear + tanh exists only where D*H != state_size; otherwise
    final = summary (a unidirectional encoder hands its state on unchanged).
    forward(src, src_lengths=None) -> (states (S, B, D*H), final (B, state_size)).
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, cell: str = "gru",
                 num_layers: int = 1, bidirectional: bool = False, state_size: int = None, dtype=None, device=None):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"Encoder: unknown cell {cell!r}; use one of {sorted(CELLS)}")
        self.hidden_size, self.directions = hidden_size, 2 if bidirectional else 1
        self.output_size = self.directions * hidden_size
        self.state_size = state_size or self.output_size
        self.embedding = Embedding(vocab_size, embedding_dim, dtype=dtype, device=device)
        self.rnn = CELLS[cell][0](embedding_dim, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                                  dtype=dtype, device=device)
        self.bridge = None if self.state_size == self.output_size else \
            Linear(self.output_size, self.state_size, dtype=dtype, device=device)

    def forward(self, src, src_lengths=None) -> tuple:
        shape = tuple(src.shape) if hasattr(src, "shape") else np.shape(src)
        if len(shape) != 2:
            raise ValueError(f"Encoder: expected source ids of shape (S, B), got shape {shape}")
        steps, batch = shape
        lengths = np.full(batch, steps) if src_lengths is None else source_lengths(src_lengths, steps, batch)
        states, _ = self.rnn(self.embedding(src))
        last, columns = (backend.to_device(a, states.device) for a in (lengths - 1, np.arange(batch)))
        summary = states[last, columns]                                         # (B, D*H)
        if self.directions == 2:
            h = self.hidden_size
            summary = ops.cat([summary[:, :h], states[0, :, h:]], axis=-1)
        final = summary if self.bridge is None else self.bridge(summary).tanh()
        return states, final


def source_lengths(src_lengths, steps: int, batch: int) -> np.ndarray:
    """src_lengths as an integer array (B,), each in [1, S]; a ValueError otherwise (a length of 0
    would have read the summary from the last step, as index -1)."""
    data = src_lengths.data if isinstance(src_lengths, Tensor) else src_lengths
    lengths = backend.to_numpy(data) if isinstance(data, backend.ARRAY_TYPES) else np.asarray(data)
    if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
        raise ValueError(f"Encoder: src_lengths must be {batch} integers, one per source column, got "
                         f"{lengths.dtype} of shape {lengths.shape}")
    if lengths.min() < 1 or lengths.max() > steps:
        raise ValueError(f"Encoder: src_lengths must lie in [1, {steps}] (the source length), got {lengths.tolist()}")
    return lengths


class Decoder(Module):
    """One decoder step with attention and input feeding (the previous context is an input, so
    the cell knows where it looked last; c_0 = 0):

        x_t = [E_y[y_{t-1}]; c_{t-1}]                 (B, E + Hk)
        s_t = cell(x_t, s_{t-1})                      GRUCell: h_t; LSTMCell: (h_t, m_t), fused
        c_t, a_t = attention(h_t, keys, mask)         (B, Hk), (B, S)
        logits_t = W_o [h_t; c_t] + b_o               (B, V)

    forward(prev_tokens (B,) ints, state, context (B, Hk), keys (S, B, Hk), mask=None,
    projected_keys=None) -> (logits (B, V), state, context (B, Hk), weights (B, S)); state is
    h (B, H) for the GRU and (h, m) for the LSTM. initial_state(final) gives s_0 from the
    encoder's final (B, H): h_0 = final (and m_0 = 0 for the LSTM's memory cell).
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, key_size: int, cell: str = "gru",
                 attention: str = "general", dtype=None, device=None):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"Decoder: unknown cell {cell!r}; use one of {sorted(CELLS)}")
        self.cell_kind, self.key_size = cell, key_size
        self.embedding = Embedding(vocab_size, embedding_dim, dtype=dtype, device=device)
        self.cell = CELLS[cell][1](embedding_dim + key_size, hidden_size, fused=True, dtype=dtype, device=device)
        self.attention = Attention(hidden_size, key_size, attention, dtype=dtype, device=device)
        self.out = Linear(hidden_size + key_size, vocab_size, dtype=dtype, device=device)

    def initial_state(self, final: Tensor):
        return (final, zeros(final.shape, dtype=final.dtype, device=final.device)) if self.cell_kind == "lstm" \
            else final

    def forward(self, prev_tokens, state, context: Tensor, keys: Tensor, mask=None,
                projected_keys: Tensor = None) -> tuple:
        x = ops.cat([self.embedding(prev_tokens), context], axis=-1)
        state = self.cell(x, state)
        h = state[0] if self.cell_kind == "lstm" else state
        context, weights = self.attention(h, keys, mask, projected_keys)
        logits = self.out(ops.cat([h, context], axis=-1))
        return logits, state, context, weights


class Seq2Seq(Module):
    """Encoder-decoder with attention (equations in the module docstring).

    Seq2Seq(src_vocab, tgt_vocab, embed, hidden, cell="gru" | "lstm", attention="dot" |
    "general" | "additive", sos, eos, pad, num_layers=1, bidirectional=False): the encoder has
    num_layers layers of `hidden` units per direction; the decoder one cell of `hidden` units,
    attending over keys of size D*hidden (a bidirectional encoder bridges to `hidden`, see
    Encoder). Dot attention needs keys of the query's size, so it cannot follow a bidirectional
    encoder (keys 2*hidden): use general or additive attention there.

    forward(src (S, B), tgt (T, B), teacher_forcing_ratio=1.0, src_lengths=None, rng=None)
    -> logits (T, B, V): step t predicts tgt[t] from sos, tgt[0], ..., tgt[t-1] (teacher
    forcing) or from the model's own argmaxes. Per step a coin with P(heads) = ratio, drawn from
    rng (a NumPy Generator or a seed; default the seeded tinygrad_rnn.backend.random_state(),
    so tr.manual_seed makes runs repeat) picks the truth for steps 1..T-1 (step 0 reads sos);
    ratios 1 and 0 draw no coins.
    greedy_decode(src, max_len, src_lengths=None) -> (tokens (T, B) int64, weights (T, B, S)),
    T <= max_len: argmax decoding that stops each column at its eos (pad and zero weights after
    it) and stops altogether once every column is done.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, embed: int = 32, hidden: int = 64, cell: str = "gru",
                 attention: str = "general", sos: int = 1, eos: int = 2, pad: int = 0, num_layers: int = 1,
                 bidirectional: bool = False, dtype=None, device=None):
        super().__init__()
        if attention == "dot" and bidirectional:
            raise ValueError(f"Seq2Seq: dot attention scores a query of {hidden} units against keys of the same "
                             f"size, but a bidirectional encoder's keys have 2 x {hidden}; use attention='general' "
                             "or 'additive', or bidirectional=False")
        self.sos, self.eos, self.pad = sos, eos, pad
        self.encoder = Encoder(src_vocab, embed, hidden, cell, num_layers, bidirectional, state_size=hidden,
                               dtype=dtype, device=device)
        self.decoder = Decoder(tgt_vocab, embed, hidden, self.encoder.output_size, cell, attention,
                               dtype=dtype, device=device)

    def encode(self, src, src_lengths=None) -> tuple:
        """(keys, mask, projected_keys, initial decoder state, initial context) for decoding."""
        keys, final = self.encoder(src, src_lengths)  # checks src_lengths
        mask = None
        if src_lengths is not None:
            lengths = source_lengths(src_lengths, *keys.shape[:2])  # host integers, wherever they came from
            mask = backend.to_device(np.arange(keys.shape[0])[:, None] < lengths[None, :], keys.device)
        with autograd.scope("decoder.attention"):
            projected = self.decoder.attention.project_keys(keys)
        context = zeros(keys.shape[1], keys.shape[2], dtype=keys.dtype, device=keys.device)
        return keys, mask, projected, self.decoder.initial_state(final), context

    def forward(self, src, tgt, teacher_forcing_ratio: float = 1.0, src_lengths=None, rng=None) -> Tensor:
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"Seq2Seq: teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}")
        tgt = _host_ids(tgt)
        keys, mask, projected, state, context = self.encode(src, src_lengths)
        rng = coin_source(rng)
        prev = np.full(tgt.shape[1], self.sos, dtype=np.int64)
        logits = []
        for t in range(tgt.shape[0]):
            if t > 0:  # this step's coin: the true previous token, or the model's own guess
                teacher = teacher_forces(teacher_forcing_ratio, rng)
                prev = tgt[t - 1] if teacher else backend.to_numpy(logits[-1].data.argmax(axis=-1))
            with autograd.time_step(t):
                step, state, context, _ = self.decoder(prev, state, context, keys, mask, projected)
            logits.append(step)
        return ops.stack(logits, axis=0)

    def greedy_decode(self, src, max_len: int, src_lengths=None) -> tuple:
        with autograd.no_grad():
            keys, mask, projected, state, context = self.encode(src, src_lengths)
            batch = keys.shape[1]
            prev = np.full(batch, self.sos, dtype=np.int64)
            done = np.zeros(batch, dtype=bool)
            tokens, weights = [], []
            for t in range(max_len):
                with autograd.time_step(t):
                    step, state, context, attn = self.decoder(prev, state, context, keys, mask, projected)
                prev = backend.to_numpy(step.data.argmax(axis=-1)).astype(np.int64)
                tokens.append(np.where(done, self.pad, prev))
                weights.append(np.where(done[:, None], 0.0, attn.numpy()))
                done |= prev == self.eos
                if done.all():
                    break
        return np.stack(tokens), np.stack(weights)


def _bool_mask(mask, like: Tensor):
    """mask (S, B) as a boolean array on like's device."""
    array = mask.data if isinstance(mask, Tensor) else mask
    if not isinstance(array, backend.ARRAY_TYPES):
        array = np.asarray(array)
    if tuple(array.shape) != like.shape:
        raise ValueError(f"Attention: mask must have shape (S, B) = {like.shape}, got {tuple(array.shape)}")
    return backend.to_device(array, like.device).astype(bool)


def _host_ids(ids) -> np.ndarray:
    array = ids.data if isinstance(ids, Tensor) else ids
    return backend.to_numpy(array) if isinstance(array, backend.ARRAY_TYPES) else np.asarray(array)


def reversal_task(batch: int, min_len: int = 3, max_len: int = 6, n_digits: int = 10, seed=None) -> tuple:
    """Digit sequences and their reversals, for training and testing a seq2seq model.

    Tokens: 0 = pad, 1 = sos, 2 = eos, 3 + d = digit d (vocabulary n_digits + 3, for source and
    target alike). Each column b has a length L_b ~ U{min_len..max_len} and digits x_1..x_L:

        src[:, b] = x_1 .. x_L, pad..            (max_len, B)
        tgt[:, b] = x_L .. x_1, eos, pad..       (max_len + 1, B)

    Returns (src, tgt, lengths) as int64 NumPy arrays, lengths (B,); seed: int or Generator.
    """
    if not 1 <= min_len <= max_len or batch <= 0 or n_digits <= 0:
        raise ValueError(f"reversal_task: need batch > 0, n_digits > 0 and 1 <= min_len <= max_len, got "
                         f"batch={batch}, n_digits={n_digits}, min_len={min_len}, max_len={max_len}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=batch)
    digits = rng.integers(0, n_digits, size=(max_len, batch)) + 3
    src = np.zeros((max_len, batch), dtype=np.int64)
    tgt = np.zeros((max_len + 1, batch), dtype=np.int64)
    for b, n in enumerate(lengths):
        src[:n, b] = digits[:n, b]
        tgt[:n, b] = digits[:n, b][::-1]
        tgt[n, b] = 2
    return src, tgt, lengths.astype(np.int64)
