"""Triangulation in pictures: camera frusta, rays and points in plotly; noise/view studies.

This is the library side of notebook 03. :class:`TriangulationExplorer` holds a synthetic scene on a
calibrated rig; ``update(noise_px, views)`` re-projects, adds pixel noise, triangulates with the
chosen views and redraws a plotly 3D figure (tests call it directly; the notebook wires it to
ipywidgets sliders). :func:`error_vs_noise` and :func:`error_vs_views` are the two studies the
notebook plots. World units are mm, z up; cameras are world-to-camera (see :mod:`kp3d.cameras`).

Example:
    >>> from kp3d.cameras import h36m_rig
    >>> ex = TriangulationExplorer(h36m_rig("S1", 128, 128), n_points=10, seed=0)
    >>> fig = ex.update(noise_px=1.0, views=(0, 1, 2))
    >>> round(ex.last_error_mm, 1) > 0
    True
"""
from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from kp3d.cameras import Camera, to_tensors
from kp3d.geometry import crop_intrinsics, crop_patches, gaussian_heatmaps, project, triangulate_dlt

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def sample_scene(n_points: int, seed: int = 0, centre=(0.0, 0.0, 1000.0), extent=(1000.0, 1000.0, 1600.0)) -> np.ndarray:
    """(n_points, 3) world mm, uniform in a box the size of a person around ``centre``."""
    rng = np.random.default_rng(seed)
    return np.asarray(centre) + (rng.random((n_points, 3)) - 0.5) * np.asarray(extent)


def noisy_triangulation(cameras: Sequence[Camera], X: np.ndarray, noise_px: float, views: Sequence[int], seed: int = 0):
    """Project ``X (N, 3)`` into every camera, add Gaussian pixel noise, triangulate from ``views``.

    Returns:
        (X_hat (N, 3) float64, x_noisy (V, N, 2) pixels in all views, per-point error (N,) mm).
    """
    if len(views) < 2:
        raise ValueError(f"triangulation needs at least 2 views, got views={list(views)}")
    if any(v < 0 or v >= len(cameras) for v in views):
        raise ValueError(f"views {list(views)} out of range for a rig of {len(cameras)} cameras")
    P = to_tensors(cameras, dtype=torch.float64)["P"]
    Xt = torch.as_tensor(X, dtype=torch.float64)
    x = project(P, Xt)
    g = torch.Generator().manual_seed(seed)
    x = x + torch.randn(x.shape, generator=g, dtype=torch.float64) * noise_px
    idx = list(views)
    X_hat = triangulate_dlt(P[idx].float(), x[idx].float()).double()
    err = (X_hat - Xt).norm(dim=-1)
    return X_hat.numpy(), x.numpy(), err.numpy()


def error_vs_noise(cameras, X, noise_levels: Sequence[float], views=None, trials: int = 5, seed: int = 0) -> np.ndarray:
    """Mean 3D error (mm) for each pixel-noise level, averaged over ``trials`` noise draws."""
    views = tuple(range(len(cameras))) if views is None else tuple(views)
    return np.array(
        [np.mean([noisy_triangulation(cameras, X, s, views, seed + k)[2].mean() for k in range(trials)]) for s in noise_levels]
    )


def error_vs_views(cameras, X, noise_px: float, trials: int = 5, seed: int = 0) -> dict[int, float]:
    """Mean 3D error (mm) using 2..V views, averaged over every subset of that size and the trials."""
    out = {}
    for k in range(2, len(cameras) + 1):
        errs = [
            noisy_triangulation(cameras, X, noise_px, subset, seed + t)[2].mean()
            for subset in combinations(range(len(cameras)), k)
            for t in range(trials)
        ]
        out[k] = float(np.mean(errs))
    return out


def frustum_lines(camera: Camera, depth: float = 600.0) -> np.ndarray:
    """(16, 3) world points: polyline segments (NaN-separated) drawing the camera's frustum."""
    corners_px = np.array([[0, 0], [camera.width - 1, 0], [camera.width - 1, camera.height - 1], [0, camera.height - 1]], float)
    rays = np.column_stack([corners_px, np.ones(4)]) @ np.linalg.inv(camera.K).T  # camera frame, z = 1
    pts_cam = rays * depth
    pts = (pts_cam - camera.t) @ camera.R  # camera -> world: R^T (x - t)
    C = camera.center
    nan = np.full(3, np.nan)
    segs = []
    for p in pts:
        segs += [C, p, nan]
    segs += [pts[0], pts[1], pts[2], pts[3], pts[0], nan]
    return np.array(segs)


