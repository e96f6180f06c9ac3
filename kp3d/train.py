"""Training loop of the unsupervised model: Adam with per-module learning rates, bf16 autocast,
checkpoints and exact resume, DDP, tqdm progress, metrics.csv and TensorBoard.

A run directory holds
    config.json            the Config (rewritten on resume; differences are logged)
    run_info.json          device, world size, perceptual-feature source, versions
    metrics.csv            one row per log step: losses, diagnostics (kp3d.diagnostics), lr, speed
    tb/                    TensorBoard events (the same scalars)
    checkpoints/           step_XXXXXXX.pt every cfg.ckpt_every steps, and last.pt
A run never writes into another run's non-empty directory unless asked to resume it.

Batching: ``cfg.batch_size`` samples per step in total; with W processes each takes batch_size / W.
Logged losses are rank 0's, averaged over the steps since the previous log row.

Example:
    >>> from kp3d.profiles import get_config
    >>> from kp3d.train import train
    >>> run_dir = train(get_config("smoke"))                      # doctest: +SKIP
    >>> run_dir = train(get_config("smoke", max_iters=40), run_dir=run_dir, resume=True)  # doctest: +SKIP
"""
from __future__ import annotations

import csv
import json
import logging
import math
import platform
import random
import shutil
import time
from collections import defaultdict
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from kp3d import checkpoint as ckpt_io
from kp3d.config import Config
from kp3d.diagnostics import compute_diagnostics
from kp3d.distributed import DistInfo, ResumableSampler, broadcast_object, cleanup, gather_objects, init_distributed
from kp3d.losses import LOSS_NAMES, compute_losses, keypoint_weight, sigma_at
from kp3d.model import KeypointModel, gt_masks
from kp3d.perceptual import build_perceptual
from kp3d.profiles import dataset_for, output_dir

log = logging.getLogger(__name__)

DIAG_NAMES = ("box_scale", "pred_mask_frac", "kp_spread_px", "kp_in_pred_mask", "kp_in_gt_mask",
              "reproj_err_px", "mask_iou_gt", "mask_precision_gt", "mask_recall_gt")
CSV_COLUMNS = ("step", "wall_s", "epoch", "lr", "total", *LOSS_NAMES, "kp_weight", *DIAG_NAMES,
               "it_per_s", "perceptual_source")
# Fields whose change on resume does not alter what the finished steps mean.
_RESUMABLE_CHANGES = {"max_iters", "log_every", "ckpt_every", "keep_checkpoints", "num_workers", "data"}


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def build_training_parts(cfg: Config, device):
    """The model (channels_last when configured), its Adam optimizer and the frozen perceptual
    features (None when the term is off), on ``device``; shared by training and the benchmark."""
    model = KeypointModel(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model)
    perceptual = build_perceptual(cfg.perceptual_weights, cfg.perceptual_fallback) if cfg.use_perceptual_loss else None
    if perceptual is not None:
        perceptual = perceptual.to(device)
    return model, optimizer, perceptual


def select_views(batch: dict, views: tuple) -> dict:
    """Keep the views ``views`` of every per-view tensor of a collated batch (dim 1 = V)."""
    idx = list(views)
    out = {}
    for k, v in batch.items():
        if k == "gt" and isinstance(v, dict):
            out[k] = {g: (x[:, idx] if g in ("joints_2d", "masks", "backgrounds") else x) for g, x in v.items()}
        elif k in ("images", "backgrounds", "K", "R", "t"):
            if v.shape[1] <= max(idx):
                raise ValueError(f"cfg.views={views} but the data has only {v.shape[1]} views ({k} {tuple(v.shape)})")
            out[k] = v[:, idx]
        else:
            out[k] = v
    return out


def to_device(batch, device):
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    return batch


# --------------------------------------------------------------------------------------------
# model pieces
# --------------------------------------------------------------------------------------------
def make_optimizer(cfg: Config, model: KeypointModel) -> torch.optim.Adam:
    """Adam (S.1.3): ``lr`` everywhere except the detector (``lr_detector``) and the image decoder
    (``lr_image_decoder``)."""
    groups = [
        {"params": list(model.detector.parameters()), "lr": cfg.lr_detector, "name": "detector"},
        {"params": list(model.image_decoder.parameters()), "lr": cfg.lr_image_decoder, "name": "image_decoder"},
        {"params": [p for n, p in model.named_parameters() if not n.startswith(("detector.", "image_decoder."))],
         "lr": cfg.lr, "name": "rest"},
    ]
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: a CUDA card with bf16, or a CPU with AVX512-BF16 or
    AMX. Elsewhere autocast emulates bf16 and runs slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(bool(f()) for f in probes if f is not None)
    return False


