"""The `tinygrad-rnn` command line, run in-process through cli.main(argv) (one subprocess checks
`python -m tinygrad_rnn`): help texts, the demo's files, training on every task with checkpoints,
resume and Ctrl-C, sampling, drawing, tracing, and the errors for bad arguments."""
import json
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.cli import bench, main
from tinygrad_rnn.cli import loop as training_loop

pytest.importorskip("matplotlib")
needs_dot = pytest.mark.skipif(not __import__("shutil").which("dot"), reason="needs Graphviz's dot")

COMMANDS = ("demo", "train", "sample", "render", "trace", "bench")
TINY = ["--hidden", "4", "--batch", "4", "--steps", "3", "--seq-len", "6"]


def run_cli(argv, capsys) -> tuple:
    """(exit status, stdout, stderr) of main(argv)."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# ---------------------------------------------------------------- help and errors
@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command, capsys):
    status, out, _ = run_cli(([command] if command else []) + ["--help"], capsys)
    assert status == 0
    assert out.startswith("usage: tinygrad-rnn" + (f" {command}" if command else ""))
    if command == "train":
        assert "mackey-glass" in out and "--resume" in out and "--bptt" in out


def test_python_m_runs_the_command():
    result = subprocess.run([sys.executable, "-m", "tinygrad_rnn", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    assert all(command in result.stdout for command in COMMANDS)


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "transformer"], "invalid choice"),
    (["train", "--steps", "-3"], "positive integer"),
    (["train", "--lr", "fast"], "positive number"),
    (["train", "--bogus"], "unrecognized arguments"),
    (["render", "--view", "pixels"], "invalid choice"),
    (["trace", "--model", "rnn,mlp"], "expected cells"),
    ([], "required"),
])
def test_bad_arguments_exit_2_with_argparse_message(argv, message, capsys):
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and message in err


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "chars", "--model", "esn"], "use it with --task sine or --task mackey-glass"),
    (["train", "--task", "adding", "--bptt", "5"], "truncated BPTT"),
    (["train", "--task", "sine", "--text", "x.txt"], "--text is the training text of --task chars"),
    (["train", "--task", "chars", "--text", "no/such/file.txt"], "no such file"),
    (["train", "--resume", "no_such_checkpoint.npz"], "no such checkpoint"),
    (["train", "--device", "gpu"], "unknown device"),
    (["sample", "no_such_checkpoint.npz"], "no such checkpoint"),
    (["render", "--out", "graph.bmp"], "cannot tell the format"),
])
def test_user_mistakes_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli(argv + (TINY if argv[0] == "train" else []), capsys)
    assert status == 2
    assert message in err and "Traceback" not in err
    assert err.startswith(f"tinygrad-rnn {argv[0]}: error:")


@pytest.mark.parametrize("argv, message", [
    (["train", "--checkpoint", "blocker/x.npz"], "--checkpoint blocker/x.npz: cannot write into blocker"),
    (["train", "--checkpoint", "."], "--checkpoint . is a folder; give a file name"),
    (["render", "--out", "blocker/g.svg"], "--out blocker/g.svg: cannot write into blocker"),
    (["trace", "--out", "blocker/trace"], "--out blocker/trace: cannot write into blocker/trace"),
    (["demo", "--quick", "--out", "blocker/demo"], "--out blocker/demo: cannot write into blocker/demo"),
    (["render", "--steps", "1"], "--steps 1: adding_problem: length must be at least 2"),
    (["trace", "--model", "rnn", "--seq-len", "1"], "--seq-len 1: adding_problem: length must be at least 2"),
], ids=["train-into-a-file", "train-onto-a-folder", "render", "trace", "demo", "render-one-step", "trace-one-step"])
def test_what_cannot_be_written_or_run_is_refused_before_any_work(argv, message, capsys, tmp_path, monkeypatch):
    """A file named "blocker" stands where a folder would have to be: nothing can be written under it
    (a read-only folder would not do: the tests may run as root). Training never starts."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("")
    status, out, err = run_cli(argv + (TINY if argv[0] == "train" else []), capsys)
    assert status == 2 and message in err and "Traceback" not in err
    assert err.startswith(f"tinygrad-rnn {argv[0]}: error:") and err.count("\n") == 1  # no progress lines
    assert out == ""


def test_cuda_without_a_gpu_is_a_clear_error(capsys, tmp_path, monkeypatch):
    if tr.cuda_available():
        pytest.skip("a GPU is present")
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli(["train", "--device", "cuda"] + TINY, capsys)
    assert status == 2 and "--device cuda" in err and ("CuPy" in err or "CUDA" in err)


