"""DOT text -> files: svg, png and pdf through Graphviz's `dot` (via the graphviz package), dot
and json written directly; the format comes from the file name. Writes are atomic (a temporary
file in the same folder, then os.replace), so a reader never sees half a drawing.
"""
from __future__ import annotations

import json
import os
import shutil

from tinygrad_rnn.files import atomic_write

from .views import Scene

__all__ = ["FORMATS", "INSTALL_HINT", "DotFailed", "format_of", "write", "pipe", "scene_json", "require_dot"]

FORMATS = ("svg", "png", "pdf", "dot", "json")
INSTALL_HINT = ("Graphviz's `dot` program is needed to render .svg, .png and .pdf files and was not found on "
                "PATH. Install it with `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
                "(macOS) or `conda install graphviz`, then try again. viz.to_dot() and .dot/.json files need no "
                "Graphviz.")


class DotFailed(RuntimeError):
    """Graphviz's `dot` exited with an error or crashed (old versions can, on large clustered graphs)."""


def format_of(path) -> str:
    """The format named by the file's extension; ValueError listing the supported ones."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(f"viz.render: cannot tell the format of {os.fspath(path)!r}; "
                         f"end the file name with one of {', '.join('.' + f for f in FORMATS)}")
    return ext


def require_dot() -> str:
    """The path of the `dot` executable; RuntimeError with install instructions when missing."""
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(INSTALL_HINT)
    return exe


def pipe(dot_text: str, fmt: str) -> bytes:
    """Lay out and render DOT text with the `dot` engine, returning the file's bytes."""
    require_dot()
    try:
        import graphviz
    except ImportError as e:  # the package comes with the `viz` extra
        raise RuntimeError("viz.render needs the graphviz Python package: pip install 'tinygrad-rnn[viz]' "
                           "(or pip install graphviz)") from e
    try:
        return graphviz.Source(dot_text, engine="dot").pipe(format=fmt)
    except graphviz.ExecutableNotFound as e:
        raise RuntimeError(INSTALL_HINT) from e
    except graphviz.CalledProcessError as e:
        why = f"crashed (signal {-e.returncode})" if e.returncode < 0 else f"failed (exit status {e.returncode})"
        detail = (e.stderr or b"").decode("utf-8", "replace").strip()[-500:]
        raise DotFailed(f"viz.render: Graphviz's dot {why} laying out {dot_text.count(chr(10))} lines of DOT; "
                        "a smaller drawing (view='cells', rolled=True, or fewer steps) avoids it"
                        + (f". dot said: {detail}" if detail else "")) from e


def scene_json(scene: Scene) -> str:
    """The drawing's structure: its boxes (nodes) and links (edges) with their attributes."""
    nodes = [dict(id=b.key, role=b.role, title=b.title, subtitle=b.subtitle, step=b.step, lane=b.lane,
                  members=len(b.members), grad_norm=b.grad_norm, tooltip=b.tooltip) for b in scene.boxes]
    edges = [dict(tail=l.tail, head=l.head, kind=l.kind, label=l.label, grad_norm=l.grad_norm) for l in scene.links]
    graph = dict(view=scene.view, rolled=scene.rolled, steps=scene.steps, lanes=scene.lanes,
                 with_grads=scene.with_grads, grad_of=scene.grad_of)
    return json.dumps(dict(graph=graph, nodes=nodes, edges=edges), indent=1, ensure_ascii=False) + "\n"


def write(path, data: bytes) -> str:
    """Write bytes to path atomically (a new file beside it, then os.replace); returns the path."""
    return atomic_write(path, lambda file: file.write(data))
