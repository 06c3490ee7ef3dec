"""viz.report: the demo's HTML page from a results dict (made up here, no training): the reading
follows the numbers, every link is relative and resolves, wide drawings scroll, and the training
figure is a real image."""
from html.parser import HTMLParser

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from viz import report  # noqa: E402

STEPS, T = 60, 20


def flow(ratio: float, rate: float, verdict: str, recurrent=None) -> dict:
    return {"first_to_last": ratio, "decay_rate": rate, "verdict": verdict,
            "hidden_grad_norms": list(np.geomspace(ratio, 1.0, T)), "jacobian_norms": None,
            "recurrent": recurrent or [{"name": "rnn.weight_hh_l0[f]", "spectral_radius": 0.9, "singular_value": 1.1,
                                        "threshold": 4.0}]}


def model(final: float, start: float, end: float) -> dict:
    rng = np.random.default_rng(0)
    losses = list(np.linspace(0.3, final, STEPS) * (1 + 0.1 * rng.random(STEPS)))
    norms = list(rng.random(STEPS) * 2)
    norms[5] = None  # a non-finite norm, as JSON keeps it
    return {"final_mse": final, "losses": losses, "grad_norms": norms, "eval_steps": [20, 40, 60],
            "eval_mse": [0.2, final * 2, final], "parameters": 1234, "train_seconds": 3.2,
            "flow_start": flow(start, 0.6, "vanishing"), "flow_end": flow(end, 0.98, "stable")}


@pytest.fixture
def results() -> dict:
    rnn = model(0.17, 1e-8, 1e-20)
    rnn["flow_end"]["recurrent"] = [{"name": "rnn.weight_hh_l0", "spectral_radius": 0.7, "singular_value": 0.8,
                                     "threshold": 1.0}]
    return {"created": "2024-01-01T00:00:00", "settings": {"seq_len": T, "hidden": 8, "batch": 4, "steps": STEPS,
                                                         "lr": 0.01, "clip": 1.0},
            "baseline_mse": 1 / 6,
            "models": {"RNN": rnn, "LSTM": model(0.002, 1e-3, 0.1), "GRU": model(0.001, 1e-6, 0.4)},
            "figures": {"training": "training.png", "gradient_norms_start": "norms_start.png"},
            "drawings": [{"file": "narrow.svg", "title": "Narrow", "caption": "fits."},
                         {"file": "wide.svg", "title": "Wide", "caption": "scrolls."}],
            "timings": {"training RNN": 1.0, "total": 12.0}, "versions": {"numpy": np.__version__}}


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("src", "href")]


def test_reading_follows_the_numbers(results):
    words = report.reading(results)
    text = " ".join(sum(words.values(), []))
    assert "the LSTM's 0.0020" in text and "the GRU's 0.0010" in text and "they have learned" in text
    assert "the RNN's 0.1700 is no better" in text and "it never learned" in text
    assert "10<sup>-20.0</sup>" in text and "10<sup>-8.0</sup>" in text  # the RNN's fall after and before
    assert "LSTM and GRU deliver far more" in text
    assert "0.80" in text and "below the 1/&#947; = 1" in text  # the RNN's sigma_1 against tanh's bound


def test_reading_when_every_model_fails(results):
    for m in results["models"].values():
        m["final_mse"] = 0.2
    result = report.reading(results)["result"]
    assert len(result) == 1 and "they never learned" in result[0]


def test_a_short_run_is_named_as_a_reason_and_the_bins_are_the_ones_drawn(results):
    """60 steps: the failure paragraph says so, and the caption gives the bins the figure uses
    (6 steps; it said 25 whatever the run's length)."""
    for m in results["models"].values():
        m["final_mse"] = 0.2
    assert "60 training steps are few" in report.reading(results)["result"][0]
    text = report.page(results)
    assert report.bin_width(60) == 6 and "mean of every 6 steps" in text and "every 25 steps" not in text
    results["settings"]["steps"] = 2000
    assert "mean of every 25 steps" in report.page(results) and report.bin_width(5) == 1


def test_the_matrices_paragraph_follows_the_measured_verdict_above_the_bound(results):
    """sigma_1 above 1/gamma: the weights do not force vanishing, and the text says what was measured
    (it said 'it comes from the saturated tanh derivatives' even for an exploding gradient)."""
    rnn = results["models"]["RNN"]["flow_end"]
    rnn["recurrent"] = [{"name": "rnn.weight_hh_l0", "spectral_radius": 1.4, "singular_value": 1.6, "threshold": 1.0}]
    for measured, phrase in (("exploding", "and here it is exploding"), ("vanishing", "saturated tanh")):
        rnn["verdict"] = measured
        matrices = " ".join(report.reading(results)["matrices"])
        assert "above the 1/&#947; = 1" in matrices and phrase in matrices


def test_alt_text_keeps_escaped_brackets_and_drops_tags():
    assert report._alt("&sigma; &lt; 1 <b>and</b> y &gt; 2") == "σ &lt; 1 and y &gt; 2"


def test_page_is_self_contained_and_every_link_resolves(results, tmp_path):
    report.plot_training(results, tmp_path / "training.png")
    (tmp_path / "norms_start.png").write_bytes((tmp_path / "training.png").read_bytes())
    (tmp_path / "narrow.svg").write_text('<svg width="600pt" height="200pt"></svg>')
    (tmp_path / "wide.svg").write_text('<svg width="4000pt" height="300pt"></svg>')
    (tmp_path / "results.json").write_text("{}")
    path = report.write_report(results, tmp_path)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert path.endswith("index.html") and page.startswith("<!DOCTYPE html>")
    parser = Links()
    parser.feed(page)
    assert "script" not in parser.tags and "http" not in page.replace('content="width=device-width', "")
    for link in parser.links:
        if link.startswith("#"):
            assert f'id="{link[1:]}"' in page
        else:
            assert (tmp_path / link).is_file(), link
    assert page.count('class="scroller"') == 1 and 'style="width:3200px"' in page  # 4000pt * 4/3 * 0.6
    assert "did not learn" in page and page.count(">learned<") == 2
    assert (tmp_path / "training.png").read_bytes().startswith(b"\x89PNG")


def test_missing_figures_are_left_out(results, tmp_path):
    results["figures"] = {}
    results["drawings"] = []
    page = report.page(results)
    assert "<img" not in page and "Graphviz" in page


def test_training_figure_has_a_line_per_model_and_the_baseline(results):
    fig = report.plot_training(results)
    loss, norms = fig.axes[:2]
    assert loss.get_yscale() == "log"
    assert len(loss.get_lines()) == 2 * 3 + 1  # training and validation per model, the baseline
    assert len(norms.get_lines()) == 3 + 1     # per model, and the clipping threshold
