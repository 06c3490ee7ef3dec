"""The character task: next-character prediction on a text stream, by truncated BPTT.

The text (the packaged Tiny Shakespeare excerpt, or --text FILE) is split 90/10 into training
and validation streams. The training stream is cut into B parallel rows (bptt_batches); step s
reads window s mod (number of windows) of every row, so consecutive steps continue each other
and the state is carried across them (detached: the gradient stops at the window's start).
The first window of each pass over the text starts again from a zero state.
"""
from __future__ import annotations

import math

import numpy as np

from ..text import CharCorpus, Vocabulary, bptt_batches, load_text
from .errors import UsageError
from .tasks import Task

__all__ = ["make_chars_task"]

VALIDATION_ROWS, VALIDATION_STEPS = 8, 256  # the held-out batch: 8 rows of 256 characters


def make_chars_task(text_path, batch_size: int, window: int, vocab_chars: str = None) -> Task:
    """A Task over the characters of text_path (None: the packaged excerpt). vocab_chars: a saved
    model's vocabulary (the text may then use only those characters)."""
    try:
        text = load_text(text_path)
    except FileNotFoundError:
        raise UsageError(f"--text: no such file: {text_path}") from None
    except (UnicodeDecodeError, IsADirectoryError) as error:
        raise UsageError(f"--text: cannot read {text_path} as UTF-8 text: {error}") from None
    try:
        corpus = CharCorpus(text, 0.1, vocab=Vocabulary(vocab_chars) if vocab_chars else None)
    except ValueError as error:  # characters outside a saved vocabulary
        raise UsageError(f"the text does not fit the checkpoint's vocabulary: {error}") from None
    try:
        windows = list(bptt_batches(corpus.train_ids, batch_size, window))
        rows = max(min(VALIDATION_ROWS, len(corpus.validation_ids) // (window + 1)), 1)
        x_val, y_val = next(bptt_batches(corpus.validation_ids, rows, VALIDATION_STEPS))
    except ValueError as error:
        raise UsageError(f"the text ({len(text)} characters) is too short for --batch {batch_size} and a "
                         f"window of {window}: {error}") from None

    def batch(step, size):
        return windows[step % len(windows)]

    vocab = corpus.vocab
    counts = np.bincount(corpus.train_ids, minlength=len(vocab)).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * np.log(p)).sum())
    return Task("chars", len(vocab), len(vocab), False, "cross-entropy (nats per character)", unigram,
                f"the character frequencies alone ({unigram / math.log(2):.2f} bits per character)", batch,
                (x_val, y_val), classes=True, period=len(windows), vocab=vocab)

