"""Checkpoints: save and restore everything a run needs to continue exactly where it stopped.

A checkpoint (``torch.save`` dict, written atomically: temp file + rename, so a kill mid-write never
leaves a truncated ``last.pt``) holds
    model       the state dict of the bare model (no DDP ``module.`` prefix)
    optimizer   the Adam state
    step        number of optimisation steps done
    rng         per process: python, numpy, torch CPU (and CUDA) generator states
    sampler     {"epoch", "offset"}: where the data order resumes (derived from ``step``)
    config      ``Config.to_dict()``
    wall_s      training seconds spent so far (all sessions)
Layout inside a run dir: ``checkpoints/step_XXXXXXX.pt`` and ``checkpoints/last.pt``.

A *compact* checkpoint (:func:`save_compact`) holds only what inference needs: the model's weights,
large matrices stored as int8 with one float32 scale per output channel, everything else float32,
plus the config, the step and free-form ``meta`` (e.g. the data set version). It is how a trained
model ships inside the repository (``kp3d/checkpoints``, :mod:`kp3d.shipped`); :func:`load_model` reads both kinds.

Example:
    >>> from kp3d.checkpoint import load_model
    >>> model, cfg = load_model("runs/cpu-demo-20250101-120000")          # doctest: +SKIP
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kp3d.config import Config

LAST = "last.pt"


def rng_state() -> dict[str, Any]:
    """The python, numpy and torch (CPU and every CUDA device) generator states of this process."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu() if isinstance(state["torch"], torch.Tensor) else state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_path(run_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step_{step:07d}.pt"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """``checkpoints/last.pt`` of a run dir, or None when the run has not saved one yet."""
    p = checkpoint_dir(run_dir) / LAST
    return p if p.is_file() else None


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The ``step_XXXXXXX.pt`` files of a run, in step order."""
    return sorted(checkpoint_dir(run_dir).glob("step_*.pt"))


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(run_dir: str | Path, state: dict[str, Any], keep: int = 0) -> Path:
    """Write ``state`` (see the module docstring; needs ``step``) as step_XXXXXXX.pt and last.pt.

    ``keep`` > 0 deletes the oldest step files beyond that many (never last.pt).
    """
    d = checkpoint_dir(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = step_path(run_dir, int(state["step"]))
    _atomic_save(state, path)
    _atomic_save(state, d / LAST)
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            old.unlink()
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint file, or the ``last.pt`` of a run dir."""
    p = Path(path)
    if p.is_dir():
        last = latest_checkpoint(p)
        if last is None:
            raise FileNotFoundError(f"{p} has no checkpoints/{LAST}: is it a kp3d run dir, and has it saved a checkpoint yet?")
        p = last
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    # weights_only=False: the file holds RNG states (numpy tuples) written by this package
    return torch.load(p, map_location=map_location, weights_only=False)


COMPACT_FORMAT = "kp3d-compact-1"


def _quantize(w: torch.Tensor) -> dict[str, torch.Tensor]:
    """Symmetric int8 per output channel (dim 0): w ~= q * scale[:, None, ...]."""
    flat = w.detach().float().reshape(w.shape[0], -1)
    scale = flat.abs().amax(1).clamp_min(1e-12) / 127.0
    q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return {"q": q.reshape(w.shape), "scale": scale}


def _dequantize(entry) -> torch.Tensor:
    if isinstance(entry, dict):
        q, scale = entry["q"], entry["scale"]
        return q.float() * scale.reshape(-1, *([1] * (q.ndim - 1)))
    return entry


def save_compact(checkpoint: str | Path, out_path: str | Path, meta: dict[str, Any] | None = None,
                 min_quantized: int = 4096, overwrite: bool = False) -> Path:
    """Write a small inference-only copy of a checkpoint (file or run dir).

    Floating-point tensors with at least ``min_quantized`` elements and 2+ dimensions (conv and
    linear weights) become int8 with a float32 scale per output channel (about 4x smaller than
    float32; the relative weight error is at most 1/254 of each channel's largest weight); biases and
    batch-norm statistics stay float32. The optimizer and RNG states are dropped: a compact file
    cannot resume training.

    Args:
        checkpoint: a training checkpoint file or run dir.
        out_path: the ``.pt`` file to write. An existing file is only replaced with ``overwrite=True``.
        meta: JSON-able facts to keep with the weights (data set version, command, seed, figures).
    Returns:
        out_path.
    """
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass overwrite=True to replace it (or choose another path)")
    ckpt = load_checkpoint(checkpoint)
    tensors: dict[str, Any] = {}
    for name, t in ckpt["model"].items():
        if t.is_floating_point() and t.ndim >= 2 and t.numel() >= min_quantized:
            tensors[name] = _quantize(t)
        else:
            tensors[name] = t.detach().clone().float() if t.is_floating_point() else t.detach().clone()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save({"format": COMPACT_FORMAT, "config": ckpt["config"], "step": int(ckpt["step"]),
                  "wall_s": float(ckpt.get("wall_s", 0.0)), "meta": dict(meta or {}), "tensors": tensors}, out_path)
    return out_path


def is_compact(ckpt: dict[str, Any]) -> bool:
    return ckpt.get("format") == COMPACT_FORMAT


def load_model(path: str | Path, map_location: str | torch.device = "cpu"):
    """Rebuild the trained model of a checkpoint (file, run dir or compact file), in eval mode.

    Returns:
        (model, cfg): a :class:`kp3d.model.KeypointModel` and its :class:`Config`.
    """
    from kp3d.model import KeypointModel

    ckpt = load_checkpoint(path, map_location)
    cfg = Config.from_dict(ckpt["config"])
    model = KeypointModel(cfg)
    if is_compact(ckpt):
        state = {k: _dequantize(v) for k, v in ckpt["tensors"].items()}
    else:
        state = ckpt["model"]
    model.load_state_dict(state)
    model.to(map_location).eval()
    return model, cfg
