"""Benchmark: render time and disk size of a synthetic data set, and its background PSNR.

Renders from scratch into a temporary cache (or ``--cache DIR``; an existing data set there is
reused and then only its stored render time is reported), then prints per-subject background PSNR
of the median estimate against the true background, over the whole frame and away from the floor
area the person walks on.

Usage:
    python bench/render.py                    # cpu-demo, 2 worker processes
    python bench/render.py --profile smoke --workers 1

On a machine whose cores are shared with other jobs the time is pessimistic.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu-demo")
    ap.add_argument("--workers", type=int, default=0, help="0 = min(2, cpu count)")
    ap.add_argument("--cache", default=None, help="cache dir (default: a fresh temporary one)")
    args = ap.parse_args()

    tmp = None
    if args.cache is None:
        tmp = tempfile.TemporaryDirectory(prefix="kp3d-bench-")
        args.cache = tmp.name
    os.environ["KP3D_CACHE_DIR"] = args.cache

    from data_utils.background import psnr
    from data_utils.synthetic import ensure_rendered, load_subject
    from kp3d.profiles import synthetic_config

    cfg = synthetic_config(args.profile, workers=args.workers)
    start = time.time()
    path = ensure_rendered(cfg)
    wall = time.time() - start
    manifest = json.loads((path / "manifest.json").read_text())
    size = sum(p.stat().st_size for p in Path(path).iterdir())
    n = len(cfg.subjects) * cfg.frames_per_subject
    print(f"profile {args.profile}: {len(cfg.subjects)} subjects x {cfg.frames_per_subject} frames x 4 views "
          f"at {cfg.image_size}x{cfg.image_size}, supersample {cfg.supersample}, "
          f"{cfg.workers or min(2, os.cpu_count() or 1)} workers on {os.cpu_count()} cpus")
    print(f"render time: {manifest['render_seconds']:.1f} s (this call {wall:.1f} s); "
          f"{1000 * manifest['render_seconds'] / (4 * n):.1f} ms per view-frame")
    print(f"disk size: {size / 2**20:.1f} MiB in {path}")
    rows = []
    for s in cfg.subjects:
        d = load_subject(path, s)
        est, true = d["bg_median"] / 255.0, d["bg_true"] / 255.0
        occupied = np.unpackbits(d["masks_packed"], axis=-1, count=cfg.image_size).mean(0)  # (V, H, W)
        rows.append([psnr(est[v], true[v]) for v in range(4)]
                    + [psnr(est[occupied > 0.15], true[occupied > 0.15])
                       if (occupied > 0.15).any() else float("nan")])
        print(f"  {s}: background PSNR per view " + " ".join(f"{x:5.1f}" for x in rows[-1][:4])
              + f" dB; on pixels the person covers > 15% of the time {rows[-1][4]:5.1f} dB")
    rows = np.array(rows)
    print(f"background PSNR: mean {rows[:, :4].mean():.1f} dB, min {rows[:, :4].min():.1f} dB "
          f"(median of all frames vs true background, [0, 1] range)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
