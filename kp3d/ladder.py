"""The ladder from the paper's geometric bottleneck to the full model, as runnable configurations.

Each rung is the cpu-demo profile plus a few :class:`kp3d.config.Config` fields; the training loop
is the one of :mod:`kp3d.train`. A rung is climbed only when the rung below holds
(docs/recipe.md, "The ladder"):

- ``R0``: the bottleneck alone on an oracle. The patch is a fixed square crop around the
  ground-truth mask; the keypoint head (a small U-Net) reads that mask patch; soft-argmax -> crop
  intrinsics -> DLT -> reprojection -> Gaussians -> the paper's mask decoder must rebuild the same
  mask in all views. No image decoder, no detector. Ground truth serves only as a diagnostic oracle.
- ``R1``: the method's own signal: the same with |I - B| > 0.1 (median background) as crop, input
  and target (Table 6's IMG-BG variant); no labels.
- ``R2``: from pixels: the crop of R1, the image decoder trained on the RGB patch, and the keypoint
  head reading the decoder's own mask M_p; target M_p.
- ``R3``: the full model, the cpu-demo profile.
- ``Ma`` / ``Mb``: the image decoder's mask M_p from reconstruction alone (Eq. 10, no keypoint path),
  through R1's fixed crop / through the learned detector; ``M0``: Ma with M_p also fitted to the
  ground-truth mask (an oracle: the IoU the decoder can reach at this size). Measured with
  ``python -m kp3d.ladder masks RUN_DIR``.

:func:`measure` probes an exported rung beside its baselines (mean pose, the same network
untrained, its own latent) with the figures of :mod:`kp3d.discovery_check`.

Usage:
    python -m kp3d.ladder train R0 --run-dir outputs/ladder/R0          # add --resume to continue
    python -m kp3d.ladder measure outputs/ladder/R0 --json outputs/ladder/R0.json
    python -m kp3d.ladder measure outputs/ladder/R3 --crop-source img-bg   # R3 through the box prior's crop
    python -m kp3d.ladder measure outputs/ladder/R3s1 --no-untrained       # without the untrained network
    python -m kp3d.ladder measure outputs/ladder/R3 --data "synthetic?seed=3"  # on the validation render
    python -m kp3d.ladder masks outputs/ladder/Ma --data "synthetic?seed=3"    # M_p and |I - B| against the GT mask
    python -m kp3d.ladder masks outputs/ladder/Ma --step 3000                  # the same at a saved step

Example:
    >>> rung_config("R0").keypoint_input
    'gt-mask'
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kp3d import checkpoint as ckpt_io
from kp3d.cli_errors import run_entry_point
from kp3d.config import CROP_SOURCES, Config, parse_overrides
from kp3d.discovery_check import geometry_figures, pose_tracking, probe_figures
from kp3d.export import export_once, load_export
from kp3d.losses import foreground_box
from kp3d.mask_figures import format_mask_figures, mask_figures
from kp3d.profiles import dataset_for, get_config
from kp3d.results import table6_markdown
from kp3d.train import _seed_everything, build_training_parts, select_views, train

# What each rung changes on top of the cpu-demo profile. The bottleneck rungs train only the
# keypoint path: 8 frames x 4 views, sigma 0.3 -> 0.1 over 1,000 steps, mask MSE + 0.01 coverage.
_BOTTLENECK = dict(
    image_reconstruction=False, batch_size=8, max_iters=3000, warmup_iters=0, keypoint_ramp_iters=0,
    sigma_start=0.3, sigma=0.1, sigma_anneal_iters=1000, use_centering_loss=False, w_box_prior=0.0, w_patch=0.0,
    w_mask=1.0, w_coverage=0.01,
)
RUNGS: dict[str, dict[str, Any]] = {
    "R0": dict(_BOTTLENECK, crop_source="gt-mask", keypoint_input="gt-mask", mask_target="gt"),
    "R1": dict(_BOTTLENECK, crop_source="img-bg", keypoint_input="img-bg", mask_target="img-bg-mask"),
    "R2": dict(crop_source="img-bg", keypoint_input="pred-mask", mask_target="predicted", w_box_prior=0.0),
    "R3": {},
    # the image decoder's mask M_p, reconstruction alone (no keypoint path): through R1's fixed crop
    # (Ma), through the learned detector (Mb), and Ma with M_p also fitted to the GT mask (M0, oracle)
    "Ma": dict(reconstruction_only=True, crop_source="img-bg", w_box_prior=0.0),
    "Mb": dict(reconstruction_only=True),
    "M0": dict(reconstruction_only=True, crop_source="img-bg", w_box_prior=0.0, mask_oracle=True),
}


def rung_config(rung: str, profile: str = "cpu-demo", **overrides: Any) -> Config:
    """The :class:`Config` of a rung: the profile (sizes; cpu-demo by default, smoke for tests), the
    rung's fields, then ``overrides``."""
    if rung not in RUNGS:
        raise ValueError(f"unknown rung {rung!r}: expected one of {', '.join(RUNGS)}")
    return get_config(profile, **{**RUNGS[rung], **overrides})


