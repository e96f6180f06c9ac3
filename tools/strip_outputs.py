"""Strip outputs and execution counts from notebooks before committing.

Notebooks are committed clean. The tests run them under ``pytest --nbval-lax``; cells that check a
result do it with ``assert``, so they need no stored output.

Usage: python tools/strip_outputs.py notebooks/*.ipynb
"""
from __future__ import annotations

import sys

import nbformat


def strip(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
        cell.get("metadata", {}).pop("papermill", None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # saved widget state: large and stale once outputs are gone
    nbformat.write(nb, path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        strip(p)
        print("stripped", p)
