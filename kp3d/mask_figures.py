"""How well a mask finds the person: IoU, precision, recall and the share off the person.

The masks compared (Sec. 3.2 and Table 6 of the paper) are the image decoder's own mask M_p
(un-cropped to the frame, > 0.5), the background reduction |I - B| (normalised by its maximum,
> 0.5; Table 6's target), |I - B| above the configuration's threshold as it is ("raw"), and the
same closed, opened and freed of the floor shadow as the configuration says ("cleaned",
``kp3d.losses.foreground_mask``). Each is held against the ground-truth mask of the synthetic set.
With a model, one more row is the ceiling its crop puts on M_p: the ground-truth mask cropped to the
P x P patch through the model's box and pasted back as M_p is (Eq. 2's un-crop), > 0.5. With an
image decoder, another is the mask the blend asks for (:func:`blend_optimal_mask`): given the decoded
patch D_p, the M in [0, 1] that minimises Eq. 10's squared error at each pixel, > 0.5. No mask
decoder, however sharp, lowers the reconstruction error below it, so where it misses the person the
reconstruction does not ask for the person.

Figures are pooled over all the views measured (sums of pixels, not a mean of per-view ratios):
- ``iou`` = |A & G| / |A | G|; ``precision`` = |A & G| / |A|; ``recall`` = |A & G| / |G|;
- ``off_person`` = the share of A farther than ``near_px`` pixels (Chebyshev) from G: pixels of the
  floor or the shadow, not a blurred edge.
- where a mask misses the person (:class:`RecallCounts`): the recall of the person's pixels by their
  depth inside the outline (:data:`DEPTH_RINGS`) and by their difference from the background
  (:data:`CONTRAST_EDGES`). At 128 px a person is a few pixels wide, so much of it is outline.

Example:
    >>> import torch
    >>> g = torch.zeros(1, 1, 16, 16); g[..., 4:12, 4:12] = 1
    >>> a = torch.zeros_like(g); a[..., 4:12, 4:10] = 1; a[..., 0, 15] = 1   # a speck far off
    >>> f = MaskCounts.of(a, g).figures()
    >>> round(f["precision"], 3), round(f["recall"], 3), round(f["off_person"], 3)
    (0.98, 0.75, 0.02)
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kp3d import geometry
from kp3d.cli_errors import run_entry_point
from kp3d.config import Config
from kp3d.losses import background_difference, foreground_mask
from kp3d.model import gt_masks
from kp3d.profiles import make_dataset
from kp3d.train import select_views

MASKS = ("pred", "img-bg", "img-bg-raw", "img-bg-cleaned")  # the keys of :func:`mask_figures`
CROP_CEILING = "gt-through-crop"  # with a model: the GT mask through its crop and back, M_p's best case
BLEND_OPTIMAL = "blend-optimal"  # with an image decoder: the per-pixel M that Eq. 10 asks for, given D_p
NEAR_PX = 2  # a predicted pixel within this many pixels of the person counts as its edge, not off it
DEPTH_RINGS = ("outline", "2-3 px in", "4+ px in")  # a person pixel's depth: 1, 2-3, >= 4 px from the background (Chebyshev)
CONTRAST_EDGES = (0.0, 0.05, 0.1, 0.2)  # bins of |I - B| (mean over RGB, [0, 1]) at a person pixel; the last is open


@dataclass
class MaskCounts:
    """Pixel counts of one mask against the ground truth, summed over views."""

    inter: float = 0.0  # |A & G|
    pred: float = 0.0  # |A|
    gt: float = 0.0  # |G|
    off: float = 0.0  # |A| farther than NEAR_PX from G

    @classmethod
    def of(cls, mask: torch.Tensor, gt: torch.Tensor, near_px: int = NEAR_PX) -> "MaskCounts":
        """Counts of ``mask`` against ``gt``.

        Args:
            mask, gt: (B, 1, H, W) float or bool; > 0.5 is foreground.
            near_px: pixels around the person that still count as on it (for ``off``).
        """
        if mask.ndim != 4 or mask.shape != gt.shape or mask.shape[1] != 1:
            raise ValueError(f"MaskCounts.of: expected mask and gt (B, 1, H, W) of one shape, got "
                             f"{tuple(mask.shape)} and {tuple(gt.shape)}")
        a, g = mask.float() > 0.5, gt.float() > 0.5
        near = F.max_pool2d(g.float(), 2 * near_px + 1, 1, near_px) > 0.5 if near_px else g
        return cls(float((a & g).sum()), float(a.sum()), float(g.sum()), float((a & ~near).sum()))

    def __add__(self, other: "MaskCounts") -> "MaskCounts":
        return MaskCounts(self.inter + other.inter, self.pred + other.pred, self.gt + other.gt, self.off + other.off)

    def figures(self) -> dict[str, float]:
        """``iou``, ``precision``, ``recall``, ``off_person`` (an empty mask has precision 0)."""
        union = self.pred + self.gt - self.inter
        return {"iou": self.inter / union if union else 1.0, "precision": self.inter / self.pred if self.pred else 0.0,
                "recall": self.inter / self.gt if self.gt else 1.0, "off_person": self.off / self.pred if self.pred else 0.0}


def depth_rings(gt: torch.Tensor) -> list[torch.Tensor]:
    """The person's pixels by depth inside its outline, one bool mask per :data:`DEPTH_RINGS` entry.

    Args:
        gt: (B, 1, H, W); > 0.5 is the person.
    Returns:
        three (B, 1, H, W) bool masks that split ``gt``: pixels with a background pixel among their 8
        neighbours (the outline), those 2-3 px in, and those 4 px in or deeper (3 x 3 erosions).
    """
    g = gt.float() > 0.5
    eroded1 = -F.max_pool2d(-g.float(), 3, 1, 1) > 0.5  # the image border counts as inside: a crop keeps it
    eroded3 = -F.max_pool2d(-g.float(), 7, 1, 3) > 0.5
    return [g & ~eroded1, eroded1 & ~eroded3, eroded3]


@dataclass
class RecallCounts:
    """Where a mask finds the person: its pixel counts by depth ring and by |I - B| bin, summed over views."""

    depth_total: tuple = (0.0,) * len(DEPTH_RINGS)
    depth_hit: tuple = (0.0,) * len(DEPTH_RINGS)
    contrast_total: tuple = (0.0,) * len(CONTRAST_EDGES)
    contrast_hit: tuple = (0.0,) * len(CONTRAST_EDGES)

    @classmethod
    def of(cls, mask: torch.Tensor, gt: torch.Tensor, difference: torch.Tensor) -> "RecallCounts":
        """Counts of ``mask`` on the person ``gt``.

        Args:
            mask, gt: (B, 1, H, W); > 0.5 is foreground.
            difference: (B, 1, H, W) |I - B| averaged over RGB, in [0, 1].
        """
        if not (mask.ndim == 4 and mask.shape == gt.shape == difference.shape and mask.shape[1] == 1):
            raise ValueError(f"RecallCounts.of: expected mask, gt and difference (B, 1, H, W) of one shape, got "
                             f"{tuple(mask.shape)}, {tuple(gt.shape)} and {tuple(difference.shape)}")
        a, g = mask.float() > 0.5, gt.float() > 0.5
        rings = depth_rings(g)
        hi = list(CONTRAST_EDGES[1:]) + [float("inf")]
        bins = [g & (difference >= lo) & (difference < h) for lo, h in zip(CONTRAST_EDGES, hi)]
        return cls(tuple(float(r.sum()) for r in rings), tuple(float((r & a).sum()) for r in rings),
                   tuple(float(b.sum()) for b in bins), tuple(float((b & a).sum()) for b in bins))

    def __add__(self, other: "RecallCounts") -> "RecallCounts":
        add = lambda x, y: tuple(p + q for p, q in zip(x, y))  # noqa: E731
        return RecallCounts(add(self.depth_total, other.depth_total), add(self.depth_hit, other.depth_hit),
                            add(self.contrast_total, other.contrast_total), add(self.contrast_hit, other.contrast_hit))

    def figures(self) -> dict[str, list[dict]]:
        """``depth`` and ``contrast``: per ring / bin its ``share`` of the person's pixels and the mask's ``recall`` there."""
        def rows(names, total, hit):
            n = sum(total)
            return [{"where": w, "share": t / n if n else 0.0, "recall": h / t if t else 1.0} for w, t, h in zip(names, total, hit)]
        labels = [f"{lo:g}-{hi:g}" for lo, hi in zip(CONTRAST_EDGES, CONTRAST_EDGES[1:])] + [f">= {CONTRAST_EDGES[-1]:g}"]
        return {"depth": rows(DEPTH_RINGS, self.depth_total, self.depth_hit),
                "contrast": rows(labels, self.contrast_total, self.contrast_hit)}


def background_reduction(images: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
    """Table 6's "background reduction" target: mean over RGB of |I - B| divided by its per-view maximum.

    Args:
        images, backgrounds: (B, 3, H, W) in [0, 1].
    Returns:
        (B, 1, H, W) in [0, 1].
    """
    d = background_difference(images, backgrounds)
    return d / d.flatten(1).amax(1).clamp_min(1e-6)[:, None, None, None]


def blend_optimal_mask(images: torch.Tensor, backgrounds: torch.Tensor, decoded: torch.Tensor,
                       inside: torch.Tensor) -> torch.Tensor:
    """The mask the blend (Eq. 2) asks for at each pixel, given the decoded image.

    ``M D + (1 - M) B`` is closest to ``I`` in squared error (Eq. 10's first term) at
    ``M = <I - B, D - B> / |D - B|^2`` (sums over RGB), clamped to [0, 1]; 0 outside the box, where
    the frame is the background whatever the mask.

    Args:
        images, backgrounds: (B, 3, H, W) in [0, 1].
        decoded: (B, 3, H, W) the decoded patch D_p un-cropped to the frame (zero outside the box).
        inside: (B, 1, H, W) the box's footprint in the frame, in [0, 1].
    Returns:
        (B, 1, H, W) in [0, 1].

    Example:
        >>> B = torch.zeros(1, 3, 4, 4); I = B.clone(); I[..., 1:3, 1:3] = 1
        >>> D = torch.full_like(B, 0.8)          # a blurred person: right inside, wrong outside
        >>> blend_optimal_mask(I, B, D, torch.ones(1, 1, 4, 4))[0, 0]
        tensor([[0., 0., 0., 0.],
                [0., 1., 1., 0.],
                [0., 1., 1., 0.],
                [0., 0., 0., 0.]])
    """
    for name, x, c in (("images", images, 3), ("backgrounds", backgrounds, 3), ("decoded", decoded, 3), ("inside", inside, 1)):
        if x.ndim != 4 or x.shape[1] != c or x.shape[0] != images.shape[0] or x.shape[-2:] != images.shape[-2:]:
            raise ValueError(f"{name}: expected ({images.shape[0]}, {c}, H, W) matching images {tuple(images.shape)}, "
                             f"got {tuple(x.shape)}")
    i_b, d_b = images.float() - backgrounds.float(), decoded.float() - backgrounds.float()
    m = (i_b * d_b).sum(1, keepdim=True) / (d_b * d_b).sum(1, keepdim=True).clamp_min(1e-8)
    return m.clamp(0, 1) * (inside > 0.5).float()


def blend_optimal_from_patch(images: torch.Tensor, backgrounds: torch.Tensor, decoded_patch: torch.Tensor,
                             box: torch.Tensor) -> torch.Tensor:
    """:func:`blend_optimal_mask` for a decoded patch still in the detector's crop.

    D_p and the box's footprint are un-cropped together (Eq. 2's S^-1), so the footprint is the one
    M_p is pasted through.

    Args:
        images, backgrounds: (B, 3, H, W) in [0, 1].
        decoded_patch: (B, 3, P, P) the decoded patch D_p (``out["patch_recon"]``).
        box: (B, 4) the detector's box (``out["box"]``).
    Returns:
        (B, 1, H, W) in [0, 1].

    Example:
        >>> I, B = torch.ones(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)   # the frame differs everywhere
        >>> box = torch.tensor([[0.5, 1.0, 0.5, 0.0]])                # (s_x, s_y, u_x, u_y): the right half
        >>> blend_optimal_from_patch(I, B, torch.ones(1, 3, 4, 4), box)[0, 0, 0].tolist()
        [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    """
    if decoded_patch.ndim != 4 or decoded_patch.shape[1] != 3 or decoded_patch.shape[0] != images.shape[0]:
        raise ValueError(f"decoded_patch: expected ({images.shape[0]}, 3, P, P), got {tuple(decoded_patch.shape)}")
    dec = decoded_patch.float()
    full = geometry.uncrop_patches(torch.cat([dec, torch.ones_like(dec[:, :1])], 1), box.float(), images.shape[-2:])
    return blend_optimal_mask(images, backgrounds, full[:, :3], full[:, 3:])


def frame_masks(cfg: Config, images: torch.Tensor, backgrounds: torch.Tensor, pred: torch.Tensor | None = None,
                decoded_patch: torch.Tensor | None = None, box: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The masks of :data:`MASKS` for some views (``pred`` only when given), and :data:`BLEND_OPTIMAL`
    when the decoded patch and its box are given.

    Args:
        images, backgrounds: (B, 3, H, W) in [0, 1].
        pred: (B, 1, H, W) the image decoder's mask M un-cropped to the frame (``out["mask"]``), or None.
        decoded_patch: (B, 3, P, P) the decoded patch D_p (``out["patch_recon"]``), or None.
        box: (B, 4) the box D_p was decoded in (``out["box"]``); needed with ``decoded_patch``.
    Returns:
        name -> (B, 1, H, W) float in {0, 1}.
    """
    out = {
        "img-bg": (background_reduction(images, backgrounds) > 0.5).float(),
        "img-bg-raw": foreground_mask(images, backgrounds, cfg.box_prior_threshold),
        "img-bg-cleaned": foreground_mask(images, backgrounds, cfg.box_prior_threshold, cfg.foreground_cleanup, cfg.shadow_chroma),
    }
    if pred is not None:
        out = {"pred": (pred.float() > 0.5).float(), **out}
    if decoded_patch is not None:
        if box is None:
            raise ValueError("frame_masks: decoded_patch needs the box it was decoded in (out['box'])")
        out[BLEND_OPTIMAL] = (blend_optimal_from_patch(images, backgrounds, decoded_patch, box) > 0.5).float()
    return out


def _labelled_batches(dataset, views, every: int, batch_size: int, caller: str):
    """Every ``every``-th frame of ``dataset`` in batches, the ``views`` selected: yields (batch, gt masks
    (B, V, 1, H, W)); a data set without ground-truth masks raises, naming ``caller``."""

    if every < 1:
        raise ValueError(f"every={every}: expected a frame step >= 1")
    idx = list(range(0, len(dataset), every))
    for batch in torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, idx), batch_size=batch_size):
        b = select_views(batch, views)
        gt = gt_masks(b)
        if gt is None:
            raise ValueError(f"{caller}: the data set has no ground-truth masks (only the synthetic set has them)")
        yield b, gt


