"""Evaluation: probes on an export, baselines, the ablation runner, results tables (SPEC sections 3-4).

What is measured (all errors pelvis-relative, world frame, mm on the synthetic set and Human3.6M;
see :mod:`kp3d.probes` for the conventions):

- ``mv_keypoints``: the multi-view 3D keypoints (export ``kp3d``) through the linear and MLP probes
  (Table 1, MV rows), over a sweep of labelled-frame fractions (Fig. 5/6);
- ``sv_keypoints``: the single-view lifter's keypoints (:mod:`kp3d.lifter`, Table 1 SV row), one
  sample per (frame, view);
- ``latent``: the encoder features Xi of the same export (per view, concatenated over views) through
  the same probes. Table 4 row 1 is this probe on a *reconstruction-only* model: pass that model's
  export as ``latent_export`` (or run ``ablations --which losses``);
- ``mean_pose``: the mean training pose predicted for every test frame;
- ``untrained``: encoder features of an untrained network (same architecture, random init) through
  the same probes (:func:`untrained_baseline`, needs the data set);
- ``silhouette_img-bg`` / ``silhouette_gt``: the views' background-subtraction (or ground-truth)
  masks, cropped, resized and PCA-reduced (:mod:`kp3d.silhouettes`): what no learning gives;
- ``supervised``: the upper bound, the same encoder trained end to end with the 3D labels
  and a 2-hidden-layer head (:func:`supervised_upper_bound`);
- ``2d``: Table 3's linear map from 2D keypoints to 2D joints, error in % of the image size.

The ablation runner trains one model per setting, each a :func:`kp3d.config.get_config` override
(:data:`ABLATIONS`: Table 4 losses, Table 5 views, Table 6 mask target, Fig. 6 / Table S3 keypoint
count), exports it, probes it and writes a JSON file and a Markdown table next to the paper's numbers
(:data:`PAPER_RESULTS`). Headless::

    python -m kp3d.evaluate ablations --profile smoke --which views
    python -m kp3d.evaluate probe --export outputs/04_full_training/export.npz
    python -m kp3d.evaluate baselines --profile cpu-demo --export outputs/04_full_training/export.npz

Example:
    >>> rows = [{"key": "mv_keypoints", "setting": "ours MV", "probe": "mlp", "fraction": 1.0,
    ...          "mpjpe": 80.0, "n_mpjpe": 78.0, "p_mpjpe": 60.0, "paper": "t1_mv_mlp"}]
    >>> print(results_markdown(rows).splitlines()[2][:40])
    | ours MV | mlp | 100% | 80.0 | 78.0 | 6
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from kp3d import probes as P
from kp3d.lifter import LifterConfig, lift, lifter_config, train_lifter

log = logging.getLogger(__name__)

__all__ = [
    "PAPER_RESULTS",
    "ABLATIONS",
    "split_indices",
    "evaluate_export",
    "mean_pose_errors",
    "encoder_features",
    "untrained_baseline",
    "supervised_upper_bound",
    "run_ablations",
    "results_markdown",
    "write_results",
    "summary",
    "fit_keypoint_probe",
    "select_rows",
    "find_export",
    "prepare_export",
    "missing_labels",
    "fresh_run_figures",
    "same_data",
    "plot_fraction_curves",
    "main",
]

# ------------------------------------------------------------------------------------------------
# The paper's figures (Honari et al.), SPEC section 4. mm on Human3.6M; cm on MPI-INF-3DHP.
PAPER_RESULTS: dict[str, dict[str, Any]] = {
    "t1_sv_mlp": dict(table="1", setting="ours SV, 2-hid MLP, 32 kpts", mpjpe=125.73, n_mpjpe=121.04, p_mpjpe=89.05, unit="mm"),
    "t1_mv_linear": dict(table="1", setting="ours MV, linear, 32 kpts", mpjpe=120.9, n_mpjpe=117.9, p_mpjpe=93.5, unit="mm"),
    "t1_mv_mlp": dict(table="1", setting="ours MV, 2-hid MLP, 32 kpts", mpjpe=73.8, n_mpjpe=72.6, p_mpjpe=63.0, unit="mm"),
    "t3_2d": dict(table="3", setting="ours, linear 2D, 32 kpts (%-MSE)", pct_mse=2.38, unit="% of image size"),
    "t4_reconst": dict(table="4", setting="reconst only (latent probe)", mpjpe=111.8, n_mpjpe=107.6, p_mpjpe=79.7, unit="mm"),
    "t4_mask": dict(table="4", setting="+ mask", mpjpe=79.9, n_mpjpe=78.6, p_mpjpe=67.0, unit="mm"),
    "t4_coverage": dict(table="4", setting="+ coverage", mpjpe=78.3, n_mpjpe=77.0, p_mpjpe=65.6, unit="mm"),
    "t4_full": dict(table="4", setting="+ centering (full)", mpjpe=73.8, n_mpjpe=72.6, p_mpjpe=63.0, unit="mm"),
    "t5_2views": dict(table="5", setting="2 views", mpjpe=103.21, n_mpjpe=100.7, p_mpjpe=81.6, unit="mm"),
    "t5_3views": dict(table="5", setting="3 views", mpjpe=77.7, n_mpjpe=75.7, p_mpjpe=64.0, unit="mm"),
    "t5_4views": dict(table="5", setting="4 views", mpjpe=73.8, n_mpjpe=72.6, p_mpjpe=63.0, unit="mm"),
    "t6_img-bg": dict(table="6 (3DHP)", setting="IMG-BG mask", mpjpe=17.48, n_mpjpe=16.93, p_mpjpe=12.64, unit="cm"),
    "t6_gt": dict(table="6 (3DHP)", setting="GT mask", mpjpe=14.57, n_mpjpe=14.21, p_mpjpe=11.52, unit="cm"),
    "t6_predicted": dict(table="6 (3DHP)", setting="predicted mask", mpjpe=14.37, n_mpjpe=13.98, p_mpjpe=10.99, unit="cm"),
    "ts3_16": dict(table="S3 (3DHP)", setting="16 kpts", mpjpe=16.16, unit="cm"),
    "ts3_32": dict(table="S3 (3DHP)", setting="32 kpts", mpjpe=15.53, unit="cm"),
    "ts3_48": dict(table="S3 (3DHP)", setting="48 kpts", mpjpe=14.57, unit="cm"),
    "ts3_96": dict(table="S3 (3DHP)", setting="96 kpts", mpjpe=14.16, unit="cm"),
}

# ------------------------------------------------------------------------------------------------
# Ablations: name -> list of (setting, Config overrides, features probed, paper key).
# "features" is "mv_keypoints" (the MLP probe on the 3D keypoints) or "latent" (Table 4 row 1).
_NO_KP_LOSSES = dict(use_mask_loss=False, use_coverage_loss=False, use_centering_loss=False)
ABLATIONS: dict[str, list[tuple[str, dict[str, Any], str, str]]] = {
    "losses": [  # Table 4
        ("reconst only", dict(reconstruction_only=True, **_NO_KP_LOSSES), "latent", "t4_reconst"),
        ("+ mask", dict(use_mask_loss=True, use_coverage_loss=False, use_centering_loss=False), "mv_keypoints", "t4_mask"),
        ("+ coverage", dict(use_mask_loss=True, use_coverage_loss=True, use_centering_loss=False), "mv_keypoints", "t4_coverage"),
        ("+ centering (full)", dict(use_mask_loss=True, use_coverage_loss=True, use_centering_loss=True),
         "mv_keypoints", "t4_full"),
    ],
    "views": [  # Table 5
        ("2 views", dict(views=(0, 1)), "mv_keypoints", "t5_2views"),
        ("3 views", dict(views=(0, 1, 2)), "mv_keypoints", "t5_3views"),
        ("4 views", dict(views=(0, 1, 2, 3)), "mv_keypoints", "t5_4views"),
    ],
    "mask": [  # Table 6
        ("IMG-BG mask", dict(mask_target="img-bg"), "mv_keypoints", "t6_img-bg"),
        ("GT mask", dict(mask_target="gt"), "mv_keypoints", "t6_gt"),
        ("predicted mask", dict(mask_target="predicted"), "mv_keypoints", "t6_predicted"),
    ],
    "keypoints": [  # Fig. 6 / Table S3
        (f"{n} kpts", dict(n_keypoints=n), "mv_keypoints", f"ts3_{n}") for n in (16, 32, 48, 96)
    ],
}


# ------------------------------------------------------------------------------------------------
# probes on an export


def split_indices(export: dict) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the 'train' and 'test' frames of an export (key ``split``)."""
    if "split" not in export:
        raise KeyError("export has no 'split' key: export both splits with kp3d.export.export(..., splits=('train', 'test'))")
    split = np.asarray(export["split"]).astype(str)
    tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    if len(tr) < 2 or len(te) < 1:
        raise ValueError(f"export has {len(tr)} train and {len(te)} test frames: need >= 2 and >= 1")
    return tr, te


