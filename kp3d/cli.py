"""``kp3d-train``: train the unsupervised model from the command line.

    kp3d-train --profile cpu-demo --set max_iters=2000 --set use_coverage_loss=false
    kp3d-train --run-dir outputs/runs/my-run --resume      # continue a killed run with its config.json
    kp3d-train --profile smoke --export outputs/smoke.npz                      # train, then export
    torchrun --nproc_per_node 4 -m kp3d.cli --profile paper-h36m --set data=h36m:/data/h36m
    kp3d-train --profile cpu-demo --data rig:/data/my_rig --calibration /data/my_rig/calibration.toml --export rig.npz
    kp3d-train --profile cpu-demo --data rig:/data/my_rig --trim --cameras cam1,cam3 --units m --up-axis=-y

``--set key=value`` accepts any :class:`kp3d.config.Config` field (booleans: true/false; tuples:
``views=0,1,2``). ``python -m kp3d.cli`` is the same command. The rig options (``--trim``,
``--cameras``, ``--backgrounds``, ``--units``, ``--up-axis``, ``--max-frames``) become part of the data spec
(``rig:/data/my_rig?trim=true&cameras=cam1,cam3``), the form the notebooks' ``DATA`` takes.

An error prints one line (``error: ...``, exit status 2); ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from data_utils.datasets import data_views
from data_utils.rig import with_rig_options
from kp3d.cli_errors import USER_ERRORS, add_debug_flag, report_errors, run_entry_point  # noqa: F401 (the CLIs' names)
from kp3d.config import Config, parse_overrides
from kp3d.console import once_per_run
from kp3d.export import export
from kp3d.profiles import PROFILES, dataset_for, get_config
from kp3d.train import train


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kp3d-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--profile", default=os.environ.get("KP3D_PROFILE") or "cpu-demo", choices=PROFILES,
                   help="size profile (default: $KP3D_PROFILE or cpu-demo)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a Config field (repeatable)")
    p.add_argument("--data", default=None, help="data set: synthetic, h36m:PATH, 3dhp:PATH or rig:PATH (= --set data=...)")
    p.add_argument("--calibration", default=None, help="rig calibration file (default: the one inside the rig folder)")
    p.add_argument("--run-dir", default=None, help="run directory (default: outputs/runs/<profile>-<UTC time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this many minutes")
    p.add_argument("--device", default=None, choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--export", default=None, metavar="NPZ", help="after training, export predictions to this .npz")
    p.add_argument("--overwrite", action="store_true", help="let --export replace an existing file")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    rig = p.add_argument_group("rig options (data=rig:PATH only)")
    rig.add_argument("--trim", action="store_true", help="cut every camera to the shortest one's frame count")
    rig.add_argument("--cameras", default=None, metavar="A,B,...", help="use only these cameras, in this order")
    rig.add_argument("--backgrounds", default=None, metavar="FOLDER", help="empty-scene images/clips per camera")
    rig.add_argument("--units", default=None, choices=("auto", "m", "mm"), help="the calibration's length unit")
    rig.add_argument("--up-axis", default=None, help="the calibration's up axis (z, -z, y, -y, x, -x; auto)")
    rig.add_argument("--max-frames", type=int, default=None, metavar="N",
                     help="keep the first N frames (e.g. the readable part of a video cut short)")
    return add_debug_flag(p)


def _rig_options(args) -> dict:
    opts = {"trim": True if args.trim else None, "cameras": args.cameras, "backgrounds": args.backgrounds,
            "units": args.units, "up_axis": args.up_axis, "max_frames": args.max_frames}
    return {k: v for k, v in opts.items() if v is not None}


def _check_export_target(path: str | None, overwrite: bool) -> None:
    """Refuse a bad --export before training, not after hours of it."""
    if path is None:
        return
    p = Path(path)
    if p.suffix != ".npz":
        raise ValueError(f"--export {p}: the export is a .npz file; give a name ending in .npz")
    if p.exists() and not overwrite:
        raise FileExistsError(f"--export {p} exists: add --overwrite to replace it, or choose another file")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_errors(lambda: _main(args), args.debug)


def _main(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with once_per_run():
        return _train_and_export(args)


def _train_and_export(args) -> int:
    _check_export_target(args.export, args.overwrite)
    overrides = parse_overrides(args.overrides)
    if args.data:
        overrides["data"] = args.data
    if args.calibration:
        overrides["calibration"] = args.calibration
    rig_opts = _rig_options(args)
    if rig_opts:
        overrides["data"] = with_rig_options(overrides.get("data", ""), **rig_opts)
    if overrides.get("data", "").startswith("rig:") and "views" not in overrides:
        # a rig has as many views as cameras: use them all unless --set views=... says otherwise

        overrides["views"] = data_views(overrides["data"], overrides.get("calibration") or None)
        logging.getLogger("kp3d.cli").info("rig with %d cameras: training on views %s", len(overrides["views"]),
                                           overrides["views"])
    cfg = get_config(args.profile, **overrides)
    saved = Path(args.run_dir) / "config.json" if args.run_dir else None
    if args.resume and saved is not None and saved.is_file():
        # continue with the run's own config (--profile is ignored); --set still applies on top
        cfg = Config.from_dict(json.loads(saved.read_text())).replace(**overrides)
        print(f"resuming with the config of {saved} (profile {cfg.profile}); overrides: {overrides or 'none'}")

    progress = not args.no_progress
    # a rig is decoded and its backgrounds checked once, for training and the export (its splits share frames)
    dataset = dataset_for(cfg, "train", progress=progress) if cfg.data.startswith("rig:") else None
    run_dir = train(cfg, run_dir=args.run_dir, resume=args.resume, progress=progress, dataset=dataset,
                    device=args.device, max_minutes=args.max_minutes)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run dir: {run_dir}")
        if args.export:
            datasets = {"train": dataset, "test": dataset} if dataset is not None else None
            print(f"export: {export(run_dir, args.export, device=args.device, overwrite=args.overwrite, progress=progress, datasets=datasets)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