def mask_figures(model, dataset, cfg: Config | None = None, every: int = 8, batch_size: int = 16,
                 device: str | torch.device = "cpu") -> dict[str, dict[str, float]]:
    """The figures of each mask of :data:`MASKS` over every ``every``-th frame of ``dataset``.

    Args:
        model: a :class:`kp3d.model.KeypointModel` (its detector or fixed crop places M_p); None: only
            the |I - B| masks.
        dataset: a data set whose samples carry ``gt["masks"]`` (the synthetic set).
        cfg: the configuration whose threshold, cleanup and shadow test the |I - B| masks use
            (default ``model.cfg``) and whose ``views`` are measured.
    Returns:
        mask name -> :meth:`MaskCounts.figures`, plus ``"views"``: the number of views measured,
        ``"recall_where"``: mask name -> :meth:`RecallCounts.figures` (where each mask misses the
        person); with a model also :data:`CROP_CEILING`, the GT mask through the model's crop and back,
        and with its image decoder :data:`BLEND_OPTIMAL`, the mask Eq. 10 asks for given D_p.
    """
    cfg = cfg if cfg is not None else model.cfg
    sums: dict[str, MaskCounts] = {}
    where: dict[str, RecallCounts] = {}
    n_views = 0
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    try:
        with torch.no_grad():
            for b, gt in _labelled_batches(dataset, cfg.views, every, batch_size, "mask_figures"):
                imgs, bgs = b["images"].to(device), b["backgrounds"].to(device)
                B, V, _, H, W = imgs.shape
                pred = dec = box = None
                if model is not None:
                    out = model(imgs, bgs, b["K"].to(device), b["R"].to(device), b["t"].to(device), keypoints=False,
                                masks=gt.to(device))
                    P = model.cfg.patch_size
                    pred = out["mask"].reshape(B * V, 1, H, W).cpu()
                    box = out["box"].reshape(B * V, 4).float().cpu()
                    if model.cfg.image_reconstruction:
                        dec = out["patch_recon"].reshape(B * V, 3, P, P).cpu()
                frames, backs = imgs.flatten(0, 1).cpu(), bgs.flatten(0, 1).cpu()  # (B * V, 3, H, W), once for every mask
                masks = frame_masks(cfg, frames, backs, pred, dec, box)
                g = gt.reshape(B * V, 1, H, W).float()
                if box is not None:
                    masks[CROP_CEILING] = geometry.uncrop_patches(geometry.crop_patches(g, box, P), box, (H, W))
                diff = background_difference(frames, backs)
                for name, m in masks.items():
                    sums[name] = sums.get(name, MaskCounts()) + MaskCounts.of(m, g)
                    where[name] = where.get(name, RecallCounts()) + RecallCounts.of(m, g, diff)
                n_views += B * V
    finally:
        if model is not None and was_training:
            model.train()
    res: dict = {name: c.figures() for name, c in sums.items()}
    res["views"] = n_views
    res["recall_where"] = {name: c.figures() for name, c in where.items()}
    return res


