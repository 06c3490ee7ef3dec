"""Character-level text: a vocabulary, the packaged corpus, truncated-BPTT batches and sampling.

A character model (nn.CharRNN, or any callable with the same contract) maps

    model(ids, state) -> (logits, state)      ids: (T, B) int64,  logits: (T, B, V) Tensor

where V = len(vocab) and state is whatever the model carries between calls (None at the start).
These tools are re-exported by tinygrad_rnn.data.
"""
from __future__ import annotations

import contextlib
import importlib.resources
from pathlib import Path

import numpy as np

from . import autograd, backend
from .nn.module import Module

__all__ = ["Vocabulary", "load_text", "CharCorpus", "bptt_batches", "sample", "PACKAGED_CORPUS"]

PACKAGED_CORPUS = "tinyshakespeare_excerpt.txt"  # in tinygrad_rnn/corpus/ (see its README.md)


class Vocabulary:
    """The distinct characters of a text in sorted (code point) order; a character's id is its
    index in that order. Vocabulary(vocab.chars) rebuilds the same vocabulary (to save one)."""

    def __init__(self, text: str):
        self.chars = "".join(sorted(set(text)))
        if not self.chars:
            raise ValueError("Vocabulary: the text is empty; a vocabulary needs at least one character")
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """ids[i] = index of text[i] in chars: a (len(text),) int64 array.

        Raises ValueError naming every character of the text that is not in the vocabulary."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(self._codes, codes)
        known = self._codes[np.minimum(ids, len(self) - 1)] == codes
        if not known.all():
            unknown = sorted(set(text) - set(self.chars))
            raise ValueError(f"Vocabulary.encode: {len(unknown)} character(s) not in the vocabulary: "
                             + ", ".join(repr(c) for c in unknown))
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """The string of the characters with these ids: ids is a 1-D sequence or array of ints."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"Vocabulary.decode: expected a 1-D sequence of integer ids, got {ids.dtype} "
                             f"of shape {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"Vocabulary.decode: ids must lie in [0, {len(self)}), got values from "
                             f"{ids.min()} to {ids.max()}")
        return "".join(self.chars[i] for i in ids.tolist())

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} chars: {self.chars!r})"


def load_text(path=None, max_chars: int = None) -> str:
    """The UTF-8 text of a file, or with path=None the packaged excerpt of Tiny Shakespeare
    (about 100,000 characters, tinygrad_rnn/corpus/); with max_chars, only its first max_chars."""
    if max_chars is not None and max_chars <= 0:
        raise ValueError(f"load_text: max_chars must be positive, got {max_chars}")
    if path is None:
        text = (importlib.resources.files("tinygrad_rnn") / "corpus" / PACKAGED_CORPUS).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    if not text:
        raise ValueError(f"load_text: {path or PACKAGED_CORPUS} is empty")
    return text[:max_chars]


class CharCorpus:
    """A text, its Vocabulary, and a contiguous train/validation split of its ids.

    The first N - round(N * validation_fraction) characters are the training stream
    (train_ids), the rest the validation stream (validation_ids); both are (n,) int64 and are
    not shuffled, since a character stream has no independent samples to shuffle. The
    vocabulary is built from the whole text (or given, e.g. a saved model's), so both encode.
    """

    def __init__(self, text: str, validation_fraction: float = 0.1, vocab: Vocabulary = None):
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"CharCorpus: validation_fraction must be in [0, 1), got {validation_fraction}")
        self.text = text
        self.vocab = Vocabulary(text) if vocab is None else vocab
        ids = self.vocab.encode(text)
        cut = len(ids) - int(round(len(ids) * validation_fraction))
        self.train_ids, self.validation_ids = ids[:cut], ids[cut:]

    @classmethod
    def from_file(cls, path=None, max_chars: int = None, validation_fraction: float = 0.1) -> "CharCorpus":
        """The corpus of load_text(path, max_chars) (path=None: the packaged excerpt)."""
        return cls(load_text(path, max_chars), validation_fraction)

    def __repr__(self) -> str:
        return (f"CharCorpus({len(self.text)} chars, vocab {len(self.vocab)}, train {len(self.train_ids)}, "
                f"validation {len(self.validation_ids)})")


