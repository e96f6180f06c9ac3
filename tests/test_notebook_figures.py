"""What a student sees in the executed notebooks (smoke profile, the inline backend of JupyterLab):
exactly one image per slider cell, the figure of notebook 05's section 4, the smoke profile's
plumbing note, no stray values echoed by a cell; and the panels' own labels.

The notebooks run through ``kp3d.replicate`` (papermill) into a temporary folder, with the kernel on
matplotlib's inline backend as in JupyterLab (the tests otherwise run kernels on Agg, where no
pyplot figure would show and a backend switch by the library would go unnoticed).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakes import FakeMultiView  # noqa: E402

INLINE = "module://matplotlib_inline.backend_inline"


def _images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def _text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        out.append(o.get("text", ""))
        out += [str(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(out)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The executed notebooks 01, 02, 04 and 05, by number."""
    pytest.importorskip("papermill")
    from kp3d.replicate import run_pipeline

    out = tmp_path_factory.mktemp("figures")
    mp = pytest.MonkeyPatch()
    mp.setenv("MPLBACKEND", INLINE)
    try:
        run_dir = run_pipeline("smoke", run="figures", outputs=out, only=["01", "02", "04", "05"], log=print)
    finally:
        mp.undo()
    return {p.name[:2]: nbformat.read(p, as_version=4) for p in sorted(run_dir.glob("[0-9][0-9]_*.ipynb"))}


@pytest.mark.slow
def test_each_slider_cell_holds_exactly_one_image(executed):
    found = 0
    for number, nb in executed.items():
        for cell in nb.cells:
            if cell.cell_type == "code" and "sliders(" in cell.source:
                found += 1
                assert _images(cell) == 1, f"notebook {number}: {_images(cell)} images in\n{cell.source}"
    assert found == 5  # 01 frame browser, 02 reconstruction and masks, 04 keypoints and checkpoints


@pytest.mark.slow
def test_section_4_of_05_shows_its_figure(executed):
    cell = next(c for c in executed["05"].cells if "plot_fraction_curves" in c.source)
    assert _images(cell) == 1


@pytest.mark.slow
def test_smoke_outputs_say_they_are_a_plumbing_check(executed):
    for number in ("02", "04", "05"):
        text = "\n".join(_text(c) for c in executed[number].cells if c.cell_type == "code")
        assert "plumbing check" in text, f"notebook {number} does not say the smoke numbers are a plumbing check"


@pytest.mark.slow
def test_no_cell_echoes_a_stray_value(executed):
    """e.g. ``Path.write_text`` as a cell's last line prints the number of characters written."""
    for number, nb in executed.items():
        for cell in nb.cells:
            for o in cell.get("outputs", []):
                if o.output_type == "execute_result":
                    plain = o.get("data", {}).get("text/plain", "")
                    assert not plain.strip().isdigit(), f"notebook {number} echoes {plain!r}:\n{cell.source}"


def test_keypoint_panel_labels_its_3d_axes_and_names_gt_only_when_there_is_some():
    import torch

    from kp3d.profiles import get_config
    from kp3d.model import KeypointModel
    from kp3d.viz.training import KeypointsPanel

    torch.manual_seed(0)
    model = KeypointModel(get_config("smoke", image_size=64, views=(0, 1, 2, 3)))
    for with_gt in (True, False):
        panel = KeypointsPanel(model, FakeMultiView(n=2, size=64, with_gt=with_gt))
        panel.update(frame=1)
        ax = panel.ax3d
        assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_zlabel()) == ("x (mm)", "y (mm)", "z (mm)")
        assert ("GT skeleton" in ax.get_title()) is with_gt, ax.get_title()


def test_error_map_colourbar_is_labelled():
    import numpy as np

    from kp3d.viz.frames import plot_error_maps

    fig = plot_error_maps({"a": np.zeros((4, 4, 3))}, np.ones((4, 4, 3)) * 0.1)
    assert "error" in fig.axes[-1].get_ylabel()
