"""``kp3d-train``: train the unsupervised model from the command line.

    kp3d-train --profile cpu-demo --set max_iters=2000 --set use_coverage_loss=false
    kp3d-train --run-dir outputs/runs/my-run --resume      # continue a killed run with its config.json
    kp3d-train --profile smoke --export outputs/smoke.npz                      # train, then export
    torchrun --nproc_per_node 4 -m kp3d.cli --profile paper-h36m --set data=h36m:/data/h36m
    kp3d-train --profile cpu-demo --data rig:/data/my_rig --calibration /data/my_rig/calibration.toml --export rig.npz

``--set key=value`` accepts any :class:`kp3d.config.Config` field (booleans: true/false; tuples:
``views=0,1,2``). ``python -m kp3d.cli`` is the same command.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from kp3d.config import Config, get_config, parse_override
from kp3d.profiles import PROFILES


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
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {}
    for item in args.overrides:
        if "=" not in item:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            overrides[key.strip()] = parse_override(key.strip(), value)
        except ValueError as e:
            raise SystemExit(str(e)) from None
    if args.data:
        overrides["data"] = args.data
    if args.calibration:
        overrides["calibration"] = args.calibration
    if overrides.get("data", "").startswith("rig:") and "views" not in overrides:
        # a rig has as many views as cameras: use them all unless --set views=... says otherwise
        from data_utils.datasets import data_views

        overrides["views"] = data_views(overrides["data"], overrides.get("calibration") or None)
        logging.getLogger("kp3d.cli").info("rig with %d cameras: training on views %s", len(overrides["views"]),
                                           overrides["views"])
    cfg = get_config(args.profile, **overrides)
    saved = Path(args.run_dir) / "config.json" if args.run_dir else None
    if args.resume and saved is not None and saved.is_file():
        # continue with the run's own config (--profile is ignored); --set still applies on top
        cfg = Config.from_dict(json.loads(saved.read_text())).replace(**overrides)
        print(f"resuming with the config of {saved} (profile {cfg.profile}); overrides: {overrides or 'none'}")
    from kp3d.train import train

    run_dir = train(cfg, run_dir=args.run_dir, resume=args.resume, progress=not args.no_progress,
                    device=args.device, max_minutes=args.max_minutes)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run dir: {run_dir}")
        if args.export:
            from kp3d.export import export

            print(f"export: {export(run_dir, args.export, device=args.device)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
