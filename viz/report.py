"""The HTML report of `tinygrad-rnn demo`: one self-contained page from the demo's results.

    from viz import report
    report.plot_training(results, "out/training.png")   # loss curves and gradient norms
    report.write_report(results, "out/")                 # out/index.html

`results` is the dict the demo saves as results.json (see tinygrad_rnn/cli/demo.py): settings,
per-model losses, final MSEs and gradient-flow summaries at the start and end of training, the
file names of its figures (PNG) and drawings (SVG), timings and versions. The page is plain HTML
and CSS: no scripts, nothing fetched from elsewhere, every image a relative link to a file next
to index.html. The written reading (reading()) is generated from the measured numbers, so it
says what this run showed, including when a model did not behave as expected.
"""
from __future__ import annotations

import html
import math
import os
import re

import numpy as np
from matplotlib.figure import Figure

from .plots import MODEL_COLORS

__all__ = ["plot_training", "reading", "write_report"]

LEARNED_BELOW = 0.5  # a model "learned" the task when its MSE is below this fraction of the baseline
SHORT_RUN = 200      # fewer training steps than this: the page says a failure may be the run's length
PAGE_WIDTH = 1124    # CSS pixels of content (main's max-width less its padding)
FIT_DOWN_TO = 0.45   # a drawing is fitted to the page if that shrinks it no more than this, else it is
SCROLL_SCALE = 0.6   # shown at this scale in a sideways scroller (Graphviz's small labels stay legible)


# ---------------------------------------------------------------- the training figure
def plot_training(results: dict, path=None) -> Figure:
    """Two panels: (a) the training loss (mean over bins of bin_width steps) and the validation MSE
    of each model against the baseline, log scale; (b) the total gradient norm before clipping
    (median over the same bins) with the clipping threshold."""
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    ax_loss, ax_norm = fig.subplots(1, 2)
    settings = results["settings"]
    for label, model in results["models"].items():
        color = MODEL_COLORS.get(label, "0.3")
        steps, smooth = _binned(model["losses"], np.mean)
        ax_loss.semilogy(steps, smooth, color=color, lw=1.8, alpha=0.55, label=f"{label}: training")
        ax_loss.semilogy(model["eval_steps"], model["eval_mse"], "o-", color=color, ms=3.5, lw=1.2,
                         label=f"{label}: validation")
        steps, norms = _binned(model["grad_norms"], np.median)
        ax_norm.semilogy(steps, norms, color=color, lw=1.8, label=label)
    ax_loss.axhline(results["baseline_mse"], color="black", ls="--", lw=1.2,
                    label=f"baseline {results['baseline_mse']:.3f} (always answer 1)")
    ax_loss.set(xlabel="training step", ylabel="MSE", title="(a) Loss on the adding problem, T = "
                f"{settings['seq_len']}")
    if settings.get("clip"):
        ax_norm.axhline(settings["clip"], color="black", ls="--", lw=1.2, label=f"clipped above {settings['clip']:g}")
    ax_norm.set(xlabel="training step", ylabel="total gradient norm, before clipping",
                title="(b) Size of the gradient")
    for ax in (ax_loss, ax_norm):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="best", ncol=2 if ax is ax_loss else 1)
    if path is not None:
        fig.savefig(path, dpi=130)
    return fig


