"""Training losses of the unsupervised model (Eq. 10-15).

L = L_reconst + gamma L_mask + delta L_coverage + eta L_centering, with
- L_reconst (Eq. 10)  = ||I - I~||^2 + beta sum_l ||Res_l(I) - Res_l(I~)||^2 over full frames;
- L_mask (Eq. 11)     = ||M~_p - M_p||^2, M~_p from the keypoints, M_p the target mask;
- L_coverage (Eq. 13) = (1/N) sum_n |1 - <H_n / sum H_n, M_p>|, H_n a Gaussian at the reprojected x^_n;
- L_centering (Eq.14) = |u - mean_n x^_n|_1, in normalised [-1, 1] image units.

Normalisation (the paper does not state it, and it sets the balance of the weights): with
``reduction="mean"`` the squared norms are averaged over pixels and channels, then over samples and
views; ``"sum"`` sums over pixels/channels and averages over samples and views. Coverage and
centering are already per-keypoint averages in [0, 1] and [0, 4].

Example:
    >>> import torch
    >>> x = torch.tensor([[[15.5, 15.5]]])             # one keypoint at the patch centre
    >>> m = torch.zeros(1, 1, 32, 32); m[..., 8:24, 8:24] = 1
    >>> round(coverage_loss(x, m, sigma_px=1.6).item(), 4)
    0.0
"""
from __future__ import annotations

import torch

from kp3d import geometry
from kp3d.config import Config, check_cleanup, check_shadow_chroma

LOSS_NAMES = ("pixel", "patch", "perceptual", "box_prior", "mask_oracle", "mask", "coverage", "centering", "concentration")


def _reduce(sq: torch.Tensor, reduction: str) -> torch.Tensor:
    """(B, ...) squared errors -> scalar: mean over everything, or sum per sample then mean."""
    if reduction == "mean":
        return sq.mean()
    if reduction == "sum":
        return sq.flatten(1).sum(1).mean()
    raise ValueError(f"reduction={reduction!r}: expected 'mean' or 'sum'")


