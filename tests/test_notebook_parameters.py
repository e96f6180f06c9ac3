"""Every notebook's `parameters` cell holds literals only, and papermill can read each of them
(a comment with a quote or an `=` in it makes papermill skip the line with a warning, and then its
`--help-notebook` / inspection lists the parameter wrongly)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import papermill as pm
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_are_literals_papermill_can_read(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected one cell tagged parameters"
    tree = ast.parse("".join(cells[0]["source"]))
    names = []
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, f"{path.name}: only NAME = literal lines"
        ast.literal_eval(node.value)  # raises on anything but a literal
        names.append(node.targets[0].id)
    assert "PROFILE" in names
    assert list(pm.inspect_notebook(str(path))) == names
