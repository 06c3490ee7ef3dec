"""How drawings look: the palette of node roles, labels, the gradient colour scale and its legend.

Everything here is plain text formatting, deterministic (the same numbers give the same bytes)
and free of dependencies: the colour map is a small piecewise-linear interpolation between a few
anchor colours, so viz needs neither matplotlib nor Graphviz to produce DOT text.
"""
from __future__ import annotations

import math

__all__ = ["FONT", "ROLES", "EDGES", "HTML", "subscript", "shape_text", "html_label", "quote", "LogScale",
           "color_at", "text_color", "legend_label", "fmt"]

FONT = "Helvetica"

# role -> node attributes. Fills are light so that labels read in print and on a projector.
ROLES = {
    "param":    dict(shape="box", style="rounded,filled", fillcolor="#FFF3CD", color="#C9A227", penwidth="1.4"),
    "leaf":     dict(shape="box", style="rounded,filled", fillcolor="#FFF3CD", color="#C9A227"),
    "x":        dict(shape="box", style="rounded,filled", fillcolor="#DCEBFA", color="#4A7FB5"),
    "const":    dict(shape="box", style="rounded,filled", fillcolor="#F2F2F2", color="#A0A0A0"),
    "zeros":    dict(shape="box", style="rounded,filled,dashed", fillcolor="#F7F7F7", color="#A0A0A0"),
    "detached": dict(shape="box", style="rounded,filled,dashed", fillcolor="#EEEEEE", color="#616161", penwidth="1.4"),
    "op":       dict(shape="box", style="rounded,filled", fillcolor="#FFFFFF", color="#9E9E9E"),
    "gate":     dict(shape="box", style="rounded,filled", fillcolor="#EFE3F6", color="#8E6BAA"),
    "state":    dict(shape="box", style="rounded,filled,bold", fillcolor="#DDF0DD", color="#2E7D32", penwidth="1.8"),
    "cell":     dict(shape="box", style="rounded,filled,bold", fillcolor="#DDF0DD", color="#2E7D32", penwidth="1.8"),
    "block":    dict(shape="box", style="rounded,filled", fillcolor="#FFFFFF", color="#757575"),
    "root":     dict(shape="box", style="rounded,filled,bold", fillcolor="#FBE3E1", color="#B23A2E", penwidth="2",
                     peripheries="2"),
}

# link kind -> edge attributes
EDGES = {
    "data":      dict(color="#616161", arrowsize="0.7"),
    "param":     dict(color="#C9A227", arrowsize="0.6", penwidth="0.9"),
    "recurrent": dict(color="#2E7D32", arrowsize="0.8", penwidth="2.2", weight="8"),
    "delay":     dict(color="#B23A2E", fontcolor="#B23A2E", arrowsize="0.9", penwidth="2.2", fontsize="13",
                      constraint="false"),
    "cut":       dict(color="#616161", fontcolor="#424242", style="dashed", arrowsize="0.7", penwidth="1.4",
                      fontsize="10"),
}

_SUBSCRIPT = str.maketrans("0123456789-+t", "₀₁₂₃₄₅₆₇₈₉₋₊ₜ")


def subscript(name: str, step) -> str:
    """"h" at step 2 -> "h₂"; step "t" (the rolled view) -> "hₜ"; no step -> the name."""
    return name if step is None else name + str(step).translate(_SUBSCRIPT)


def shape_text(shape: tuple, dtype: str) -> str:
    """(1, 3), "float32" -> "1×3 float32"; () -> "scalar float32"."""
    dims = "×".join(str(n) for n in shape) if shape else "scalar"
    return f"{dims} {dtype}"


def fmt(x) -> str:
    """A norm as text: 4 significant digits, the same bytes for the same float."""
    return "n/a" if x is None else f"{x:.4g}"


class HTML(str):
    """An HTML-like label, written <...> in DOT instead of quoted."""


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def html_label(title: str, subtitle: str = "", color: str = "#000000") -> str:
    """A two-line HTML-like label: a bold title and a small grey subtitle."""
    sub_color = "#F5F5F5" if color == "#FFFFFF" else "#555555"
    body = f'<font color="{color}"><b>{_html(title)}</b></font>'
    if subtitle:
        body += f'<br/><font point-size="9" color="{sub_color}">{_html(subtitle)}</font>'
    return HTML(f"<{body}>")


def quote(text: str) -> str:
    """A DOT double-quoted string (newlines become \\n, which Graphviz turns back into newlines)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# ------------------------------------------------------------------ gradient colours
# "OrRd"-like: almost white for tiny gradients (a vanishing gradient fades out), deep red for large
_ANCHORS = ((0.00, (255, 247, 236)), (0.25, (253, 212, 158)), (0.50, (252, 141, 89)),
            (0.75, (215, 48, 31)), (1.00, (127, 0, 0)))


def color_at(x: float) -> str:
    """The colour at position x in [0, 1] of the scale, as "#RRGGBB"."""
    x = min(max(float(x), 0.0), 1.0)
    for (x0, c0), (x1, c1) in zip(_ANCHORS, _ANCHORS[1:]):
        if x <= x1:
            w = 0.0 if x1 == x0 else (x - x0) / (x1 - x0)
            return "#" + "".join(f"{round(a + w * (b - a)):02X}" for a, b in zip(c0, c1))
    return "#7F0000"


def text_color(fill: str) -> str:
    """Black on light fills, white on dark ones."""
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#FFFFFF"


class LogScale:
    """One log10 scale over every gradient norm drawn, so all steps are comparable."""

    def __init__(self, norms):
        logs = [math.log10(n) for n in norms if n is not None and n > 0 and math.isfinite(n)]
        self.empty = not logs
        self.lo, self.hi = (min(logs), max(logs)) if logs else (0.0, 1.0)
        if self.hi - self.lo < 1e-12:
            self.lo, self.hi = self.lo - 0.5, self.hi + 0.5

    def position(self, norm) -> float | None:
        """Where `norm` sits on the scale, in [0, 1]; None for no gradient or a zero one."""
        if norm is None or not norm > 0 or not math.isfinite(norm):
            return None
        return (math.log10(norm) - self.lo) / (self.hi - self.lo)

    def color(self, norm) -> str | None:
        x = self.position(norm)
        return None if x is None else color_at(x)


def legend_label(scale: LogScale, what: str, cells: int = 9) -> str:
    """An HTML table: the colour bar of the scale with its two ends, in powers of ten."""
    bar = "".join(f'<td bgcolor="{color_at(i / (cells - 1))}" width="16" height="12"></td>' for i in range(cells))
    half = cells // 2
    return HTML(f'<<table border="0" cellborder="0" cellspacing="1" cellpadding="2">'
            f'<tr><td colspan="{cells}"><b>{_html(what)}</b></td></tr>'
            f'<tr><td colspan="{cells}"><font point-size="9">log scale, every step</font></td></tr>'
            f"<tr>{bar}</tr>"
            f'<tr><td colspan="{half}" align="left"><font point-size="9">{10 ** scale.lo:.1e}</font></td>'
            f'<td colspan="{cells - half}" align="right"><font point-size="9">{10 ** scale.hi:.1e}</font></td></tr>'
            f'<tr><td colspan="{cells}"><font point-size="9" color="#777777">white: no gradient</font></td></tr>'
            "</table>>")