def test_a_file_that_is_not_a_checkpoint(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    status, _, err = run_cli(["sample", bad], capsys)
    assert status == 2 and "not a readable checkpoint" in err


# ---------------------------------------------------------------- train
@pytest.mark.parametrize("task, model", [("adding", "rnn"), ("copy", "gru"), ("sine", "lstm"),
                                         ("mackey-glass", "rnn"), ("chars", "lstm"), ("sine", "esn"),
                                         ("mackey-glass", "esn")])
def test_train_every_task(task, model, capsys, tmp_path):
    path = tmp_path / "model.npz"
    extra = ["--hidden", "20"] if model == "esn" else []
    status, out, err = run_cli(["train", "--task", task, "--model", model, "--checkpoint", path] + TINY + extra, capsys)
    assert status == 0, err
    assert "validation" in out and "baseline" in out
    state = tr.load(path)
    assert state["args"]["task"] == task and state["args"]["model"] == model
    assert state["step"] == (1 if model == "esn" else 3)
    if model != "esn":
        assert len(state["losses"]) == 3 and all(np.isfinite(state["losses"]))
        assert "3/3" in err  # the progress bar's last line


def test_truncated_bptt_and_sgd(capsys, tmp_path):
    status, out, err = run_cli(["train", "--task", "sine", "--model", "gru", "--bptt", "2", "--optimizer", "sgd",
                                "--clip", "0", "--dtype", "float64", "--checkpoint", tmp_path / "s.npz"] + TINY, capsys)
    assert status == 0, err
    assert "truncated BPTT every 2 steps" in out and "no clipping" in out
    assert tr.load(tmp_path / "s.npz")["model"]["rnn.weight_hh_l0"].dtype == np.float64


def test_resume_continues_exactly(capsys, tmp_path):
    """3 steps, then 3 more from the checkpoint, give the weights of 6 steps in one go."""
    common = ["train", "--task", "adding", "--model", "lstm", "--hidden", "4", "--batch", "4", "--seq-len", "6"]
    assert run_cli(common + ["--steps", "6", "--checkpoint", tmp_path / "straight.npz"], capsys)[0] == 0
    assert run_cli(common + ["--steps", "3", "--checkpoint", tmp_path / "split.npz"], capsys)[0] == 0
    status, out, _ = run_cli(["train", "--resume", tmp_path / "split.npz", "--steps", "6"], capsys)
    assert status == 0 and "resuming at step 3" in out
    straight, split = tr.load(tmp_path / "straight.npz"), tr.load(tmp_path / "split.npz")
    assert split["step"] == 6 and len(split["losses"]) == 6
    for name, value in straight["model"].items():
        np.testing.assert_allclose(split["model"][name], value, rtol=1e-5, atol=1e-6)


def test_resume_refuses_a_different_architecture(capsys, tmp_path):
    path = tmp_path / "m.npz"
    assert run_cli(["train", "--checkpoint", path] + TINY, capsys)[0] == 0
    status, _, err = run_cli(["train", "--resume", path, "--hidden", "8"], capsys)
    assert status == 2 and "--hidden 8" in err


def test_ctrl_c_saves_a_checkpoint_and_exits_130(capsys, tmp_path, monkeypatch):
    real_step = training_loop.train_step
    calls = []

    def interrupted_at_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr("tinygrad_rnn.cli.train.train_step", interrupted_at_third)
    path = tmp_path / "ctrl_c.npz"
    status, out, _ = run_cli(["train", "--checkpoint", path, "--hidden", "4", "--batch", "4", "--steps", "10",
                              "--seq-len", "6"], capsys)
    assert status == 130
    assert "interrupted after step 2" in out and str(path) in out and "--resume" in out
    assert tr.load(path)["step"] == 2
    monkeypatch.undo()
    status, out, _ = run_cli(["train", "--resume", path], capsys)
    assert status == 0 and "resuming at step 2" in out and tr.load(path)["step"] == 10


def test_periodic_checkpoints(capsys, tmp_path, monkeypatch):
    saved_steps = []
    real_save = tr.save
    monkeypatch.setattr("tinygrad_rnn.cli.train.save",
                        lambda state, p: saved_steps.append(state["step"]) or real_save(state, p))
    assert run_cli(["train", "--save-every", "2", "--checkpoint", tmp_path / "p.npz", "--hidden", "4", "--batch", "4",
                    "--steps", "5", "--seq-len", "6"], capsys)[0] == 0
    assert saved_steps == [2, 4, 5]


# ---------------------------------------------------------------- sample
@pytest.fixture(scope="module")
def chars_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("chars") / "chars.npz"
    text = tmp_path_factory.mktemp("text") / "text.txt"
    text.write_text("hello world, hello tinygrad. " * 40, encoding="utf-8")
    assert main(["train", "--task", "chars", "--model", "gru", "--text", str(text), "--hidden", "8", "--batch", "4",
                 "--steps", "4", "--seq-len", "10", "--checkpoint", str(path)]) == 0
    return path


def test_sample_from_a_character_model(chars_checkpoint, capsys):
    status, out, _ = run_cli(["sample", chars_checkpoint, "--length", "40", "--prime", "hello", "--seed", "1",
                              "--temperature", "0.5"], capsys)
    assert status == 0
    text = out.rstrip("\n")
    assert text.startswith("hello") and len(text) == 45
    assert set(text) <= set("hello world, tinygrad.")
    again = run_cli(["sample", chars_checkpoint, "--length", "40", "--prime", "hello", "--seed", "1",
                     "--temperature", "0.5"], capsys)[1]
    assert again == out


def test_sample_rejects_unknown_prime_characters_and_other_tasks(chars_checkpoint, capsys, tmp_path):
    status, _, err = run_cli(["sample", chars_checkpoint, "--prime", "XYZ"], capsys)
    assert status == 2 and "never saw" in err
    adding = tmp_path / "adding.npz"
    assert run_cli(["train", "--checkpoint", adding] + TINY, capsys)[0] == 0
    status, _, err = run_cli(["sample", adding], capsys)
    assert status == 2 and "--task chars" in err


# ---------------------------------------------------------------- render and trace
@needs_dot
@pytest.mark.parametrize("name, options", [("cells.svg", ["--color", "grad"]),
                                           ("ops.png", ["--view", "ops", "--composite", "--steps", "2"]),
                                           ("rolled.svg", ["--model", "gru", "--rolled"]),
                                           ("layers.dot", ["--view", "layers", "--layers", "2"])])
def test_render_writes_the_drawing(name, options, capsys, tmp_path):
    path = tmp_path / name
    status, out, err = run_cli(["render", "--out", path] + options, capsys)
    assert status == 0, err
    data = path.read_bytes()
    assert len(data) > 200 and str(path) in out
    if name.endswith(".svg"):
        assert b"<svg" in data
    if name.endswith(".png"):
        assert data.startswith(b"\x89PNG")


@needs_dot
def test_render_a_checkpoint(capsys, tmp_path):
    path = tmp_path / "m.npz"
    assert run_cli(["train", "--task", "copy", "--model", "gru", "--checkpoint", path] + TINY, capsys)[0] == 0
    status, _, err = run_cli(["render", "--checkpoint", path, "--steps", "3", "--color", "grad",
                              "--out", tmp_path / "trained.svg"], capsys)
    assert status == 0, err
    assert b"<svg" in (tmp_path / "trained.svg").read_bytes()


def test_render_too_many_nodes_is_a_clear_error(capsys, tmp_path):
    status, _, err = run_cli(["render", "--view", "ops", "--composite", "--steps", "200",
                              "--out", tmp_path / "big.dot"], capsys)
    assert status == 2 and "max_nodes" in err


def test_trace_writes_plots_and_summary(capsys, tmp_path):
    status, out, err = run_cli(["trace", "--model", "rnn,lstm", "--seq-len", "6", "--hidden", "4", "--batch", "3",
                                "--out", tmp_path], capsys)
    assert status == 0, err
    for name in ("gradient_norms.png", "jacobians.png", "weight_steps_rnn.png", "units_lstm.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["models"]) == {"RNN", "LSTM"}
    rnn = summary["models"]["RNN"]
    assert len(rnn["hidden_grad_norms"]) == 6 and rnn["verdict"] in ("vanishing", "stable", "exploding")
    assert "RNN" in out and "per step" in out


# ---------------------------------------------------------------- bench
def test_bench_says_when_the_benchmarks_are_missing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "__file__", str(tmp_path / "a" / "b" / "c" / "bench.py"))
    status, _, err = run_cli(["bench", "--quick"], capsys)
    assert status == 2 and "not available" in err and "checkout" in err


def test_bench_hands_its_options_to_the_suite(capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "find_benchmarks", lambda: type("Suite", (), {"run_all": staticmethod(seen.append)}))
    assert run_cli(["bench", "--quick", "--out", "somewhere"], capsys)[0] == 0
    assert seen == [["--quick", "--out", "somewhere"]]


# ---------------------------------------------------------------- demo
class Links(HTMLParser):
    """Every src and href of a page."""

    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href")]


@needs_dot
def test_demo_quick_writes_a_complete_report(capsys, tmp_path):
    status, out, err = run_cli(["demo", "--quick", "--out", tmp_path], capsys)
    assert status == 0, err
    assert "index.html" in out and "RNN" in err
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    parser = Links()
    parser.feed(page)
    files = [link for link in parser.links if not link.startswith("#")]
    assert any(f.endswith(".svg") for f in files) and any(f.endswith(".png") for f in files)
    for link in files:
        assert "://" not in link and not link.startswith("/"), link  # relative links only
        assert (tmp_path / link).is_file() and (tmp_path / link).stat().st_size > 500, link
    for link in parser.links:
        if link.startswith("#"):
            assert f'id="{link[1:]}"' in page
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"settings", "baseline_mse", "models", "figures", "drawings", "timings", "versions"} <= set(results)
    assert set(results["models"]) == {"RNN", "LSTM", "GRU"}
    for model in results["models"].values():
        assert {"final_mse", "losses", "eval_mse", "grad_norms", "flow_start", "flow_end"} <= set(model)
        assert len(model["losses"]) == results["settings"]["steps"]
        for flow in (model["flow_start"], model["flow_end"]):
            assert len(flow["hidden_grad_norms"]) == results["settings"]["seq_len"]
            assert {"decay_rate", "verdict", "jacobian_norms", "recurrent"} <= set(flow)
    assert "results.json" in parser.links