def _require_labels(export: dict, what: str = "probing") -> np.ndarray:
    if "gt_joints_3d" not in export:
        raise KeyError(f"{what} needs 'gt_joints_3d' in the export: the data set has no 3D labels")
    return np.asarray(export["gt_joints_3d"], dtype=np.float64)


def mean_pose_errors(y_train: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """The mean-pose baseline: predict the mean training pose (T, 51) for every test frame."""
    pred = np.broadcast_to(np.asarray(y_train).mean(axis=0), np.shape(y_test))
    return P.pose_errors(pred, y_test)


def _export_config(export: dict) -> dict:
    if "config_json" not in export:
        return {}
    try:
        return json.loads(str(np.asarray(export["config_json"]).item()))
    except (ValueError, TypeError):
        return {}


def _image_size(export: dict) -> tuple[int, int]:
    s = _export_config(export).get("image_size")
    if s:
        return (int(s), int(s)) if np.isscalar(s) else (int(s[0]), int(s[1]))
    K = np.asarray(export["K"], dtype=np.float64).reshape(-1, 3, 3)[0]
    return int(round(2 * K[1, 2] + 1)), int(round(2 * K[0, 2] + 1))


def evaluate_export(
    export: dict,
    fractions: Iterable[float] = (1.0,),
    kinds: Iterable[str] = ("linear", "mlp"),
    probe_cfg: P.ProbeConfig | None = None,
    lifter_cfg: LifterConfig | None = None,
    features: Iterable[str] = ("mv_keypoints", "latent", "sv_keypoints", "mean_pose", "2d"),
    latent_export: dict | None = None,
    progress: bool = True,
) -> list[dict]:
    """Probe everything an export file offers; one row per (features, probe, fraction).

    Args:
        export: dict from ``kp3d.export.load_export`` with ``split`` and ``gt_joints_3d``.
        fractions: label fractions of the sweep (Fig. 5/6); 1.0 is the paper's tables.
        kinds: probe kinds ("linear", "mlp").
        probe_cfg, lifter_cfg: default: the profile's (from the export's config) or paper-h36m.
        features: which rows to compute (see the module docstring).
        latent_export: the export of a reconstruction-only model (Table 4 row 1) whose ``latent``
            replaces this export's for the ``latent`` rows; it must hold the same frames.

    Returns:
        rows: dict(key, setting, features, probe, fraction, n_train, mpjpe, n_mpjpe, p_mpjpe, paper)
        (the 2D row has pct_mse instead of the 3D errors).
    """
    features, kinds, fractions = tuple(features), tuple(kinds), tuple(fractions)
    known = {"mv_keypoints", "latent", "sv_keypoints", "mean_pose", "2d"}
    if set(features) - known:
        raise ValueError(f"unknown features {sorted(set(features) - known)}: choose from {sorted(known)}")
    cfgd = _export_config(export)
    profile = cfgd.get("profile", "paper-h36m")
    probe_cfg = probe_cfg or P.probe_config(profile)
    lifter_cfg = lifter_cfg or lifter_config(profile)
    tr, te = split_indices(export)
    joints = _require_labels(export)
    y = P.pose_targets(joints)
    y_tr, y_te = y[tr], y[te]
    n_kp = int(np.shape(export["kp3d"])[1])
    paper_ok = n_kp == 32  # Table 1 rows are for 32 keypoints; other counts are compared loosely
    rows: list[dict] = []

    def sweep(x, key, setting, paper_of, x_train=None, y_train=None, x_test=None, y_test=None):
        xtr = x[tr] if x_train is None else x_train
        xte = x[te] if x_test is None else x_test
        for r in P.label_fraction_sweep(xtr, y_tr if y_train is None else y_train, xte,
                                        y_te if y_test is None else y_test, fractions, kinds,
                                        probe_cfg, name=key, progress=progress):
            r.update(key=key, setting=setting, paper=paper_of(r["probe"]))
            rows.append(r)

    if "mean_pose" in features:
        rows.append(dict(key="mean_pose", setting="mean pose", features="mean_pose", probe="-",
                         fraction=1.0, n_train=len(tr), paper=None, **mean_pose_errors(y_tr, y_te)))
    if "mv_keypoints" in features:
        sweep(P.keypoint_features(export["kp3d"]), "mv_keypoints", f"ours MV, {n_kp} kpts",
              lambda k: {"linear": "t1_mv_linear", "mlp": "t1_mv_mlp"}[k] if paper_ok else None)
    if "latent" in features:
        src = latent_export if latent_export is not None else export
        lat = np.asarray(src["latent"], dtype=np.float64)
        if len(lat) != len(y):
            raise ValueError(f"latent_export has {len(lat)} frames but the export {len(y)}: export the same frames")
        recon_only = bool(_export_config(src).get("reconstruction_only", False))
        setting = "latent, reconstruction-only model" if recon_only else "latent Xi of this model"
        sweep(lat.reshape(len(lat), -1), "latent", setting,
              lambda k: "t4_reconst" if (recon_only and k == "mlp") else None)
    if "sv_keypoints" in features:
        K, R = export["K"], export["R"]
        t0 = time.time()
        lifter = train_lifter(np.asarray(export["kp2d"])[tr], np.asarray(export["kp3d"])[tr],
                              np.asarray(K)[tr], np.asarray(R)[tr], lifter_cfg)
        sv = lift(lifter, export["kp2d"], K, R, frame="world")  # (T, V, N, 3) centred world frame
        V = sv.shape[1]
        fx = P.keypoint_features(sv.reshape(-1, n_kp, 3)).reshape(len(sv), V, -1)
        sweep(None, "sv_keypoints", f"ours SV (lifter), {n_kp} kpts",
              lambda k: "t1_sv_mlp" if (paper_ok and k == "mlp") else None,
              x_train=fx[tr].reshape(len(tr) * V, -1), y_train=np.repeat(y_tr, V, axis=0),
              x_test=fx[te].reshape(len(te) * V, -1), y_test=np.repeat(y_te, V, axis=0))
        for r in rows[-len(kinds) * len(fractions):]:
            r["lifter_seconds"] = round(time.time() - t0, 1)
    if "2d" in features and "gt_joints_2d" in export:
        kp2d, j2d = np.asarray(export["kp2d"]), np.asarray(export["gt_joints_2d"])
        r2 = P.probe_2d(kp2d[tr], j2d[tr], kp2d[te], j2d[te], _image_size(export))
        rows.append(dict(key="2d", setting=f"ours, linear 2D, {n_kp} kpts", features="kp2d", probe="linear",
                         fraction=1.0, paper="t3_2d" if paper_ok else None, **r2))
    return rows


def fit_keypoint_probe(export: dict, kind: str = "mlp", cfg: P.ProbeConfig | None = None):
    """The probe of ``kind`` fitted on all labelled training frames of an export (for the viewer).

    Its ``predict(keypoint_features(kp3d))`` gives pelvis-relative world-frame joints (T, 51).
    """
    tr, _ = split_indices(export)
    joints = _require_labels(export)
    cfg = cfg or P.probe_config(_export_config(export).get("profile", "paper-h36m"))
    return P.fit_probe(P.keypoint_features(np.asarray(export["kp3d"])[tr]), P.pose_targets(joints[tr]), cfg, kind=kind)


def select_rows(export: dict, split: str | None = None, max_frames: int | None = None) -> dict:
    """The export restricted to one split and/or at most ``max_frames`` evenly spaced rows."""
    T = len(export["kp3d"])
    idx = np.arange(T)
    if split is not None:
        idx = idx[np.asarray(export["split"]).astype(str) == split]
        if len(idx) == 0:
            raise ValueError(f"the export has no {split!r} frames")
    if max_frames is not None and len(idx) > max_frames:
        idx = idx[np.unique(np.linspace(0, len(idx) - 1, max_frames).round().astype(int))]
    return {k: (np.asarray(v)[idx] if np.ndim(v) >= 1 and len(v) == T else v) for k, v in export.items()}


# ------------------------------------------------------------------------------------------------
# baselines that need the images: untrained encoder, supervised upper bound


def _even_subset(n: int, max_frames: int | None) -> list[int]:
    """All of range(n), or at most ``max_frames`` evenly spaced indices of it."""
    if max_frames is None or n <= max_frames:
        return list(range(n))
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(int)).tolist()