def _export_once(checkpoint: Path, out: Path, crop_source: str | None = None, data: str | None = None) -> dict:
    """:func:`kp3d.export.export_once` of ``checkpoint`` to ``out``, loaded."""
    return load_export(export_once(checkpoint, out, data=data, crop_source=crop_source))


def data_tag(data: str | None, trained_on: str) -> str:
    """A file-name tag for measuring on ``data`` rather than the data the run trained on ("" when the same).

    Example:
        >>> data_tag("synthetic?seed=3", "synthetic"), data_tag(None, "synthetic")
        ('_data-synthetic-seed3', '')
    """
    if data is None or data == trained_on:
        return ""
    return "_data-" + "".join(c if c.isalnum() else "-" for c in data.replace("?", "-").replace("=", "")).strip("-")


def untrained_checkpoint(cfg: Config, run_dir: Path) -> Path:
    """The rung's network as training starts it (the same seed, so the same initial weights), saved
    under ``run_dir/untrained``: the baseline that separates what training taught from what the
    architecture and the probe's z-scoring give for free."""

    d = run_dir / "untrained"
    last = ckpt_io.latest_checkpoint(d)
    if last is not None and ckpt_io.load_checkpoint(last)["config"] == cfg.to_dict():
        return last
    _seed_everything(cfg.seed)
    model, _, _ = build_training_parts(cfg, torch.device("cpu"))
    return ckpt_io.save_checkpoint(d, {"model": model.state_dict(), "step": 0, "config": cfg.to_dict()})


def box_figures(ex: dict, cfg: Config, split: str = "test") -> dict:
    """The export's crop boxes against the box prior's box (square box around |I - B| >
    ``cfg.box_prior_threshold``, margin ``cfg.box_prior_margin``) on the frames of ``split``.

    Returns a dict: ``size_ratio`` (export side / prior side; median, p10, p90) and ``centre_offset``
    (distance of the two centres in the prior's half-sides; median, p90), over all frames and views.
    A detector that holds on new subjects has a size ratio near 1 and a small offset on "test".
    """


    rows = np.flatnonzero(np.asarray(ex["split"]) == split)
    ds = dataset_for(cfg, split)
    if len(rows) != len(ds):
        raise ValueError(f"box_figures: the export holds {len(rows)} {split} frames, the data set {len(ds)}: "
                         f"export all frames (no max_frames) to compare boxes")
    prior = []
    with torch.no_grad():
        for batch in torch.utils.data.DataLoader(ds, batch_size=16):
            b = select_views(batch, cfg.views)
            prior.append(foreground_box(b["images"].flatten(0, 1).float(), b["backgrounds"].flatten(0, 1).float(),
                                        cfg.box_prior_threshold, cfg.box_prior_margin, cleanup=cfg.foreground_cleanup,
                                        shadow_chroma=cfg.shadow_chroma).numpy())
    prior = np.concatenate(prior)  # (frames x views, 4), the export's row order
    own = np.asarray(ex["boxes"])[rows].reshape(-1, 4)
    ratio = own[:, 0] / prior[:, 0]
    offset = np.linalg.norm(own[:, 2:] - prior[:, 2:], axis=1) / prior[:, 0]
    return {"split": split, "size_ratio": {"median": float(np.median(ratio)), "p10": float(np.percentile(ratio, 10)),
                                           "p90": float(np.percentile(ratio, 90))},
            "centre_offset": {"median": float(np.median(offset)), "p90": float(np.percentile(offset, 90))}}


