"""The unsupervised multi-view keypoint model (Honari et al., Sec. 3.1-3.2).

Per view: detector S -> crop -> encoder E -> image decoder D (RGB + mask) -> un-crop -> blend with
the background (Eq. 2); keypoint head psi -> soft-argmax (Eq. 4). Across views: crop-adjusted
intrinsics (Eq. 6) -> DLT triangulation (Eq. 7) -> reprojection (Eq. 8) -> Gaussian heatmaps ->
mask decoder phi (Eq. 9).

Conventions: world millimetres, ``x_cam = R X + t``, OpenCV pixel centres (pixel i at i);
boxes ``(s_x, s_y, u_x, u_y)`` in normalised [-1, 1] image units, the patch covering image x in
[u_x - s_x, u_x + s_x] (``kp3d.geometry.box_to_theta``). Geometry runs in float32 even under bf16
autocast (DLT is ill-conditioned in half precision).

Example:
    >>> import torch
    >>> from kp3d.cameras import h36m_rig, to_tensors
    >>> from kp3d.profiles import get_config
    >>> from kp3d.model import KeypointModel
    >>> model = KeypointModel(get_config("smoke"))
    >>> cams = to_tensors([c.without_distortion() for c in h36m_rig("S1", 64, 64)])
    >>> images = torch.rand(1, 4, 3, 64, 64)                 # (B, V, 3, H, W)
    >>> out = model(images, images, cams["K"][None], cams["R"][None], cams["t"][None])
    >>> out["kp3d"].shape, out["recon"].shape
    (torch.Size([1, 8, 3]), torch.Size([1, 4, 3, 64, 64]))
"""
from __future__ import annotations

import torch
import torch.nn as nn

from kp3d import geometry
from kp3d.config import Config
from kp3d.losses import foreground_mask, foreground_soft, mask_box
from kp3d.networks import Decoder, Detector, Encoder, MaskDecoder, PatchKeypointHead

OUTPUT_KEYS = (
    "box", "patch", "patch_recon", "patch_mask", "recon", "mask", "latent",
    "kp2d_patch", "kp_map_spread", "kp2d", "K_patch", "kp3d", "kp2d_reproj_patch", "kp2d_reproj", "mask_from_kp",
)


def gt_masks(batch: dict) -> torch.Tensor | None:
    """The ground-truth masks (B, V, 1, H, W) of a batch, or None when the data set has none."""
    gt = batch.get("gt")
    return gt.get("masks") if isinstance(gt, dict) else None