def resolve_amp(cfg: Config, device: torch.device) -> str:
    """The precision a run uses on ``device``: ``cfg.amp`` with "auto" resolved to "bf16" where
    :func:`native_bf16`, else "none".

    Example:
        >>> from kp3d.profiles import get_config
        >>> resolve_amp(get_config("smoke", amp="none"), torch.device("cpu"))
        'none'
    """
    if cfg.amp == "auto":
        return "bf16" if native_bf16(device) else "none"
    return cfg.amp


def autocast(cfg: Config, device: torch.device):
    """bf16 autocast when :func:`resolve_amp` says so, else a no-op context."""
    if resolve_amp(cfg, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


# --------------------------------------------------------------------------------------------
# run directory and logging
# --------------------------------------------------------------------------------------------
def _new_run_dir(cfg: Config) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    root = output_dir("runs")
    for k in range(1000):
        p = root / (f"{cfg.profile}-{stamp}" + (f"-{k}" if k else ""))
        try:
            p.mkdir(parents=True, exist_ok=False)
            return p
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh run dir under {root}")


def prepare_run_dir(cfg: Config, run_dir: str | Path | None, resume: bool) -> Path:
    """Create (or check) the run dir. A non-empty dir is only reused with ``resume=True``."""
    if run_dir is None:
        if resume:
            raise ValueError("resume=True needs the run_dir of the run to continue")
        return _new_run_dir(cfg)
    p = Path(run_dir)
    if resume:
        # resuming must find a run: a mistyped path must not start from step 0, and a foreign folder
        # must not get its files (e.g. a metrics.csv) replaced
        if not p.is_dir():
            raise FileNotFoundError(f"no run to resume at {p}: check the path (--run-dir <the run's folder>), "
                                    f"or drop --resume to start a new run there")
        if not is_run_dir(p):
            raise FileExistsError(f"{p} is not a kp3d run (no config.json or checkpoints/{ckpt_io.LAST} in it), so "
                                  f"--resume would write into someone else's folder: point --run-dir at a run made "
                                  f"by kp3d-train, or drop --resume and choose a new --run-dir")
        return p
    if p.exists() and any(p.iterdir()):
        raise FileExistsError(
            f"run dir {p} already holds a run; pass resume=True (kp3d-train --resume) to continue it, "
            "or choose a new --run-dir"
        )
    p.mkdir(parents=True, exist_ok=True)
    return p


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a training run (its config.json or a checkpoint)."""
    p = Path(path)
    return (p / "config.json").is_file() or ckpt_io.latest_checkpoint(p) is not None


class MetricsLogger:
    """metrics.csv + TensorBoard, truncated to ``start_step`` on resume so no step is logged twice."""

    def __init__(self, run_dir: Path, start_step: int, enabled: bool = True):
        self.enabled = enabled
        if not enabled:
            return
        self.path = run_dir / "metrics.csv"
        kept = []
        if self.path.exists():
            with open(self.path, newline="") as f:
                # complete rows up to the checkpoint (a kill can leave a half-written last line)
                kept = [r for r in csv.DictReader(f)
                        if r.get(CSV_COLUMNS[-1]) is not None and r["step"].isdigit() and int(r["step"]) <= start_step]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            w.writerows({k: r.get(k, "") for k in CSV_COLUMNS} for r in kept)

        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1 if start_step else None)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=CSV_COLUMNS).writerow({k: row.get(k, "") for k in CSV_COLUMNS})
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                self.tb.add_scalar(k, v, row["step"])
        self.tb.flush()

    def close(self) -> None:
        if self.enabled:
            self.tb.close()


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """metrics.csv (file or run dir) -> column name -> float array (NaN where empty)."""
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.csv"
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for k in CSV_COLUMNS:
        if k == "perceptual_source":
            continue
        vals = []
        for r in rows:
            try:
                vals.append(float(r.get(k, "")))
            except ValueError:
                vals.append(float("nan"))
        out[k] = np.asarray(vals, dtype=np.float64)
    return out


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(cfg: Config, run_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
          dataset=None, device: str | None = None, max_minutes: float | None = None) -> Path:
    """Train the unsupervised model; return the run dir.

    Args:
        cfg: the configuration (``kp3d.config.get_config``).
        run_dir: where to write; default ``output_dir("runs", f"{profile}-{UTC timestamp}")``.
        resume: continue the run in ``run_dir`` from ``checkpoints/last.pt`` (fresh start when the
            dir has no checkpoint yet). Steps done are neither repeated nor lost.
        progress: show a tqdm bar (rank 0).
        dataset: a data set following the sample contract; default ``dataset_for(cfg, "train")``.
        device: "cpu", "cuda" or None (CUDA when available).
        max_minutes: stop (with a checkpoint) after this much wall time; resume later.
    Under torchrun (WORLD_SIZE > 1) every process calls this; rank 0 writes the files.
    """
    cfg.validate()
    info = init_distributed(device)
    try:
        return _train(cfg, run_dir, resume, progress, dataset, info, max_minutes)
    finally:
        if info.distributed:
            cleanup()


def _train(cfg: Config, run_dir, resume: bool, progress: bool, dataset, info: DistInfo, max_minutes) -> Path:
    dev = info.device
    if cfg.batch_size % info.world_size:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({info.world_size})")
    per_rank = cfg.batch_size // info.world_size
    made = run_dir is None or not Path(run_dir).exists()
    run_dir = Path(broadcast_object(str(prepare_run_dir(cfg, run_dir, resume)) if info.is_main else None, info))
    try:
        return _train_in(cfg, run_dir, resume, progress, dataset, info, max_minutes, per_rank)
    except BaseException:
        if info.is_main and not resume:
            remove_stub_run(run_dir, made)
        raise


def remove_stub_run(run_dir: Path, made: bool) -> None:
    """After a new run failed before its first checkpoint and its first metrics row: remove the files
    it wrote (and the folder when this run made it and nothing else is in it), so that no stub is
    mistaken for a run. A folder with a checkpoint or logged steps (the curve that led to a failure
    helps to find its cause), or with files of someone else, keeps them."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.csv"
    if ckpt_io.latest_checkpoint(run_dir) is not None or (metrics.is_file() and len(metrics.read_text().splitlines()) > 1):
        return
    for name in ("config.json", "run_info.json", "metrics.csv"):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "tb", ignore_errors=True)
    ckpt_dir = ckpt_io.checkpoint_dir(run_dir)
    if ckpt_dir.is_dir() and not any(ckpt_dir.iterdir()):
        ckpt_dir.rmdir()
    if made and run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()
        log.info("training stopped before its first checkpoint: removed the new run folder %s", run_dir)