def format_mask_figures(res: dict) -> str:
    """The figures of :func:`mask_figures` as a small table, one mask a line."""
    labels = {"pred": "M_p > 0.5 (the image decoder's mask)", "img-bg": "|I - B| / max > 0.5 (background reduction)",
              "img-bg-raw": "|I - B| > threshold", "img-bg-cleaned": "|I - B| > threshold, cleaned, no shadow",
              CROP_CEILING: "GT mask through the crop and back (M_p's best)",
              BLEND_OPTIMAL: "the mask the blend asks for, given D_p"}
    lines = [f"masks against the GT mask over {res['views']} views   IoU   precision  recall  off the person"]
    for name in (*MASKS, CROP_CEILING, BLEND_OPTIMAL):
        if name in res:
            f = res[name]
            lines.append(f"  {labels[name]:44s} {f['iou']:.3f}   {f['precision']:.3f}    {f['recall']:.3f}   {100 * f['off_person']:.1f}%")
    short = {"pred": "M_p", BLEND_OPTIMAL: "the blend's mask", "img-bg-cleaned": "cleaned |I - B|"}
    for name in (n for n in short if n in res.get("recall_where", {})):
        w = res["recall_where"][name]
        for key, title in (("depth", "by depth in the person"), ("contrast", "by |I - B| at the pixel")):
            cells = ", ".join(f"{r['where']} ({100 * r['share']:.0f}%) {r['recall']:.2f}" for r in w[key])
            lines.append(f"  recall of {short[name]} {title} (share of the person): {cells}")
    return "\n".join(lines)