def projection_matrices(K: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """P = K [R | t].  K, R: (..., 3, 3); t: (..., 3)  ->  (..., 3, 4)."""
    return K @ torch.cat([R, t.unsqueeze(-1)], dim=-1)


class KeypointModel(nn.Module):
    """The full model. Submodules: ``detector``, ``encoder``, ``image_decoder``, ``keypoint_head``,
    ``mask_decoder`` (the only trainable parts).

    forward(images, backgrounds, K, R, t, keypoints=True) takes, for B samples of V views:
        images:      (B, V, 3, H, W) float in [0, 1]
        backgrounds: (B, V, 3, H, W) float, the estimated (median) background per view
        K:           (B, V, 3, 3) pixel intrinsics at H x W
        R:           (B, V, 3, 3) world-to-camera rotation
        t:           (B, V, 3) world-to-camera translation, mm
    and returns a dict (P = patch size, N = keypoints, D = latent size):
        box               (B, V, 4)        detector box (s_x, s_y, u_x, u_y)
        patch             (B, V, 3, P, P)  crop p of the input
        patch_recon       (B, V, 3, P, P)  decoded patch D_p (sigmoid)
        patch_mask        (B, V, 1, P, P)  decoded mask M_p (sigmoid)
        recon             (B, V, 3, H, W)  blended reconstruction I~ (Eq. 2)
        mask              (B, V, 1, H, W)  M, the mask un-cropped to the full frame
        latent            (B, V, D)        Xi
    ``sigma`` (optional, [-1, 1] patch units) replaces ``cfg.sigma`` in the mask decoder's Gaussians.
    ``masks`` (B, V, 1, H, W) float: the ground-truth masks, needed only when ``cfg.crop_source`` or
    ``cfg.keypoint_input`` is "gt-mask" (the ladder's oracle rung; :func:`gt_masks` takes them from a batch).
    With ``cfg.image_reconstruction`` False nothing is decoded: ``patch_recon`` is the patch,
    ``patch_mask`` the mask psi reads, ``recon`` the input and ``latent`` the patch head's features.
    And, when ``keypoints`` is True (skipped in the reconstruction-only warm-up to save time):
        kp2d_patch        (B, V, N, 2)     soft-argmax keypoints x, patch pixels
        kp_map_spread     (B, V, N)        RMS spread of each softmax map around x, patch pixels
        kp2d              (B, V, N, 2)     the same in full-image pixels
        K_patch           (B, V, 3, 3)     crop intrinsics K_p (Eq. 6)
        kp3d              (B, N, 3)        triangulated X, world mm (Eq. 7)
        kp2d_reproj_patch (B, V, N, 2)     reprojected x^ in patch pixels (Eq. 8)
        kp2d_reproj       (B, V, N, 2)     the same in full-image pixels
        mask_from_kp      (B, V, 1, P, P)  mask decoder output M~_p (Eq. 9)
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        P = cfg.patch_size
        self.detector = Detector(cfg.detector, cfg.detector_downsample, cfg.box_init_scale, cfg.box_min_scale,
                                 cfg.detector_pool, cfg.image_size)
        self.encoder = Encoder(cfg.encoder, cfg.latent_dim, "avg", cfg.patch_size)
        self.image_decoder = Decoder(cfg.latent_dim, 4, P, cfg.decoder_channels, cfg.decoder_convs_per_block, cfg.decoder_dropout)
        if cfg.keypoint_input == "latent":
            self.keypoint_head = Decoder(cfg.latent_dim, cfg.n_keypoints, P, cfg.decoder_channels, cfg.decoder_convs_per_block, cfg.decoder_dropout)
        else:  # psi reads the patch (Config.keypoint_input)
            self.keypoint_head = PatchKeypointHead(3 if cfg.keypoint_input == "rgb" else 1, cfg.n_keypoints)
        self.mask_decoder = MaskDecoder(cfg.n_keypoints, cfg.mask_decoder_last_init_std)

    @property
    def sigma_px(self) -> float:
        """Gaussian std in patch pixels (``cfg.sigma`` is in normalised [-1, 1] patch units)."""
        return self.cfg.sigma * self.cfg.patch_size / 2

    def heatmaps(self, x_patch: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """Gaussian maps at patch-pixel keypoints: (..., N, 2) -> (..., N, P, P); ``sigma`` in [-1, 1]
        patch units overrides ``cfg.sigma`` (the training anneal, ``kp3d.losses.sigma_at``)."""
        P = self.cfg.patch_size
        return geometry.gaussian_heatmaps(x_patch, (P, P), self.sigma_px if sigma is None else sigma * P / 2)

    def _keypoint_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """What the paper's keypoint head reads: Xi, detached when ``keypoint_encoder_grad`` is False
        (the keypoint losses then never reach the shared encoder)."""
        return latent if self.cfg.keypoint_encoder_grad else latent.detach()

    def soft_foreground(self, img: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
        """The soft |I - B| of the config (threshold, cleanup, shadow test): (BV, 3, H, W) -> (BV, 1, H, W)."""
        cfg = self.cfg
        return foreground_soft(img, bg, cfg.box_prior_threshold, cfg.foreground_cleanup, cfg.shadow_chroma)

    def detect(self, img: torch.Tensor, bg: torch.Tensor, soft: torch.Tensor | None = None) -> torch.Tensor:
        """The detector's box from what ``cfg.detector_input`` names.

        Args:
            img, bg: (BV, 3, H, W) frames and their backgrounds in [0, 1].
            soft: (BV, 1, H, W) :meth:`soft_foreground` of them when the caller has it already.
        Returns:
            (BV, 4) float32 box (s_x, s_y, u_x, u_y).
        """
        if self.cfg.detector_input == "img-bg-soft":
            soft = self.soft_foreground(img, bg) if soft is None else soft
            return self.detector(soft.to(img.dtype).expand(-1, 3, -1, -1))
        return self.detector(img)

    def forward(self, images, backgrounds, K, R, t, keypoints: bool = True,
                sigma: float | None = None, masks: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f"images: expected (B, V, 3, H, W), got {tuple(images.shape)}")
        B, V, _, H, W = images.shape
        for name, x, shape in (("backgrounds", backgrounds, (B, V, 3, H, W)), ("K", K, (B, V, 3, 3)),
                               ("R", R, (B, V, 3, 3)), ("t", t, (B, V, 3))):
            if tuple(x.shape) != shape:
                raise ValueError(f"{name}: expected shape {shape} to match images {tuple(images.shape)}, got {tuple(x.shape)}")
        if keypoints and V < 2:
            raise ValueError(f"images: triangulation needs V >= 2 views, got V={V}")
        P, N = self.cfg.patch_size, self.cfg.n_keypoints
        BV = B * V
        img = images.reshape(BV, 3, H, W)
        bg = backgrounds.reshape(BV, 3, H, W)
        if self.cfg.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)

        cfg = self.cfg
        gt = fg = None
        if "gt-mask" in (cfg.crop_source, cfg.keypoint_input):
            if masks is None or tuple(masks.shape) != (B, V, 1, H, W):
                raise ValueError(f"masks: crop_source={cfg.crop_source!r}, keypoint_input={cfg.keypoint_input!r} need the "
                                 f"ground-truth masks (B, V, 1, H, W) = {(B, V, 1, H, W)}, got "
                                 f"{None if masks is None else tuple(masks.shape)}; use a data set with masks")
            gt = masks.reshape(BV, 1, H, W).float()
        if "img-bg" in (cfg.crop_source, cfg.keypoint_input):
            fg = foreground_mask(img, bg, cfg.box_prior_threshold, cfg.foreground_cleanup, cfg.shadow_chroma)  # (BV, 1, H, W)
        # the soft |I - B| once: the detector reuses the keypoint head's input
        soft = self.soft_foreground(img, bg) if cfg.keypoint_input == "img-bg-soft" else None  # (BV, 1, H, W)

        if cfg.crop_source == "detector":
            box = self.detect(img, bg, soft)  # (BV, 4) float32
        elif cfg.crop_source == "gt-mask":  # the mask's whole extent (no quantile cut)
            box = mask_box(gt, cfg.box_prior_margin, quantile=1e-6)
        else:  # the box prior's box: 1-99% quantiles of the changed pixels
            box = mask_box(fg, cfg.box_prior_margin)
        patch = geometry.crop_patches(img, box.to(img.dtype), P)
        if cfg.image_reconstruction:
            latent = self.encoder(patch)
            dec = self.image_decoder(latent).float()
            patch_recon = torch.sigmoid(dec[:, :3])
            patch_mask = torch.sigmoid(dec[:, 3:4])
        kp_input = None
        if cfg.keypoint_input in ("gt-mask", "img-bg"):
            kp_input = geometry.crop_patches(gt if cfg.keypoint_input == "gt-mask" else fg, box.float(), P)
        elif cfg.keypoint_input == "img-bg-soft":
            kp_input = geometry.crop_patches(soft, box.float(), P)
        elif cfg.keypoint_input == "rgb":
            kp_input = patch if cfg.keypoint_box_grad else patch.detach()
        elif cfg.keypoint_input == "pred-mask":
            kp_input = patch_mask.detach()
        # the patch head runs when its maps are needed, or its features as the bottleneck's latent
        run_head = kp_input is not None and (keypoints or not cfg.image_reconstruction)
        head_out = self.keypoint_head(kp_input.to(patch.dtype)) if run_head else None
        if not cfg.image_reconstruction:
            # the bottleneck alone: nothing decoded; the mask psi reads stands in for M_p
            patch_recon, patch_mask, latent = patch.float(), kp_input.float(), head_out[1]
        # un-crop D_p and M_p together; outside the box M = 0 so the background shows (Eq. 2)
        full = geometry.uncrop_patches(torch.cat([patch_recon, patch_mask], dim=1), box, (H, W))
        D, M = full[:, :3], full[:, 3:4]
        recon = M * D + (1.0 - M) * bg.float() if cfg.image_reconstruction else img.float()

        out = {
            "box": box, "patch": patch.float(), "patch_recon": patch_recon, "patch_mask": patch_mask,
            "recon": recon, "mask": M, "latent": latent.float(),
        }
        if keypoints:
            C = (head_out[0] if head_out is not None else self.keypoint_head(self._keypoint_latent(latent))).float()  # (BV, N, P, P)
            with torch.autocast(device_type=images.device.type, enabled=False):
                # x: (BV, N, 2) patch px; spread: (BV, N) patch px (for the concentration term)
                x, spread = geometry.soft_argmax(C, temperature=self.cfg.softmax_temperature, return_spread=True)
                box_kp = box if self.cfg.keypoint_box_grad else box.detach()
                K_p = geometry.crop_intrinsics(K.reshape(BV, 3, 3).float(), box_kp, P, (H, W))
                Pm = projection_matrices(K_p, R.reshape(BV, 3, 3).float(), t.reshape(BV, 3).float())
                # validate=False: shapes are fixed here and the finiteness check would sync a GPU
                X = geometry.triangulate_dlt(Pm.view(B, V, 3, 4), x.view(B, V, N, 2), validate=False)  # (B, N, 3)
                x_hat = geometry.project(Pm.view(B, V, 3, 4), X, validate=False).reshape(BV, N, 2)
                kp2d = geometry.patch_to_image(x, box_kp, P, (H, W))
                kp2d_reproj = geometry.patch_to_image(x_hat, box_kp, P, (H, W))
                M_tilde = self.mask_decoder(self.heatmaps(x_hat, sigma))
            out.update({
                "kp2d_patch": x, "kp_map_spread": spread, "kp2d": kp2d, "K_patch": K_p, "kp3d": X,
                "kp2d_reproj_patch": x_hat, "kp2d_reproj": kp2d_reproj, "mask_from_kp": M_tilde,
            })
        return {k: (v if k == "kp3d" else v.reshape(B, V, *v.shape[1:])) for k, v in out.items()}