def saved_checkpoint(run_dir: str | Path, step: int | None = None) -> Path:
    """A run's checkpoint at ``step`` (None: its newest), or a one-line error naming the saved steps."""
    run_dir = Path(run_dir)
    if step is None:
        last = ckpt_io.latest_checkpoint(run_dir)
        if last is None:
            raise FileNotFoundError(f"{run_dir} has no checkpoint: train it first (python -m kp3d.ladder train RUNG --run-dir {run_dir})")
        return last
    path = ckpt_io.step_path(run_dir, step)
    if not path.is_file():
        saved = [ckpt_io.step_of(p) for p in ckpt_io.list_checkpoints(run_dir)]
        raise FileNotFoundError(f"{run_dir} has no checkpoint at step {step}: its saved steps are "
                                f"{', '.join(map(str, saved)) or 'none'} (ckpt_every sets them)")
    return path


def measure(run_dir: str | Path, with_untrained: bool = True, crop_source: str | None = None, data: str | None = None,
            with_masks: bool = True) -> dict:
    """Export a trained rung and measure it on the test subjects beside its baselines.

    ``crop_source`` evaluates the trained network (and the untrained one) through another crop than
    the one it trained with, e.g. "img-bg" for a detector run: the box prior's box in place of the
    detector's (:func:`kp3d.export.export`). The figures then say what the learned crop costs.

    Returns a dict: ``step``, ``config`` (the run's, as trained), ``geometry`` (:func:`kp3d.discovery_check.geometry_figures`),
    ``probes`` (ridge and MLP of the 3D keypoints, the mean pose, the MLP of the model's own latent),
    ``tracking`` (median R^2 of :func:`kp3d.discovery_check.pose_tracking`), ``untrained``
    (ridge and MLP of the same network untrained, same probes; with ``with_untrained``) and, when
    the export's crop is the detector's, ``boxes`` (:func:`box_figures` on the training and the test
    subjects). MPJPE in mm. ``data`` measures on another data set than the run trained on (e.g.
    ``"synthetic?seed=3"``, the validation render; the probes are fitted on its training split and
    measured on its test split); ``masks`` (:func:`mask_run`) holds the mask figures on its test views.
    """

    run_dir = Path(run_dir)
    last = saved_checkpoint(run_dir)
    state = ckpt_io.load_checkpoint(last)
    trained = cfg = Config.from_dict(state["config"])
    step = int(state["step"])
    tag = data_tag(data, trained.data)
    if tag:
        cfg = cfg.replace(data=data)  # the export's config_json names the data measured
    if crop_source is not None and crop_source != cfg.crop_source:
        cfg, tag = cfg.replace(crop_source=crop_source), f"{tag}_crop-{crop_source}"  # validated here, before exporting
    ex = _export_once(last, run_dir / f"export_step{step:07d}{tag}.npz", crop_source, data)
    probes = probe_figures(ex, latent_export=ex)
    res = {"run_dir": str(run_dir), "step": step, "config": trained.to_dict(), "data": cfg.data, "crop_source": cfg.crop_source, "geometry": geometry_figures(ex),
           "probes": probes, "tracking": {"median_r2": pose_tracking(ex)["median_r2"]}}
    if cfg.crop_source == "detector":
        res["boxes"] = {split: box_figures(ex, cfg, split) for split in ("train", "test")}
    if with_masks:
        res["masks"] = mask_run(run_dir, data=data, crop_source=crop_source)
    if with_untrained:
        ex0 = _export_once(untrained_checkpoint(trained, run_dir), run_dir / "untrained" / f"export{tag}.npz", crop_source, data)
        p0 = probe_figures(ex0)
        res["untrained"] = {k: p0[k] for k in ("ridge", "mlp", "ridge_ratio", "mlp_ratio")}
    return res