def threshold_figures(dataset, settings: list[tuple[float, int, float]], views=(0, 1, 2, 3), every: int = 8,
                      batch_size: int = 16) -> list[dict]:
    """The figures of |I - B| masks with other settings than a configuration's, on the same views.

    Args:
        dataset: a data set with ``gt["masks"]``.
        settings: (threshold, cleanup, shadow_chroma) triples, as ``Config.box_prior_threshold``,
            ``Config.foreground_cleanup`` and ``Config.shadow_chroma``.
    Returns:
        one dict per setting: ``threshold``, ``cleanup``, ``shadow_chroma`` and the :meth:`MaskCounts.figures`.
    """
    sums = [MaskCounts() for _ in settings]
    with torch.no_grad():
        for b, gt in _labelled_batches(dataset, views, every, batch_size, "threshold_figures"):
            imgs, bgs, g = b["images"].flatten(0, 1), b["backgrounds"].flatten(0, 1), gt.flatten(0, 1)
            for i, (thr, k, chroma) in enumerate(settings):
                sums[i] = sums[i] + MaskCounts.of(foreground_mask(imgs, bgs, thr, k, chroma), g)
    return [{"threshold": t, "cleanup": k, "shadow_chroma": c, **s.figures()} for (t, k, c), s in zip(settings, sums)]