def _to_device(batch: dict, views: tuple, device) -> tuple:
    sel = list(views)
    out = [batch[k][:, sel].to(device, torch.float32) for k in ("images", "backgrounds", "K", "R", "t")]
    return tuple(out), batch["gt"]["joints_3d"].to(torch.float64)


def _encode(model, images: torch.Tensor, backgrounds: torch.Tensor | None = None) -> torch.Tensor:
    """Detector -> crop -> encoder. images (B, V, 3, H, W) -> latent (B, V, D).

    With ``backgrounds`` (B, V, 3, H, W) the crop is the box around |I - B| instead of the
    detector's (``kp3d.losses.foreground_box`` with the model's threshold and margin).
    """
    from kp3d import geometry
    from kp3d.losses import foreground_box

    B, V = images.shape[:2]
    img = images.reshape(B * V, *images.shape[2:])
    if backgrounds is None:
        box = model.detector(img)
    else:
        box = foreground_box(img, backgrounds.reshape(B * V, *backgrounds.shape[2:]),
                             model.cfg.box_prior_threshold, model.cfg.box_prior_margin, cleanup=model.cfg.foreground_cleanup)
    patch = geometry.crop_patches(img, box.to(img.dtype), model.cfg.patch_size)
    return model.encoder(patch).reshape(B, V, -1)


