"""`tinygrad-rnn sample`: text from a character model trained with `train --task chars`."""
from __future__ import annotations

from ..factories import manual_seed
from ..text import Vocabulary, sample
from .build import restore_model
from .common import HelpFormatter, device_of, nonnegative_int, positive_float, read_checkpoint
from .errors import UsageError

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sample", help="generate text with a trained character model",
        description="Prime a character model (a checkpoint of `tinygrad-rnn train --task chars`) with some text, "
                    "then draw characters one at a time from softmax(logits / temperature).",
        epilog="example:\n  tinygrad-rnn sample checkpoints/chars-lstm.npz --prime 'ROMEO:' --temperature 0.7",
        formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint of `train --task chars`")
    p.add_argument("--length", type=nonnegative_int, default=500, metavar="N",
                   help="characters to generate (default 500)")
    p.add_argument("--temperature", type=positive_float, default=0.8, metavar="T",
                   help="below 1: safer, more repetitive; above 1: wilder (default 0.8)")
    p.add_argument("--prime", default="\n", metavar="TEXT", help="text to start from (default: a newline)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="the same seed gives the same text")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.set_defaults(run=run)


def run(args) -> int:
    state = read_checkpoint(args.checkpoint, wanted="chars")
    vocab = Vocabulary(state["vocab"])
    unknown = sorted(set(args.prime) - set(vocab.chars))
    if not args.prime or unknown:
        why = "is empty" if not args.prime else "has characters the model never saw: " + ", ".join(map(repr, unknown))
        raise UsageError(f"--prime {why}; it may use only: {vocab.chars!r}")
    if args.seed is not None:
        manual_seed(args.seed)
    model, _, _ = restore_model(state, device_of(args.device))
    text = sample(model, vocab, args.prime, args.length, args.temperature, seed=args.seed)
    print(args.prime + text)
    return 0
