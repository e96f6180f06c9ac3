"""Run a trained model over a data set and save its predictions to one ``.npz`` (docs/architecture.md).

Arrays (T frames over the requested splits, V views, N keypoints):
    boxes (T, V, 4), kp2d (T, V, N, 2), kp2d_reproj (T, V, N, 2) full-image pixels,
    kp3d (T, N, 3) world mm, masks (T, V, 1, h, w) uint8 0-255 (full frame / mask_downsample),
    latent (T, V, D), subject (T,) str, split (T,) str, frame (T,) int64, K/R/t (T, V, ...),
    gt_joints_3d (T, 17, 3) and gt_joints_2d (T, V, 17, 2) when the data set has labels,
    config_json (0-d str): the training config (with ``crop_source`` as evaluated, see below).
``crop_source`` evaluates through another crop than training's (:data:`kp3d.config.CROP_SOURCES`), e.g.
"img-bg", the box prior's square box around |I - B|: it measures what the learned detector's crop
costs on unseen subjects (docs/recipe.md, "The ladder"). The model runs in float32 and eval mode
(no dropout), so an export is deterministic. A rig has no held-out frames (its splits return the same
frames): it is read once and each frame is one row, the last fifth labelled "test" (:func:`time_split_rows`).

Command line (the same as ``kp3d-train --export`` after training)::

    python -m kp3d.export outputs/runs/cpu-demo-20250101-120000 outputs/export.npz [--overwrite]

Example:
    >>> from kp3d.export import export, load_export
    >>> path = export("runs/cpu-demo-20250101-120000", "outputs/export.npz")   # doctest: +SKIP
    >>> load_export(path)["kp3d"].shape                                         # doctest: +SKIP
    (2400, 16, 3)
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from kp3d.checkpoint import load_checkpoint, load_model
from kp3d.cli_errors import add_debug_flag, report_errors
from kp3d.config import CROP_SOURCES, Config
from kp3d.model import gt_masks
from kp3d.profiles import dataset_for
from kp3d.train import select_views, to_device

TEST_SHARE = 0.2  # of a rig's frames, the last ones, exported as its "test" split (:func:`time_split_rows`)


@torch.no_grad()
def export(checkpoint: str | Path, out_path: str | Path, splits=("train", "test"), max_frames: int | None = None,
           batch_size: int = 16, data: str | None = None, profile: str | None = None, overwrite: bool = False,
           device: str | None = None, mask_downsample: int = 1, datasets: dict | None = None,
           progress: bool = True, crop_source: str | None = None) -> Path:
    """Write the export file of a checkpoint (file or run dir) and return its path.

    Args:
        checkpoint: a ``.pt`` checkpoint or a run dir (its ``checkpoints/last.pt``).
        out_path: the ``.npz`` to write; an existing file raises unless ``overwrite=True``.
        splits: data set splits to run over, concatenated in this order.
        max_frames: per split, at most this many frames, evenly spaced over the split.
        data, profile: override the checkpoint config's data set (e.g. the same model on other data).
        mask_downsample: store masks at (H / k, W / k) to keep the file small.
        datasets: {split: data set} to use instead of building them (tests, custom data).
        crop_source: evaluate through this crop instead of the checkpoint's (``Config.crop_source``);
            None keeps it. "gt-mask" needs a data set with masks.
    """
    out_path = Path(out_path)
    if out_path.suffix != ".npz":
        raise ValueError(f"out_path={out_path}: the export is a .npz file")
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass overwrite=True (--overwrite) to replace it or choose another path")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, cfg = load_model(checkpoint, map_location=dev)
    if crop_source is not None and crop_source != cfg.crop_source:
        cfg = cfg.replace(crop_source=crop_source)  # validated by Config; the model reads it at every forward
        model.cfg = cfg
    data_cfg = cfg.replace(**{k: v for k, v in (("data", data), ("profile", profile)) if v is not None})

    cols: dict[str, list] = {k: [] for k in ("boxes", "kp2d", "kp2d_reproj", "kp3d", "masks", "latent", "K", "R", "t",
                                             "gt_joints_3d", "gt_joints_2d", "kp_reproj_in_gt_mask", "subject", "split",
                                             "frame")}
    has_gt = True
    shared = None  # a data set without held-out frames (a rig): built once, its frames split in time
    for split in splits:
        ds = datasets[split] if datasets is not None else shared or dataset_for(data_cfg, split, progress=progress)
        if getattr(ds, "held_out", True):
            idx = np.arange(len(ds))
        else:
            shared, idx = ds, time_split_rows(len(ds), split)
        if max_frames is not None and len(idx) > max_frames:
            idx = idx[np.unique(np.linspace(0, len(idx) - 1, max_frames).round().astype(int))]
        sub = torch.utils.data.Subset(ds, idx.tolist())
        dl = torch.utils.data.DataLoader(sub, batch_size=batch_size, shuffle=False, num_workers=0)
        for batch in tqdm(dl, desc=f"export {split}", disable=not progress):
            batch = to_device(select_views(batch, cfg.views), dev)
            out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"], masks=gt_masks(batch), keypoints=True)
            B, V = out["box"].shape[:2]
            m = out["mask"].reshape(B * V, 1, *out["mask"].shape[-2:])
            if mask_downsample > 1:
                m = F.avg_pool2d(m, mask_downsample)
            cols["masks"].append((m.clamp(0, 1) * 255).round().to(torch.uint8).reshape(B, V, 1, *m.shape[-2:]).cpu().numpy())
            for k, src in (("boxes", "box"), ("kp2d", "kp2d"), ("kp2d_reproj", "kp2d_reproj"), ("kp3d", "kp3d"), ("latent", "latent")):
                cols[k].append(out[src].float().cpu().numpy())
            for k in ("K", "R", "t"):
                cols[k].append(batch[k].float().cpu().numpy())
            gt = batch.get("gt")
            if isinstance(gt, dict) and "joints_3d" in gt and "joints_2d" in gt:
                cols["gt_joints_3d"].append(gt["joints_3d"].float().cpu().numpy())
                cols["gt_joints_2d"].append(gt["joints_2d"].float().cpu().numpy())
                if "masks" in gt:
                    # whether each reprojected keypoint lands on the person (GT mask), per view: the
                    # masks themselves would make the file large, this is what evaluation needs
                    gm = gt["masks"].float()  # (B, V, 1, H, W)
                    H, W = gm.shape[-2:]
                    uv = out["kp2d_reproj"].float().round().long()  # (B, V, N, 2)
                    ok = (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
                    flat = gm[:, :, 0].flatten(2)  # (B, V, H*W)
                    lin = uv[..., 1].clamp(0, H - 1) * W + uv[..., 0].clamp(0, W - 1)
                    inside = (torch.gather(flat, 2, lin) > 0.5) & ok
                    cols["kp_reproj_in_gt_mask"].append(inside.to(torch.uint8).cpu().numpy())
            else:
                has_gt = False
        for i in idx:
            info = ds.frame_info(int(i)) if hasattr(ds, "frame_info") else {}
            cols["subject"].append(str(info.get("subject", "")))
            cols["frame"].append(int(info.get("frame", i)))
            cols["split"].append(split)
    if not cols["kp3d"]:
        raise ValueError(f"no frames to export from splits {splits}")
    arrays = {k: np.concatenate(v).astype(np.float32 if k not in ("masks",) else np.uint8)
              for k, v in cols.items() if k not in ("subject", "split", "frame", "gt_joints_3d", "gt_joints_2d",
                                                        "kp_reproj_in_gt_mask")}
    if has_gt and cols["gt_joints_3d"]:
        arrays["gt_joints_3d"] = np.concatenate(cols["gt_joints_3d"]).astype(np.float32)
        arrays["gt_joints_2d"] = np.concatenate(cols["gt_joints_2d"]).astype(np.float32)
        if len(cols["kp_reproj_in_gt_mask"]) == len(cols["gt_joints_3d"]):
            arrays["kp_reproj_in_gt_mask"] = np.concatenate(cols["kp_reproj_in_gt_mask"]).astype(np.uint8)
    arrays["subject"] = np.asarray(cols["subject"], dtype=str)
    arrays["split"] = np.asarray(cols["split"], dtype=str)
    arrays["frame"] = np.asarray(cols["frame"], dtype=np.int64)
    arrays["config_json"] = np.asarray(data_cfg.to_json())  # names the data the rows come from
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out_path)
    return out_path


def time_split_rows(n: int, split: str) -> np.ndarray:
    """The frames of a recording without a held-out part (a rig) that an export labels ``split``:
    the last :data:`TEST_SHARE` of the frames (at least one) are "test", the others "train", any
    other split name all of them; so each frame is one row and notebook 05 probes held-out frames."""
    n_test = min(n - 1, max(1, round(n * TEST_SHARE))) if n > 1 else 0
    if split == "train":
        return np.arange(n - n_test)
    if split == "test":
        return np.arange(n - n_test, n)
    return np.arange(n)


def export_once(checkpoint: str | Path, out_path: str | Path, data: str | None = None, crop_source: str | None = None,
                progress: bool = False) -> Path:
    """:func:`export` over all frames (train + test) of ``data`` (None: the checkpoint's), through
    ``crop_source`` (None: the checkpoint's), unless ``out_path`` already holds exactly that export.

    An existing file is reused only when its recorded configuration (with the data and crop it was
    made on) is the one asked for now; otherwise it is replaced, and the replacement is said.
    """
    out_path = Path(out_path)
    cfg = Config.from_dict(load_checkpoint(checkpoint)["config"])  # the config alone: no model built
    want = cfg.replace(**{k: v for k, v in (("data", data), ("crop_source", crop_source)) if v is not None}).to_json()
    if out_path.exists():
        if str(load_export(out_path).get("config_json", "")) == want:
            return out_path
        print(f"{out_path} was exported from another configuration or data: exporting again")
    return export(checkpoint, out_path, overwrite=True, progress=progress, crop_source=crop_source, data=data)


# arrays every export has (:func:`export`); a file without them was made by something else
REQUIRED_KEYS = ("kp3d", "kp2d_reproj", "boxes", "split", "config_json")
HOW_TO_EXPORT = "make one with: python -m kp3d.export RUN_DIR_OR_CHECKPOINT OUT.npz (or kp3d-train ... --export OUT.npz)"


def load_export(path: str | Path, require: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Read an export file into a dict of arrays (``config_json`` stays a 0-d str array).

    A missing file, a damaged one, one holding pickled objects, or one without the arrays named in
    ``require`` (:data:`REQUIRED_KEYS`: what every export has) raises a ValueError (or
    FileNotFoundError) that says the file is not an export and how to make one.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"export {p} does not exist; {HOW_TO_EXPORT}")
    try:
        with np.load(p, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        # pickled objects, a truncated or damaged zip, not an npz at all
        raise ValueError(f"{p} is not a kp3d export (it cannot be read as one: {type(e).__name__}: {e}); "
                         f"{HOW_TO_EXPORT}") from None
    missing = [k for k in require if k not in out]
    if missing:
        raise ValueError(f"{p} is not a kp3d export (it has no {', '.join(missing)}; it holds "
                         f"{', '.join(sorted(out)) or 'nothing'}); {HOW_TO_EXPORT}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m kp3d.export CHECKPOINT OUT.npz``: write the export file of a run or checkpoint."""
    ap = argparse.ArgumentParser(prog="python -m kp3d.export", description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a run dir (its checkpoints/last.pt) or a .pt checkpoint")
    ap.add_argument("out", help="the .npz to write")
    ap.add_argument("--splits", nargs="+", default=["train", "test"], help="data set splits, in this order")
    ap.add_argument("--max-frames", type=int, default=None, help="per split, at most this many evenly spaced frames")
    ap.add_argument("--data", default=None, help="another data set than the checkpoint's (e.g. rig:PATH)")
    ap.add_argument("--profile", default=None, help="another profile for the data set's sizes")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--mask-downsample", type=int, default=1, help="store masks at (H / k, W / k)")
    ap.add_argument("--device", default=None, choices=("cpu", "cuda"))
    ap.add_argument("--crop-source", default=None, choices=CROP_SOURCES,
                    help="evaluate through another crop than the checkpoint's (img-bg: the box prior's box)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    ap.add_argument("--no-progress", action="store_true")
    args = add_debug_flag(ap).parse_args(argv)

    def run() -> int:
        out = export(args.checkpoint, args.out, splits=tuple(args.splits), max_frames=args.max_frames,
                     batch_size=args.batch_size, data=args.data, profile=args.profile, overwrite=args.overwrite,
                     device=args.device, mask_downsample=args.mask_downsample, progress=not args.no_progress,
                     crop_source=args.crop_source)
        print(f"export: {out}")
        return 0

    return report_errors(run, args.debug)


if __name__ == "__main__":
    sys.exit(main())