def bptt_batches(ids, batch_size: int, seq_len: int):
    """Windows of a token stream for truncated BPTT: yields (inputs, targets), each (T, B) int64.

    The stream of N ids is cut into B = batch_size contiguous rows of n = N // B ids (the last
    N - n B ids are dropped); row b is ids[b n : (b + 1) n] and stands in column b. Window k covers
    the steps t = k T .. k T + T - 1 of every row (T = seq_len; the last window may be shorter,
    since a row's last id is only ever a target):

        inputs[t, b] = ids[b n + k T + t],   targets[t, b] = ids[b n + k T + t + 1]

    so window k + 1 continues each row exactly where window k stopped, and the hidden state a
    model returns for window k is the right initial state for window k + 1 (detach it to cut the
    gradient there: that is truncated BPTT). Each row holds n - 1 predictions, in
    ceil((n - 1) / T) windows.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"bptt_batches: expected a 1-D integer id stream, got {ids.dtype} of shape {ids.shape}")
    if batch_size <= 0 or seq_len <= 0:
        raise ValueError(f"bptt_batches: batch_size and seq_len must be positive, got {batch_size}, {seq_len}")
    rows = len(ids) // batch_size
    if rows < 2:
        raise ValueError(f"bptt_batches: {len(ids)} ids make rows of {rows} for batch_size {batch_size}; "
                         "each row needs at least 2 (an input and its target)")
    columns = ids[:rows * batch_size].astype(np.int64).reshape(batch_size, rows).T.copy()  # (n, B)
    return _windows(columns, seq_len)


def _windows(columns: np.ndarray, seq_len: int):
    for start in range(0, columns.shape[0] - 1, seq_len):
        stop = min(start + seq_len, columns.shape[0] - 1)
        yield columns[start:stop], columns[start + 1:stop + 1]


def sample(model, vocab: Vocabulary, prime: str, length: int, temperature: float = 1.0, seed=None) -> str:
    """Prime a character model with a string, then draw `length` characters one at a time.

    The prime is read in one call, model(ids (P, 1), None). Each next character is drawn from
    the logits z (V,) of the last step read,

        p_i = softmax(z / tau)_i = exp(z_i / tau) / sum_j exp(z_j / tau),   tau = temperature,

    and fed back in (with the returned state) to give the logits of the following draw.
    tau = 1 samples the model's own distribution, tau < 1 sharpens it (tau -> 0 approaches the
    greedy argmax), tau > 1 flattens it towards uniform. Runs under no_grad; a Module runs in
    eval mode (dropout off) and gets its modes back afterwards.
    Returns the `length` generated characters (without the prime); the same seed gives the same
    string, and without one the draws come from the generator tr.manual_seed seeds.
    """
    if not temperature > 0:
        raise ValueError(f"sample: temperature must be > 0 (use a small value such as 1e-3 for "
                         f"near-greedy decoding), got {temperature}")
    if not prime:
        raise ValueError("sample: prime must hold at least one character (it conditions the first draw)")
    if length < 0:
        raise ValueError(f"sample: length must be non-negative, got {length}")
    rng = backend.random_state() if seed is None else np.random.default_rng(seed)
    drawn = []
    with autograd.no_grad(), _eval_mode(model):
        logits, state = model(vocab.encode(prime)[:, None], None)
        for i in range(length):
            drawn.append(_draw(_last_logits(logits, len(vocab)), temperature, rng))
            if i + 1 < length:
                logits, state = model(np.array([[drawn[-1]]], dtype=np.int64), state)
    return vocab.decode(drawn)


def _last_logits(logits, vocab_size: int) -> np.ndarray:
    """The (V,) logits of the last step of a (T, 1, V) Tensor, on the host."""
    if logits.ndim != 3 or logits.shape[1:] != (1, vocab_size):
        raise ValueError(f"sample: the model must return logits of shape (T, 1, {vocab_size}) for ids of shape "
                         f"(T, 1) and a vocabulary of {vocab_size}, got {logits.shape}")
    return logits[-1, 0].numpy()


def _draw(logits: np.ndarray, temperature: float, rng) -> int:
    """One index ~ softmax(logits / temperature), in float64 from (z - max z) / tau <= 0, so any
    tau > 0 is safe (the terms that underflow are the ones that would get probability ~ 0)."""
    z = logits.astype(np.float64)
    with np.errstate(over="ignore", under="ignore"):
        weights = np.exp((z - z.max()) / temperature)
    return int(rng.choice(len(weights), p=weights / weights.sum()))


@contextlib.contextmanager
def _eval_mode(model):
    """Every submodule of a Module in eval mode for the block, each one's own mode restored after."""
    modes = [(m, m.training) for _, m in model.named_modules()] if isinstance(model, Module) else []
    for m, _ in modes:
        m.training = False
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode
