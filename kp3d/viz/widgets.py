"""Slider wiring shared by the notebooks.

:func:`sliders` shows its controls and, below them, ONE figure output. The first frame is drawn when
the cell displays it, as a plain ``display_data`` output with a display id; each slider move replaces
that same output in place (``update_display_data``). So an executed notebook holds exactly one
image per slider cell, and a live one never keeps stale frames around.

Why not ``ipywidgets.interact`` / an ``Output`` widget: they render by capturing display messages
into the widget, and headless (papermill/nbclient) that capture of a large matplotlib figure was seen
to stall a notebook indefinitely; a plain cell output takes a fraction of a second.

Matplotlib figures are sent as PNG images rendered by the figure itself, so the caller's backend is
never consulted or changed (the panels of :mod:`kp3d.viz` build ``matplotlib.figure.Figure``
objects that pyplot does not track, hence nothing is shown twice and nothing has to be closed).
"""
from __future__ import annotations

import io
from typing import Callable, Sequence

PLUMBING_NOTE = (
    "**Smoke profile: a plumbing check.** The model trained for a few steps on a tiny data set, so "
    "the figures and numbers below only show that every stage runs; they say nothing about the "
    "method (masks stay flat, keypoints collapse, probe errors can exceed the mean pose). Run the "
    "`cpu-demo` profile (or larger) for results worth reading."
)


def plumbing_note(profile: str, detail: str = "") -> None:
    """Display (as Markdown) the smoke profile's warning when ``profile`` is ``smoke``; nothing for
    every other profile. ``detail`` says what the reader sees instead (e.g. a flat mask)."""
    if profile != "smoke":
        return None
    from IPython.display import Markdown, display  # lazy: IPython exists only inside a notebook kernel

    display(Markdown("> " + PLUMBING_NOTE + (" " + detail if detail else "")))


def figure_image(fig, dpi: int = 80):
    """``fig`` as something ``IPython.display.display`` shows as one image.

    A matplotlib figure becomes a PNG ``IPython.display.Image`` (rendered by the figure itself, whatever
    the caller's backend); anything else (a plotly figure, None) is returned unchanged.
    """
    if fig is None or not hasattr(fig, "savefig") or not hasattr(fig, "axes"):
        return fig
    from IPython.display import Image  # lazy: IPython exists only inside a notebook kernel

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return Image(data=buf.getvalue(), format="png")


def value_slider(values: Sequence, value=None, description: str = "", **kwargs):
    """A slider whose value IS one of ``values`` (frame numbers, training steps).

    Consecutive integers give an ``IntSlider``; anything sparser a ``SelectionSlider`` over exactly
    those values, so the slider never offers a value the figure cannot show. Both update on release
    unless ``continuous_update=True`` is passed.
    """
    import ipywidgets as W  # lazy: widgets are loaded only inside a notebook

    values = list(values)
    if not values:
        raise ValueError("value_slider needs at least one value")
    value = values[0] if value is None else value
    if value not in values:
        raise ValueError(f"value {value!r} is not one of the slider's values {values[:5]}...")
    kwargs.setdefault("continuous_update", False)
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if ints and values == list(range(values[0], values[0] + len(values))):
        return W.IntSlider(value=value, min=values[0], max=values[-1], description=description, **kwargs)
    return W.SelectionSlider(options=[(str(v), v) for v in values], value=value, description=description, **kwargs)


class FigureSliders:
    """Controls and one figure output that each change redraws in place.

    Args:
        update: called as ``update(**values)``; returns a matplotlib or plotly figure (or None).
        controls: name -> ipywidgets value widget; the names are ``update``'s keyword arguments.
        dpi: resolution of the PNG of a matplotlib figure.

    ``update(**values)`` (tests call it directly) sets the controls it is given, redraws and refreshes
    the shown figure; ``last`` is the latest figure. Displaying the object (the last line of a cell)
    shows the controls, then the first frame.
    """

    def __init__(self, update: Callable, dpi: int = 80, **controls):
        import ipywidgets as W  # lazy: widgets are loaded only inside a notebook

        if not controls:
            raise ValueError("sliders() needs at least one control, e.g. frame=IntSlider(...)")
        self._draw, self.controls, self.dpi = update, controls, dpi
        self.box = W.VBox(list(controls.values()))
        self.last = None
        self.draws = 0
        self._handle = None
        self._quiet = False  # set while update() moves the controls itself
        for c in controls.values():
            c.observe(self._changed, "value")

    @property
    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def _changed(self, _=None):
        if not self._quiet:
            self.update()

    def update(self, **values):
        """Redraw for the current control values, with ``values`` set first; returns the figure."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise TypeError(f"unknown control(s) {sorted(unknown)}: expected {sorted(self.controls)}")
        self._quiet = True
        try:
            for name, v in values.items():
                self.controls[name].value = v
        finally:
            self._quiet = False
        self.last = self._draw(**self.values)
        self.draws += 1
        if self._handle is not None:
            self._handle.update(figure_image(self.last, self.dpi))
        return self.last

    def _ipython_display_(self):
        from IPython.display import display  # lazy: IPython exists only inside a notebook kernel

        display(self.box)
        self.update()
        self._handle = display(figure_image(self.last, self.dpi), display_id=True)


def sliders(update: Callable, **controls) -> FigureSliders:
    """``FigureSliders(update, **controls)``: end a cell with it to show the controls and one figure.

    Example:
        >>> import ipywidgets as W
        >>> view = sliders(lambda frame: frame * 2, frame=W.IntSlider(0, min=0, max=3))
        >>> view.update(frame=2)
        4
    """
    return FigureSliders(update, **controls)
