"""kp3d.viz.widgets: one figure output per slider cell, redrawn in place; sliders whose values are
what the figure's title shows; library figures that leave the caller's matplotlib backend alone."""
import ast
from pathlib import Path

import ipywidgets as W
import pytest

from kp3d.viz.widgets import FigureSliders, figure_image, plumbing_note, sliders, value_slider

REPO = Path(__file__).resolve().parents[1]


def test_sliders_draw_on_display_and_on_change_only():
    calls = []
    frame = W.IntSlider(0, min=0, max=5)
    view = W.IntSlider(1, min=0, max=3)
    box = sliders(lambda frame, view: calls.append((frame, view)), frame=frame, view=view)
    assert isinstance(box, FigureSliders) and calls == [] and len(box.box.children) == 2
    frame.value = 4
    view.value = 2
    assert calls == [(4, 1), (4, 2)]
    # update() (what tests and the sliders call) sets the controls it is given, with a single redraw
    box.update(frame=1, view=0)
    assert calls[-1] == (1, 0) and len(calls) == 3 and (frame.value, view.value) == (1, 0)
    with pytest.raises(TypeError, match="unknown control"):
        box.update(step=3)


def test_sliders_need_a_control():
    with pytest.raises(ValueError, match="at least one control"):
        sliders(lambda: None)


def test_display_shows_one_image_that_moves_replace():
    """Displayed, the cell gets the controls and ONE image with a display id; a slider move updates
    that image in place instead of adding another."""
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    shell = InteractiveShell.instance()
    sent = []

    def publish(data, metadata=None, *, transient=None, update=False, **kw):
        sent.append((update, set(data), (transient or {}).get("display_id")))

    old = shell.display_pub.publish
    shell.display_pub.publish = publish
    try:
        fig = Figure(figsize=(2, 2))
        ax = fig.add_subplot()

        def draw(frame):
            ax.clear()
            ax.plot([0, frame])
            ax.set_title(f"frame {frame}")
            return fig

        frame = W.IntSlider(0, min=0, max=3)
        view = sliders(draw, frame=frame)
        from IPython.display import display

        display(view)
        images = [s for s in sent if "image/png" in s[1]]
        assert len(images) == 1 and images[0][0] is False and images[0][2]
        frame.value = 2
        updates = [s for s in sent if s[0]]
        assert len(updates) == 1 and "image/png" in updates[0][1] and updates[0][2] == images[0][2]
        assert len([s for s in sent if "image/png" in s[1] and not s[0]]) == 1  # still one image
        assert view.last.axes[0].get_title() == "frame 2"
    finally:
        shell.display_pub.publish = old


def test_figure_image_leaves_the_backend_alone():
    import matplotlib
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    img = figure_image(fig)
    assert img.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend
    assert figure_image(None) is None
    obj = object()
    assert figure_image(obj) is obj


def test_value_slider_values_are_what_titles_show():
    s = value_slider([0, 1, 2, 3], value=2, description="frame")
    assert isinstance(s, W.IntSlider) and (s.min, s.max, s.value) == (0, 3, 2) and not s.continuous_update
    steps = value_slider([5, 10, 20], value=20, description="step")
    assert isinstance(steps, W.SelectionSlider) and steps.value == 20
    assert [label for label, _ in steps.options] == ["5", "10", "20"]
    with pytest.raises(ValueError, match="not one of"):
        value_slider([5, 10], value=7)


def test_plumbing_note_only_in_smoke(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    sent = []
    old = shell.display_pub.publish
    shell.display_pub.publish = lambda data, *a, **k: sent.append(data)
    try:
        plumbing_note("cpu-demo")
        assert sent == []
        plumbing_note("smoke", "Here the mask stays flat.")
        assert len(sent) == 1
        text = sent[0]["text/markdown"]
        assert "plumbing check" in text and "Here the mask stays flat." in text
    finally:
        shell.display_pub.publish = old


def test_library_code_never_picks_the_matplotlib_backend():
    """A library that calls matplotlib.use() switches a running kernel's inline backend off for the
    rest of the session (figures stop showing); only tests and scripts may choose one."""
    offenders = []
    for path in sorted((REPO / "kp3d").rglob("*.py")) + sorted((REPO / "data_utils").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("use", "switch_backend"):
                base = node.func.value
                name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                if name in ("matplotlib", "mpl", "plt", "pyplot"):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == [], offenders


def test_panels_are_not_pyplot_figures():
    """Widget figures are not tracked by pyplot: the inline backend cannot show them a second time."""
    import matplotlib.pyplot as plt
    import torch

    from kp3d.viz.frames import MultiViewFrameBrowser

    class Tiny:
        def __len__(self):
            return 4

        def frame_info(self, i):
            return {"subject": "S9" if i < 2 else "S11", "frame": 10 * (i % 2), "split": "test"}

        def __getitem__(self, i):
            return {"images": torch.rand(2, 3, 8, 8), "backgrounds": torch.rand(2, 3, 8, 8)}

    before = set(plt.get_fignums())
    browser = MultiViewFrameBrowser(Tiny(), subject="S11")
    assert browser.frames == [0, 10]  # S11's frame numbers, not data set indices
    fig = browser.update(frame=10, view=1)
    assert "subject=S11" in fig._suptitle.get_text() and "frame=10" in fig._suptitle.get_text()
    with pytest.raises(IndexError, match="frame 5 out of range: subject S11"):
        browser.update(frame=5)
    assert set(plt.get_fignums()) == before
    # a subject the data set does not have (a rig's one sequence): every sample
    assert MultiViewFrameBrowser(Tiny(), subject="S1").frames == [0, 1, 2, 3]


def test_noise_slider_starts_at_the_cells_noise_and_redraws_on_release():
    from kp3d.cameras import h36m_rig
    from kp3d.viz.scene3d import TriangulationExplorer

    explorer = TriangulationExplorer(h36m_rig("S1", 64, 64), n_points=5, seed=0)
    box = explorer.widget(noise_px=2.0)
    noise, plot = box.children[0], box.children[3]
    assert noise.value == 2.0 and not noise.continuous_update
    assert len(plot.outputs) == 1 and "noise 2.0 px" in explorer.figure.layout.title.text
    noise.value = 4.0
    assert len(plot.outputs) == 1 and "noise 4.0 px" in explorer.figure.layout.title.text
