"""Every tutorial notebook runs top to bottom without error, in a fresh kernel of this
interpreter, from the tutorials folder: in the default run at the small sizes it picks when
TINYGRAD_RNN_QUICK=1, and under `make test-slow` at full size, as a learner runs it (where the
notebooks assert their claims: what trains, what vanishes)."""
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))


def test_the_tutorials_are_there():
    assert len(NOTEBOOKS) >= 1, f"no numbered notebooks in {TUTORIALS}"


def run_notebook(path, out_dir, monkeypatch, quick: bool) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        f"{path.name} is stored with outputs; clear them before committing"
    if quick:
        monkeypatch.setenv("TINYGRAD_RNN_QUICK", "1")
    else:
        monkeypatch.delenv("TINYGRAD_RNN_QUICK", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # small matrices: threads only spin (see Makefile)
    monkeypatch.setenv("TINYGRAD_RNN_OUT", str(out_dir))  # where a notebook may write files
    client = nbclient.NotebookClient(notebook, timeout=300 if quick else 1200, kernel_name="python3",
                                     resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    run_notebook(path, tmp_path, monkeypatch, quick=True)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs_at_full_size(path, tmp_path, monkeypatch):
    run_notebook(path, tmp_path, monkeypatch, quick=False)