@torch.no_grad()
def encoder_features(model, dataset, views=(0, 1, 2, 3), batch_size: int = 16, max_frames: int | None = None,
                     progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Encoder features of every frame of a data set (samples per docs/architecture.md).

    Args:
        model: a ``kp3d.model.KeypointModel`` (its detector and encoder are used).
        dataset: a torch Dataset with ``gt.joints_3d``.
        views: view indices to encode (concatenated in this order).

    Returns:
        features (T, V*D) float64 and joints (T, 17, 3) world mm.
    """
    idx = _even_subset(len(dataset), max_frames)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, idx), batch_size=batch_size)
    model.eval()
    dev = next(model.parameters()).device
    feats, joints = [], []
    for batch in tqdm(loader, desc="encoder features", disable=not progress, leave=False):
        (images, *_), j = _to_device(batch, tuple(views), dev)
        feats.append(_encode(model, images).flatten(1).double().cpu().numpy())
        joints.append(j.numpy())
    return np.concatenate(feats), np.concatenate(joints)


def untrained_baseline(cfg, train_ds, test_ds, fractions=(1.0,), kinds=("linear", "mlp"),
                       probe_cfg: P.ProbeConfig | None = None, max_frames: int | None = None,
                       progress: bool = True) -> list[dict]:
    """Probes on the encoder features of an untrained network (random init, seed ``cfg.seed``)."""
    from kp3d.model import KeypointModel

    torch.manual_seed(cfg.seed)
    model = KeypointModel(cfg)
    views = tuple(cfg.views)
    x_tr, j_tr = encoder_features(model, train_ds, views, max_frames=max_frames, progress=progress)
    x_te, j_te = encoder_features(model, test_ds, views, max_frames=max_frames, progress=progress)
    rows = P.label_fraction_sweep(x_tr, P.pose_targets(j_tr), x_te, P.pose_targets(j_te), fractions, kinds,
                                  probe_cfg or P.probe_config(cfg.profile), name="untrained", progress=progress)
    for r in rows:
        r.update(key="untrained", setting="untrained encoder features", paper=None)
    return rows


def supervised_upper_bound(cfg, train_ds, test_ds, iters: int = 2000, lr: float = 1e-3, batch_size: int = 8,
                           hidden: int = 512, max_frames: int | None = None, progress: bool = True,
                           crop: str = "foreground", device: str | torch.device = "cpu", num_workers: int = 0,
                           eval_every: int = 0) -> dict:
    """Upper bound: the same encoder trained with 3D labels, end to end.

    A head (2 hidden layers of ``hidden``, ReLU) maps the per-view encoder features, concatenated
    over ``cfg.views``, to the 17 pelvis-relative joints; encoder and head are trained with MSE on
    z-scored targets (the head outputs z-scores, so it starts near the mean pose), Adam ``lr``.
    ``crop``: "foreground" crops each view around |I - B| (``kp3d.losses.foreground_box``, no labels:
    the box the cpu-demo detector is pulled towards), "detector" trains the model's detector with
    the rest. A detector trained from scratch by the pose loss alone did not find the person within
    1,500 steps on the cpu-demo data (the bound then sat at the mean pose, 168.0 mm), hence the
    default. The paper does not train this model; SPEC section 3 asks for it as the ceiling that
    the probes on the same encoder should not beat. It is only a ceiling when trained long enough:
    report its ``iters`` with it.

    ``device``: where to train ("cuda" on a GPU machine; the initialisation and the order of the
    batches are those of a CPU run, the arithmetic differs, so figures agree only roughly).
    ``num_workers``: DataLoader processes (large images load slower than a GPU step).
    ``eval_every`` > 0 also measures the test error every that many steps, returned as ``history``
    (a list of dicts step, train_loss, mpjpe, n_mpjpe, p_mpjpe): whether the bound has stopped
    improving, i.e. whether ``iters`` was long enough to call it a ceiling.

    Returns:
        one row dict(key="supervised", mpjpe, n_mpjpe, p_mpjpe, ..., history) on the test set.
    """
    from kp3d.model import KeypointModel

    if crop not in ("foreground", "detector"):
        raise ValueError(f"crop={crop!r}: expected 'foreground' (box around |I - B|) or 'detector'")
    if eval_every < 0 or num_workers < 0:
        raise ValueError(f"eval_every={eval_every}, num_workers={num_workers}: expected numbers >= 0")
    dev = torch.device(device)
    torch.manual_seed(cfg.seed)
    model = KeypointModel(cfg).to(dev)
    views = tuple(cfg.views)
    head = torch.nn.Sequential(
        torch.nn.Linear(len(views) * cfg.latent_dim, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 51)).to(dev)
    use_bg = crop == "foreground"  # crop around |I - B| in training and testing alike
    params = list(model.encoder.parameters()) + list(head.parameters())
    if not use_bg:
        params += list(model.detector.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    # target statistics from the labels of the training set (cheap: no images needed)
    sub = _even_subset(len(train_ds), max_frames)
    ys = np.stack([P.pose_targets(np.asarray(train_ds[i]["gt"]["joints_3d"])[None])[0] for i in sub[:: max(1, len(sub) // 256)]])
    y_mean = torch.as_tensor(ys.mean(0), dtype=torch.float32, device=dev)
    y_std = torch.as_tensor(ys.std(0) + 1.0, dtype=torch.float32, device=dev)  # +1 mm: the pelvis columns are 0
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(train_ds, sub), batch_size=batch_size,
                                         shuffle=True, drop_last=len(sub) > batch_size, num_workers=num_workers,
                                         persistent_workers=num_workers > 0)
    test_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(test_ds, _even_subset(len(test_ds), max_frames)),
                                              batch_size=16, num_workers=num_workers)

    def test_errors() -> dict:
        model.eval(); head.eval()
        preds, gts = [], []
        with torch.no_grad():
            for batch in test_loader:
                (images, backgrounds, *_), j = _to_device(batch, views, dev)
                bg = backgrounds if use_bg else None
                preds.append((head(_encode(model, images, bg).flatten(1)) * y_std + y_mean).double().cpu().numpy())
                gts.append(P.pose_targets(j.numpy()))
        model.train(); head.train()
        return P.pose_errors(np.concatenate(preds), np.concatenate(gts))

    model.train(); head.train()
    history: list[dict] = []
    step, recent = 0, deque(maxlen=50)  # the last 50 training losses
    bar = tqdm(total=iters, desc="supervised upper bound", disable=not progress, leave=False)
    while step < iters:
        for batch in loader:
            (images, backgrounds, *_), j = _to_device(batch, views, dev)
            bg = backgrounds if use_bg else None
            y = torch.as_tensor(P.pose_targets(j.numpy()), dtype=torch.float32, device=dev)
            z = head(_encode(model, images, bg).flatten(1))  # the head predicts z-scored joints
            loss = ((z - (y - y_mean) / y_std) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            recent.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=recent[-1])
            if eval_every and step % eval_every == 0 and step < iters:
                history.append(dict(step=step, train_loss=float(np.mean(recent)), **test_errors()))
                log.info("supervised upper bound, step %d: train loss %.3f, test MPJPE %.1f mm", step,
                         history[-1]["train_loss"], history[-1]["mpjpe"])
            if step >= iters:
                break
    bar.close()
    final = test_errors()
    if eval_every:
        history.append(dict(step=step, train_loss=float(np.mean(recent)) if recent else float("nan"), **final))
    return dict(key="supervised", setting="upper bound: encoder trained with 3D labels", features="images",
                probe="supervised", fraction=1.0, n_train=len(sub), iters=iters, crop=crop, paper=None,
                history=history, **final)


# ------------------------------------------------------------------------------------------------
# results


def _fmt(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else str(v)


def results_markdown(rows: list[dict], title: str | None = None) -> str:
    """A Markdown table of result rows, each beside the paper's figures when it has a ``paper`` key.

    Ours: the synthetic data set (mm) unless stated; the paper: Human3.6M in mm, 3DHP in cm.
    """
    head = ("| setting | probe | labels | MPJPE | N-MPJPE | P-MPJPE | paper table | paper setting "
            "| paper MPJPE | paper N-MPJPE | paper P-MPJPE |")
    lines = ([f"### {title}", ""] if title else []) + [head, "|" + "---|" * 11]
    for r in rows:
        p = PAPER_RESULTS.get(r.get("paper") or "", {})
        if "pct_mse" in r:  # the 2D row: %-MSE in the MPJPE column
            ours = [f"{_fmt(r['pct_mse'], 2)} %", "-", "-"]
            paper = [f"{_fmt(p.get('pct_mse'), 2)} %" if p else "-", "-", "-"]
        else:
            ours = [_fmt(r.get(k)) for k in ("mpjpe", "n_mpjpe", "p_mpjpe")]
            unit = f" {p['unit']}" if p.get("unit") == "cm" else ""
            paper = [(_fmt(p.get(k), 2) + unit) if p.get(k) is not None else "-" for k in ("mpjpe", "n_mpjpe", "p_mpjpe")]
        frac = r.get("fraction", 1.0)
        lines.append("| " + " | ".join([str(r.get("setting", r.get("key"))), str(r.get("probe", "-")),
                                          f"{100 * frac:g}%", *ours, p.get("table", "-"),
                                          p.get("setting", "-"), *paper]) + " |")
    lines += ["", "Ours: pelvis-relative world-frame errors in mm on the data set of the run (synthetic "
              "by default); the paper: Human3.6M (mm) or MPI-INF-3DHP (cm). The 2D row is %-MSE "
              "(mean error in % of the image size)."]
    return "\n".join(lines) + "\n"


def summary(rows: list[dict], probe: str = "mlp") -> dict[str, Any]:
    """The headline numbers at 100 % labels: each feature set's errors and ours/latent, ours/untrained.

    The paper's ours/latent ratio (Table 1 MV MLP over Table 4 row 1) is 73.8 / 111.8 = 0.66.
    """
    full = {r["key"]: r for r in rows if r.get("fraction", 1.0) == 1.0 and r.get("probe") in (probe, "-", "supervised")}
    out: dict[str, Any] = {k: {m: round(full[k][m], 2) for m in ("mpjpe", "n_mpjpe", "p_mpjpe") if m in full[k]} for k in full}
    ours = full.get("mv_keypoints")
    for base in ("latent", "untrained", "mean_pose"):
        if ours is not None and base in full:
            out[f"ratio_ours_{base}"] = round(ours["mpjpe"] / full[base]["mpjpe"], 3)
    out["paper_ratio_ours_latent"] = round(73.8 / 111.8, 3)
    return out


def write_results(rows: list[dict], out_dir, name: str = "results", title: str | None = None,
                  overwrite: bool = False, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``<name>.json`` (rows + summary + the paper's figures) and ``<name>.md`` under out_dir.

    Existing files are kept unless ``overwrite=True`` (results are a user's work).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jp, mp = out_dir / f"{name}.json", out_dir / f"{name}.md"
    for p in (jp, mp):
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists: pass overwrite=True or choose another name/out_dir")
    used = {r.get("paper") for r in rows if r.get("paper")}
    doc = {"rows": rows, "summary": summary(rows), "paper": {k: PAPER_RESULTS[k] for k in sorted(used)}, **(extra or {})}
    jp.write_text(json.dumps(doc, indent=2, default=_json_default))
    mp.write_text(results_markdown(rows, title))
    return jp, mp


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (tuple, Path)):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def plot_fraction_curves(rows: list[dict], path=None, title: str | None = None):
    """Fig. 5/6-style curves: error against the % of labelled frames, one line per (features, probe),
    solid for the MLP probe and dashed for the linear one; horizontal lines for single-number
    baselines (mean pose, supervised upper bound). Saved as PNG when ``path`` is given.

    Returns:
        the matplotlib figure.
    """
    import matplotlib.pyplot as plt  # the caller's backend: in a notebook the figure shows (and closes) inline

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    series: dict[tuple, list] = {}
    flat = []
    for r in rows:
        if "mpjpe" not in r:
            continue
        if r.get("probe") in ("-", "supervised"):
            flat.append(r)
        else:
            series.setdefault((r["key"], r["probe"]), []).append(r)
    colors = dict(zip(["mv_keypoints", "sv_keypoints", "latent", "untrained"], plt.get_cmap("tab10").colors))
    for ax, m, name in zip(axes, ("mpjpe", "n_mpjpe", "p_mpjpe"), ("MPJPE", "N-MPJPE", "P-MPJPE")):
        for (key, probe), rs in sorted(series.items()):
            rs = sorted(rs, key=lambda r: r["fraction"])
            ax.plot([100 * r["fraction"] for r in rs], [r[m] for r in rs], "-" if probe == "mlp" else "--",
                    marker="o", color=colors.get(key), label=f"{key} ({probe})")
        for r in flat:
            ax.axhline(r[m], color="gray" if r["key"] == "mean_pose" else "black", lw=1,
                       ls=":" if r["key"] == "mean_pose" else "-.", label=r["key"])
        ax.set_xscale("log")
        ticks = sorted({100 * r["fraction"] for rs in series.values() for r in rs})
        if ticks:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel("% of labelled training frames")
        ax.set_ylabel(f"{name} (mm)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "Probe error against the amount of 3D labels (solid: MLP, dashed: linear)")
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig


def find_export(search_dirs=None) -> Path | None:
    """Notebook 04's export: the ``export`` named in its ``summary.json``, else the newest ``*.npz``
    under ``search_dirs`` (default: notebook 04's output folder). None when there is none."""
    from kp3d.profiles import output_dir

    dirs = [Path(d) for d in (search_dirs or [output_dir("04_full_training", create=False)])]
    for d in dirs:
        summary_file = d / "summary.json"
        if summary_file.is_file():
            try:
                named = json.loads(summary_file.read_text()).get("export")
            except ValueError:
                named = None
            if named and Path(named).is_file():
                return Path(named)
    found = [p for d in dirs if d.is_dir() for p in d.rglob("*.npz") if not p.name.endswith(".tmp.npz")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def fresh_run_figures(probe_cfg=None, search_dirs=None) -> dict | None:
    """Ridge and MLP probes (100 % labels) of notebook 04's export, for reporting a fresh run beside
    the shipped model; None when notebook 04 has not exported or its data has no 3D labels.

    Returns:
        dict(export, mean_pose, ridge, mlp: {mpjpe, n_mpjpe, p_mpjpe} in mm, ridge_ratio, mlp_ratio).
    """
    from kp3d.discovery_check import probe_figures
    from kp3d.export import load_export

    path = find_export(search_dirs)
    if path is None:
        return None
    ex = load_export(path)
    if missing_labels(ex) is not None:
        return None
    fig = probe_figures(ex, probe_cfg=probe_cfg)
    out = {"export": str(path)}
    for k in ("mean_pose", "ridge", "mlp"):
        out[k] = {m: round(float(fig[k][m]), 2) for m in ("mpjpe", "n_mpjpe", "p_mpjpe") if m in fig[k]}
    out.update(ridge_ratio=round(float(fig["ridge_ratio"]), 3), mlp_ratio=round(float(fig["mlp_ratio"]), 3))
    return out


def missing_labels(export: dict) -> str | None:
    """Why the probes cannot run on ``export`` (it has no 3D labels), or None when they can.

    A user's own rig (``data="rig:PATH"``) has labels only with a ``joints_3d.npy`` in its folder;
    without them the keypoints can still be exported and viewed, but there is nothing to probe against.
    """
    if "gt_joints_3d" in export:
        return None
    data = _export_config(export).get("data", "the data set")
    fix = ("put joints_3d.npy (T, 17, 3) in the rig folder to probe (docs/own_rig.md)"
           if str(data).startswith("rig:") else "probe a model trained on labelled data (synthetic, h36m:, 3dhp:)")
    return (f"probing skipped: the export has no 3D labels (gt_joints_3d); {data} has none. Fix: {fix}. "
            f"The viewer still shows the discovered 2D and 3D keypoints.")


def _data_key(data: str) -> tuple[str, str]:
    """("rig", "/abs/path") for "rig:path": data names compared with their folders resolved."""
    kind, sep, path = str(data).partition(":")
    return (kind, str(Path(path).expanduser().resolve())) if sep and path else (str(data), "")


def same_data(a: str, b: str) -> bool:
    """Whether two ``data`` names point at the same data set ("rig:./x" and "rig:/abs/x" do)."""
    return _data_key(a) == _data_key(b)


def _smoke_name(data: str, calibration: str) -> str:
    """File stem of the fallback smoke model: ``smoke`` on the synthetic set, keyed by data otherwise."""
    if data == "synthetic":
        return "smoke"
    import hashlib

    key = hashlib.sha1(json.dumps([*_data_key(data), calibration]).encode()).hexdigest()[:8]
    return f"smoke-{_data_key(data)[0]}-{key}"


def prepare_export(export_path: str | Path | None, out_dir, max_iters: int | None = None,
                   max_frames: int | None = None, progress: bool = True, data: str = "synthetic",
                   calibration: str = "", model: str = "notebook04", profile: str = "cpu-demo") -> tuple[dict, Path]:
    """Load the export to probe: ``export_path``, else notebook 04's (:func:`find_export`) when it was
    made on ``data``, else train a smoke model on ``data``.

    The fallback trains ``data_config("smoke", data, calibration)`` (seconds; its probes say nothing
    about the method) under ``out_dir/smoke_run`` and exports it to ``out_dir/smoke_export.npz``
    (``smoke-<kind>-<hash>_run`` / ``_export.npz`` for other data); both are reused when they
    already exist. Run notebook 04 (or ``kp3d-train``) for a real model.

    Args:
        export_path: an export ``.npz``; "" or None: look for notebook 04's, then the fallback.
        out_dir: where the fallback writes.
        data, calibration: the data set of the notebook (``DATA``, ``CALIBRATION``). Notebook 04's
            export of another data set is not used (it is reported); an explicit ``export_path``
            is used whatever its data.
        model: "shipped": the checkpoint that ships with kp3d (:mod:`kp3d.shipped`), exported once to
            ``out_dir/shipped_export.npz`` (needs ``data="synthetic"`` and a non-smoke ``profile``;
            otherwise reported and the notebook-04 route is taken); "notebook04": the route above.
        profile: the notebook's profile (the smoke profile never renders the cpu-demo set).

    Returns:
        (export dict, its path).
    """
    from kp3d.export import export, load_export

    if model not in ("shipped", "notebook04"):
        raise ValueError(f"MODEL={model!r}: expected 'shipped' (the repository's checkpoint) or 'notebook04'")
    if export_path:
        p = Path(export_path)
        if not p.exists():
            raise FileNotFoundError(f"EXPORT_PATH={p} does not exist: run notebook 04 or kp3d.export.export(...) first")
        return load_export(p), p
    if model == "shipped":
        if data == "synthetic" and profile != "smoke":
            from kp3d.shipped import shipped_export

            p = shipped_export(out_dir, max_frames=max_frames, progress=progress)
            print(f"using the shipped checkpoint's export {p} (MODEL = 'notebook04' probes notebook 04's run)")
            return load_export(p), p
        print(f"MODEL='shipped' needs DATA='synthetic' and a non-smoke profile (got {data!r}, {profile!r}): "
              f"probing notebook 04's model instead")
    p = find_export()
    if p is not None:
        found = load_export(p)
        made_on = _export_config(found).get("data", "synthetic")
        if same_data(made_on, data):
            print(f"using notebook 04's export {p}")
            return found, p
        print(f"notebook 04's export {p} was made on data {made_on!r}, not {data!r}: not used "
              f"(run notebook 04 with DATA = {data!r}, or set EXPORT_PATH)")
    out_dir = Path(out_dir)
    name = _smoke_name(data, calibration)
    p = out_dir / f"{name}_export.npz"
    if not p.exists():
        from kp3d.profiles import data_config
        from kp3d.train import train

        print(f"no export of {data!r} found: training a SMOKE model (seconds; for a real result run notebook 04 first)")
        cfg = data_config("smoke", data, calibration, **({"max_iters": max_iters} if max_iters else {}))
        run = out_dir / f"{name}_run"
        run = train(cfg, run_dir=run, resume=run.exists(), progress=progress)
        export(run, p, max_frames=max_frames, progress=progress)
    return load_export(p), p


# ------------------------------------------------------------------------------------------------
# ablation runner


def run_ablations(which: Iterable[str], profile: str = "smoke", out_dir=None, max_iters: int | None = None,
                  fractions=(1.0,), kinds=("mlp",), overrides: dict | None = None, max_frames: int | None = None,
                  overwrite: bool = False, progress: bool = True, datasets: dict | None = None,
                  device: str | None = None) -> list[dict]:
    """Train, export and probe one model per setting of each ablation in ``which``.

    Args:
        which: names in :data:`ABLATIONS` ("losses", "views", "mask", "keypoints") or "all".
        profile: the training profile (``kp3d.config.get_config``).
        out_dir: where runs, exports and results go (default ``output_dir("ablations", profile)``).
        max_iters: override the profile's iterations (e.g. for a quick look).
        overrides: extra Config overrides applied to every setting.
        max_frames: cap the exported frames per split.
        datasets: {"train": ds, "test": ds} to use instead of the profile's data set (tests).
        device: "cpu" / "cuda" (default: CUDA when available).

    Run directories are never deleted: an existing one is resumed (a finished run returns at once).
    An existing export is reused unless ``overwrite=True``.

    Returns:
        the result rows; also written as ``<out_dir>/ablations_<which>.json`` and ``.md``.
    """
    from kp3d.config import get_config
    from kp3d.export import export, load_export
    from kp3d.profiles import output_dir
    from kp3d.train import train

    which = list(ABLATIONS) if "all" in which else list(which)
    bad = [w for w in which if w not in ABLATIONS]
    if bad:
        raise ValueError(f"unknown ablations {bad}: choose from {list(ABLATIONS)} or 'all'")
    out_dir = Path(out_dir) if out_dir else output_dir("ablations", profile)
    if not overwrite:  # fail before hours of training, not after
        for w in which:
            for ext in ("json", "md"):
                if (out_dir / f"ablations_{w}.{ext}").exists():
                    raise FileExistsError(f"{out_dir / f'ablations_{w}.{ext}'} exists: pass overwrite=True "
                                          "(--overwrite) or another out_dir (--out)")
    rows: list[dict] = []
    for w in which:
        wrows = []
        for setting, ov, feats, paper in ABLATIONS[w]:
            tag = f"{w}-" + "".join(c if c.isalnum() else "_" for c in setting).strip("_")
            kw = dict(overrides or {}, **ov)
            if max_iters is not None:
                kw["max_iters"] = max_iters
            cfg = get_config(profile, **kw)
            run_dir = out_dir / "runs" / tag
            # runs are never deleted: an existing run dir is resumed (a finished one returns at once)
            print(f"[ablations] {tag}: training to {cfg.max_iters} iterations in {run_dir}")
            run_dir = Path(train(cfg, run_dir=run_dir, resume=run_dir.exists(), progress=progress,
                                 dataset=(datasets or {}).get("train"), device=device))
            ex_path = out_dir / "exports" / f"{tag}.npz"
            if not ex_path.exists() or overwrite:
                export(run_dir / "checkpoints" / "last.pt", ex_path, max_frames=max_frames, overwrite=overwrite,
                       datasets=datasets, device=device, progress=progress)
            ex = load_export(ex_path)
            # the mean pose once per table (SPEC section 8: always report it beside a result)
            feats_here = (feats,) if wrows else ("mean_pose", feats)
            r = evaluate_export(ex, fractions=fractions, kinds=kinds, features=feats_here, progress=progress)
            for row in r:
                if row["key"] != "mean_pose":
                    row.update(setting=setting, paper=paper if row.get("probe") == "mlp" else None)
                row.update(ablation=w, run_dir=str(run_dir), export=str(ex_path), overrides=kw)
            wrows += r
        write_results(wrows, out_dir, name=f"ablations_{w}", title=f"Ablation: {w} ({profile})", overwrite=overwrite)
        rows += wrows
    return rows


# ------------------------------------------------------------------------------------------------
# command line


def _parse_fractions(text: str) -> tuple[float, ...]:
    vals = tuple(float(v) for v in text.split(",") if v.strip())
    if not vals or any(not 0 < v <= 1 for v in vals):
        raise argparse.ArgumentTypeError(f"--fractions {text!r}: expected comma-separated values in (0, 1]")
    return vals


def main(argv: list[str] | None = None) -> int:
    """``python -m kp3d.evaluate {probe,baselines,ablations} ...`` (see ``--help``)."""
    ap = argparse.ArgumentParser(prog="python -m kp3d.evaluate", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", default=None, help="output folder (default: outputs/evaluate or outputs/ablations/<profile>)")
    common.add_argument("--fractions", type=_parse_fractions, default=(1.0,), help="label fractions, e.g. 0.01,0.1,1")
    common.add_argument("--kinds", nargs="+", default=["linear", "mlp"], choices=["linear", "mlp"])
    common.add_argument("--overwrite", action="store_true", help="replace existing result files")
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("probe", parents=[common], help="probe an export file (keypoints, latent, lifter, mean pose, 2D)")
    p.add_argument("--export", required=True, help="the .npz written by kp3d.export")
    p.add_argument("--latent-export", default=None, help="export of a reconstruction-only model (Table 4 row 1)")
    p.add_argument("--no-lifter", action="store_true", help="skip the single-view lifter")
    p.add_argument("--name", default="probe_results")

    b = sub.add_parser("baselines", parents=[common], help="untrained-encoder, silhouette and supervised upper-bound baselines")
    b.add_argument("--profile", default="cpu-demo", help="architecture and data when no --export is given")
    b.add_argument("--max-frames", type=int, default=None)
    b.add_argument("--upper-iters", type=int, default=2000, help="iterations of the supervised upper bound (0: skip)")
    b.add_argument("--upper-batch", type=int, default=8, help="samples per step of the supervised upper bound")
    b.add_argument("--upper-eval-every", type=int, default=0,
                   help="measure the upper bound on the test set every N steps (its learning curve in the JSON)")
    b.add_argument("--device", default="cpu", help="where the supervised upper bound trains (e.g. cuda)")
    b.add_argument("--num-workers", type=int, default=0, help="data-loading processes for the upper bound")
    b.add_argument("--export", default=None, help="also probe this export and put everything in one table")
    b.add_argument("--latent-export", default=None, help="export of a reconstruction-only model (Table 4 row 1)")
    b.add_argument("--no-lifter", action="store_true", help="skip the single-view lifter")
    b.add_argument("--name", default="baselines")

    a = sub.add_parser("ablations", parents=[common], help="train + export + probe each ablation setting")
    a.add_argument("--profile", default="smoke")
    a.add_argument("--which", nargs="+", default=["views"], help=f"any of {list(ABLATIONS)} or all")
    a.add_argument("--max-iters", type=int, default=None)
    a.add_argument("--max-frames", type=int, default=None)
    a.set_defaults(kinds=["mlp"])  # the paper's ablation tables use the MLP probe
    args = ap.parse_args(argv)
    progress = not args.quiet

    from kp3d.profiles import output_dir

    if args.cmd == "ablations":
        rows = run_ablations(args.which, args.profile, args.out, args.max_iters, args.fractions, tuple(args.kinds),
                             max_frames=args.max_frames, overwrite=args.overwrite, progress=progress)
        print(results_markdown(rows))
        return 0

    from kp3d.export import REQUIRED_KEYS, load_export

    rows: list[dict] = []
    # a file that is not an export is refused with how to make one (not a missing-key error later)
    ex = load_export(args.export, require=REQUIRED_KEYS) if args.export else None
    if args.cmd == "baselines":
        from kp3d.config import Config, get_config
        from kp3d.train import make_dataset

        # the untrained network and the upper bound use the evaluated model's architecture and data
        cfg = Config.from_dict(_export_config(ex)) if ex is not None and _export_config(ex) else get_config(args.profile)
        tr_ds, te_ds = make_dataset(cfg, "train"), make_dataset(cfg, "test")
        rows += untrained_baseline(cfg, tr_ds, te_ds, args.fractions, tuple(args.kinds),
                                   max_frames=args.max_frames, progress=progress)
        from kp3d.silhouettes import silhouette_baseline

        rows += silhouette_baseline(cfg, tr_ds, te_ds, fractions=args.fractions, kinds=tuple(args.kinds),
                                    max_frames=args.max_frames, progress=progress)
        if args.upper_iters > 0:
            rows.append(supervised_upper_bound(cfg, tr_ds, te_ds, iters=args.upper_iters, batch_size=args.upper_batch,
                                               max_frames=args.max_frames, progress=progress, device=args.device,
                                               num_workers=args.num_workers, eval_every=args.upper_eval_every))
    if ex is not None:
        lat = load_export(args.latent_export, require=REQUIRED_KEYS) if getattr(args, "latent_export", None) else None
        feats = ("mv_keypoints", "latent", "mean_pose", "2d") + (() if getattr(args, "no_lifter", False) else ("sv_keypoints",))
        rows = evaluate_export(ex, args.fractions, tuple(args.kinds), features=feats, latent_export=lat,
                               progress=progress) + rows
    out = Path(args.out) if args.out else output_dir("evaluate")
    jp, mp = write_results(rows, out, name=args.name, overwrite=args.overwrite)
    print(mp.read_text())
    print(json.dumps(summary(rows), indent=1))
    print(f"wrote {jp} and {mp}")
    return 0


if __name__ == "__main__":
    from kp3d.cli import run_entry_point

    sys.exit(run_entry_point(main))  # one-line errors on the command line; --debug: the traceback