def bin_width(steps: int) -> int:
    """The training figure's bins: 25 steps, fewer for a short run (at least ten bins)."""
    return max(1, min(25, steps // 10 or 1))


def _binned(values, reduce) -> tuple:
    """(centre steps, reduce(values) over consecutive bins of bin_width steps), NaNs ignored."""
    values = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    width = bin_width(len(values))
    bins = [values[i:i + width] for i in range(0, len(values), width)]
    with np.errstate(all="ignore"):
        reduced = [reduce(b[np.isfinite(b)]) if np.isfinite(b).any() else np.nan for b in bins]
    return np.arange(len(bins)) * width + width / 2, np.asarray(reduced)


# ---------------------------------------------------------------- the reading
def _learned(results: dict, label: str) -> bool:
    return results["models"][label]["final_mse"] < LEARNED_BELOW * results["baseline_mse"]


def reading(results: dict) -> dict:
    """{section: [paragraph HTML]} written from the measured numbers: "result", "flow", "matrices"."""
    models, settings = results["models"], results["settings"]
    baseline, steps = results["baseline_mse"], settings["seq_len"]
    learned = [m for m in models if _learned(results, m)]
    failed = [m for m in models if m not in learned]
    mse = {m: models[m]["final_mse"] for m in models}
    result = []
    if learned:
        times = ", ".join(f"the {m}'s {mse[m]:.4f} ({baseline / mse[m]:.0f} times lower)" for m in learned)
        result.append(f"After {settings['steps']} training steps on sequences of {steps} steps, {times}: "
                      f"{'they have' if len(learned) > 1 else 'it has'} learned to find the two marked numbers "
                      f"and add them.")
    if failed:
        scores = " and ".join(f"the {m}'s {mse[m]:.4f}" for m in failed)
        who = "it" if len(failed) == 1 else "they"
        result.append(f"The baseline, always answering 1 (the mean of the target), scores {baseline:.3f}; {scores} "
                      f"{'is' if len(failed) == 1 else 'are'} "
                      f"{'no better' if all(mse[m] > 0.8 * baseline for m in failed) else 'not much better'}: "
                      f"{who} never learned which inputs matter. The error is measured at the last step, and the "
                      f"gradient that should point back to the marked values has to cross up to {steps - 1} steps "
                      "to reach them" + (f"; and {settings['steps']} training steps are few for any of them."
                                         if settings["steps"] < SHORT_RUN else "."))
    flow = []
    for when, key in (("Before training", "flow_start"), ("After training", "flow_end")):
        parts = [f"the {m}'s by a factor {_power(models[m][key])} ({models[m][key]['decay_rate']:.3f} per step "
                 f"in a fit over all the steps, {models[m][key]['verdict']})" for m in models]
        flow.append(f"{when}, from the last time step back to the first (t = {steps - 1} to 0), the size of the "
                    f"gradient &#8214;&#8706;L/&#8706;h<sub>t</sub>&#8214; changed: " + "; ".join(parts) + ".")
    gated = [m for m in models if m != "RNN"]
    if "RNN" in models and gated:
        end = {m: models[m]["flow_end"].get("first_to_last") or 0.0 for m in models}
        better = [m for m in gated if end[m] > 10 * end["RNN"]]
        if better:
            flow.append(f"So at the end of training {' and '.join(better)} deliver"
                        f"{'s' if len(better) == 1 else ''} far more of the gradient to the early steps than "
                        "the plain RNN: the additive paths through the gates (the LSTM's cell state "
                        "c<sub>t</sub> = f<sub>t</sub> c<sub>t-1</sub> + ..., the GRU's h<sub>t</sub> = "
                        "(1 - z<sub>t</sub>) n<sub>t</sub> + z<sub>t</sub> h<sub>t-1</sub>) scale it by a gate "
                        "at each step, which loses little where the gate is near 1, while the RNN multiplies it by "
                        "W<sub>hh</sub> and a tanh derivative at every step.")
    matrices = []
    for m in models:
        plain = [r for r in models[m]["flow_end"]["recurrent"] if "[" not in r["name"]]
        if plain:
            r = plain[0]
            verdict = "below" if r["singular_value"] < r["threshold"] else "above"
            measured = models[m]["flow_end"]["verdict"]
            matrices.append(f"The trained RNN's W<sub>hh</sub> has largest singular value "
                            f"&#963;<sub>1</sub> = {r['singular_value']:.2f} and spectral radius "
                            f"{r['spectral_radius']:.2f}, {verdict} the 1/&#947; = {r['threshold']:g} of tanh: "
                            + ("so its gradient must vanish (Pascanu et al., 2013)." if verdict == "below" else
                               "so the weights alone do not make it vanish"
                               + ("; it vanishes through the saturated tanh derivatives along the way."
                                  if measured == "vanishing" else f", and here it is {measured}.")))
    return {"result": result, "flow": flow, "matrices": matrices}


# ---------------------------------------------------------------- the page
def write_report(results: dict, out_dir) -> str:
    """Write out_dir/index.html from the results (its figures and drawings must already be in
    out_dir, named in results["figures"] and results["drawings"]). Returns the page's path."""
    out_dir = os.fspath(out_dir)
    path = os.path.join(out_dir, "index.html")
    widths = {d["file"]: _svg_width(os.path.join(out_dir, d["file"])) for d in results.get("drawings", [])}
    text = page(results, widths)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)
    return path


def page(results: dict, widths: dict = None) -> str:
    """The HTML text of the report; widths: {drawing file: its natural width in CSS pixels}, to
    show the widest drawings legibly in a sideways scroller rather than shrunk to the page."""
    settings, figures = results["settings"], results["figures"]
    words = reading(results)
    models = list(results["models"])
    width = bin_width(settings["steps"])
    mean, median = (f"{how} of every {width} steps" if width > 1 else "every step" for how in ("mean", "median"))
    sections = [
        ("result", "1. Who learned the task",
         _paragraphs(words["result"]) + _table(results) + _figure(figures.get("training"),
         f"Left: training loss ({mean}, faint) and validation MSE (dots) against the baseline. "
         f"Right: the total gradient norm before clipping ({median}); above the dashed line "
         "it was scaled down to it.", wide=True)),
        ("flow", "2. How much gradient reaches each time step",
         _paragraphs(words["flow"]) + _grid([
             (figures.get("gradient_norms_start"), "Before training: &#8214;&#8706;L/&#8706;h<sub>t</sub>&#8214; "
              "relative to the last step. Backpropagation runs from the right (t = T-1) to the left."),
             (figures.get("gradient_norms_end"), "After training, on the same batch.")])
         + _grid([(figures.get(f"heatmap_{m}"), f"{m}: log<sub>10</sub> &#8214;&#8706;L/&#8706;h<sub>t</sub>"
                   f"&#8214; at each time step (across) as training goes on (up); white where none arrived "
                   "at all.") for m in models])),
        ("jacobians", "3. Why: one step of the recurrence",
         _paragraphs(words["matrices"] + [
             "(a) &#8214;&#8706;h<sub>T-1</sub>/&#8706;h<sub>k</sub>&#8214;: how much of the state at step k still "
             "reaches the last one, whatever the loss. (b) The singular values of the one-step Jacobian "
             "&#8706;h<sub>t</sub>/&#8706;h<sub>t-1</sub>: below 1 the gradient shrinks at that step, above 1 it "
             "grows. (c) The recurrent matrices against Pascanu's bound 1/&#947;."])
         + _figure(figures.get("jacobians_start"), "Before training.", wide=True)
         + _figure(figures.get("jacobians_end"), "After training.", wide=True)),
        ("weights", "4. Which time steps the weight update hears",
         _paragraphs(["A shared weight's gradient is a sum over time steps, &#8706;L/&#8706;W = &#931;<sub>t</sub> "
                      "(step-t term). These plots show the size of each term after training: where it is tiny, the "
                      "update learns nothing from that step."])
         + _grid([(figures.get(f"weight_steps_{m}"), f"{m}, after training.") for m in models])),
        ("graphs", "5. The graphs, unrolled in time", _drawings(results.get("drawings", []), widths or {})),
        ("numbers", "6. The numbers", _numbers(results)),
    ]
    nav = " &middot; ".join(f'<a href="#{key}">{html.escape(title.split(". ", 1)[1])}</a>'
                            for key, title, _ in sections)
    body = "\n".join(f'<section id="{key}">\n<h2>{title}</h2>\n{content}\n</section>'
                     for key, title, content in sections)
    lede = (f"Three recurrent networks, a vanilla RNN, an LSTM and a GRU, each with {settings['hidden']} hidden units, "
            f"learn the <em>adding problem</em>: read {settings['seq_len']} pairs (a random number, a marker), and at "
            "the end output the sum of the two numbers whose marker is 1, one in each half of the sequence. "
            "To learn it, the gradient of the final error must travel back through every step to the marked ones. "
            f"Adam, learning rate {settings['lr']:g}, gradient clipping at {settings['clip']:g}, batches of "
            f"{settings['batch']}, {settings['steps']} steps; autograd, models and drawings by tinygrad_rnn.")
    return TEMPLATE.format(title="Vanishing gradients, measured: RNN, LSTM and GRU", style=STYLE, lede=lede,
                           nav=nav, body=body, footer=_footer(results))


def _paragraphs(paragraphs) -> str:
    return "\n".join(f"<p>{p}</p>" for p in paragraphs)


def _figure(src, caption: str, wide: bool = False) -> str:
    if not src:
        return ""
    name = html.escape(src, quote=True)
    return (f'<figure class="{"wide" if wide else ""}"><a href="{name}"><img src="{name}" alt="{_alt(caption)}" '
            f'loading="lazy"></a><figcaption>{caption}</figcaption></figure>')


def _grid(items) -> str:
    cells = [_figure(src, caption) for src, caption in items if src]
    return f'<div class="grid grid-{len(cells)}">{"".join(cells)}</div>' if cells else ""


def _alt(caption: str) -> str:
    """Caption text without markup, for alt attributes: the tags go, then the entities are read
    (so an escaped &lt; stays in the text as <, where stripping after unescaping lost it)."""
    return html.escape(html.unescape(re.sub(r"<[^>]*>", "", caption)), quote=True)


def _table(results: dict) -> str:
    baseline, steps = results["baseline_mse"], results["settings"]["seq_len"]
    rows = []
    for label, m in results["models"].items():
        learned = _learned(results, label)
        rows.append(f'<tr><th scope="row"><span class="dot" style="background:{MODEL_COLORS.get(label, "#777")}">'
                    f'</span>{label}</th><td class="num">{m["parameters"]:,}</td>'
                    f'<td class="num">{m["final_mse"]:.3g}</td><td class="num">{m["final_mse"] / baseline:.2g}</td>'
                    f'<td class="{"yes" if learned else "no"}">{"learned" if learned else "did not learn"}</td>'
                    f'<td class="num">{_power(m["flow_start"])}</td><td class="num">{_power(m["flow_end"])}</td>'
                    f'<td class="num">{m["train_seconds"]:.1f} s</td></tr>')
    return ('<table class="headline"><thead><tr><th>model</th><th>parameters</th><th>final MSE</th>'
            f'<th>MSE / baseline<br>({baseline:.3f})</th><th>verdict</th>'
            '<th colspan="2">&#8214;&#8706;L/&#8706;h<sub>0</sub>&#8214; / '
            f'&#8214;&#8706;L/&#8706;h<sub>{steps - 1}</sub>'
            '&#8214;<br>before &amp; after training</th><th>training time<br>(with traces and evaluations)'
            '</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _power(summary: dict) -> str:
    """The measured ||dL/dh_0|| / ||dL/dh_T-1|| as a power of ten: "10<sup>-12.3</sup>"."""
    ratio = summary.get("first_to_last")
    if ratio is None or ratio <= 0:
        return "0"
    return f"10<sup>{math.log10(ratio):.1f}</sup>"


def _svg_width(path) -> float:
    """The width of an SVG file in CSS pixels (Graphviz writes width="123pt"); None if unknown."""
    try:
        with open(path, encoding="utf-8") as file:
            head = file.read(4000)
    except OSError:
        return None
    match = re.search(r'<svg[^>]*\swidth="([\d.]+)(pt|px)?"', head)
    if not match:
        return None
    return float(match.group(1)) * (4 / 3 if match.group(2) in (None, "pt") else 1.0)


def _drawings(drawings: list, widths: dict) -> str:
    if not drawings:
        return "<p>No drawings (Graphviz's <code>dot</code> was not available).</p>"
    intro = ("<p>Drawn by <code>viz.render</code> from the graphs autograd recorded: one cluster per time step, the "
             "shared weights once on the rail at the left, each node filled by the size of the gradient that "
             "reached it (one log scale per drawing; darker is larger), so a vanishing gradient fades from right "
             "to left. Click a drawing to open it full size.</p>")
    parts = [intro]
    for d in drawings:
        caption = f'<strong>{d["title"]}.</strong> {d["caption"]}'
        width = widths.get(d["file"])
        if width is None or width * FIT_DOWN_TO <= PAGE_WIDTH:
            parts.append(_figure(d["file"], caption, wide=True))
            continue
        name = html.escape(d["file"], quote=True)  # too wide to shrink legibly: shown large, scrolled sideways
        parts.append(f'<figure class="scroll"><div class="scroller"><a href="{name}"><img src="{name}" '
                     f'alt="{_alt(caption)}" style="width:{width * SCROLL_SCALE:.0f}px" loading="lazy"></a></div>'
                     f'<figcaption>{caption} <em>Scroll sideways to follow it.</em></figcaption></figure>')
    return "\n".join(parts)


def _numbers(results: dict) -> str:
    settings = results["settings"]
    rows = "".join(f"<tr><th>{html.escape(SETTING_NAMES.get(k, k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in settings.items())
    timings = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:.1f} s</td></tr>" for k, v in results["timings"].items())
    versions = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in results["versions"].items())
    return ('<p>Every number on this page, and the curves behind the plots, are in <a href="results.json">'
            'results.json</a>.</p><div class="grid grid-3">'
            f'<table class="small"><caption>Settings</caption>{rows}</table>'
            f'<table class="small"><caption>Time taken</caption>{timings}</table>'
            f'<table class="small"><caption>Versions</caption>{versions}</table></div>')


def _footer(results: dict) -> str:
    return (f"Written by <code>tinygrad-rnn demo</code> on {html.escape(results.get('created', ''))} in "
            f"{results['timings'].get('total', float('nan')):.0f} s. Reproduce it with "
            "<code>make demo</code>, or <code>tinygrad-rnn demo --out out/</code>.")


SETTING_NAMES = {"seq_len": "sequence length T", "hidden": "hidden units", "batch": "batch size",
                 "steps": "training steps", "lr": "learning rate (Adam)", "clip": "gradient clipped to norm",
                 "eval_every": "validated every (steps)", "trace_every": "traced every (steps)",
                 "validation_size": "validation sequences", "trace_batch": "traced batch", "draw_steps": "steps drawn",
                 "draw_batch": "batch drawn", "seed": "seed", "quick": "quick (test) run"}

STYLE = """
:root { --ink: #1d2329; --muted: #5b6670; --line: #dde2e7; --paper: #ffffff; --tint: #f5f7f9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--tint); color: var(--ink);
  font: 16px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 32px 28px 48px; background: var(--paper); }
header h1 { font-size: 30px; line-height: 1.2; margin: 0 0 12px; }
.lede { font-size: 17px; color: #333c44; max-width: 60em; }
nav { font-size: 14px; color: var(--muted); border-top: 1px solid var(--line); border-bottom: 1px solid var(--line);
  padding: 8px 0; margin: 18px 0 8px; }
nav a { color: #1f5f99; text-decoration: none; }
h2 { font-size: 22px; margin: 40px 0 10px; padding-top: 8px; border-top: 2px solid var(--ink); }
p { max-width: 62em; }
sub, sup { line-height: 0; }
figure { margin: 18px 0; }
figure img { width: 100%; height: auto; display: block; border: 1px solid var(--line); border-radius: 4px;
  background: #fff; }
figure.wide img { max-height: 900px; object-fit: contain; }
.scroller { overflow-x: auto; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
.scroller img { max-width: none; border: 0; }
figcaption { font-size: 14px; color: var(--muted); margin-top: 6px; max-width: 62em; }
.grid { display: grid; gap: 18px; align-items: start; }
.grid-2 { grid-template-columns: repeat(2, 1fr); }
.grid-3 { grid-template-columns: repeat(3, 1fr); }
.grid figure { margin: 8px 0; }
table { border-collapse: collapse; }
table.headline { margin: 18px 0; font-size: 15px; }
table.headline th, table.headline td { padding: 7px 14px; border-bottom: 1px solid var(--line); text-align: left; }
table.headline thead th { font-size: 13px; color: var(--muted); font-weight: 600; vertical-align: bottom; }
td.num { font-variant-numeric: tabular-nums; text-align: right; }
td.yes { color: #1a7f37; font-weight: 600; }
td.no { color: #c62828; font-weight: 600; }
.dot { display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 8px; }
table.small { font-size: 13px; width: 100%; }
table.small caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
table.small th, table.small td { text-align: left; padding: 3px 8px 3px 0; border-bottom: 1px solid var(--line);
  vertical-align: top; }
table.small th { color: var(--muted); font-weight: 500; white-space: nowrap; }
table.small td { word-break: break-word; }
code { font-size: 90%; background: var(--tint); padding: 1px 4px; border-radius: 3px; }
footer { margin-top: 40px; font-size: 13px; color: var(--muted); border-top: 1px solid var(--line); padding-top: 12px; }
@media (max-width: 900px) { .grid-2, .grid-3 { grid-template-columns: 1fr; } }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
<header>
<h1>{title}</h1>
<p class="lede">{lede}</p>
<nav>{nav}</nav>
</header>
{body}
<footer>{footer}</footer>
</main>
</body>
</html>
"""
