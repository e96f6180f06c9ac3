"""Interactive 3D keypoint viewer for the export file (notebook 05).

:class:`KeypointViewer` shows, for one frame and one view:

- left, a plotly 3D scene (world frame, mm, z up): the discovered 3D keypoints (one colour per
  keypoint index, the same colours as in the image), the skeleton predicted by a pose probe from
  those keypoints, and the ground-truth skeleton (17 Human3.6M joints) when the export has labels;
- right, the image of the chosen view (or, without images, the model's own mask from the export)
  with the soft-argmax 2D keypoints (dots), the reprojected 3D keypoints (crosses) and the GT 2D
  skeleton when available.

``update(frame, view)`` rebuilds ``self.figure`` (a ``plotly.graph_objects.Figure``; tests call it
directly); ``widget()`` wires it to ipywidgets sliders in JupyterLab; ``to_html(path, frames=...)``
writes ONE self-contained HTML file (plotly.js inlined) with the frames as animation steps under a
slider, for headless runs.

Probe placement: a probe predicts pelvis-relative joints (see :mod:`kp3d.probes`); to draw them next
to the keypoints they are translated to the GT pelvis when labels exist, else to the keypoints'
mean.

Example:
    >>> import numpy as np
    >>> T, V, N = 3, 2, 5
    >>> ex = {"kp3d": np.zeros((T, N, 3)), "kp2d": np.zeros((T, V, N, 2)),
    ...       "kp2d_reproj": np.zeros((T, V, N, 2))}
    >>> fig = KeypointViewer(ex, image_size=(64, 64)).update(frame=1, view=0)
    >>> len(fig.data)
    7
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image
from plotly.subplots import make_subplots

from kp3d.probes import keypoint_features

try:  # the skeleton module of data_utils; same bones as below
    from data_utils.skeleton import H36M_BONES
except ImportError:  # pragma: no cover - only when data_utils is absent
    # (parent, child) per non-root joint, docs/architecture.md joint order
    H36M_BONES = ((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
                  (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16))

__all__ = ["KeypointViewer", "skeleton_lines", "image_to_data_uri"]

_COLORSCALE = "Turbo"


def skeleton_lines(joints: np.ndarray, bones=H36M_BONES) -> tuple[list, ...]:
    """Line coordinates for a skeleton, bones separated by ``None`` (one plotly trace draws all).

    Args:
        joints: (J, D) with D = 2 or 3.

    Returns:
        D lists (x, y[, z]) of length 3 * len(bones).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[1] not in (2, 3):
        raise ValueError(f"joints: expected shape (J, 2) or (J, 3), got {joints.shape}")
    cols: list[list] = [[] for _ in range(joints.shape[1])]
    for p, c in bones:
        for d in range(joints.shape[1]):
            cols[d] += [joints[p, d], joints[c, d], None]
    return tuple(cols)