def mask_run(run_dir: str | Path, data: str | None = None, split: str = "test", every: int = 8,
             crop_source: str | None = None, step: int | None = None) -> dict:
    """The mask figures (:func:`kp3d.mask_figures.mask_figures`) of a run's checkpoint at ``step``
    (None: the newest) on every ``every``-th frame of ``split`` of ``data`` (None: the data it
    trained on): M_p against the GT mask beside |I - B| raw and cleaned, on the same views. The
    saved steps of one run give the curve of M_p over training."""

    state = ckpt_io.load_checkpoint(saved_checkpoint(run_dir, step))  # read once: the model and its step
    model, cfg = ckpt_io.model_from_checkpoint(state)
    if crop_source is not None and crop_source != cfg.crop_source:
        cfg = model.cfg = cfg.replace(crop_source=crop_source)
    data_cfg = cfg.replace(data=data) if data is not None else cfg
    res = mask_figures(model, dataset_for(data_cfg, split), cfg, every=every)
    res.update({"data": data_cfg.data, "split": split, "every": every, "step": int(state["step"])})
    return res


# Table 6's targets and the mask of kp3d.mask_figures each is scored by (the GT target is the GT)
TARGET_MASKS = {"predicted": "pred", "gt": None, "img-bg": "img-bg", "img-bg-mask": "img-bg-cleaned"}


def table6_row(res: dict) -> dict:
    """One row of Table 6 from :func:`measure` (with masks) of a run: its target and seed (from the run's
    ``config``), the probes (mm and x the mean pose), the share of keypoints on the GT mask and the
    target's IoU with the GT."""
    run_cfg = Config.from_dict(res["config"])
    p, key = res["probes"], TARGET_MASKS[run_cfg.mask_target]
    return {"target": run_cfg.mask_target, "seed": run_cfg.seed, "keypoint_input": run_cfg.keypoint_input,
            "run_dir": res["run_dir"], "step": res["step"], "data": res.get("data"), "mean_pose": p["mean_pose"]["mpjpe"],
            "ridge": p["ridge"]["mpjpe"], "ridge_ratio": p["ridge_ratio"], "mlp": p["mlp"]["mpjpe"], "mlp_ratio": p["mlp_ratio"],
            "n_mpjpe": p["mlp"]["n_mpjpe"], "p_mpjpe": p["mlp"]["p_mpjpe"], "latent_mlp": p["latent_mlp"]["mpjpe"],
            "on_gt_mask": res["geometry"].get("in_gt_mask"), "target_iou": 1.0 if key is None else res["masks"][key]["iou"],
            "pred_mask_iou": res["masks"]["pred"]["iou"]}


