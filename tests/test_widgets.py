"""kp3d.viz.widgets.sliders: nothing is drawn on creation; moving a control calls update once."""
import ipywidgets as W
import pytest

from kp3d.viz.widgets import sliders


def test_sliders_redraw_only_on_change():
    calls = []
    frame = W.IntSlider(0, min=0, max=5)
    view = W.IntSlider(1, min=0, max=3)
    box = sliders(lambda frame, view: calls.append((frame, view)), frame=frame, view=view)
    assert calls == [] and len(box.children) == 3
    frame.value = 4
    view.value = 2
    assert calls == [(4, 1), (4, 2)]


def test_sliders_need_a_control():
    with pytest.raises(ValueError, match="at least one control"):
        sliders(lambda: None)
