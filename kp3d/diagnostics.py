"""Diagnostics logged during training (the failure modes of docs/recipe.md, "Why did the
image decoder's mask collapse?").

- ``kp_spread_px``: mean pairwise distance between the reprojected keypoints of a view, full-image
  pixels. Near 0 = collapse (all keypoints on one spot, failure modes 1 and 5).
- ``kp_in_pred_mask``: fraction of reprojected keypoints on the image decoder's own mask (M_p > 0.5).
- ``kp_in_gt_mask``: the same against the ground-truth mask (only when the batch has ``gt``).
- ``reproj_err_px``: mean distance between soft-argmax and reprojected keypoints, full-image pixels
  (multi-view consistency: small = the views agree).
- ``mask_iou_gt``: IoU of the un-cropped decoder mask (M > 0.5) with the GT mask (mean over views);
  ``mask_precision_gt`` / ``mask_recall_gt``: its precision and recall, pooled over the batch's views
  (``kp3d.mask_figures`` measures the same over a whole split). In training these are frames the
  model learns from: rung Ma logs about 0.76 at step 3,000 where its test views read 0.66-0.69.
- ``pred_mask_frac``: mean of M_p (the mask shrinking to nothing is failure mode 4).
- ``box_scale``: mean (s_x + s_y) / 2.

Example:
    >>> import torch
    >>> mean_pairwise_distance(torch.tensor([[[0.0, 0.0], [3.0, 4.0]]])).item()
    5.0
"""
from __future__ import annotations

import torch


def mean_pairwise_distance(x: torch.Tensor) -> torch.Tensor:
    """Mean distance over all pairs n != m.  x: (..., N, 2) -> (...)."""
    if x.ndim < 2 or x.shape[-1] != 2:
        raise ValueError(f"x: expected (..., N, 2), got {tuple(x.shape)}")
    N = x.shape[-2]
    if N < 2:
        return x.new_zeros(x.shape[:-2])
    d = torch.cdist(x.float(), x.float())  # (..., N, N)
    return d.sum((-1, -2)) / (N * (N - 1))


def fraction_inside(x: torch.Tensor, mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Fraction of points whose nearest pixel has mask > threshold (outside the map counts as out).

    Args:
        x: (B, N, 2) pixels of ``mask``'s frame (OpenCV centres).
        mask: (B, 1, H, W).
    Returns:
        scalar tensor in [0, 1].
    """
    if x.ndim != 3 or mask.ndim != 4 or mask.shape[0] != x.shape[0]:
        raise ValueError(f"fraction_inside: expected x (B, N, 2) and mask (B, 1, H, W), got {tuple(x.shape)}, {tuple(mask.shape)}")
    H, W = mask.shape[-2:]
    u = x[..., 0].round().long()
    v = x[..., 1].round().long()
    valid = (u >= 0) & (u < W) & (v >= 0) & (v < H)
    flat = mask[:, 0].flatten(1)  # (B, H*W)
    idx = (v.clamp(0, H - 1) * W + u.clamp(0, W - 1))
    vals = torch.gather(flat, 1, idx)
    return ((vals > threshold) & valid).float().mean()


def mask_iou(pred: torch.Tensor, gt: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Mean IoU of binarised masks.  pred, gt: (B, 1, H, W) -> scalar (empty union counts as 1)."""
    if pred.shape != gt.shape:
        raise ValueError(f"mask_iou: pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ")
    p, g = pred > threshold, gt > 0.5
    inter = (p & g).flatten(1).sum(1).float()
    union = (p | g).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).mean()


@torch.no_grad()
def compute_diagnostics(out: dict, batch: dict) -> dict[str, float]:
    """All diagnostics of one forward pass (see the module docstring). Keypoint entries need the
    keypoint outputs; GT entries need ``batch["gt"]["masks"]``."""
    box = out["box"]
    B, V = box.shape[:2]
    BV = B * V
    res: dict[str, float] = {
        "box_scale": float(box[..., :2].mean()),
        "pred_mask_frac": float(out["patch_mask"].mean()),
    }
    gt_masks = batch.get("gt", {}).get("masks") if isinstance(batch.get("gt"), dict) else None
    if gt_masks is not None:
        H, W = gt_masks.shape[-2:]
        m, g = out["mask"].reshape(BV, 1, H, W) > 0.5, gt_masks.reshape(BV, 1, H, W) > 0.5
        res["mask_iou_gt"] = float(mask_iou(m.float(), g.float()))
        inter = float((m & g).sum())  # pooled over the batch's views, as kp3d.mask_figures
        res["mask_precision_gt"] = inter / max(float(m.sum()), 1.0)
        res["mask_recall_gt"] = inter / max(float(g.sum()), 1.0)
    if "kp2d_reproj" in out:
        xr = out["kp2d_reproj"].reshape(BV, -1, 2)
        xs = out["kp2d"].reshape(BV, -1, 2)
        res["kp_spread_px"] = float(mean_pairwise_distance(xr).mean())
        res["reproj_err_px"] = float((xr - xs).norm(dim=-1).mean())
        P = out["patch_mask"].shape[-1]
        res["kp_in_pred_mask"] = float(fraction_inside(out["kp2d_reproj_patch"].reshape(BV, -1, 2), out["patch_mask"].reshape(BV, 1, P, P)))
        if gt_masks is not None:
            res["kp_in_gt_mask"] = float(fraction_inside(xr, gt_masks.reshape(BV, 1, H, W)))
    return res
