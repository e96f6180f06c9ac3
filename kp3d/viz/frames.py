"""Browse multi-view frames and their backgrounds (notebook 01).

``MultiViewFrameBrowser(dataset, subject).update(frame, view)`` redraws one matplotlib figure: the top row
shows every view of a frame (with the ground-truth skeleton when asked), the bottom row the chosen
view, its estimated (median) background, the true background when the data set has one, and the
error between the two. In a notebook, wire ``update`` to two ipywidgets sliders.

Example:
    >>> from kp3d.viz.frames import MultiViewFrameBrowser  # doctest: +SKIP
    >>> browser = MultiViewFrameBrowser(dataset, subject="S9")  # doctest: +SKIP
    >>> fig = browser.update(frame=10, view=2)  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from data_utils.skeleton import H36M_BONES


def _hwc(x) -> np.ndarray:
    """(3, H, W) tensor/array in [0, 1] -> (H, W, 3) numpy for imshow."""
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return np.clip(np.moveaxis(x, 0, -1), 0, 1)


class MultiViewFrameBrowser:
    """Figure with all views of a frame and one view's background estimate.

    Args:
        dataset: any kp3d data set (sample dict of docs/architecture.md).
        subject: browse only this subject's frames, by their frame number within the subject (what
            the title shows). None, or a subject the data set does not have (a rig), browses every
            sample: by frame number when those are unique (one sequence), else by data set index.
        show_gt: draw the ground-truth 2D skeleton over the views (labels are for display only).
        figsize: matplotlib figure size in inches.

    ``frames`` lists the values ``update(frame=...)`` accepts (a slider's values).
    """

    def __init__(self, dataset, subject: str | None = None, show_gt: bool = True,
                 figsize: tuple[float, float] = (12.0, 6.0)):
        from matplotlib.figure import Figure  # lazy: matplotlib is loaded only when a figure is drawn

        if len(dataset) == 0:
            raise ValueError("MultiViewFrameBrowser needs a non-empty data set")
        self.dataset = dataset
        self.show_gt = show_gt
        self.n_views = dataset[0]["images"].shape[0]
        self._index: dict[int, int] = {}  # frame number within the subject -> data set index
        if subject is not None and hasattr(dataset, "frame_info"):
            for i in range(len(dataset)):
                info = dataset.frame_info(i)
                if str(info.get("subject")) == str(subject):
                    self._index.setdefault(int(info.get("frame", i)), i)
        self.subject = subject if self._index else None
        if not self._index and hasattr(dataset, "frame_info"):  # one sequence (a rig): its frame numbers
            numbers = [int(dataset.frame_info(i).get("frame", i)) for i in range(len(dataset))]
            if len(set(numbers)) == len(numbers):
                self._index = {f: i for i, f in enumerate(numbers)}
        if not self._index:
            self._index = {i: i for i in range(len(dataset))}
        self.frames = sorted(self._index)
        # not a pyplot figure: the notebook shows it once, as an image, and nothing else shows it again
        self.fig = Figure(figsize=figsize)
        self.axes = self.fig.subplots(2, max(self.n_views, 4))
        self.frame, self.view = self.frames[0], 0

    def update(self, frame: int | None = None, view: int = 0):
        """Redraw for ``frame`` (one of :attr:`frames`; default the first) and ``view``; returns the figure."""
        frame = self.frames[0] if frame is None else int(frame)
        if frame not in self._index:
            where = f"subject {self.subject}" if self.subject else "the data set"
            raise IndexError(f"frame {frame} out of range: {where} has frames {self.frames[0]}..{self.frames[-1]} "
                             f"({len(self.frames)} frames)")
        if not 0 <= view < self.n_views:
            raise IndexError(f"view {view} out of range: the data set has {self.n_views} views")
        self.frame, self.view = frame, view
        index = self._index[frame]
        s = self.dataset[index]
        info = self.dataset.frame_info(index) if hasattr(self.dataset, "frame_info") else {}
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
            ax.set_title(title + ("\n(colour: mean abs. error, 0-0.25)" if im.ndim == 2 else ""), fontsize=9)
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
    import matplotlib.pyplot as plt  # lazy: matplotlib is loaded only when a figure is drawn

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
    import matplotlib.pyplot as plt  # lazy: matplotlib is loaded only when a figure is drawn

    fig, axes = plt.subplots(1, len(estimates), figsize=(3.2 * len(estimates), 3.2), squeeze=False)
    for ax, (label, est) in zip(axes[0], estimates.items()):
        err = np.abs(np.asarray(est, np.float64) - truth).mean(-1)
        im = ax.imshow(err, cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(f"{label}\nmean {err.mean():.3f}", fontsize=9)
        ax.set_axis_off()
    cbar = fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    cbar.set_label("mean absolute error per pixel (RGB in 0..1)", fontsize=8)
    return fig
