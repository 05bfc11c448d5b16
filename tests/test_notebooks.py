"""Every notebook runs top to bottom (KERAS_LAMBDA_SMOKE=1), offline, with no error."""

import json
import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
NAMES = ("quickstart", "lambda_vs_attention", "hyperparameter_search", "distributed_training",
         "sequences")


def test_the_notebooks_exist_without_outputs_and_with_a_colab_badge():
    assert sorted(path.stem for path in NOTEBOOKS) == sorted(NAMES)
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text())
        first = "".join(notebook["cells"][0]["source"])
        badge = f"colab.research.google.com/github/keras-lambda/keras_lambda/blob/main/notebooks/{path.name}"
        assert badge in first and badge in readme
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("KERAS_LAMBDA_SMOKE", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the cell on any error
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    assert any(output.get("output_type") == "display_data" and "image/png" in output.get("data", {})
               for output in outputs), "the notebook shows at least one figure"
