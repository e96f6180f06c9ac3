"""Training throughput of a profile: iterations/s and samples/s, with and without bf16 autocast and
channels_last.

Times full training steps (forward of the whole model, Eq. 10-15 losses with the keypoint losses
on, backward, Adam step) on random inputs of the profile's size: no data set is needed, so it runs
on a bare GPU machine. The cameras are the Human3.6M rig of S1 at the profile's resolution.

    python bench/train_throughput.py --profile cpu-demo --iters 20 --threads 2
    python bench/train_throughput.py --device cuda --profile paper-h36m --iters 20

Prints one row per setting and, for paper profiles, the projected time of the paper's schedule
(``max_iters`` steps; the paper reports about 2 days for 200K iterations on one V100).
"""
from __future__ import annotations

import argparse
import itertools
import json
import time

import torch

from kp3d.cameras import h36m_rig, to_tensors
from kp3d.config import parse_override
from kp3d.losses import compute_losses
from kp3d.profiles import get_config
from kp3d.train import autocast, build_training_parts, native_bf16


def make_batch(cfg, device):
    B, V, S = cfg.batch_size, len(cfg.views), cfg.image_size
    cams = to_tensors([c.without_distortion() for c in h36m_rig("S1", S, S)])
    g = torch.Generator().manual_seed(0)
    batch = {
        "images": torch.rand(B, V, 3, S, S, generator=g),
        "backgrounds": torch.rand(B, V, 3, S, S, generator=g),
        **{k: cams[k][list(cfg.views)].unsqueeze(0).expand(B, *cams[k][list(cfg.views)].shape).contiguous() for k in ("K", "R", "t")},
    }
    return {k: v.to(device) for k, v in batch.items()}


def bench(cfg, device, iters: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model, opt, perceptual = build_training_parts(cfg, device)
    batch = make_batch(cfg, device)
    step = cfg.warmup_iters + 10**6  # keypoint losses on: the full cost

    def one():
        with autocast(cfg, device):
            out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"])
            loss = compute_losses(cfg, out, batch, perceptual, step)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(iters):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    res = {"amp": cfg.amp, "channels_last": cfg.channels_last, "it_per_s": iters / dt,
           "samples_per_s": iters * cfg.batch_size / dt}
    if device.type == "cuda":
        res["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return res


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="cpu-demo")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--batch-size", type=int, default=0, help="override the profile's batch size")
    p.add_argument("--amp", nargs="+", default=["none", "bf16"], choices=("none", "bf16"))
    p.add_argument("--channels-last", nargs="+", default=["false", "true"], choices=("false", "true"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a Config field, as in kp3d-train")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device visible")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    overrides = {k: parse_override(k, v) for k, v in (o.split("=", 1) for o in args.overrides)}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    base = get_config(args.profile, **overrides)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(f"profile {base.profile}: {base.image_size}px views, {base.patch_size}px patches, encoder {base.encoder}, "
          f"batch {base.batch_size} x {len(base.views)} views, N={base.n_keypoints}, perceptual "
          f"{'on' if base.use_perceptual_loss else 'off'}; device {name}")
    native = native_bf16(device)
    print(f"native bf16 on this device: {'yes' if native else 'no'}, so amp='auto' (the default) "
          f"trains in {'bf16' if native else 'float32'}")
    rows = []
    for amp, cl in itertools.product(args.amp, args.channels_last):
        cfg = base.replace(amp=amp, channels_last=(cl == "true"))
        r = bench(cfg, device, args.iters, args.warmup)
        rows.append(r)
        hours = base.max_iters / r["it_per_s"] / 3600
        mem = f", peak {r['peak_mem_gib']:.1f} GiB" if "peak_mem_gib" in r else ""
        print(f"amp={amp:4s} channels_last={cl:5s}: {r['it_per_s']:7.2f} it/s, {r['samples_per_s']:8.1f} samples/s"
              f"{mem}; {base.max_iters} iterations would take {hours:.1f} h")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"profile": base.profile, "device": name, "native_bf16": native, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
