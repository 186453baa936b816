"""The analysis notebook runs top to bottom against a tiny fresh run (and stays in sync with its
jupytext .py twin)."""

import json
from pathlib import Path

import nbformat
from helpers import compose_config, train
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_notebook_pair_is_in_sync():
    import jupytext

    from_py = jupytext.read(NOTEBOOKS / "analysis.py")
    from_ipynb = nbformat.read(NOTEBOOKS / "analysis.ipynb", as_version=4)
    assert [c.source for c in from_py.cells] == [c.source for c in from_ipynb.cells]


def test_notebook_executes_against_a_fresh_run(tmp_path):
    from supernet.analysis import load_run, save_report
    from supernet.cli.evaluate import run as evaluate

    run_dir = tmp_path / "run"
    train(run_dir, ["experiment=pada_digits", "trainer.max_epochs=2", "test_after_fit=false"])
    evaluate(
        compose_config(
            "evaluate",
            [
                f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                "children=[max,min]",
                "sample=4",
                "calib_batches=1",
                "latency.warmup=1",
                "latency.repeats=2",
                f"output={run_dir / 'children.csv'}",
            ],
            tmp_path / "evaluate",
        )
    )
    children = load_run(run_dir).children_table()  # the evaluated children, whatever the table's name
    assert len(children) == 6 and children["latency_ms"].notna().all()
    assert sorted(children["corner"]) == ["", "", "", "", "max", "min"]

    ranking = tmp_path / "ranking.json"
    ranking.write_text(
        json.dumps(
            {"truth_val_acc": [0.9, 0.95, 0.97], "runs": {"sandwich uniform": {"0": {"val_acc": [0.8, 0.9, 0.92]}}}}
        )
    )
    nb = nbformat.read(NOTEBOOKS / "analysis.ipynb", as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = f"RUN_DIR = {str(run_dir)!r}\nRANKING = {str(ranking)!r}"
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    # accuracy vs MMACs and vs latency, curves, path heatmaps, data importance, ranking
    assert sum(1 for o in outputs if "image/png" in o.get("data", {})) == 6

    written = {p.name for p in save_report(run_dir)}  # supernet-report draws the same figures
    assert written == {
        "accuracy_vs_macs.png",
        "accuracy_vs_latency.png",
        "training_curves.png",
        "pada_paths.png",
        "pada_data.png",
    }


def test_notebook_executes_in_the_notebooks_folder_on_the_latest_run(tmp_path, monkeypatch):
    """As Jupyter runs it, in ``notebooks/`` with its default parameters: ``RUN_DIR`` is the run that
    supernet-train linked as ``outputs/train/latest``; relative paths are read from the root."""
    monkeypatch.chdir(tmp_path)  # a checkout's root, where supernet-train runs
    run_dir = tmp_path / "outputs" / "train" / "2026-01-01" / "10-00-00"
    train(run_dir, ["test_after_fit=false"])
    assert (tmp_path / "outputs" / "train" / "latest").resolve() == run_dir
    ranking = tmp_path / "benchmarks" / "results" / "ranking_cluttered.json"
    ranking.parent.mkdir(parents=True)
    ranking.write_text(
        json.dumps(
            {"truth_val_acc": [0.9, 0.95, 0.97], "runs": {"sandwich uniform": {"0": {"val_acc": [0.8, 0.9, 0.92]}}}}
        )
    )
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.read(NOTEBOOKS / "analysis.ipynb", as_version=4)
    path = str(tmp_path / "notebooks")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": path}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    # accuracy vs MMACs of the validation children, their curves, the ranking
    assert sum(1 for o in outputs if "image/png" in o.get("data", {})) == 3
