"""Golden DOT text of small graphs for tests/test_viz.py: a 3-step tanh RNN, fused and composite,
in the views "ops", "cells" and "layers", unrolled and rolled (12 files, rnn3_<form>_<view>[_rolled].dot).

Each graph is built in float64 from a fixed seed, so its numbers (the norms in the tooltips) do
not depend on the machine. The tests compare viz.to_dot's output with these files byte for byte;
after an intended change to the drawings, regenerate them from the repository root and review the
diff (and a rendering: `dot -Tpng tests/data/viz/rnn3_composite_cells.dot -o /tmp/x.png`):

    .venv/bin/python tests/data/viz/make_golden.py           # rewrite the files
    .venv/bin/python tests/data/viz/make_golden.py --check   # compare only; exit 1 on a difference
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import tinygrad_rnn as tr  # noqa: E402
from tinygrad_rnn import nn  # noqa: E402

import viz  # noqa: E402

FORMS = ("fused", "composite")
VIEWS = ("ops", "cells", "layers")


def rnn3(fused: bool):
    """(model, loss) of a 3-step tanh RNN (2 inputs, 3 hidden, batch 1), float64, seed 0."""
    previous = tr.default_dtype()
    tr.set_default_dtype(np.float64)
    try:
        tr.manual_seed(0)
        model = nn.RNN(2, 3, fused=fused)
        x = tr.randn(3, 1, 2)
        out, _ = model(x)
        return model, (out ** 2).mean()
    finally:
        tr.set_default_dtype(previous)


def cases() -> dict:
    """{file name: DOT text} of every golden case."""
    out = {}
    for form in FORMS:
        model, loss = rnn3(form == "fused")
        for view in VIEWS:
            for rolled in (False, True):
                name = f"rnn3_{form}_{view}{'_rolled' if rolled else ''}.dot"
                out[name] = viz.to_dot(loss, view=view, rolled=rolled, model=model)
    return out


def main(argv) -> int:
    check = "--check" in argv
    differ = []
    for name, text in cases().items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                differ.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if differ:
        print("differ from the golden files: " + ", ".join(differ))
        return 1
    print("checked" if check else f"wrote {len(cases())} files to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
