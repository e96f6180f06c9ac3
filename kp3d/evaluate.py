"""Evaluation: probes on an export, baselines, results tables (the paper's Sec. 3.5, 4 and S.1.2).

What is measured (all errors pelvis-relative, world frame, mm on the synthetic set and Human3.6M;
see :mod:`kp3d.probes` for the conventions):

- ``mv_keypoints``: the multi-view 3D keypoints (export ``kp3d``) through the linear and MLP probes
  (Table 1, MV rows), over a sweep of labelled-frame fractions (Fig. 5/6);
- ``sv_keypoints``: the single-view lifter's keypoints (:mod:`kp3d.lifter`, Table 1 SV row), one
  sample per (frame, view);
- ``latent``: the encoder features Xi of the same export (per view, concatenated over views) through
  the same probes. Table 4 row 1 is this probe on a *reconstruction-only* model: pass that model's
  export as ``latent_export`` (:mod:`kp3d.tables` does, for Table 4);
- ``mean_pose``: the mean training pose predicted for every test frame;
- ``untrained``: encoder features of an untrained network (same architecture, random init) through
  the same probes (:func:`kp3d.baselines.untrained_baseline`, needs the data set);
- ``silhouette_img-bg`` / ``silhouette_gt``: the views' background-subtraction (or ground-truth)
  masks, cropped, resized and PCA-reduced (:mod:`kp3d.silhouettes`): what no learning gives;
- ``supervised``: the upper bound, the same encoder trained end to end with the 3D labels
  and a 2-hidden-layer head (:func:`kp3d.baselines.supervised_upper_bound`);
- ``2d``: Table 3's linear map from 2D keypoints to 2D joints, error in % of the image size.

The paper's ablation tables (4, 5, 6, S3) have their own runner, :mod:`kp3d.tables` (``make tables``;
``python -m kp3d.evaluate ablations ...`` passes its arguments there). Headless::

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
import sys
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from kp3d import probes as P
from kp3d.baselines import encoder_features, supervised_upper_bound, untrained_baseline
from kp3d.cli_errors import run_entry_point
from kp3d.config import Config
from kp3d.export import REQUIRED_KEYS, load_export
from kp3d.lifter import LifterConfig, lift, lifter_config, train_lifter
from kp3d.profiles import dataset_for, get_config, output_dir
from kp3d.results import PAPER_RESULTS, plot_fraction_curves, results_markdown, summary, write_results
from kp3d.silhouettes import silhouette_baseline
from kp3d.tables import main as tables_main

log = logging.getLogger(__name__)

__all__ = [
    "PAPER_RESULTS",
    "split_indices",
    "probe_protocol",
    "evaluate_export",
    "mean_pose_errors",
    "encoder_features",
    "untrained_baseline",
    "supervised_upper_bound",
    "results_markdown",
    "write_results",
    "summary",
    "plot_fraction_curves",
    "main",
]


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


def probe_protocol(export: dict) -> str:
    """The frames a probe figure of ``export`` comes from, to print beside it: two figures of one model
    compare only under one protocol (the tables and README use every frame; notebook 05 a preset).

    Example:
        >>> import numpy as np
        >>> probe_protocol({"split": np.array(["train"] * 6 + ["test"] * 2), "config_json": np.array('{"data": "synthetic"}')})
        'probes fitted on 6 training frames, measured on 2 test frames of synthetic'
    """
    tr, te = split_indices(export)
    return f"probes fitted on {len(tr)} training frames, measured on {len(te)} test frames of {_export_config(export).get('data', 'synthetic')}"


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


# ------------------------------------------------------------------------------------------------
# command line


def _parse_fractions(text: str) -> tuple[float, ...]:
    vals = tuple(float(v) for v in text.split(",") if v.strip())
    if not vals or any(not 0 < v <= 1 for v in vals):
        raise argparse.ArgumentTypeError(f"--fractions {text!r}: expected comma-separated values in (0, 1]")
    return vals


def main(argv: list[str] | None = None) -> int:
    """``python -m kp3d.evaluate {probe,baselines,ablations} ...`` (see ``--help``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["ablations"]:  # one runner for the paper's tables: kp3d.tables takes the rest of the line

        return tables_main(argv[1:])
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

    sub.add_parser("ablations", add_help=False, help="the paper's tables 4, 5, 6 and S3: python -m kp3d.tables (its --help)")
    args = ap.parse_args(argv)
    progress = not args.quiet



    rows: list[dict] = []
    # a file that is not an export is refused with how to make one (not a missing-key error later)
    ex = load_export(args.export, require=REQUIRED_KEYS) if args.export else None
    if args.cmd == "baselines":

        # the untrained network and the upper bound use the evaluated model's architecture and data
        cfg = Config.from_dict(_export_config(ex)) if ex is not None and _export_config(ex) else get_config(args.profile)
        tr_ds, te_ds = dataset_for(cfg, "train"), dataset_for(cfg, "test")
        rows += untrained_baseline(cfg, tr_ds, te_ds, args.fractions, tuple(args.kinds),
                                   max_frames=args.max_frames, progress=progress)

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
    sys.exit(run_entry_point(main))  # one-line errors on the command line; --debug: the traceback