def image_to_data_uri(img: np.ndarray) -> str:
    """(H, W, 3) float in [0, 1] or uint8 -> ``data:image/png;base64,...`` (for plotly ``go.Image``)."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hwc(img) -> np.ndarray:
    """Any of (3, H, W), (H, W, 3), (1, H, W), (H, W) [0, 1] float or uint8 -> (H, W, 3)."""
    try:
        import torch

        if isinstance(img, torch.Tensor):
            img = img.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise ValueError(f"image: expected (3, H, W), (H, W, 3) or (H, W), got {np.asarray(img).shape}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    return a.astype(np.float32)


class KeypointViewer:
    """3D keypoints + probed/GT skeleton, and one view's image with 2D and reprojected keypoints.

    Args:
        export: dict of arrays with the export keys of docs/architecture.md; needs ``kp3d``
            (T, N, 3) world mm, ``kp2d`` and ``kp2d_reproj`` (T, V, N, 2) pixels; optional
            ``gt_joints_3d`` (T, 17, 3), ``gt_joints_2d`` (T, V, 17, 2), ``masks`` (T, V, 1, h, w)
            uint8, ``K`` (T, V, 3, 3), ``config_json``, ``subject``, ``split``, ``frame``.
        images: where the view images come from, indexed by the export's row t (0..T-1):
            None (show the export's masks, or a blank canvas); an array (T, V, 3, H, W) or
            (T, V, H, W, 3); a callable ``images(t, view) -> image``; or the data sets the export
            was made from, ``{split: dataset}`` (or one dataset for every split): row t is found
            by matching (subject, frame) of the export with ``dataset.frame_info(i)`` (by
            ``frame`` = dataset index when the data set has no ``frame_info``). The views of the
            sample are taken in the export's order, so pass the export's ``views`` selection too
            (``views=cfg.views``) when the model used a subset.
        probe: None; a fitted probe of :mod:`kp3d.probes` (its ``predict`` maps
            ``keypoint_features(kp3d)`` (T, 3N) to pelvis-relative joints (T, 51)); or a callable
            kp3d (T, N, 3) -> joints (T, 17, 3) pelvis-relative.
        image_size: (H, W) pixels of the views; default from the images, ``config_json``, or K.
        max_image_side: images are downsampled to at most this many pixels per side for display
            (keeps HTML exports small); keypoints stay in full-image pixels.
        views: for data-set images, the sample's view indices behind the export's views
            (default: the ``views`` of ``config_json``, else all).
    """

    def __init__(self, export: dict, images: Any = None, probe: Any = None,
                 image_size: tuple[int, int] | None = None, max_image_side: int = 256, views=None):
        for key, nd in (("kp3d", 3), ("kp2d", 4), ("kp2d_reproj", 4)):
            if key not in export:
                raise KeyError(f"export is missing {key!r}: load it with kp3d.export.load_export(path)")
            if np.asarray(export[key]).ndim != nd:
                raise ValueError(f"export[{key!r}]: expected {nd} dimensions, got shape {np.shape(export[key])}")
        self.export = export
        self.kp3d = np.asarray(export["kp3d"], dtype=np.float64)
        self.kp2d = np.asarray(export["kp2d"], dtype=np.float64)
        self.kp2d_reproj = np.asarray(export["kp2d_reproj"], dtype=np.float64)
        self.T, self.N = self.kp3d.shape[:2]
        self.V = self.kp2d.shape[1]
        if self.kp2d.shape[:3] != (self.T, self.V, self.N) or self.kp2d_reproj.shape != self.kp2d.shape:
            raise ValueError(f"export shapes disagree: kp3d {self.kp3d.shape}, kp2d {self.kp2d.shape}, "
                             f"kp2d_reproj {self.kp2d_reproj.shape}")
        self.gt3d = np.asarray(export["gt_joints_3d"], dtype=np.float64) if "gt_joints_3d" in export else None
        self.gt2d = np.asarray(export["gt_joints_2d"], dtype=np.float64) if "gt_joints_2d" in export else None
        self.images = images
        self._lookup: dict | None = None  # (split, subject, frame) -> dataset index, built lazily
        cfg_views = self._config().get("views")
        self.sample_views = list(views) if views is not None else (list(cfg_views) if cfg_views else None)
        self.max_image_side = int(max_image_side)
        self.image_size = tuple(image_size) if image_size is not None else self._guess_image_size()
        self.probed = self._run_probe(probe)  # (T, 17, 3) world mm or None
        self._centres, self._half = self._scene_framing()
        self.figure: go.Figure | None = None
        self.frame = 0
        self.view = 0
        self._out = None  # ipywidgets.Output when widget() is live

    # ------------------------------------------------------------------------------------------
    def _config(self) -> dict:
        if "config_json" not in self.export:
            return {}
        try:
            return json.loads(str(np.asarray(self.export["config_json"]).item()))
        except (ValueError, TypeError, AttributeError):
            return {}

    def _guess_image_size(self) -> tuple[int, int]:
        if isinstance(self.images, np.ndarray):
            a = self.images
            return (a.shape[-2], a.shape[-1]) if a.shape[2] in (1, 3) else (a.shape[2], a.shape[3])
        s = self._config().get("image_size")
        if s:
            return (int(s), int(s)) if np.isscalar(s) else (int(s[0]), int(s[1]))
        if "K" in self.export:  # principal point at the image centre: W = 2 c_x + 1 (OpenCV centres)
            K = np.asarray(self.export["K"], dtype=np.float64).reshape(-1, 3, 3)[0]
            return int(round(2 * K[1, 2] + 1)), int(round(2 * K[0, 2] + 1))
        pts = np.concatenate([self.kp2d.reshape(-1, 2), self.kp2d_reproj.reshape(-1, 2)])
        hi = np.nanmax(pts, axis=0) if len(pts) else np.array([1.0, 1.0])
        return int(np.ceil(hi[1])) + 1, int(np.ceil(hi[0])) + 1

    def _run_probe(self, probe) -> np.ndarray | None:
        if probe is None:
            return None
        if hasattr(probe, "predict"):
            joints = np.asarray(probe.predict(keypoint_features(self.kp3d)), dtype=np.float64)
        elif callable(probe):
            joints = np.asarray(probe(self.kp3d), dtype=np.float64)
        else:
            raise TypeError("probe: expected None, an object with predict(), or a callable")
        joints = joints.reshape(self.T, 17, 3)
        anchor = self.gt3d[:, :1] if self.gt3d is not None else self.kp3d.mean(axis=1, keepdims=True)
        return joints + anchor

    def _scene_framing(self) -> tuple[np.ndarray, np.ndarray]:
        """(T, 3) centre of each frame's points and (3,) half extent (mm), the same for every frame.

        The axes follow the person with a fixed extent, so the body stays large and steady however
        far they walk (axes spanning every frame's points made the body a tenth of a room-sized
        panel). The extent holds 90% of the frames' point sets (one frame's stray keypoint does
        not shrink the body in all the others), with a margin, the same on x and y (the body turns).
        """
        pts = np.concatenate([self.kp3d] + [a for a in (self.gt3d, self.probed) if a is not None], axis=1)
        finite = np.isfinite(pts).all(axis=-1, keepdims=True)
        lo = np.where(finite, pts, np.inf).min(axis=1)
        hi = np.where(finite, pts, -np.inf).max(axis=1)
        ok = np.isfinite(lo).all(axis=1) & np.isfinite(hi).all(axis=1)
        if not ok.any():
            return np.zeros((self.T, 3)), np.full(3, 1000.0)
        centre = (lo + hi) / 2
        centre[~ok] = centre[ok].mean(axis=0)
        size = np.quantile((hi - lo)[ok], 0.9, axis=0)
        size[:2] = size[:2].max()
        return centre, np.maximum(0.55 * size, 300.0)  # 10% margin; some extent when the points collapse

    def scene_ranges(self, frame: int) -> list[list[float]]:
        """x, y, z axis ranges (mm) of ``frame``: its centre +- the half extent common to all frames."""
        c = self._centres[frame]
        return [[float(c[d] - self._half[d]), float(c[d] + self._half[d])] for d in range(3)]

    def _scene_axes(self, frame: int) -> dict:
        xr, yr, zr = self.scene_ranges(frame)
        return dict(xaxis=dict(title="x (mm)", range=xr, autorange=False, nticks=5),
                    yaxis=dict(title="y (mm)", range=yr, autorange=False, nticks=5),
                    zaxis=dict(title="z (mm, up)", range=zr, autorange=False, nticks=5))

    def frame_label(self, row: int) -> str:
        """What the slider and the title call export row ``row``: its frame number, with the subject
        when the export holds more than one (frame numbers restart per subject)."""
        if "frame" not in self.export:
            return str(row)
        frame = str(np.asarray(self.export["frame"])[row])
        if "subject" in self.export and len(set(np.asarray(self.export["subject"]).tolist())) > 1:
            return f"{np.asarray(self.export['subject'])[row]} {frame}"
        return frame

    def _image(self, frame: int, view: int) -> np.ndarray | None:
        src = self.images
        if src is None:
            if "masks" in self.export:
                return _hwc(np.asarray(self.export["masks"][frame, view]))
            return None
        if callable(src) and not hasattr(src, "__getitem__"):
            return _hwc(src(frame, view))
        if isinstance(src, np.ndarray):
            return _hwc(src[frame, view])
        split = str(np.asarray(self.export["split"])[frame]) if "split" in self.export else ""
        ds = src.get(split) if isinstance(src, dict) else src
        if ds is None:
            raise KeyError(f"images: no data set for split {split!r}; pass {{split: dataset}} for every split")
        item = ds[self._dataset_index(ds, split, frame)]
        v = self.sample_views[view] if self.sample_views else view
        return _hwc(item["images"][v] if isinstance(item, dict) else item[v])

    def _dataset_index(self, ds, split: str, row: int) -> int:
        """The data set index of export row ``row``, matched on (subject, frame) via ``frame_info``."""
        frame = int(np.asarray(self.export["frame"])[row]) if "frame" in self.export else row
        if not hasattr(ds, "frame_info"):
            return frame
        if self._lookup is None:
            self._lookup = {}
        key = (split, id(ds))
        if key not in self._lookup:
            table = {}
            for i in range(len(ds)):
                info = ds.frame_info(i)
                table[(str(info.get("subject", "")), int(info.get("frame", i)))] = i
            self._lookup[key] = table
        subject = str(np.asarray(self.export["subject"])[row]) if "subject" in self.export else ""
        try:
            return self._lookup[key][(subject, frame)]
        except KeyError:
            raise KeyError(f"export row {row} (subject {subject!r}, frame {frame}) is not in the {split!r} data set: "
                           "pass the data sets the export was made from") from None

    def _check(self, frame: int, view: int) -> tuple[int, int]:
        if not 0 <= int(frame) < self.T:
            raise IndexError(f"frame {frame} out of range: the export has {self.T} frames (0..{self.T - 1})")
        if not 0 <= int(view) < self.V:
            raise IndexError(f"view {view} out of range: the export has {self.V} views (0..{self.V - 1})")
        return int(frame), int(view)

    # ------------------------------------------------------------------------------------------
    def traces(self, frame: int, view: int) -> list:
        """The 7 traces of one (frame, view), always in the same order (animation frames need it):
        3D keypoints, probed skeleton, GT skeleton, image, 2D keypoints, reprojected, GT 2D skeleton."""
        frame, view = self._check(frame, view)
        H, W = self.image_size
        idx = np.arange(self.N)
        marker = dict(color=idx, colorscale=_COLORSCALE, cmin=0, cmax=max(self.N - 1, 1))
        kp = self.kp3d[frame]
        text = [f"keypoint {n}" for n in idx]
        out = [go.Scatter3d(x=kp[:, 0], y=kp[:, 1], z=kp[:, 2], mode="markers", name="3D keypoints",
                            text=text, marker=dict(size=4, **marker))]
        for joints, name, color in ((self.probed, "probed skeleton", "crimson"),
                                    (self.gt3d, "GT skeleton", "black")):
            x, y, z = skeleton_lines(joints[frame]) if joints is not None else ([], [], [])
            out.append(go.Scatter3d(x=x, y=y, z=z, mode="lines+markers", name=name,
                                    line=dict(color=color, width=4), marker=dict(size=2, color=color),
                                    visible=True if joints is not None else "legendonly"))
        img = self._image(frame, view)
        if img is None:
            img = np.full((8, 8, 3), 0.92, dtype=np.float32)
        h, w = img.shape[:2]
        f = max(1, int(np.ceil(max(h, w) / self.max_image_side)))
        img = img[::f, ::f]
        dx, dy = W / img.shape[1], H / img.shape[0]  # display pixel size in full-image pixels
        out.append(go.Image(source=image_to_data_uri(img), x0=(dx - 1) / 2, y0=(dy - 1) / 2, dx=dx, dy=dy,
                            name="image", hoverinfo="skip"))
        k2, kr = self.kp2d[frame, view], self.kp2d_reproj[frame, view]
        out.append(go.Scatter(x=k2[:, 0], y=k2[:, 1], mode="markers", name="2D keypoints (soft-argmax)",
                              text=text, marker=dict(size=7, line=dict(width=1, color="white"), **marker)))
        out.append(go.Scatter(x=kr[:, 0], y=kr[:, 1], mode="markers", name="reprojected 3D keypoints",
                              text=text, marker=dict(size=8, symbol="x-thin", line=dict(width=2), **marker)))
        x, y = skeleton_lines(self.gt2d[frame, view]) if self.gt2d is not None else ([], [])
        out.append(go.Scatter(x=x, y=y, mode="lines", name="GT 2D skeleton",
                              line=dict(color="black", width=2),
                              visible=True if self.gt2d is not None else "legendonly"))
        return out

    def _title(self, frame: int, view: int) -> str:
        ex = self.export
        bits = []
        if "subject" in ex:
            bits.append(str(np.asarray(ex["subject"])[frame]))
        bits.append(f"frame {np.asarray(ex['frame'])[frame]}" if "frame" in ex else f"row {frame}")
        if "split" in ex:
            bits.append(f"({np.asarray(ex['split'])[frame]} split)")
        return " ".join(bits) + f" | view {view}"

    def _empty_figure(self, frame: int) -> go.Figure:
        H, W = self.image_size
        fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "xy"}]],
                            column_widths=[0.5, 0.5], horizontal_spacing=0.04)
        ratio = self._half / self._half.max()
        # the legend sits above the panels: below them it met the animation's buttons and slider
        fig.update_layout(height=560, margin=dict(l=30, r=10, t=90, b=10),
                          legend=dict(orientation="h", x=0.0, y=1.0, yanchor="bottom", font=dict(size=11)),
                          title=dict(y=0.98, yanchor="top"),
                          # the same extent in every frame, around the person (_scene_framing), so the
                          # axes never rescale; the eye steps back so no axis title is cut at the edge
                          scene=dict(aspectmode="manual", aspectratio=dict(x=ratio[0], y=ratio[1], z=ratio[2]),
                                     **self._scene_axes(frame), camera=dict(eye=dict(x=1.6, y=1.6, z=1.0))))
        fig.update_xaxes(range=[-0.5, W - 0.5], showgrid=False, constrain="domain", row=1, col=2)
        fig.update_yaxes(range=[H - 0.5, -0.5], showgrid=False, scaleanchor="x", row=1, col=2)
        return fig

    def update(self, frame: int, view: int) -> go.Figure:
        """Rebuild ``self.figure`` for (frame, view) and return it (also refreshes a live widget)."""
        frame, view = self._check(frame, view)
        fig = self._empty_figure(frame)
        for i, tr in enumerate(self.traces(frame, view)):
            fig.add_trace(tr, row=1, col=1 if i < 3 else 2)
        fig.update_layout(title_text=self._title(frame, view))
        self.figure, self.frame, self.view = fig, frame, view
        if self._out is not None:
            # Replace the Output widget's content through its state instead of capturing display
            # messages (`with out: display(fig)`): capturing while a cell runs under papermill /
            # nbclient made headless runs of notebook 05 hang now and then (the kernel idle, the
            # client still waiting for the cell's reply; nbclient issue #312).
            # The bundle is JupyterLab's native plotly mimetype, what the kernel shows for a figure.
            bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
            self._out.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
        return fig

    def widget(self):
        """ipywidgets sliders for frame and view wired to :meth:`update` (for JupyterLab)."""
        import ipywidgets as widgets  # lazy: widgets are loaded only inside a notebook

        # the slider reads what the title shows (frame numbers), its value is the export row
        frame = widgets.SelectionSlider(options=[(self.frame_label(t), t) for t in range(self.T)],
                                        value=self.frame, description="frame", continuous_update=False)
        view = widgets.IntSlider(value=self.view, min=0, max=self.V - 1, description="view",
                                 continuous_update=False)
        self._out = widgets.Output()

        def on_change(_):
            self.update(frame.value, view.value)

        frame.observe(on_change, names="value")
        view.observe(on_change, names="value")
        self.update(frame.value, view.value)
        return widgets.VBox([widgets.HBox([frame, view]), self._out])

    def animation_figure(self, frames=None, view: int = 0) -> go.Figure:
        """One figure holding ``frames`` (default: up to 30 evenly spaced) as animation steps of ``view``."""
        if frames is None:
            frames = np.unique(np.linspace(0, self.T - 1, num=min(self.T, 30)).round().astype(int))
        frames = [self._check(f, view)[0] for f in frames]
        if not frames:
            raise ValueError("frames is empty: pass at least one frame index")
        fig = self.update(frames[0], view)
        fig.frames = [go.Frame(data=self.traces(f, view), traces=list(range(7)), name=str(f),
                               layout=dict(title=dict(text=self._title(f, view)), scene=self._scene_axes(f)))
                      for f in frames]
        anim = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
        # the slider's labels are frame numbers (what the title shows); the buttons sit left of it
        fig.update_layout(
            height=660, margin=dict(l=30, r=10, t=90, b=110),
            sliders=[dict(active=0, currentvalue=dict(prefix="frame "), x=0.12, len=0.88, y=0.0, yanchor="top",
                          pad=dict(t=30),
                          steps=[dict(label=self.frame_label(f), method="animate", args=[[str(f)], anim])
                                 for f in frames])],
            updatemenus=[dict(type="buttons", direction="left", showactive=False, x=0.0, y=0.0, xanchor="left",
                              yanchor="top", pad=dict(t=60),
                              buttons=[dict(label="play", method="animate",
                                            args=[None, dict(anim, frame=dict(duration=300, redraw=True),
                                                             fromcurrent=True)]),
                                       dict(label="pause", method="animate", args=[[None], anim])])],
        )
        return fig

    def to_html(self, path, frames=None, view: int = 0, overwrite: bool = False) -> Path:
        """Write ONE self-contained HTML file (plotly.js inlined) with a frame slider and play button.

        Args:
            path: the .html file to write; an existing file is kept unless ``overwrite=True``.
            frames: export rows to include (default: up to 30 evenly spaced).
            view: the view whose image and 2D keypoints are shown.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists: pass overwrite=True or choose another path")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig = self.animation_figure(frames, view)
        fig.write_html(str(path), include_plotlyjs=True, full_html=True, auto_play=False)
        return path

    def multiview_png(self, path, frame: int = 0, overwrite: bool = False) -> Path:
        """A matplotlib PNG of every view of ``frame`` with its 2D (dots) and reprojected (x) keypoints."""
        from matplotlib import colormaps  # lazy: matplotlib is loaded only when a figure is drawn
        from matplotlib.figure import Figure  # not pyplot: written to a file, never shown

        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists: pass overwrite=True or choose another path")
        frame, _ = self._check(frame, 0)
        H, W = self.image_size
        fig = Figure(figsize=(3.2 * self.V, 3.4))
        axes = fig.subplots(1, self.V, squeeze=False)
        colors = colormaps["turbo"](np.linspace(0, 1, self.N))
        for v, ax in enumerate(axes[0]):
            img = self._image(frame, v)
            if img is not None:
                ax.imshow(img, extent=(-0.5, W - 0.5, H - 0.5, -0.5))
            if self.gt2d is not None:
                x, y = skeleton_lines(self.gt2d[frame, v])
                ax.plot(np.array(x, dtype=float), np.array(y, dtype=float), "k-", lw=1)
            ax.scatter(*self.kp2d[frame, v].T, c=colors, s=18, edgecolors="white", linewidths=0.5)
            ax.scatter(*self.kp2d_reproj[frame, v].T, c=colors, s=22, marker="x")
            ax.set_xlim(-0.5, W - 0.5); ax.set_ylim(H - 0.5, -0.5); ax.set_axis_off()
            ax.set_title(f"view {v}")
        fig.suptitle(self._title(frame, 0).rsplit(" | view", 1)[0] + "  (dots: soft-argmax, x: reprojected)")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        return path