def scene_figure(cameras: Sequence[Camera], X: np.ndarray, X_hat: np.ndarray | None = None, views: Sequence[int] | None = None,
                 show_rays: bool = True, title: str = "") -> go.Figure:
    """A plotly 3D figure of the rig (frusta; used views highlighted), rays and points."""
    views = tuple(range(len(cameras))) if views is None else tuple(views)
    fig = go.Figure()
    for i, cam in enumerate(cameras):
        f = frustum_lines(cam)
        used = i in views
        fig.add_trace(go.Scatter3d(x=f[:, 0], y=f[:, 1], z=f[:, 2], mode="lines",
                                   line=dict(color=_COLORS[i % len(_COLORS)], width=5 if used else 1),
                                   name=f"camera {cam.name}" + ("" if used else " (unused)")))
        if show_rays and used:
            C = cam.center
            target = X_hat if X_hat is not None else X
            seg = np.concatenate([np.stack([C.repeat(len(target)).reshape(3, -1).T, target, np.full_like(target, np.nan)], 1)]).reshape(-1, 3)
            fig.add_trace(go.Scatter3d(x=seg[:, 0], y=seg[:, 1], z=seg[:, 2], mode="lines", showlegend=False,
                                       line=dict(color=_COLORS[i % len(_COLORS)], width=1), opacity=0.35, hoverinfo="skip"))
    fig.add_trace(go.Scatter3d(x=X[:, 0], y=X[:, 1], z=X[:, 2], mode="markers", marker=dict(size=4, color="black"), name="true points"))
    if X_hat is not None:
        fig.add_trace(go.Scatter3d(x=X_hat[:, 0], y=X_hat[:, 1], z=X_hat[:, 2], mode="markers",
                                   marker=dict(size=4, color="red", symbol="diamond", opacity=0.8), name="triangulated"))
    # plotly's default eye (1.25, 1.25, 1.25) crops the corners of a wide rig; step back and look
    # from a little above, with the legend under the scene instead of over its right edge
    fig.update_layout(title=title, scene=dict(aspectmode="data", xaxis_title="x (mm)", yaxis_title="y (mm)", zaxis_title="z (mm, up)",
                                              camera=dict(eye=dict(x=1.9, y=1.9, z=1.1))),
                      legend=dict(orientation="h", y=0.0, yanchor="top"),
                      margin=dict(l=0, r=0, t=40, b=0), height=560)
    return fig


class TriangulationExplorer:
    """Interactive triangulation on a rig: ``update(noise_px, views)`` redraws the scene.

    Args:
        cameras: the rig (e.g. ``h36m_rig("S1", 128, 128)``).
        n_points: size of the synthetic point cloud.
        seed: point cloud and noise seed.

    Attributes after :meth:`update`: ``figure`` (plotly), ``last_error_mm`` (mean 3D error),
    ``X_hat`` (N, 3).
    """

    def __init__(self, cameras: Sequence[Camera], n_points: int = 30, seed: int = 0):
        if len(cameras) < 2:
            raise ValueError(f"TriangulationExplorer needs a rig of at least 2 cameras, got {len(cameras)}")
        self.cameras = list(cameras)
        self.X = sample_scene(n_points, seed)
        self.seed = seed
        self.figure = go.Figure()
        self.last_error_mm = float("nan")
        self.X_hat = None

    def update(self, noise_px: float = 1.0, views: Sequence[int] = (0, 1, 2, 3)) -> go.Figure:
        """Re-triangulate with ``noise_px`` Gaussian pixel noise from ``views``; returns the figure."""
        views = tuple(sorted(set(views)))
        self.X_hat, _, err = noisy_triangulation(self.cameras, self.X, noise_px, views, self.seed)
        self.last_error_mm = float(err.mean())
        fig = scene_figure(self.cameras, self.X, self.X_hat, views,
                           title=f"{len(views)} views, noise {noise_px:.1f} px: mean 3D error {self.last_error_mm:.1f} mm")
        self.figure = fig
        return fig

    def widget(self, noise_px: float = 1.0):
        """ipywidgets slider (noise, starting at ``noise_px``) and checkboxes (views) wired to :meth:`update`.

        The slider redraws when released: a triangulation and a plotly figure per intermediate value
        made a drag take tens of seconds to settle.
        """
        import ipywidgets as W  # lazy: widgets are loaded only inside a notebook
        import plotly.io as pio  # lazy: plotly is loaded only when a 3D figure is drawn

        noise = W.FloatSlider(value=float(noise_px), min=0.0, max=10.0, step=0.5, description="noise (px)",
                              continuous_update=False)
        boxes = [W.Checkbox(value=True, description=f"cam {c.name}") for c in self.cameras]
        label = W.Label()
        plot = W.Output()

        def refresh(_=None):
            views = [i for i, b in enumerate(boxes) if b.value]
            if len(views) < 2:
                label.value = "select at least 2 views"
                return
            fig = self.update(noise.value, views)
            label.value = f"mean 3D error: {self.last_error_mm:.2f} mm"
            # set the Output's content through its state, not by capturing fig.show(): capture while
            # a cell runs headless (papermill/nbclient) can hang (see kp3d.viz.viewer)
            bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
            plot.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

        noise.observe(refresh, "value")
        for b in boxes:
            b.observe(refresh, "value")
        refresh()
        return W.VBox([noise, W.HBox(boxes), label, plot])


