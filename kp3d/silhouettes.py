"""The silhouette baseline: how much pose plain background subtraction holds, with no learning.

Per frame and view, a foreground mask is cropped square around the person, resized to S x S and
flattened; the V views are concatenated, reduced by PCA (fitted on the training split) and probed
like the keypoints (:mod:`kp3d.probes`). Two sources:

- ``img-bg``: |I - B| > threshold with the median background B, cleaned and freed of shadows as the
  model's ``foreground_cleanup`` and ``shadow_chroma`` say (no labels at all; the crop is taken
  between the 1% and 99% quantiles of the changed pixels, as the box prior does);
- ``gt``: the ground-truth masks, where the data set has them (an oracle: what clean silhouettes hold).

Any learned representation of the method must beat the ``img-bg`` row: it is what the method's own
input gives for free. Errors: pelvis-relative, world frame, mm.

Example:
    >>> import torch
    >>> m = torch.zeros(2, 1, 32, 32); m[:, :, 8:24, 12:20] = 1
    >>> tuple(silhouette_patches(m, size=8).shape)
    (2, 64)
"""
from __future__ import annotations

import json

import numpy as np
import torch
from tqdm.auto import tqdm

from kp3d import geometry
from kp3d import probes as P
from kp3d.baselines import even_subset
from kp3d.losses import foreground_mask, mask_box

SOURCES = ("img-bg", "gt")
SETTINGS = {"img-bg": "silhouettes |I - B| (median background), PCA", "gt": "silhouettes, GT masks (oracle), PCA"}


def silhouette_patches(masks: torch.Tensor, size: int = 24, margin: float = 1.15, quantile: float = 1e-6) -> torch.Tensor:
    """Crop each mask square around its foreground and resize it.

    Args:
        masks: (B, 1, H, W) float in [0, 1].
        size: side S of the resized crop, pixels.
        margin: crop side = this x the larger extent of the foreground.
        quantile: the extent is taken between this and 1 - this of the foreground pixels.
    Returns:
        (B, S * S) float: the cropped masks, flattened.
    """
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise ValueError(f"masks: expected (B, 1, H, W), got {tuple(masks.shape)}")
    m = masks.float()
    return geometry.crop_patches(m, mask_box(m, margin, quantile=quantile), size).flatten(1)


