"""Does a trained model *discover* keypoints? The recipe bar (docs/recipe.md, "The bars"), measured on an export.

Given an export file (:mod:`kp3d.export`) with labelled test frames, :func:`check_discovery` measures
on the TEST split:

- ``spread_ratio``: mean pairwise distance between a view's reprojected keypoints divided by the
  person's height (vertical extent of the 17 GT joints), both in patch pixels. Bar: >= 0.20.
- ``close_pair_frac``: for the pair of keypoints that is most often within 2 patch pixels of each
  other, the fraction of (frame, view) where it is. Bar: < 0.5 ("not on most frames").
- ``in_gt_mask``: fraction of reprojected keypoints on the ground-truth mask. Bar: >= 0.95.
- ``limb_reach``: for each wrist and ankle, the fraction of (frame, view) where some reprojected
  keypoint lies within 8% of the person's height of the joint. Bar: >= 0.70 for each.
- ``ridge_ratio`` / ``mlp_ratio``: MPJPE of a ridge / 2-hidden-layer MLP probe from centred 3D
  keypoints to pelvis-relative joints (world frame, mm), trained on the training split, divided by
  the mean-pose baseline. Bars: <= 0.5 and <= 0.4.
- ``tracking`` (not a bar; :func:`pose_tracking`): how closely each 3D keypoint follows a fixed
  blend of joints (R^2), and the ridge probe of ideal left-right-symmetric points for comparison.
- ``latent_ratio`` (when the export of a reconstruction-only model is given): our MLP-probe MPJPE
  divided by that model's latent-feature MLP-probe MPJPE. Bar: <= 0.66 (Table 4: 73.8 / 111.8).

Usage:
    python -m kp3d.discovery_check EXPORT.npz [--latent-export RECON_ONLY.npz] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from kp3d import probes as P
from kp3d.cli_errors import add_debug_flag, report_errors
from kp3d.export import REQUIRED_KEYS, export_once, load_export
from kp3d.geometry import image_to_patch

WRISTS_ANKLES = {"l_wrist": 13, "r_wrist": 16, "l_ankle": 6, "r_ankle": 3}


@dataclass(frozen=True)
class DiscoveryBar:
    """The thresholds of the recipe bar (docs/recipe.md) (each a measured figure must meet)."""

    min_spread_ratio: float = 0.20
    close_px: float = 2.0
    max_close_pair_frac: float = 0.5
    min_in_gt_mask: float = 0.95
    limb_radius: float = 0.08  # of the person's height
    min_limb_reach: float = 0.70
    max_ridge_ratio: float = 0.5
    max_mlp_ratio: float = 0.4
    max_latent_ratio: float = 0.66


def _config(export: dict) -> dict:
    return json.loads(str(export["config_json"])) if "config_json" in export else {}


def _test_rows(export: dict, split: str) -> np.ndarray:
    rows = np.flatnonzero(np.asarray(export["split"]) == split)
    if len(rows) == 0:
        raise ValueError(f"the export has no {split!r} frames; export with splits=('train', 'test')")
    return rows


def geometry_figures(export: dict, split: str = "test", bar: DiscoveryBar = DiscoveryBar()) -> dict:
    """The keypoint-placement figures (spread, close pairs, in-mask, limb reach) on one split."""
    if "gt_joints_2d" not in export:
        raise ValueError("the export has no gt_joints_2d: discovery can only be measured on labelled data")
    cfg = _config(export)
    rows = _test_rows(export, split)
    kp = np.asarray(export["kp2d_reproj"])[rows].astype(np.float64)  # (T, V, N, 2) image px
    j2d = np.asarray(export["gt_joints_2d"])[rows].astype(np.float64)  # (T, V, 17, 2)
    boxes = np.asarray(export["boxes"])[rows].astype(np.float64)  # (T, V, 4)
    H = W = int(cfg.get("image_size", 128))
    Pz = int(cfg.get("patch_size", 64))
    T, V, N, _ = kp.shape
    box_t = torch.tensor(boxes).reshape(T * V, 4)
    kp_patch = image_to_patch(torch.tensor(kp).reshape(T * V, N, 2), box_t, Pz, (H, W)).reshape(T, V, N, 2).numpy()
    j_patch = image_to_patch(torch.tensor(j2d).reshape(T * V, 17, 2), box_t, Pz, (H, W)).reshape(T, V, 17, 2).numpy()
    height_patch = j_patch[..., 1].max(-1) - j_patch[..., 1].min(-1)  # (T, V)
    height_img = j2d[..., 1].max(-1) - j2d[..., 1].min(-1)

    d = np.linalg.norm(kp_patch[..., :, None, :] - kp_patch[..., None, :, :], axis=-1)  # (T, V, N, N)
    iu = np.triu_indices(N, 1)
    pair = d[..., iu[0], iu[1]]  # (T, V, pairs)
    spread = pair.mean(-1) / np.maximum(height_patch, 1e-6)
    close_frac = (pair < bar.close_px).mean(axis=(0, 1))  # per pair
    out = {
        "frames": int(T), "views": int(V), "keypoints": int(N),
        "spread_ratio": float(spread.mean()),
        "spread_px_patch": float(pair.mean()),
        "person_height_px_patch": float(height_patch.mean()),
        "close_pair_frac": float(close_frac.max()),
        "close_pairs": int((close_frac > bar.max_close_pair_frac).sum()),  # pairs together on most views
    }
    if "kp_reproj_in_gt_mask" in export:
        out["in_gt_mask"] = float(np.asarray(export["kp_reproj_in_gt_mask"])[rows].mean())
    reach = {}
    for name, j in WRISTS_ANKLES.items():
        dist = np.linalg.norm(kp - j2d[:, :, j : j + 1, :], axis=-1).min(-1)  # (T, V) image px
        reach[name] = float((dist <= bar.limb_radius * height_img).mean())
    out["limb_reach"] = reach
    return out


def probe_figures(export: dict, latent_export: dict | None = None, probe_cfg: P.ProbeConfig | None = None) -> dict:
    """Ridge and MLP probes of the 3D keypoints (and of a reconstruction-only model's latent), mm."""
    cfg = _config(export)
    probe_cfg = probe_cfg or P.probe_config(cfg.get("profile", "cpu-demo"))
    tr, te = _test_rows(export, "train"), _test_rows(export, "test")
    y = P.pose_targets(export["gt_joints_3d"])
    x = P.keypoint_features(export["kp3d"])
    mean_pose = P.pose_errors(np.repeat(y[tr].mean(0, keepdims=True), len(te), 0).reshape(len(te), 17, 3),
                              y[te].reshape(len(te), 17, 3))
    ridge = P.evaluate_probe(P.fit_probe(x[tr], y[tr], probe_cfg, kind="linear"), x[te], y[te])
    mlp = P.evaluate_probe(P.fit_probe(x[tr], y[tr], probe_cfg, kind="mlp"), x[te], y[te])
    out = {"mean_pose": mean_pose, "ridge": ridge, "mlp": mlp,
           "ridge_ratio": ridge["mpjpe"] / mean_pose["mpjpe"], "mlp_ratio": mlp["mpjpe"] / mean_pose["mpjpe"]}
    if latent_export is not None:
        lat = np.asarray(latent_export["latent"], dtype=np.float64)
        if len(lat) != len(y):
            raise ValueError(f"latent export has {len(lat)} frames, the export {len(y)}: export the same splits and frames")
        lat = lat.reshape(len(lat), -1)
        latent = P.evaluate_probe(P.fit_probe(lat[tr], y[tr], probe_cfg, kind="mlp"), lat[te], y[te])
        out["latent_mlp"] = latent
        out["latent_ratio"] = mlp["mpjpe"] / latent["mpjpe"]
    return out


# Ground-truth points a left-right-blind keypoint set could at best find: the body's axis (pelvis,
# spine, thorax, neck, head) and the midpoints of the knees, ankles, elbows and wrists.
AXIS_JOINTS = (0, 7, 8, 9, 10)
MIDPOINT_PAIRS = ((2, 5), (3, 6), (12, 15), (13, 16))


def symmetric_reference(joints_3d) -> np.ndarray:
    """The 9 left-right-symmetric reference points of ground-truth poses.

    Args:
        joints_3d: (T, 17, 3) world mm, Human3.6M order.
    Returns:
        (T, 9, 3): the 5 axis joints, then the knee, ankle, elbow and wrist midpoints.
    """
    j = np.asarray(joints_3d, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (17, 3):
        raise ValueError(f"joints_3d: expected shape (T, 17, 3), got {j.shape}")
    mids = [0.5 * (j[:, a] + j[:, b]) for a, b in MIDPOINT_PAIRS]
    return np.concatenate([j[:, list(AXIS_JOINTS)], np.stack(mids, 1)], axis=1)


def pose_tracking(export: dict, probe_cfg: P.ProbeConfig | None = None) -> dict:
    """How closely each 3D keypoint follows the body, and what a perfect symmetric set would probe.

    For each keypoint, a linear map from the pelvis-relative GT joints to the pelvis-relative 3D
    keypoint is fitted on the training split and measured on the test split: ``r2`` (1 = the keypoint
    moves exactly with some fixed linear blend of joints; 0 = no better than its mean position)
    and ``resid_mm`` (the RMS of what the joints do not explain); ``r2`` is nan for a keypoint that
    does not move relative to the pelvis. ``reference_ridge`` is the ridge
    probe's MPJPE from :func:`symmetric_reference` of the GT poses: what keypoints on the body's
    axis and midway between the limbs would reach (the figure to compare ``ridge`` with).
    Labels are used here only to evaluate.
    """
    cfg = _config(export)
    probe_cfg = probe_cfg or P.probe_config(cfg.get("profile", "cpu-demo"))
    tr, te = _test_rows(export, "train"), _test_rows(export, "test")
    J = np.asarray(export["gt_joints_3d"], dtype=np.float64)
    K = np.asarray(export["kp3d"], dtype=np.float64)
    Jr = (J - J[:, :1]).reshape(len(J), -1)
    X = np.concatenate([Jr, np.ones((len(J), 1))], axis=1)
    N = K.shape[1]
    Kr = (K - J[:, :1]).reshape(len(K), -1)  # (T, 3N): every keypoint's map in one least-squares solve
    coef, *_ = np.linalg.lstsq(X[tr], Kr[tr], rcond=None)
    res = (Kr[te] - X[te] @ coef).reshape(len(te), N, 3)
    var = Kr[te].reshape(len(te), N, 3).var(0).sum(-1)  # (N,)
    unexplained = res.var(0).sum(-1)
    # nan: a keypoint fixed to the pelvis has no motion to explain
    r2 = [float(1.0 - u / v) if v > 1e-6 else float("nan") for u, v in zip(unexplained, var)]
    resid = [float(r) for r in np.sqrt((res ** 2).sum(-1).mean(0))]
    y = P.pose_targets(J)
    ref = P.keypoint_features(symmetric_reference(J))
    ridge = P.evaluate_probe(P.fit_probe(ref[tr], y[tr], probe_cfg, kind="linear"), ref[te], y[te])
    med = float(np.nanmedian(r2)) if not np.isnan(r2).all() else float("nan")
    return {"r2": r2, "resid_mm": resid, "median_r2": med, "reference_ridge": ridge}


def check_discovery(export: dict, latent_export: dict | None = None, bar: DiscoveryBar = DiscoveryBar(),
                    probe_cfg: P.ProbeConfig | None = None, with_probes: bool = True) -> dict:
    """All figures, and ``passed``: {criterion: bool} against ``bar``."""
    res = {"geometry": geometry_figures(export, "test", bar)}
    g = res["geometry"]
    passed = {
        "spread": g["spread_ratio"] >= bar.min_spread_ratio,
        "no_close_pairs": g["close_pair_frac"] < bar.max_close_pair_frac,
        "limbs": all(v >= bar.min_limb_reach for v in g["limb_reach"].values()),
    }
    if "in_gt_mask" in g:
        passed["in_gt_mask"] = g["in_gt_mask"] >= bar.min_in_gt_mask
    if with_probes:
        res["probes"] = probe_figures(export, latent_export, probe_cfg)
        res["tracking"] = pose_tracking(export, probe_cfg)
        p = res["probes"]
        passed["ridge"] = p["ridge_ratio"] <= bar.max_ridge_ratio
        passed["mlp"] = p["mlp_ratio"] <= bar.max_mlp_ratio
        if "latent_ratio" in p:
            passed["latent"] = p["latent_ratio"] <= bar.max_latent_ratio
    res["passed"] = passed
    res["bar"] = asdict(bar)
    return res


def format_report(res: dict) -> str:
    g = res["geometry"]
    lines = [f"test frames: {g['frames']} x {g['views']} views, {g['keypoints']} keypoints",
             f"spread / person height (patch px): {g['spread_ratio']:.3f} ({g['spread_px_patch']:.1f} / {g['person_height_px_patch']:.1f})",
             f"worst pair within 2 px on {100 * g['close_pair_frac']:.1f}% of views"]
    if "in_gt_mask" in g:
        lines.append(f"reprojected keypoints inside the GT mask: {100 * g['in_gt_mask']:.1f}%")
    lines.append("limb reach (8% of height): " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in g["limb_reach"].items()))
    if "probes" in res:
        p = res["probes"]
        lines.append(f"mean pose MPJPE {p['mean_pose']['mpjpe']:.1f} mm")
        for k in ("ridge", "mlp"):
            e = p[k]
            lines.append(f"{k:5s} probe: MPJPE {e['mpjpe']:.1f}  N-MPJPE {e['n_mpjpe']:.1f}  P-MPJPE {e['p_mpjpe']:.1f} mm  "
                         f"(x{p[k + '_ratio']:.2f} of mean pose)")
        if "tracking" in res:
            t = res["tracking"]
            lines.append(f"keypoints following the body: median R^2 {t['median_r2']:.2f} (per keypoint: "
                         + " ".join(f"{v:.2f}" for v in t["r2"]) + ")")
            lines.append(f"reference: ridge probe of GT axis + limb midpoints {t['reference_ridge']['mpjpe']:.1f} mm "
                         f"(x{t['reference_ridge']['mpjpe'] / p['mean_pose']['mpjpe']:.2f} of mean pose)")
        if "latent_ratio" in p:
            lines.append(f"latent (reconstruction-only) MLP MPJPE {p['latent_mlp']['mpjpe']:.1f} mm; ours/latent {p['latent_ratio']:.2f}")
    lines.append("passed: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in res["passed"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    """The command line; an error prints one line (``--debug``: the traceback) and returns 2."""
    ap = argparse.ArgumentParser(prog="python -m kp3d.discovery_check", description=__doc__.splitlines()[0])
    ap.add_argument("export", help="an export .npz, or a run dir / checkpoint to export first (all frames; see --data)")
    ap.add_argument("--data", default=None, help="with a run dir or checkpoint: export it on this data set, e.g. "
                    "synthetic?seed=3 (the validation render); default: the data it trained on")
    ap.add_argument("--latent-export", default=None, help="export of a reconstruction-only model (Table 4 row 1)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--no-probes", action="store_true")
    args = add_debug_flag(ap).parse_args(argv)
    return report_errors(lambda: _main(args), args.debug)


def _main(args) -> int:
    path = Path(args.export)
    if path.suffix != ".npz":  # a run dir or a checkpoint: export it first, beside it, named by the data
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: give an export .npz, a run dir or a checkpoint")
        tag = "".join(c if c.isalnum() else "-" for c in (args.data or "own-data"))
        path = export_once(path, (path if path.is_dir() else path.parent) / f"discovery_export_{tag}.npz", data=args.data)
    elif args.data is not None:
        raise ValueError(f"--data {args.data} needs a run dir or checkpoint to export; {path} is an export already "
                         f"(made on {_config(load_export(path)).get('data', '?')!r})")
    latent = load_export(args.latent_export, require=REQUIRED_KEYS) if args.latent_export else None
    ex = load_export(path, require=REQUIRED_KEYS)
    print(f"{path}: data {_config(ex).get('data', '?')!r}")
    res = check_discovery(ex, latent, with_probes=not args.no_probes)
    print(format_report(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if all(res["passed"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