def format_measure(res: dict) -> str:
    """The figures of :func:`measure` as a few lines, baselines beside the result."""
    p, g = res["probes"], res["geometry"]
    mp = p["mean_pose"]["mpjpe"]
    lines = [f"{res['run_dir']} at step {res['step']}: {g['frames']} test frames x {g['views']} views, {g['keypoints']} keypoints"
             f"{', crop ' + res['crop_source'] if 'crop_source' in res else ''}{', data ' + res['data'] if 'data' in res else ''}",
             f"  mean pose                 {mp:6.1f} mm",
             f"  3D keypoints   ridge {p['ridge']['mpjpe']:6.1f} ({p['ridge_ratio']:.2f}x)   MLP {p['mlp']['mpjpe']:6.1f} "
             f"({p['mlp_ratio']:.2f}x)   N-MPJPE {p['mlp']['n_mpjpe']:.1f}  P-MPJPE {p['mlp']['p_mpjpe']:.1f}"]
    if "untrained" in res:
        u = res["untrained"]
        lines.append(f"  same, untrained ridge {u['ridge']['mpjpe']:6.1f} ({u['ridge_ratio']:.2f}x)   MLP {u['mlp']['mpjpe']:6.1f} "
                     f"({u['mlp_ratio']:.2f}x)")
    lines.append(f"  own latent              MLP {p['latent_mlp']['mpjpe']:6.1f} ({p['latent_mlp']['mpjpe'] / mp:.2f}x)")
    reach = " ".join(f"{k} {100 * v:.0f}%" for k, v in g["limb_reach"].items())
    lines.append(f"  spread {g['spread_ratio']:.3f} of the height, close pairs {g['close_pairs']}, "
                 f"on GT mask {100 * g.get('in_gt_mask', float('nan')):.1f}%, reach {reach}, "
                 f"median R^2 {res['tracking']['median_r2']:.2f}")
    for split, b in res.get("boxes", {}).items():
        lines.append(f"  detector box / box prior's on {split:5s}: side {b['size_ratio']['median']:.2f}x "
                     f"(p10 {b['size_ratio']['p10']:.2f}, p90 {b['size_ratio']['p90']:.2f}), centre "
                     f"{b['centre_offset']['median']:.2f} half-sides off (p90 {b['centre_offset']['p90']:.2f})")
    if "masks" in res:
        lines.append(format_mask_figures(res["masks"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kp3d.ladder", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one rung")
    t.add_argument("rung", choices=list(RUNGS))
    t.add_argument("--run-dir", required=True)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--max-minutes", type=float, default=None)
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    t.add_argument("--threads", type=int, default=1, help="torch threads (side-by-side runs: 1 each)")
    m = sub.add_parser("measure", help="export a trained rung and probe it beside its baselines")
    m.add_argument("run_dir")
    m.add_argument("--json", default=None)
    m.add_argument("--crop-source", default=None, choices=CROP_SOURCES,
                   help="evaluate through another crop than training's (img-bg: the box prior's box, not the detector's)")
    m.add_argument("--no-untrained", action="store_true", help="skip the untrained network (same seed and input: its figures are known)")
    m.add_argument("--data", default=None, help="measure on this data set instead of the one the run trained on, "
                   "e.g. synthetic?seed=3 (the validation render)")
    m.add_argument("--threads", type=int, default=1)
    t6 = sub.add_parser("table6", help="Table 6 (the mask target): measure runs that differ in mask_target, write the rows")
    t6.add_argument("run_dirs", nargs="+", help="trained runs; each run's own config says its target and seed")
    t6.add_argument("--data", default=None, help="measure on this data set, e.g. synthetic?seed=3 (the validation render)")
    t6.add_argument("--json", required=True, help="where the rows go (an existing file is refused)")
    t6.add_argument("--threads", type=int, default=1)
    k = sub.add_parser("masks", help="the mask figures alone (M_p and |I - B| against the GT mask), e.g. for a reconstruction-only run")
    k.add_argument("run_dir")
    k.add_argument("--data", default=None, help="measure on this data set, e.g. synthetic?seed=3")
    k.add_argument("--split", default="test", choices=("train", "test"))
    k.add_argument("--every", type=int, default=8, help="every k-th frame (default 8)")
    k.add_argument("--crop-source", default=None, choices=CROP_SOURCES)
    k.add_argument("--step", type=int, default=None, help="the checkpoint saved at this step (default: the newest)")
    k.add_argument("--json", default=None)
    k.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.cmd == "train":

        cfg = rung_config(args.rung, **parse_overrides(args.overrides))
        train(cfg, run_dir=args.run_dir, resume=args.resume, max_minutes=args.max_minutes)
        return 0
    if args.json and Path(args.json).exists():
        raise FileExistsError(f"{args.json} exists: choose another --json path or remove it first")
    if args.cmd == "table6":
        rows = [table6_row(measure(d, with_untrained=False, data=args.data)) for d in args.run_dirs]
        Path(args.json).write_text(json.dumps({"data": args.data, "rows": rows}, indent=2))
        print(table6_markdown(rows))
        return 0
    if args.cmd == "masks":
        res = mask_run(args.run_dir, data=args.data, split=args.split, every=args.every, crop_source=args.crop_source,
                       step=args.step)
        print(f"{args.run_dir} at step {res['step']}, {res['data']} {res['split']}, every {res['every']}th frame")
        print(format_mask_figures(res))
    else:
        res = measure(args.run_dir, with_untrained=not args.no_untrained, crop_source=args.crop_source, data=args.data)
        print(format_measure(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
