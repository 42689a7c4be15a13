"""Notebooks: paired with jupytext, committed without outputs, one typed parameters cell each."""

import ast

import jupytext
import nbformat
import pytest

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_every_stage_has_a_notebook():
    from sst2bench.pipeline import STAGES

    assert {s.notebook for s in STAGES} == {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_in_sync_without_outputs_and_has_one_parameters_cell(path):
    notebook = nbformat.read(path, as_version=4)
    script = jupytext.read(path.with_suffix(".py"))
    assert [(c.cell_type, c.source) for c in notebook.cells] == [(c.cell_type, c.source) for c in script.cells], (
        "run `jupytext --sync notebooks/*.py`"
    )
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    parameters = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    for statement in ast.parse(parameters[0].source).body:
        assert isinstance(statement, ast.AnnAssign) and isinstance(statement.value, ast.Constant)
    for line in parameters[0].source.splitlines():
        assert "#" in line, f"parameter without a comment: {line}"
    assert notebook.metadata["kernelspec"]["name"] == "sst2bench"
    assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for c in code for n in ast.walk(ast.parse(c.source)))
