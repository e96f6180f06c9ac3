"""Slider wiring shared by the notebooks.

``ipywidgets.interact`` renders its first frame inside an ``Output`` widget. Executed headless
(papermill/nbclient), that first render of a large matplotlib figure into an Output widget was seen
to stall the cpu-demo notebook 01 indefinitely, while the same figure displayed as a plain cell
output took a fraction of a second. :func:`sliders` therefore draws nothing on creation: the
notebook shows the first frame itself (``display(view.update(...))``) and the Output is filled only
when a person moves a slider.
"""
from __future__ import annotations

from typing import Callable


def sliders(update: Callable, **controls):
    """A VBox of ``controls`` (ipywidgets value widgets) and an Output that shows ``update(**values)``
    each time one of them changes.

    Example:
        >>> import ipywidgets as W
        >>> box = sliders(lambda frame: frame * 2, frame=W.IntSlider(0, min=0, max=3))
        >>> len(box.children)
        2
    """
    import ipywidgets as W
    from IPython.display import display

    if not controls:
        raise ValueError("sliders() needs at least one control, e.g. frame=IntSlider(...)")
    out = W.Output()

    def redraw(_=None):
        result = update(**{name: c.value for name, c in controls.items()})
        with out:
            out.clear_output(wait=True)
            if result is not None:
                display(result)

    for c in controls.values():
        c.observe(redraw, "value")
    return W.VBox([*controls.values(), out])