def main(argv: list[str] | None = None) -> int:
    """``python -m kp3d.mask_figures --data synthetic?seed=3``: |I - B| settings against the GT mask."""

    ap = argparse.ArgumentParser(prog="python -m kp3d.mask_figures", description=main.__doc__)
    ap.add_argument("--data", default="synthetic", help="a synthetic render, e.g. synthetic?seed=3 (the validation render)")
    ap.add_argument("--profile", default="cpu-demo")
    ap.add_argument("--split", default="test", choices=("train", "test"))
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--thresholds", default="0.04,0.05,0.1")
    ap.add_argument("--cleanups", default="0,3")
    ap.add_argument("--shadows", default="0,0.08")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    floats = lambda s: [float(x) for x in s.split(",") if x.strip()]  # noqa: E731
    settings = [(t, int(k), c) for t in floats(args.thresholds) for k in floats(args.cleanups) for c in floats(args.shadows)]
    rows = threshold_figures(make_dataset(args.data, args.profile, args.split), settings, every=args.every)
    print(f"|I - B| masks against the GT mask, {args.data} {args.split}, every {args.every}th frame, 4 views")
    print("threshold cleanup shadow   IoU   precision recall  off the person")
    for r in rows:
        print(f"  {r['threshold']:.3f}    {r['cleanup']}     {r['shadow_chroma']:.2f}   {r['iou']:.3f}   {r['precision']:.3f}   "
              f"{r['recall']:.3f}   {100 * r['off_person']:.1f}%")
    return 0


if __name__ == "__main__":

    sys.exit(run_entry_point(main))