def crop_intrinsics_demo(camera: Camera, X, box=(0.35, 0.35, 0.0, 0.0), patch_size: int = 64, sigma_px: float = 2.0):
    """Render a dot at the projection of ``X (3,)``, crop it with the spatial transformer, and compare.

    The box ``(s_x, s_y, u_x, u_y)`` (normalised) is moved so the dot lies inside it. Returns a dict
    with the full image, the patch, where the dot is found in the patch (centre of mass), where
    the crop-adjusted intrinsics K_p (Eq. 6) project it, the error in patch pixels, and a matplotlib
    figure showing both.
    """
    import matplotlib.pyplot as plt  # lazy: matplotlib is loaded only when a figure is drawn


    H, W = camera.height, camera.width
    Xt = torch.as_tensor(np.asarray(X, float).reshape(1, 3))
    P = to_tensors([camera], dtype=torch.float64)["P"]
    uv = project(P, Xt)[0, 0]
    image = gaussian_heatmaps(uv.view(1, 1, 2), (H, W), sigma_px).float()
    b = torch.tensor([box], dtype=torch.float32)
    b[0, 2:] = ((2 * uv + 1) / torch.tensor([W, H], dtype=torch.float64) - 1).float() + b[0, 2:]
    patch = crop_patches(image, b, patch_size)[0, 0].double()
    vs, us = torch.meshgrid(torch.arange(patch_size, dtype=torch.float64), torch.arange(patch_size, dtype=torch.float64), indexing="ij")
    found = torch.stack([(patch * us).sum(), (patch * vs).sum()]) / patch.sum()
    Kp = crop_intrinsics(torch.as_tensor(camera.K), b[0].double(), patch_size, (H, W))
    Pp = Kp @ torch.cat([torch.as_tensor(camera.R), torch.as_tensor(camera.t)[:, None]], 1)
    predicted = project(Pp[None], Xt)[0, 0]
    err = float((found - predicted).norm())

    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    axes[0].imshow(image[0, 0], cmap="gray")
    sx, sy, ux, uy = b[0].tolist()
    x0, x1 = W / 2 * (ux - sx + 1) - 0.5, W / 2 * (ux + sx + 1) - 0.5
    y0, y1 = H / 2 * (uy - sy + 1) - 0.5, H / 2 * (uy + sy + 1) - 0.5
    axes[0].plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], "y-")
    axes[0].set_title("full image, dot and crop box")
    axes[1].imshow(patch, cmap="gray")
    axes[1].plot(*found.tolist(), "g+", ms=14, label="found in patch")
    axes[1].plot(*predicted.tolist(), "rx", ms=10, label="projected with K_p")
    axes[1].legend(loc="lower right", fontsize=8)
    axes[1].set_title(f"patch {patch_size}x{patch_size}: error {err:.3f} px")
    for a in axes:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return {"image": image[0, 0].numpy(), "patch": patch.numpy(), "found": found.numpy(), "predicted": predicted.numpy(),
            "error_px": err, "K_p": Kp.numpy(), "figure": fig}
