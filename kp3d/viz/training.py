"""Figures of the training notebooks (02 image reconstruction, 04 full training).

- :class:`ReconstructionPanel` ``.update(frame, view)``: input with the detector's box, patch p,
  decoded patch D_p, mask M_p, blended reconstruction I~ (Eq. 2) and its error, for one view.
- :class:`KeypointsPanel` ``.update(frame)``: soft-argmax (dots) and reprojected (crosses) keypoints on
  every view, and the triangulated 3D keypoints beside the ground-truth skeleton (display only).
- :class:`KeypointProgress` ``.update(step)``: the same at the run's checkpoint of training step
  ``step`` (one of ``.steps``), to watch the keypoints form as training proceeds.
- :class:`MaskComparison` ``.update(frame, view)``: the image decoder's mask M and the mask the blend
  asks for given D_p, beside |I - B| (the background reduction, thresholded, cleaned) and the
  ground-truth mask, each with its IoU.
- :func:`plot_loss_curves`: losses and diagnostics from a run's metrics.csv.

All return matplotlib figures; notebooks wire ``update`` to ipywidgets sliders. The panels' figures
are ``matplotlib.figure.Figure`` objects that pyplot does not track: the notebook shows each one once
(``kp3d.viz.widgets.sliders``), whatever the caller's backend, and none is left open.

Example:
    >>> from kp3d.viz.training import ReconstructionPanel           # doctest: +SKIP
    >>> fig = ReconstructionPanel(model, dataset).update(frame=0, view=1)   # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from data_utils.skeleton import H36M_BONES
from kp3d.checkpoint import list_checkpoints, load_model
from kp3d.mask_figures import BLEND_OPTIMAL, MASKS, MaskCounts, frame_masks
from kp3d.train import read_metrics, select_views


def _hwc(x) -> np.ndarray:
    x = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.clip(np.moveaxis(x, 0, -1), 0, 1)


@torch.no_grad()
def predict(model, sample: dict, keypoints: bool = True) -> dict[str, np.ndarray]:
    """Run ``model`` (eval mode) on one data set sample; returns numpy arrays without the batch dim.

    The views ``model.cfg.views`` are selected first, so view v of the result is the v-th of them.
    """
    batch = torch.utils.data.default_collate([sample])
    batch = select_views(batch, model.cfg.views)
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = model(*(batch[k].to(dev) for k in ("images", "backgrounds", "K", "R", "t")), keypoints=keypoints)
    model.train(was_training)
    res = {k: v[0].float().cpu().numpy() for k, v in out.items()}
    res["images"] = batch["images"][0].numpy()
    res["backgrounds"] = batch["backgrounds"][0].numpy()
    if "gt" in batch:
        res.update({f"gt_{k}": v[0].numpy() for k, v in batch["gt"].items()})
    return res


class _ViewPanel:
    """A row of ``TITLES`` panels for one view of one frame; subclasses draw them in ``update``."""

    TITLES: tuple[str, ...] = ()

    def __init__(self, model, dataset, figsize):
        from matplotlib.figure import Figure  # lazy: matplotlib is loaded only when a figure is drawn

        if len(dataset) == 0:
            raise ValueError(f"{type(self).__name__} needs a non-empty data set")
        self.model, self.dataset = model, dataset
        self.n_views = len(model.cfg.views)
        self.fig = Figure(figsize=figsize)
        self.axes = self.fig.subplots(1, len(self.TITLES))

    def _check(self, frame: int, view: int) -> None:
        if not 0 <= frame < len(self.dataset):
            raise IndexError(f"frame {frame} out of range: the data set has {len(self.dataset)} frames")
        if not 0 <= view < self.n_views:
            raise IndexError(f"view {view} out of range: the model uses {self.n_views} views")


class MaskComparison(_ViewPanel):
    """The masks a keypoint target can come from, side by side for one view (notebook 02, Table 6).

    From left to right: the frame, the image decoder's mask M > 0.5 (M_p un-cropped), the mask the
    blend asks for given the decoded patch D_p (``kp3d.mask_figures.blend_optimal_mask``, > 0.5: where
    it leaves out the person, the reconstruction does not ask M_p for it), the background reduction
    |I - B| / max > 0.5, |I - B| above the configuration's threshold, the same cleaned and freed of the
    floor shadow (``kp3d.losses.foreground_mask``) and the ground-truth mask; each titled with its IoU
    against the ground truth (``kp3d.mask_figures``). A model without an image decoder has neither
    M_p nor D_p: those two panels say so.

    Args:
        model: a :class:`kp3d.model.KeypointModel` (its ``cfg`` sets the threshold and cleanup).
        dataset: a data set of the sample contract with ``gt["masks"]`` (the synthetic set).
    """

    TITLES = ("frame", "M_p > 0.5", "the blend asks for", "|I - B| / max > 0.5", "|I - B| > thr.",
              "cleaned, no shadow", "GT mask")

    def __init__(self, model, dataset, figsize=(17.0, 2.9)):
        super().__init__(model, dataset, figsize)
        self.ious: dict[str, float] = {}

    def update(self, frame: int = 0, view: int = 0):
        """Redraw for data set index ``frame`` and view ``view``; returns the figure (``.ious`` holds the IoUs)."""
        self._check(frame, view)
        r = predict(self.model, self.dataset[frame], keypoints=False)
        if "gt_masks" not in r:
            raise ValueError("MaskComparison needs ground-truth masks (the synthetic set has them)")
        img = torch.from_numpy(r["images"][view])[None]
        bg = torch.from_numpy(r["backgrounds"][view])[None]  # the estimated (median) background the model reads
        gt = torch.from_numpy(r["gt_masks"][view])[None].float()
        pred, dec, box = ((torch.from_numpy(r[k][view])[None] for k in ("mask", "patch_recon", "box"))
                          if self.model.cfg.image_reconstruction else (None, None, None))
        masks = frame_masks(self.model.cfg, img, bg, pred, dec, box)
        names = ("pred", BLEND_OPTIMAL, *MASKS[1:])
        self.ious = {n: MaskCounts.of(masks[n], gt).figures()["iou"] for n in names if n in masks}
        panels = [r["images"][view]] + [masks[n][0].numpy() if n in masks else None for n in names] + [gt[0].numpy()]
        titles = ([self.TITLES[0]] + [f"{t}\nIoU {self.ious[n]:.2f}" if n in masks else f"{t}\n(no image decoder)"
                                       for t, n in zip(self.TITLES[1:6], names)] + [self.TITLES[6]])
        for ax, title, p in zip(self.axes, titles, panels):
            ax.clear()
            ax.set_axis_off()
            ax.set_title(title, fontsize=9)
            if p is not None:
                ax.imshow(p[0], cmap="gray", vmin=0, vmax=1) if p.shape[0] == 1 else ax.imshow(_hwc(p))
        self.fig.suptitle(f"frame {frame}, view {view}: the masks against the ground truth", fontsize=10)
        return self.fig


def _box_corners(box: np.ndarray, H: int, W: int) -> tuple[float, float, float, float]:
    """(s_x, s_y, u_x, u_y) -> (x0, y0, width, height) in OpenCV pixels for a Rectangle."""
    sx, sy, ux, uy = box
    x0 = W / 2 * (ux - sx + 1) - 0.5
    y0 = H / 2 * (uy - sy + 1) - 0.5
    return x0, y0, W * sx, H * sy


class ReconstructionPanel(_ViewPanel):
    """The image-reconstruction path of one view (notebook 02).

    Args:
        model: a :class:`kp3d.model.KeypointModel`.
        dataset: a data set of the sample contract.
    """

    TITLES = ("input + box", "patch p", "decoded D_p", "mask M_p", "reconstruction I~", "|I - I~|")

    def __init__(self, model, dataset, figsize=(15.0, 3.0)):
        super().__init__(model, dataset, figsize)
        self.last: dict | None = None

    def update(self, frame: int = 0, view: int = 0):
        """Redraw for data set index ``frame`` and view ``view``; returns the figure."""
        from matplotlib.patches import Rectangle  # lazy: matplotlib is loaded only when a figure is drawn

        self._check(frame, view)
        r = predict(self.model, self.dataset[frame], keypoints=False)
        self.last = r
        img = r["images"][view]
        H, W = img.shape[-2:]
        panels = (img, r["patch"][view], r["patch_recon"][view], r["patch_mask"][view],
                  r["recon"][view], np.abs(img - r["recon"][view]))
        for ax, title, p in zip(self.axes, self.TITLES, panels):
            ax.clear()
            ax.set_axis_off()
            ax.set_title(title, fontsize=9)
            if p.shape[0] == 1:
                ax.imshow(p[0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(_hwc(p))
        x0, y0, w, h = _box_corners(r["box"][view], H, W)
        self.axes[0].add_patch(Rectangle((x0, y0), w, h, fill=False, color="yellow", lw=1.5))
        err = float(np.mean((img - r["recon"][view]) ** 2))
        self.fig.suptitle(f"frame {frame}, view {view}: box scale ({r['box'][view][0]:.2f}, {r['box'][view][1]:.2f}), "
                          f"pixel MSE {err:.4f}", fontsize=10)
        return self.fig


def _draw_keypoints(fig, axes, ax3d, r: dict, title: str) -> None:
    from matplotlib import colormaps  # lazy: matplotlib is loaded only when a figure is drawn

    V = r["images"].shape[0]
    N = r["kp2d"].shape[1]
    colours = colormaps["hsv"](np.linspace(0, 1, N, endpoint=False))
    for v, ax in enumerate(axes):
        ax.clear()
        ax.set_axis_off()
        if v >= V:
            continue
        ax.imshow(_hwc(r["images"][v]))
        ax.scatter(r["kp2d"][v, :, 0], r["kp2d"][v, :, 1], c=colours, s=14, edgecolors="k", linewidths=0.3)
        ax.scatter(r["kp2d_reproj"][v, :, 0], r["kp2d_reproj"][v, :, 1], c=colours, s=18, marker="x")
        ax.set_title(f"view {v}", fontsize=9)
    ax3d.clear()
    X = r["kp3d"]
    ax3d.scatter(X[:, 0], X[:, 1], X[:, 2], c=colours, s=16)
    labelled = "gt_joints_3d" in r
    if labelled:
        J = r["gt_joints_3d"]
        for a, b in H36M_BONES:
            ax3d.plot(*J[[a, b]].T, color="gray", lw=1)
        pts = np.concatenate([X, J])
    else:
        pts = X
    c, half = pts.mean(0), max(float(np.ptp(pts, axis=0).max()) / 2, 100.0)
    ax3d.set_xlim(c[0] - half, c[0] + half)
    ax3d.set_ylim(c[1] - half, c[1] + half)
    ax3d.set_zlim(c[2] - half, c[2] + half)
    ax3d.set_xlabel("x (mm)", fontsize=7, labelpad=-6)
    ax3d.set_ylabel("y (mm)", fontsize=7, labelpad=-6)
    ax3d.set_zlabel("z (mm)", fontsize=7, labelpad=-6)
    ax3d.tick_params(labelsize=6, pad=-2)
    ax3d.set_title("3D keypoints (world)" + ("; grey: GT skeleton" if labelled else ""), fontsize=9)
    fig.suptitle(title, fontsize=10)


class KeypointsPanel:
    """Keypoints of one frame on every view and in 3D (notebook 04).

    Dots: soft-argmax keypoints x; crosses: reprojected x^ (they coincide when the views agree);
    the same colour is the same keypoint in every view.
    """

    def __init__(self, model, dataset, figsize=(15.0, 3.6)):
        from matplotlib.figure import Figure  # lazy: matplotlib is loaded only when a figure is drawn

        self.model, self.dataset = model, dataset
        V = len(model.cfg.views)
        self.fig = Figure(figsize=figsize)
        self.axes = [self.fig.add_subplot(1, V + 1, v + 1) for v in range(V)]
        self.ax3d = self.fig.add_subplot(1, V + 1, V + 1, projection="3d")
        self.last: dict | None = None

    def update(self, frame: int = 0, title: str | None = None):
        if not 0 <= frame < len(self.dataset):
            raise IndexError(f"frame {frame} out of range: the data set has {len(self.dataset)} frames")
        r = predict(self.model, self.dataset[frame])
        self.last = r
        _draw_keypoints(self.fig, self.axes, self.ax3d, r, title or f"frame {frame}")
        return self.fig


class KeypointProgress:
    """Keypoints of one frame at each saved checkpoint of a run (``checkpoints/step_*.pt``)."""

    def __init__(self, run_dir: str | Path, dataset, frame: int = 0, figsize=(15.0, 3.6)):
        self.paths = list_checkpoints(run_dir)
        if not self.paths:
            raise FileNotFoundError(f"{run_dir} has no checkpoints/step_*.pt yet")
        self.dataset, self.frame = dataset, frame
        model, _ = load_model(self.paths[0])
        self.panel = KeypointsPanel(model, dataset, figsize)
        self.fig = self.panel.fig
        self._cache: dict[int, dict] = {}

    @property
    def steps(self) -> list[int]:
        return [int(p.stem.split("_")[1]) for p in self.paths]

    def update(self, index: int | None = None, *, step: int | None = None):
        """Draw the checkpoint of training step ``step`` (one of :attr:`steps`, what a slider offers),
        or the ``index``-th checkpoint (python indexing over :attr:`steps`); default the last."""
        if step is not None and index is not None:
            raise TypeError("pass step or index, not both")
        if step is not None:
            if step not in self.steps:
                raise ValueError(f"no checkpoint at step {step}: the run saved steps {self.steps}")
            index = self.steps.index(step)
        index = range(len(self.paths))[-1 if index is None else index]
        if index not in self._cache:
            model, _ = load_model(self.paths[index])
            self._cache[index] = predict(model, self.dataset[self.frame])
        _draw_keypoints(self.fig, self.panel.axes, self.panel.ax3d, self._cache[index],
                        f"frame {self.frame} at step {self.steps[index]}")
        return self.fig


def plot_loss_curves(metrics, warmup_iters: int | None = None):
    """Losses (left) and diagnostics (right) against the step.

    Args:
        metrics: a run dir, a metrics.csv path, or the dict of :func:`kp3d.train.read_metrics`.
        warmup_iters: draw a vertical line where the keypoint losses start.
    Returns:
        the matplotlib figure.
    """
    import matplotlib.pyplot as plt  # lazy: matplotlib is loaded only when a figure is drawn

    m = metrics if isinstance(metrics, dict) else read_metrics(metrics)
    if len(m["step"]) == 0:
        raise ValueError("no metrics rows yet")
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    s = m["step"]
    for k in ("total", "pixel", "perceptual", "mask", "coverage", "centering", "concentration"):
        y = m.get(k)  # "concentration" is absent from runs logged before it existed
        if y is not None and np.isfinite(y).any() and np.nanmax(np.abs(y)) > 0:
            axes[0].plot(s, y, label=k)
    axes[0].set_yscale("log")
    axes[0].set_title("losses (unweighted)")
    for k, ax in (("kp_spread_px", axes[1]), ("reproj_err_px", axes[1])):
        if np.isfinite(m[k]).any():
            ax.plot(s, m[k], label=k)
    axes[1].set_title("keypoints (pixels): spread, reprojection error")
    for k in ("kp_in_pred_mask", "kp_in_gt_mask", "mask_iou_gt", "pred_mask_frac", "box_scale"):
        if np.isfinite(m[k]).any():
            axes[2].plot(s, m[k], label=k)
    axes[2].set_title("fractions")
    axes[2].set_ylim(0, 1.05)
    for ax in axes:
        ax.set_xlabel("step")
        if warmup_iters:
            ax.axvline(warmup_iters, color="gray", ls="--", lw=1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
