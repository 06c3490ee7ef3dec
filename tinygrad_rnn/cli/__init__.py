"""The `tinygrad-rnn` command (also `python -m tinygrad_rnn`).

    tinygrad-rnn demo [--out DIR] [--quick]     RNN vs LSTM vs GRU on the adding problem: an HTML report
    tinygrad-rnn train --task T --model M ...   train one model (checkpoints, resume, Ctrl-C saves)
    tinygrad-rnn sample CHECKPOINT ...          text from a trained character model
    tinygrad-rnn render --model lstm ...        draw a model's unrolled graph to .svg/.png/.pdf/.dot
    tinygrad-rnn trace --model rnn,lstm ...     gradient-flow plots and numbers per time step
    tinygrad-rnn bench [...]                    the benchmarks (from a checkout of the repository)

One module per command (demo, train, sample, render, trace, bench), each with add_parser(subparsers)
and run(args) -> exit status. Mistakes in the arguments or the files they name exit with status 2
and a one-line message (argparse's, or a UsageError's); Ctrl-C exits with 130. The commands that
draw import `viz` when they run: tinygrad_rnn never imports it at module level.
"""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..malloc import keep_freed_memory
from . import bench, demo, render, sample, trace, train
from .common import HelpFormatter
from .errors import UsageError

__all__ = ["main", "build_parser", "UsageError"]

COMMANDS = (demo, train, sample, render, trace, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-rnn",
        description="Recurrent networks on a from-scratch autograd: train them, draw their unrolled graphs, and "
                    "watch their gradients vanish (or not) time step by time step.",
        epilog="Run `tinygrad-rnn COMMAND --help` for a command's options. Start with `tinygrad-rnn demo`.",
        formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"tinygrad-rnn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv=None) -> int:
    """Run the command line `argv` (default sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "passes_on", False):  # only `bench` hands options on (to the suite)
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as stop:  # --help, --version, or argparse's own error (status 2)
        return stop.code if isinstance(stop.code, int) else 0
    args.extra = extra
    keep_freed_memory()  # a training step's large buffers stay in the process between steps (malloc.py)
    try:
        return args.run(args)
    except UsageError as error:
        print(f"tinygrad-rnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ntinygrad-rnn {args.command}: interrupted", file=sys.stderr)
        return 130
