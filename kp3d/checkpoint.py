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


def load_model(path: str | Path, map_location: str | torch.device = "cpu"):
    """Rebuild the trained model of a checkpoint (file or run dir), in eval mode.

    Returns:
        (model, cfg): a :class:`kp3d.model.KeypointModel` and its :class:`Config`.
    """
    from kp3d.model import KeypointModel

    ckpt = load_checkpoint(path, map_location)
    cfg = Config.from_dict(ckpt["config"])
    model = KeypointModel(cfg)
    model.load_state_dict(ckpt["model"])
    model.to(map_location).eval()
    return model, cfg
