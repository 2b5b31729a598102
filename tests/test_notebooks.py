"""Every notebook in notebooks/ runs top to bottom at small settings, in a kernel that runs this
interpreter and imports this checkout's (or this installation's) keras_zoo."""

from __future__ import annotations

import json
import os
import pathlib
import site
import sys

import nbclient
import nbformat
import pytest

import keras_zoo

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

# Prepended to every notebook by the test: what the kernel runs and which package it imports.
_PROBE = "import sys, keras_zoo; print(sys.executable); print(keras_zoo.__file__)"


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 4, f"expected the lecture notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_saved_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, \
            f"{path.name}: cell {cell.get('id')} was saved with outputs"


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A `python3` kernel spec pointing at this interpreter, and an environment that finds keras_zoo.

    JUPYTER_PATH is searched before the user's and the system's kernel directories, so a `python3`
    kernel installed elsewhere (another Python) cannot be picked up by mistake.
    """
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (keras_zoo tests)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("KERAS_ZOO_NOTEBOOK_SIZE", "small")
    # From a checkout (PYTHONPATH=$PWD or plain pytest in the repo root) the kernel needs the
    # checkout on its path; an installed package is already on it.
    root = str(pathlib.Path(keras_zoo.__file__).resolve().parent.parent)
    if root not in {str(pathlib.Path(p).resolve()) for p in site.getsitepackages()}:
        paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, kernel_env):
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(_PROBE))
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                                     resources={"metadata": {"path": str(kernel_env)}})
    client.execute()  # raises CellExecutionError, naming the cell, on the first error

    probe = "".join(o.get("text", "") for o in nb.cells[0].outputs).split()
    assert probe[0] == sys.executable  # the venv's interpreter, not merely the same binary
    assert pathlib.Path(probe[1]).resolve() == pathlib.Path(keras_zoo.__file__).resolve()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    # Every plot a notebook writes lands in its outputs/ folder as a whole PNG.
    for png in (kernel_env / "outputs").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