def _train_in(cfg: Config, run_dir: Path, resume: bool, progress: bool, dataset, info: DistInfo, max_minutes,
              per_rank: int) -> Path:
    dev = info.device
    _seed_everything(cfg.seed)  # identical initial weights on every rank
    model, optimizer, perceptual = build_training_parts(cfg, dev)
    perceptual_source = perceptual.source if perceptual is not None else "off"
    amp = resolve_amp(cfg, dev)
    if amp == "bf16" and not native_bf16(dev) and info.is_main:
        log.warning("amp='bf16' on %s, which has no native bf16: autocast emulates it and trains several times "
                    "slower than float32; use amp='auto' (or 'none')", dev)

    start_step, wall_before = 0, 0.0
    last = ckpt_io.latest_checkpoint(run_dir) if resume else None
    if last is not None:
        state = ckpt_io.load_checkpoint(last, map_location=dev)
        old = state["config"]
        changed = {k for k, v in cfg.to_dict().items() if old.get(k) != v}
        if changed - _RESUMABLE_CHANGES:
            log.warning("resuming %s with changed config fields %s (was %s)", run_dir, sorted(changed),
                        {k: old.get(k) for k in sorted(changed)})
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_step, wall_before = int(state["step"]), float(state.get("wall_s", 0.0))
        rngs = state["rng"]
        ckpt_io.set_rng_state(rngs[info.rank] if info.rank < len(rngs) else rngs[0])
        log.info("resumed %s at step %d", run_dir, start_step)
    else:
        # per-rank dropout streams; rank 0 keeps the plain seed so a 1-process run is reproducible
        torch.manual_seed(cfg.seed + 1000 * info.rank)

    if info.is_main:
        (run_dir / "config.json").write_text(cfg.to_json())
        (run_dir / "run_info.json").write_text(json.dumps({
            "device": str(dev), "world_size": info.world_size, "perceptual_source": perceptual_source, "amp": amp,
            "torch": torch.__version__, "python": platform.python_version(),
            "started_utc": datetime.now(timezone.utc).isoformat(), "resumed_from_step": start_step,
        }, indent=2))

    net = model
    if info.distributed:
        # the keypoint path is skipped in the warm-up / reconstruction-only runs, and the mask decoder
        # is unused without the mask loss: only then must DDP look for unused parameters (it costs)
        all_used = (cfg.warmup_iters == 0 and not cfg.reconstruction_only and cfg.use_mask_loss
                    and cfg.image_reconstruction and cfg.crop_source == "detector" and cfg.keypoint_input == "latent")
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None, find_unused_parameters=not all_used)

    if dataset is None:
        dataset = dataset_for(cfg, "train", progress=progress and info.is_main)
    sampler = ResumableSampler(len(dataset), per_rank, cfg.seed, info.rank, info.world_size)
    per_epoch = sampler.batches_per_epoch
    logger = MetricsLogger(run_dir, start_step, enabled=info.is_main)

    def loader_at(step: int):
        epoch, offset = divmod(step, per_epoch)
        sampler.set_position(epoch, offset)
        # a dedicated generator: creating the iterator must not consume the global torch RNG
        gen = torch.Generator().manual_seed(cfg.seed + 7919 * epoch)
        dl = DataLoader(dataset, batch_size=per_rank, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=True, generator=gen, pin_memory=dev.type == "cuda",
                        persistent_workers=False)
        return iter(dl)


    bar = tqdm(total=cfg.max_iters, initial=start_step, disable=not (progress and info.is_main),
               desc=f"train {cfg.profile}", dynamic_ncols=True)
    t0 = time.perf_counter()
    t_log, step_log = t0, start_step
    sums: dict[str, torch.Tensor | float] = defaultdict(float)
    n_sum = 0
    step = start_step
    it = loader_at(step) if step < cfg.max_iters else None
    stop_early = False
    model.train()
    while step < cfg.max_iters:
        try:
            batch = next(it)
        except StopIteration:
            it = loader_at(step)
            batch = next(it)
        batch = to_device(select_views(batch, cfg.views), dev)
        kw = keypoint_weight(cfg, step)
        with autocast(cfg, dev):
            out = net(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"], masks=gt_masks(batch), keypoints=kw > 0,
                      sigma=sigma_at(cfg, step))
            losses = compute_losses(cfg, out, batch, perceptual, step)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
        bar.update(1)
        for k, v in losses.items():  # summed as tensors: no device sync per step
            sums[k] = sums[k] + v.detach().float()
        n_sum += 1

        elapsed = time.perf_counter() - t0
        if max_minutes is not None:
            stop_early = elapsed > 60 * max_minutes and step < cfg.max_iters
            stop_early = bool(broadcast_object(stop_early, info))
        if step % cfg.log_every == 0 or step == cfg.max_iters or stop_early:
            if not math.isfinite(float(sums["total"])):
                raise FloatingPointError(f"loss became {float(sums['total'])} before step {step}; lower the learning rates or use amp='none'")
            if "kp2d_reproj" not in out:  # warm-up: look at the (untrained) keypoints anyway
                with torch.no_grad(), torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), autocast(cfg, dev):
                    out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"], masks=gt_masks(batch), keypoints=True)
            diag = compute_diagnostics(out, batch)
            now = time.perf_counter()
            row = {"step": step, "wall_s": round(wall_before + now - t0, 3), "epoch": step // per_epoch,
                   "lr": optimizer.param_groups[-1]["lr"], "it_per_s": round((step - step_log) / max(now - t_log, 1e-9), 3),
                   "perceptual_source": perceptual_source}
            row.update({k: float(v) / n_sum for k, v in sums.items()})
            row.update(diag)
            logger.write(row)
            bar.set_postfix(total=f"{row['total']:.4f}", spread=f"{diag.get('kp_spread_px', float('nan')):.1f}")
            sums.clear()
            n_sum, t_log, step_log = 0, now, step
        if step % cfg.ckpt_every == 0 or step == cfg.max_iters or stop_early:
            rngs = gather_objects(ckpt_io.rng_state(), info)
            if info.is_main:
                epoch, offset = divmod(step, per_epoch)
                ckpt_io.save_checkpoint(run_dir, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "rng": rngs, "sampler": {"epoch": epoch, "offset": offset}, "config": cfg.to_dict(),
                    "wall_s": wall_before + time.perf_counter() - t0, "world_size": info.world_size,
                }, keep=cfg.keep_checkpoints)
        if stop_early:
            log.warning("stopping at step %d after %.1f min (max_minutes); resume with --resume", step, elapsed / 60)
            break
    bar.close()
    logger.close()
    if info.distributed:
        torch.distributed.barrier()
    return run_dir
