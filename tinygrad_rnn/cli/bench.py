"""`tinygrad-rnn bench`: run the benchmarks (`python -m benchmarks`) of a repository checkout.

The benchmarks are a top-level folder of the repository, not part of the installed package, so
the command looks for benchmarks/suite.py in the current directory, then next to the tinygrad_rnn
package (an editable install inside a checkout); the options after `bench` go to its run_all.
"""
from __future__ import annotations

import importlib
import os
import sys

from .common import HelpFormatter
from .errors import UsageError

__all__ = ["add_parser", "run", "find_benchmarks"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="run the benchmarks (speed and memory, vs PyTorch and hand-written NumPy)",
        description="Run the benchmark suite of the repository (benchmarks/suite.py): per-op overhead, one "
                    "training step of LSTM/GRU/RNN against PyTorch and a hand-written NumPy BPTT, and peak "
                    "memory. Needs a checkout of the repository (the benchmarks are not installed with the "
                    "package). Every option after `bench` goes to the suite: --quick (a smoke test in seconds), "
                    "--out DIR, --threads N, --device cpu|cuda, --no-torch, ...; `tinygrad-rnn bench --options` "
                    "lists them all.",
        epilog="examples:\n  tinygrad-rnn bench --quick\n  tinygrad-rnn bench --threads 1 --out out/bench",
        formatter_class=HelpFormatter)
    p.add_argument("--options", action="store_true", help="show the suite's own options (its --help)")
    p.set_defaults(run=run, passes_on=True)


def run(args) -> int:
    suite = find_benchmarks()
    suite_args = ["--help"] if args.options else [a for a in args.extra if a != "--"]
    try:
        suite.run_all(suite_args)
    except SystemExit as stop:  # the suite's own argparse: --help or a bad option
        return stop.code if isinstance(stop.code, int) else 0
    return 0


def find_benchmarks():
    """The benchmarks.suite module of a checkout (the current directory first, then the folder
    that holds the tinygrad_rnn package); UsageError saying where it looked when there is none."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    places = list(dict.fromkeys([os.getcwd(), package_root]))
    for place in places:
        if os.path.isfile(os.path.join(place, "benchmarks", "suite.py")):
            if place not in sys.path:
                sys.path.insert(0, place)
            try:
                suite = importlib.import_module("benchmarks.suite")
            except ImportError as error:
                raise UsageError(f"the benchmarks in {place} do not import: {error}") from None
            if hasattr(suite, "run_all"):
                return suite
    raise UsageError("the benchmarks are not available: they live in the benchmarks/ folder of a checkout of the "
                     "repository, not in the installed package; looked in " + " and ".join(places) +
                     ". Run `tinygrad-rnn bench` (or `python -m benchmarks`) from the repository's root.")
