"""Figures, widgets and viewers for the notebooks.

Each widget is a library class with an ``update(...)`` method (tests call it directly; notebooks wire
it to ipywidgets sliders). Plotly figures are saved as self-contained HTML for headless runs.
"""
