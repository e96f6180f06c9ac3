"""Strip outputs from notebooks before committing, keeping those of cells nbval checks.

Cells tagged ``nbval-check-output`` keep their (deterministic) outputs and execution count: ``pytest --nbval-lax``
compares them against a fresh run. Every other cell loses its outputs and execution count.

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
        tags = cell.get("metadata", {}).get("tags", [])
        if "nbval-check-output" not in tags:
            cell.outputs = []
            cell.execution_count = None
        elif cell.execution_count is None:
            # nbval skips reference cells that were never run: give it a count
            cell.execution_count = 1
        cell.get("metadata", {}).pop("execution", None)
        cell.get("metadata", {}).pop("papermill", None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # saved widget state: large and stale once outputs are gone
    nbformat.write(nb, path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        strip(p)
        print("stripped", p)