def pixel_loss(images: torch.Tensor, recon: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """||I - I~||^2 (first term of Eq. 10).  images, recon: (B, 3, H, W)."""
    if images.shape != recon.shape:
        raise ValueError(f"pixel_loss: images {tuple(images.shape)} and recon {tuple(recon.shape)} differ")
    return _reduce((images.float() - recon.float()) ** 2, reduction)


def perceptual_loss(features, images: torch.Tensor, recon: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """sum_l ||Res_l(I) - Res_l(I~)||^2 (second term of Eq. 10, without beta).

    Args:
        features: a :class:`kp3d.perceptual.PerceptualFeatures` (frozen).
        images, recon: (B, 3, H, W) in [0, 1]. The target's features carry no gradient.
    """
    with torch.no_grad():
        ref = features(images)
    rec = features(recon)
    return sum(_reduce((a.float() - b.float()) ** 2, reduction) for a, b in zip(ref, rec))


def mask_loss(mask_from_kp: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """||M~_p - M_p||^2 (Eq. 11).  mask_from_kp, target: (B, 1, P, P)."""
    if mask_from_kp.shape != target.shape:
        raise ValueError(f"mask_loss: mask_from_kp {tuple(mask_from_kp.shape)} and target {tuple(target.shape)} differ")
    return _reduce((mask_from_kp.float() - target.float()) ** 2, reduction)


def coverage_loss(x_hat: torch.Tensor, target: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """(1/N) sum_n |1 - <H_n / sum(H_n), M_p>| (Eq. 12-13), averaged over the batch.

    Args:
        x_hat: (B, N, 2) reprojected keypoints, patch pixels.
        target: (B, 1, P, P) mask in [0, 1].
        sigma_px: Gaussian std in patch pixels.
    Returns:
        scalar in [0, 1]; 0 when every Gaussian lies inside a mask of ones.
    """
    if x_hat.ndim != 3 or x_hat.shape[-1] != 2 or target.ndim != 4 or target.shape[:2] != (x_hat.shape[0], 1):
        raise ValueError(f"coverage_loss: expected x_hat (B, N, 2) and target (B, 1, P, P), got {tuple(x_hat.shape)}, {tuple(target.shape)}")
    H = geometry.gaussian_heatmaps(x_hat.float(), tuple(target.shape[-2:]), sigma_px)  # (B, N, P, P)
    Hbar = H / H.flatten(2).sum(-1).clamp_min(1e-12)[..., None, None]
    dot = (Hbar * target.float()).flatten(2).sum(-1)  # (B, N)
    return (1.0 - dot).abs().mean()


def centering_loss(box: torch.Tensor, x_img: torch.Tensor, image_size: tuple[int, int],
                   box_only: bool = False, keypoints_only: bool = False) -> torch.Tensor:
    """|u - (1/N) sum_n x^_n|_1 (Eq. 14) in normalised [-1, 1] image units, averaged over the batch.

    The keypoints must be in FULL-IMAGE pixels: in patch pixels their mean would move with the box
    and the loss could not pull the box towards the person.

    Args:
        box: (B, 4) (s_x, s_y, u_x, u_y).
        x_img: (B, N, 2) reprojected keypoints in full-image pixels (``out["kp2d_reproj"]``).
        image_size: (H, W).
        box_only: detach the keypoints so that only the box centre moves (``Config.centering_box_only``).
        keypoints_only: detach the box so that only the keypoints move (``Config.centering_keypoints_only``).
    """
    if box.ndim != 2 or box.shape[-1] != 4 or x_img.ndim != 3 or x_img.shape[0] != box.shape[0]:
        raise ValueError(f"centering_loss: expected box (B, 4) and x_img (B, N, 2), got {tuple(box.shape)}, {tuple(x_img.shape)}")
    if box_only:
        x_img = x_img.detach()
    if keypoints_only:
        box = box.detach()
    H, W = image_size
    mean = x_img.float().mean(1)  # (B, 2) pixels
    size = torch.tensor([W, H], dtype=mean.dtype, device=mean.device)
    centre = (2 * mean + 1) / size - 1  # OpenCV pixel -> align_corners=False normalised
    return (box[:, 2:].float() - centre).abs().sum(-1).mean()


def concentration_loss(spread: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Mean spread of the keypoint maps as a fraction of the patch side (logged in metrics.csv).

    Not in the paper; a diagnostic. A flat softmax map gives Eq. 4 a weighted centroid of the whole
    patch (docs/recipe.md: the cpu-demo maps spread 14-18 px in a 64 px patch); a trained weight on
    this term sharpened the maps but did not make the keypoints carry more pose (docs/recipe.md, "Are the
    keypoint maps flat?").

    Args:
        spread: (..., N) RMS spread of each softmax map in patch pixels (``out["kp_map_spread"]``).
        patch_size: P, the patch side in pixels.

    Example:
        >>> float(concentration_loss(torch.tensor([[3.2, 6.4]]), 64))
        0.07500000298023224
    """
    if spread.ndim < 1:
        raise ValueError("concentration_loss: expected spread (..., N), got a scalar")
    if patch_size <= 0:
        raise ValueError(f"concentration_loss: patch_size must be positive, got {patch_size}")
    return spread.float().mean() / patch_size


# A cast shadow keeps at least this fraction of the background's brightness (mean over RGB); a pixel
# darker than that is taken as the person even where its hue matches the background (dark clothing).
SHADOW_MIN_BRIGHTNESS = 0.3


def shadow_mask(images: torch.Tensor, backgrounds: torch.Tensor, chroma: float) -> torch.Tensor:
    """The pixels that look like the background in shadow: darker than it, with its hue.

    A shadow dims the light falling on the floor without changing its colour, so the chromaticity
    ``(r, g, b) / (r + g + b)`` stays that of the background while the brightness drops; a person
    changes the chromaticity (or, dark clothing, the brightness below ``SHADOW_MIN_BRIGHTNESS``).

    Args:
        images, backgrounds: (B, 3, H, W) in [0, 1].
        chroma: largest L1 distance of the chromaticities still counted as shadow (> 0).
    Returns:
        (B, 1, H, W) bool (no gradient): brightness ratio I / B in [SHADOW_MIN_BRIGHTNESS, 1) and
        chromaticity distance < ``chroma``.

    Example:
        >>> bg = torch.full((1, 3, 1, 3), 0.6); img = bg.clone()
        >>> img[0, :, 0, 0] = 0.35                        # the floor, dimmed: a shadow
        >>> img[0, :, 0, 1] = torch.tensor([0.6, 0.2, 0.2])  # a red sleeve, as dark: not a shadow
        >>> shadow_mask(img, bg, 0.08)[0, 0, 0].tolist()
        [True, False, False]
    """
    if images.ndim != 4 or images.shape != backgrounds.shape or images.shape[1] != 3:
        raise ValueError(f"shadow_mask: expected images and backgrounds (B, 3, H, W) of one shape, got "
                         f"{tuple(images.shape)} and {tuple(backgrounds.shape)}")
    if not chroma > 0:
        raise ValueError(f"shadow_mask: chroma must be > 0, got {chroma}")
    eps = 1e-3  # keeps black pixels finite; their chromaticity is noise either way
    with torch.no_grad():
        i, b = images.float(), backgrounds.float()
        si, sb = i.sum(1, keepdim=True) + eps, b.sum(1, keepdim=True) + eps
        ratio = si / sb
        dist = (i / si - b / sb).abs().sum(1, keepdim=True)
        return (ratio >= SHADOW_MIN_BRIGHTNESS) & (ratio < 1) & (dist < chroma)


def foreground_mask(images: torch.Tensor, backgrounds: torch.Tensor, threshold: float = 0.1,
                    cleanup: int = 0, shadow_chroma: float = 0.0) -> torch.Tensor:
    """The pixels that differ from the background: mean over RGB of |I - B| > ``threshold``.

    Args:
        images, backgrounds: (B, 3, H, W) in [0, 1].
        cleanup: 0 = the raw threshold; an odd k >= 3 closes the mask with a k x k square (fills the
            holes where clothing matches the background) and then opens it (drops specks of sensor
            noise), ``Config.foreground_cleanup``.
        shadow_chroma: 0 = off; > 0 drops the pixels :func:`shadow_mask` takes for the floor in the
            person's shadow (before the cleanup), ``Config.shadow_chroma``.
    Returns:
        (B, 1, H, W) float in {0, 1} (no gradient).

    Example:
        >>> bg = torch.zeros(1, 3, 8, 8); img = bg.clone(); img[..., 4, 4] = 1
        >>> int(foreground_mask(img, bg).sum())
        1
        >>> int(foreground_mask(img, bg, cleanup=3).sum())  # a lone pixel is a speck
        0
    """
    if images.ndim != 4 or images.shape != backgrounds.shape or images.shape[1] != 3:
        raise ValueError(f"foreground_mask: expected images and backgrounds (B, 3, H, W) of one shape, got "
                         f"{tuple(images.shape)} and {tuple(backgrounds.shape)}")
    check_cleanup(cleanup, "foreground_mask: cleanup")
    check_shadow_chroma(shadow_chroma, "foreground_mask: shadow_chroma")
    with torch.no_grad():
        diff, shadow = _difference_and_shadow(images, backgrounds, shadow_chroma)
        return _hard_mask(diff, shadow, threshold, cleanup)


def background_difference(images: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
    """|I - B| averaged over RGB: (B, 3, H, W) images and backgrounds in [0, 1] -> (B, 1, H, W) in [0, 1]."""
    return (images.float() - backgrounds.float()).abs().mean(1, keepdim=True)


def _difference_and_shadow(images: torch.Tensor, backgrounds: torch.Tensor,
                           shadow_chroma: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`background_difference` and :func:`shadow_mask` (None when ``shadow_chroma`` is 0)."""
    diff = background_difference(images, backgrounds)
    return diff, (shadow_mask(images, backgrounds, shadow_chroma) if shadow_chroma else None)


def _hard_mask(diff: torch.Tensor, shadow: torch.Tensor | None, threshold: float, cleanup: int) -> torch.Tensor:
    """``diff > threshold`` without the ``shadow`` pixels, closed then opened with a ``cleanup`` square."""
    m = diff > threshold
    if shadow is not None:
        m &= ~shadow
    m = m.float()
    if cleanup:
        def dilate(x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.max_pool2d(x, cleanup, 1, cleanup // 2)

        m = -dilate(-dilate(m))  # closing: dilate, then erode (= dilate the complement)
        m = dilate(-dilate(-m))  # opening: erode, then dilate
    return m


def foreground_soft(images: torch.Tensor, backgrounds: torch.Tensor, threshold: float = 0.1,
                    cleanup: int = 0, shadow_chroma: float = 0.0) -> torch.Tensor:
    """A soft foreground: mean over RGB of |I - B|, divided by ``threshold`` and clipped to [0, 1].

    It is 1 wherever :func:`foreground_mask` is, and keeps the pixels just under the threshold (clothing
    close to the background colour) as grey instead of holes. With ``cleanup`` the closed and opened
    mask is laid over it (maximum), so the holes the closing fills are 1 here too; with
    ``shadow_chroma`` the shadow's pixels are 0.

    Args:
        images, backgrounds: (B, 3, H, W) in [0, 1].
        cleanup, shadow_chroma: see :func:`foreground_mask`.
    Returns:
        (B, 1, H, W) float in [0, 1] (no gradient).

    Example:
        >>> bg = torch.zeros(1, 3, 4, 4); img = bg.clone(); img[..., 0, 0] = 0.05; img[..., 1, 1] = 0.3
        >>> [round(v, 2) for v in foreground_soft(img, bg)[0, 0].diagonal().tolist()]
        [0.5, 1.0, 0.0, 0.0]
    """
    if images.ndim != 4 or images.shape != backgrounds.shape or images.shape[1] != 3:
        raise ValueError(f"foreground_soft: expected images and backgrounds (B, 3, H, W) of one shape, got "
                         f"{tuple(images.shape)} and {tuple(backgrounds.shape)}")
    if not threshold > 0:
        raise ValueError(f"foreground_soft: threshold must be > 0, got {threshold}")
    check_cleanup(cleanup, "foreground_soft: cleanup")
    check_shadow_chroma(shadow_chroma, "foreground_soft: shadow_chroma")
    with torch.no_grad():  # |I - B| and the shadow once, for the grey levels and the cleaned mask alike
        diff, shadow = _difference_and_shadow(images, backgrounds, shadow_chroma)
        soft = (diff / threshold).clamp(0, 1)
        if shadow is not None:
            soft = soft.masked_fill(shadow, 0.0)
        if cleanup:
            soft = torch.maximum(soft, _hard_mask(diff, shadow, threshold, cleanup))
        return soft


def foreground_box(images: torch.Tensor, backgrounds: torch.Tensor, threshold: float = 0.1,
                   margin: float = 1.15, quantile: float = 0.01, min_scale: float = 0.15,
                   fallback_scale: float = 0.75, cleanup: int = 0,
                   shadow_chroma: float = 0.0) -> torch.Tensor:
    """A square box around the pixels that differ from the background (|I - B| > threshold).

    Used by the box prior (``Config.w_box_prior``): the median background the method already needs
    tells roughly where the person is, and this box is what a tight spatial transformer should crop.
    :func:`mask_box` of :func:`foreground_mask`; the ``quantile`` cut makes it robust to sensor
    noise and flicker.

    Args:
        images, backgrounds: (B, 3, H, W) in [0, 1].
        cleanup, shadow_chroma: see :func:`foreground_mask`.
    Returns:
        (B, 4) boxes ``(s, s, u_x, u_y)`` in normalised [-1, 1] image units (no gradient).

    Example:
        >>> bg = torch.zeros(1, 3, 64, 64); img = bg.clone(); img[..., 16:48, 24:40] = 1
        >>> [round(v, 3) for v in foreground_box(img, bg, margin=1.0)[0].tolist()]
        [0.5, 0.5, 0.0, 0.0]
    """
    if images.ndim != 4 or images.shape != backgrounds.shape:
        raise ValueError(f"foreground_box: expected images and backgrounds (B, 3, H, W) of one shape, got "
                         f"{tuple(images.shape)} and {tuple(backgrounds.shape)}")
    return mask_box(foreground_mask(images, backgrounds, threshold, cleanup, shadow_chroma), margin, quantile, min_scale, fallback_scale)


def mask_box(masks: torch.Tensor, margin: float = 1.15, quantile: float = 0.01, min_scale: float = 0.15,
             fallback_scale: float = 0.75) -> torch.Tensor:
    """A square box around the foreground of masks (pixels > 0.5).

    The extent is taken between the ``quantile`` and ``1 - quantile`` of the foreground pixels'
    coordinates (a tiny ``quantile`` such as 1e-6: the whole extent); the side is the larger extent
    times ``margin``, clamped to [min_scale, 1].

    Args:
        masks: (B, 1, H, W) float.
    Returns:
        (B, 4) boxes ``(s, s, u_x, u_y)`` in normalised [-1, 1] image units (no gradient). A mask
        with fewer than 10 foreground pixels gets a centred box of side ``fallback_scale``.

    Example:
        >>> m = torch.zeros(1, 1, 64, 64); m[..., 16:48, 24:40] = 1
        >>> [round(v, 3) for v in mask_box(m, margin=1.0, quantile=1e-6)[0].tolist()]
        [0.5, 0.5, 0.0, 0.0]
    """
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise ValueError(f"mask_box: expected masks (B, 1, H, W), got {tuple(masks.shape)}")
    with torch.no_grad():
        B, _, H, W = masks.shape
        fg = (masks[:, 0].float() > 0.5).float()  # (B, H, W)
        count = fg.flatten(1).sum(1)  # (B,)

        def extent(profile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # profile (B, L): foreground pixels per column (row); first index whose cumulative share
            # passes q, and first passing 1 - q
            c = profile.cumsum(1) / profile.sum(1, keepdim=True).clamp_min(1)
            lo = (c < quantile).sum(1).float()
            hi = (c < 1 - quantile).sum(1).float()
            return lo, hi

        x0, x1 = extent(fg.sum(1))
        y0, y1 = extent(fg.sum(2))
        ux, uy = (x0 + x1 + 1) / W - 1, (y0 + y1 + 1) / H - 1
        side = torch.maximum((x1 - x0 + 1) / W, (y1 - y0 + 1) / H) * margin
        side = side.clamp(min_scale, 1.0)
        ok = count >= 10
        side = torch.where(ok, side, torch.full_like(side, fallback_scale))
        ux = torch.where(ok, ux, torch.zeros_like(ux))
        uy = torch.where(ok, uy, torch.zeros_like(uy))
        return torch.stack([side, side, ux, uy], dim=1)


def box_prior_loss(box: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|box - target|_1 summed over the 4 box parameters, averaged over the batch.  box, target: (B, 4)."""
    if box.shape != target.shape or box.ndim != 2 or box.shape[-1] != 4:
        raise ValueError(f"box_prior_loss: expected box and target (B, 4), got {tuple(box.shape)} and {tuple(target.shape)}")
    return (box.float() - target.float()).abs().sum(-1).mean()


def mask_target(cfg: Config, out: dict, batch: dict) -> torch.Tensor:
    """The target M_p of Eq. 11/13 per ``cfg.mask_target`` (Table 6), in the patch: (B*V, 1, P, P).

    - "predicted": the image decoder's own mask M_p (detached when ``cfg.detach_mask_target``);
    - "gt": the ground-truth mask ``batch["gt"]["masks"]`` cropped with the predicted box;
    - "img-bg": |I - B| averaged over channels, divided by its per-image maximum, cropped;
    - "img-bg-mask": |I - B| > ``cfg.box_prior_threshold`` (binary; with ``cfg.foreground_cleanup`` and
      ``cfg.shadow_chroma`` as :func:`foreground_mask` says), cropped.
    """
    P = cfg.patch_size
    BV = out["box"].shape[0] * out["box"].shape[1]
    box = out["box"].reshape(BV, 4)
    if cfg.mask_target == "predicted":
        m = out["patch_mask"].reshape(BV, 1, P, P)
        return m.detach() if cfg.detach_mask_target else m
    if cfg.mask_target == "gt":
        if "gt" not in batch or "masks" not in batch["gt"]:
            raise ValueError("mask_target='gt' needs batch['gt']['masks'] (B, V, 1, H, W); this data set has no GT masks")
        full = batch["gt"]["masks"]
    elif cfg.mask_target == "img-bg":
        d = (batch["images"] - batch["backgrounds"]).abs().mean(2, keepdim=True)  # (B, V, 1, H, W)
        full = d / d.flatten(2).amax(-1).clamp_min(1e-6)[..., None, None, None]
    elif cfg.mask_target == "img-bg-mask":
        full = foreground_mask(batch["images"].flatten(0, 1), batch["backgrounds"].flatten(0, 1), cfg.box_prior_threshold,
                               cfg.foreground_cleanup, cfg.shadow_chroma)
    else:
        raise ValueError(f"mask_target={cfg.mask_target!r}: expected one of predicted, gt, img-bg, img-bg-mask")
    H, W = full.shape[-2:]
    full = full.reshape(BV, 1, H, W).float()
    b = box.detach() if cfg.detach_mask_target else box
    return geometry.crop_patches(full, b, P)


def active_loss_terms(cfg: Config) -> tuple[str, ...]:
    """The terms of :data:`LOSS_NAMES` that ``cfg`` trains with at some step (the others stay 0).

    Example:
        >>> from kp3d.profiles import get_config
        >>> active_loss_terms(get_config("paper-h36m"))
        ('pixel', 'perceptual', 'mask', 'coverage', 'centering')
    """
    kp = not cfg.reconstruction_only
    on = {"pixel": cfg.image_reconstruction, "patch": cfg.image_reconstruction and cfg.w_patch > 0,
          "perceptual": cfg.image_reconstruction and cfg.use_perceptual_loss, "box_prior": cfg.w_box_prior > 0,
          "mask_oracle": cfg.mask_oracle, "mask": kp and cfg.use_mask_loss, "coverage": kp and cfg.use_coverage_loss,
          "centering": kp and cfg.use_centering_loss, "concentration": False}  # concentration: logged, never trained
    return tuple(name for name in LOSS_NAMES if on[name])


def keypoint_weight(cfg: Config, step: int) -> float:
    """Scale of the keypoint losses at ``step``: 0 during the warm-up, then a linear ramp to 1."""
    if cfg.reconstruction_only or step < cfg.warmup_iters:
        return 0.0
    if cfg.keypoint_ramp_iters <= 0:
        return 1.0
    return min(1.0, (step - cfg.warmup_iters + 1) / cfg.keypoint_ramp_iters)


def sigma_at(cfg: Config, step: int) -> float:
    """The Gaussian sigma ([-1, 1] patch units) of the keypoint losses at ``step``: ``cfg.sigma``, or
    during the anneal (``cfg.sigma_start`` > 0) a geometric interpolation from sigma_start to sigma."""
    if cfg.sigma_start <= 0 or cfg.sigma_anneal_iters <= 0:
        return cfg.sigma
    f = min(1.0, max(0.0, (step - cfg.warmup_iters) / cfg.sigma_anneal_iters))
    return float(cfg.sigma_start ** (1.0 - f) * cfg.sigma ** f)


def compute_losses(cfg: Config, out: dict, batch: dict, perceptual=None, step: int = 0) -> dict[str, torch.Tensor]:
    """All terms of Eq. 15 for one batch, weighted per ``cfg``.

    Args:
        out: :meth:`KeypointModel.forward` output (keypoint keys needed when the keypoint losses are on).
        batch: the batch dict (``images``, ``backgrounds``, and ``gt`` for mask_target="gt").
        perceptual: the frozen features for Eq. 10, or None (term off).
        step: the training step (warm-up and ramp of the keypoint losses).
    Returns:
        dict with unweighted terms ``pixel, patch, perceptual, mask, coverage, centering`` (0 when off),
        ``kp_weight`` and the weighted sum ``total`` (the only one carrying the graph that matters).
    """
    images = batch["images"]
    B, V, _, H, W = images.shape
    BV, P = B * V, cfg.patch_size
    red = cfg.loss_reduction
    zero = images.new_zeros(())
    I = images.reshape(BV, 3, H, W).float()
    recon = out["recon"].reshape(BV, 3, H, W)
    terms = {name: zero for name in LOSS_NAMES}
    total = zero
    kw = keypoint_weight(cfg, step)
    if cfg.image_reconstruction:  # else the geometric bottleneck alone: nothing is reconstructed
        terms["pixel"] = pixel_loss(I, recon, red)
        total = terms["pixel"]
        if cfg.w_patch > 0 and not (cfg.patch_loss_warmup_only and step >= cfg.warmup_iters):  # not in the paper: Config.w_patch
            P_ = out["patch"].reshape(BV, 3, P, P).detach()
            terms["patch"] = pixel_loss(P_, out["patch_recon"].reshape(BV, 3, P, P), red)
            total = total + cfg.w_patch * terms["patch"]
        if cfg.mask_oracle:  # diagnosis only (ladder rung M0): what the decoder's mask can represent
            gt = batch.get("gt", {}).get("masks") if isinstance(batch.get("gt"), dict) else None
            if gt is None:
                raise ValueError("mask_oracle=True needs the ground-truth masks batch['gt']['masks']; use the synthetic set")
            target = geometry.crop_patches(gt.reshape(BV, 1, H, W).float(), out["box"].reshape(BV, 4).detach(), P)
            pm = out["patch_mask"].reshape(BV, 1, P, P).float().clamp(1e-6, 1 - 1e-6)
            terms["mask_oracle"] = torch.nn.functional.binary_cross_entropy(pm, target.clamp(0, 1))
            total = total + terms["mask_oracle"]
        if cfg.use_perceptual_loss and perceptual is not None:
            terms["perceptual"] = perceptual_loss(perceptual, I, recon, red)
            total = total + cfg.w_perceptual * terms["perceptual"]

    if cfg.w_box_prior > 0:  # not in the paper: see Config.w_box_prior
        bg = batch["backgrounds"].reshape(BV, 3, H, W)
        target_box = foreground_box(I, bg, cfg.box_prior_threshold, cfg.box_prior_margin, cleanup=cfg.foreground_cleanup,
                                    shadow_chroma=cfg.shadow_chroma)
        terms["box_prior"] = box_prior_loss(out["box"].reshape(BV, 4), target_box)
        total = total + cfg.w_box_prior * terms["box_prior"]

    if kw > 0:
        if "kp2d_reproj_patch" not in out:
            raise ValueError("compute_losses: keypoint losses are on but the model ran with keypoints=False")
        x_hat = out["kp2d_reproj_patch"].reshape(BV, -1, 2)
        need_target = cfg.use_mask_loss or cfg.use_coverage_loss
        target = mask_target(cfg, out, batch) if need_target else None
        sigma_px = sigma_at(cfg, step) * P / 2
        if cfg.use_mask_loss:
            terms["mask"] = mask_loss(out["mask_from_kp"].reshape(BV, 1, P, P), target, red)
            total = total + kw * cfg.w_mask * terms["mask"]
        if cfg.use_coverage_loss:
            terms["coverage"] = coverage_loss(x_hat, target, sigma_px)
            total = total + kw * cfg.w_coverage * terms["coverage"]
        if cfg.use_centering_loss:
            x_img = out["kp2d_reproj"].reshape(BV, -1, 2)
            terms["centering"] = centering_loss(out["box"].reshape(BV, 4), x_img, (H, W), cfg.centering_box_only,
                                                 cfg.centering_keypoints_only)
            total = total + kw * cfg.w_centering * terms["centering"]
        if "kp_map_spread" in out:  # logged, not trained: how flat the keypoint maps are
            terms["concentration"] = concentration_loss(out["kp_map_spread"], P)
    terms["kp_weight"] = images.new_tensor(kw)
    terms["total"] = total
    return terms
