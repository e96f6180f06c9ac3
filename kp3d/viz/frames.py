"""Browse multi-view frames and their backgrounds (notebook 01).

``MultiViewFrameBrowser(dataset).update(frame, view)`` redraws one matplotlib figure: the top row
shows every view of a frame (with the ground-truth skeleton when asked), the bottom row the chosen
view, its estimated (median) background, the true background when the data set has one, and the
error between the two. In a notebook, wire ``update`` to two ipywidgets sliders.

Example:
    >>> from kp3d.viz.frames import MultiViewFrameBrowser  # doctest: +SKIP
    >>> browser = MultiViewFrameBrowser(dataset)  # doctest: +SKIP
    >>> fig = browser.update(frame=10, view=2)  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np


def _hwc(x) -> np.ndarray:
    """(3, H, W) tensor/array in [0, 1] -> (H, W, 3) numpy for imshow."""
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return np.clip(np.moveaxis(x, 0, -1), 0, 1)


class MultiViewFrameBrowser:
    """Figure with all views of a frame and one view's background estimate.

    Args:
        dataset: any kp3d data set (sample dict of docs/architecture.md).
        show_gt: draw the ground-truth 2D skeleton over the views (labels are for display only).
        figsize: matplotlib figure size in inches.
    """

    def __init__(self, dataset, show_gt: bool = True, figsize: tuple[float, float] = (12.0, 6.0)):
        import matplotlib.pyplot as plt

        if len(dataset) == 0:
            raise ValueError("MultiViewFrameBrowser needs a non-empty data set")
        self.dataset = dataset
        self.show_gt = show_gt
        self.n_views = dataset[0]["images"].shape[0]
        self.fig, self.axes = plt.subplots(2, max(self.n_views, 4), figsize=figsize)
        self.frame, self.view = 0, 0

    def update(self, frame: int = 0, view: int = 0):
        """Redraw for ``frame`` (data set index) and ``view``; returns the figure."""
        from data_utils.skeleton import H36M_BONES

        if not 0 <= frame < len(self.dataset):
            raise IndexError(f"frame {frame} out of range: the data set has {len(self.dataset)} frames")
        if not 0 <= view < self.n_views:
            raise IndexError(f"view {view} out of range: the data set has {self.n_views} views")
        self.frame, self.view = frame, view
        s = self.dataset[frame]
        info = self.dataset.frame_info(frame) if hasattr(self.dataset, "frame_info") else {}
        for ax in self.axes.ravel():
            ax.clear()
            ax.set_axis_off()
        gt = s.get("gt", {})
        for v in range(self.n_views):
            ax = self.axes[0, v]
            ax.imshow(_hwc(s["images"][v]))
            if self.show_gt and "joints_2d" in gt:
                j = gt["joints_2d"][v].numpy()
                for p, c in H36M_BONES:
                    ax.plot(j[[p, c], 0], j[[p, c], 1], "-", color="cyan", lw=0.8)
            ax.set_title(f"view {v}" + (" (selected)" if v == view else ""), fontsize=9)
        img, est = _hwc(s["images"][view]), _hwc(s["backgrounds"][view])
        row = [(img, f"view {view}"), (est, "median background")]
        if "backgrounds" in gt:
            true = _hwc(gt["backgrounds"][view])
            err = np.abs(est - true).mean(-1)
            row += [(true, "true background"), (err, f"|median - true| (max {err.max():.2f})")]
        else:
            row += [(np.abs(img - est).mean(-1), "|image - median|")]
        for k, (im, title) in enumerate(row):
            ax = self.axes[1, k]
            ax.imshow(im, cmap="magma" if im.ndim == 2 else None, vmin=0, vmax=0.25 if im.ndim == 2 else None)
            ax.set_title(title, fontsize=9)
        self.fig.suptitle(" ".join(f"{k}={v}" for k, v in info.items()) or f"frame {frame}", fontsize=10)
        self.fig.tight_layout()
        return self.fig


def plot_background_convergence(curves: dict, ax=None, reference: str = "true background"):
    """Background PSNR against the number of frames in the median.

    Args:
        curves: label -> dict(counts (K,), psnr (K,)) as returned by ``data_utils.background.convergence``.
        reference: what the PSNR is measured against (the y label), e.g. "median of all frames" on a
            rig without an empty-scene image (``data_utils.datasets.view_sequence``).
    Returns:
        the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, c in curves.items():
        ax.plot(c["counts"], c["psnr"], "o-", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("frames in the median")
    ax.set_ylabel(f"PSNR vs {reference} (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax.figure


def plot_error_maps(estimates: dict, truth: np.ndarray, vmax: float = 0.25):
    """One panel per estimate: the mean absolute error map against ``truth`` ((H, W, 3) in [0, 1])."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(estimates), figsize=(3.2 * len(estimates), 3.2), squeeze=False)
    for ax, (label, est) in zip(axes[0], estimates.items()):
        err = np.abs(np.asarray(est, np.float64) - truth).mean(-1)
        im = ax.imshow(err, cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(f"{label}\nmean {err.mean():.3f}", fontsize=9)
        ax.set_axis_off()
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    return fig