@torch.no_grad()
def silhouette_features(dataset, source: str = "img-bg", views=(0, 1, 2, 3), size: int = 24, threshold: float = 0.1,
                        margin: float = 1.15, cleanup: int = 0, shadow_chroma: float = 0.0, batch_size: int = 32,
                        max_frames: int | None = None, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Silhouettes of every frame of a data set, views concatenated.

    Args:
        dataset: samples with ``images``, ``backgrounds`` (V, 3, H, W) and ``gt.joints_3d``
            (and ``gt.masks`` (V, 1, H, W) for ``source="gt"``).
        source: "img-bg" or "gt" (see the module docstring).
        threshold, cleanup, shadow_chroma: the ``img-bg`` mask, :func:`kp3d.losses.foreground_mask`
            (:func:`silhouette_baseline` passes the model's ``box_prior_threshold``,
            ``foreground_cleanup`` and ``shadow_chroma``: the mask the model itself sees).
    Returns:
        features (T, V * S * S) float32 and joints (T, 17, 3) world mm.
    """
    if source not in SOURCES:
        raise ValueError(f"source={source!r}: expected one of {SOURCES}")

    idx = even_subset(len(dataset), max_frames)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, idx), batch_size=batch_size)
    sel = list(views)
    feats, joints = [], []
    for batch in tqdm(loader, desc=f"silhouettes {source}", disable=not progress, leave=False):
        gt = batch.get("gt", {})
        if "joints_3d" not in gt:
            raise ValueError("the silhouette baseline needs labelled frames (gt.joints_3d) to probe")
        img = batch["images"][:, sel].float()
        B, V, _, H, W = img.shape
        if source == "gt":
            if "masks" not in gt:
                raise ValueError("source='gt' needs ground-truth masks (gt.masks); this data set has none: use source='img-bg'")
            m, q = gt["masks"][:, sel].reshape(B * V, 1, H, W).float(), 1e-6
        else:
            m = foreground_mask(img.reshape(B * V, 3, H, W), batch["backgrounds"][:, sel].reshape(B * V, 3, H, W), threshold,
                                cleanup, shadow_chroma)
            q = 0.01  # robust to sensor noise, as the box prior
        feats.append(silhouette_patches(m, size, margin, q).reshape(B, -1).numpy())
        joints.append(gt["joints_3d"].double().numpy())
    return np.concatenate(feats).astype(np.float32), np.concatenate(joints)


def pca_fit(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and the top-``k`` principal directions (F, k) of ``x`` (T, F)."""
    mu = x.mean(0)
    _, _, vt = np.linalg.svd((x - mu).astype(np.float64), full_matrices=False)
    return mu, vt[:k].T


def silhouette_baseline(cfg, train_ds, test_ds, sources=SOURCES, fractions=(1.0,), kinds=("linear", "mlp"),
                        probe_cfg: P.ProbeConfig | None = None, size: int = 24, pca: int = 256,
                        max_frames: int | None = None, progress: bool = True) -> list[dict]:
    """Probe rows (the format of :func:`kp3d.probes.label_fraction_sweep`) of the silhouettes.

    A source the data set cannot give (``gt`` without masks) is left out with no row.
    """
    views = tuple(cfg.views)
    has_masks = "masks" in (train_ds[0].get("gt") or {})
    rows: list[dict] = []
    for source in sources:
        if source == "gt" and not has_masks:  # no ground-truth masks here: the oracle row is simply absent
            continue
        mask = dict(threshold=cfg.box_prior_threshold, margin=cfg.box_prior_margin, cleanup=cfg.foreground_cleanup,
                    shadow_chroma=cfg.shadow_chroma, max_frames=max_frames, progress=progress)
        x_tr, j_tr = silhouette_features(train_ds, source, views, size, **mask)
        x_te, j_te = silhouette_features(test_ds, source, views, size, **mask)
        mu, comp = pca_fit(x_tr, min(pca, *x_tr.shape))
        z_tr, z_te = (x_tr - mu) @ comp, (x_te - mu) @ comp
        r = P.label_fraction_sweep(z_tr, P.pose_targets(j_tr), z_te, P.pose_targets(j_te), fractions, kinds,
                                   probe_cfg or P.probe_config(cfg.profile), name=f"silhouette_{source}", progress=progress)
        for row in r:
            row.update(key=f"silhouette_{source}", setting=SETTINGS[source], paper=None)
        rows += r
    return rows


def export_silhouette_baseline(export: dict, size: int = 24, pca: int = 256, kinds=("linear", "mlp"),
                               probe_cfg: P.ProbeConfig | None = None, progress: bool = False) -> list[dict]:
    """Probe rows of the silhouettes of the image decoder's own mask M_p, read from an export.

    The export (:func:`kp3d.export.export`) holds M un-cropped to the frame for every frame and view
    (``masks``, uint8); M > 0.5 is cropped and probed exactly as the ``img-bg`` and ``gt`` sources
    are (training split -> test split). It says how much pose the mask the paper's keypoints rebuild
    holds, beside the other masks' rows.

    Args:
        export: an export dict with ``masks`` (T, V, 1, H, W), ``split`` and ``gt_joints_3d``.
    """
    if "masks" not in export or "gt_joints_3d" not in export:
        raise ValueError("export_silhouette_baseline needs an export with masks and gt_joints_3d (a labelled data set)")
    split = np.asarray(export["split"])
    tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    if len(tr) == 0 or len(te) == 0:
        raise ValueError("export_silhouette_baseline needs the train and the test split in the export")
    m = torch.from_numpy(np.asarray(export["masks"])).float() / 255.0  # (T, V, 1, H, W)
    T, V = m.shape[:2]
    x = torch.cat([silhouette_patches((m[i:i + 64].flatten(0, 1) > 0.5).float(), size).reshape(-1, V * size * size)
                   for i in range(0, T, 64)]).numpy().astype(np.float32)
    j = np.asarray(export["gt_joints_3d"], dtype=np.float64)
    cfg_profile = json.loads(str(export.get("config_json", "{}"))).get("profile", "cpu-demo")  # the probes' preset
    mu, comp = pca_fit(x[tr], min(pca, *x[tr].shape))
    rows = P.label_fraction_sweep((x[tr] - mu) @ comp, P.pose_targets(j[tr]), (x[te] - mu) @ comp, P.pose_targets(j[te]),
                                  (1.0,), kinds, probe_cfg or P.probe_config(cfg_profile), name="silhouette_pred", progress=progress)
    for row in rows:
        row.update(key="silhouette_pred", setting="silhouettes of the decoder's mask M_p, PCA", paper=None)
    return rows
