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
    sha256      hex digest of every tensor and array above (:func:`payload_sha256`), written by
                :func:`save_checkpoint` / :func:`save_compact` and checked by :func:`load_checkpoint`:
                a file with flipped bytes is refused with the name of the last intact one
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

import hashlib
import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kp3d.config import Config
from kp3d.model import KeypointModel

LAST = "last.pt"
CHECKSUM_KEY = "sha256"


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be trusted (damaged, truncated, or not a checkpoint); the message names
    the file and what to do."""


def _tensor_bytes(t: torch.Tensor) -> bytes:
    """The raw bytes of a tensor as stored (any dtype, any device)."""
    t = t.detach().cpu().contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _hash_payload(obj: Any, h, path: str = "") -> None:
    """Feed every tensor and numpy array inside ``obj`` (nested dicts, lists, tuples) into ``h``,
    each with its place in the structure, dtype and shape, so a moved or reshaped value counts too."""
    if isinstance(obj, torch.Tensor):
        h.update(f"{path}|{obj.dtype}|{tuple(obj.shape)}|".encode())
        h.update(_tensor_bytes(obj))
    elif isinstance(obj, np.ndarray) and obj.dtype != object:
        h.update(f"{path}|{obj.dtype}|{obj.shape}|".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not (path == "" and k == CHECKSUM_KEY):
                _hash_payload(v, h, f"{path}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _hash_payload(v, h, f"{path}/{i}")


def payload_sha256(ckpt: dict[str, Any]) -> str:
    """sha256 (hex) of the tensor payload of a checkpoint dict (everything but its own checksum)."""
    h = hashlib.sha256()
    _hash_payload(ckpt, h)
    return h.hexdigest()


def with_checksum(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` with its :func:`payload_sha256` stored under ``sha256`` (the dict is not copied)."""
    ckpt[CHECKSUM_KEY] = payload_sha256(ckpt)
    return ckpt


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


def step_of(path: str | Path) -> int:
    """The step in a ``step_XXXXXXX.pt`` file name."""
    return int(Path(path).stem.split("_")[1])


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """``checkpoints/last.pt`` of a run dir, else its newest ``step_XXXXXXX.pt`` (a run killed after
    its first step file, or whose last.pt was deleted), or None when the run has not saved one yet."""
    p = checkpoint_dir(run_dir) / LAST
    if p.is_file():
        return p
    steps = list_checkpoints(run_dir)
    return steps[-1] if steps else None


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
    state = with_checksum(dict(state))
    # last.pt first: a kill between the two writes leaves last.pt never older than a step file
    _atomic_save(state, d / LAST)
    _atomic_save(state, path)
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            old.unlink()
    return path


_WARNED_NO_CHECKSUM: set[str] = set()


def _read(p: Path, map_location) -> dict[str, Any]:
    """torch.load of a checkpoint file; a file that does not unpickle raises :class:`CheckpointError`."""
    try:
        # weights_only=False: the file holds RNG states (numpy tuples) written by this package
        ckpt = torch.load(p, map_location=map_location, weights_only=False)
    except Exception as e:  # a truncated zip, flipped bytes in the pickle, another format
        raise CheckpointError(f"checkpoint {p} cannot be read ({type(e).__name__}: {e}): the file is damaged "
                              f"or not a kp3d checkpoint. {_intact_hint(p)}") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{p} holds a {type(ckpt).__name__}, not a kp3d checkpoint")
    return ckpt


def verify(ckpt: dict[str, Any]) -> bool | None:
    """True when the stored checksum matches the payload, False when it does not, None when the file
    carries none (written before checksums existed)."""
    stored = ckpt.get(CHECKSUM_KEY)
    return None if stored is None else stored == payload_sha256(ckpt)


def last_intact_checkpoint(folder: str | Path, exclude: Path | None = None) -> Path | None:
    """The newest ``step_XXXXXXX.pt`` in ``folder`` whose checksum holds (``exclude`` skipped), or None."""
    for cand in sorted(Path(folder).glob("step_*.pt"), reverse=True):
        if exclude is not None and cand.resolve() == exclude.resolve():
            continue
        try:
            if verify(torch.load(cand, map_location="cpu", weights_only=False)) is not False:
                return cand
        except Exception:  # damaged as well: look further back
            continue
    return None


def _intact_hint(p: Path) -> str:
    """What to do about a damaged checkpoint ``p``: the last intact one beside it, if any."""
    good = last_intact_checkpoint(p.parent, exclude=p)
    if good is None:
        return f"No intact step_*.pt is left in {p.parent}: restore the file from a copy or retrain."
    if p.name == LAST:
        return (f"The last intact checkpoint in that folder is {good.name}: move {p.name} away and copy "
                f"{good.name} to {LAST} to resume from step {step_of(good)}.")
    return f"The last intact checkpoint in that folder is {good.name}: use it instead."


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint file, or the ``last.pt`` of a run dir, and check its checksum.

    Raises :class:`CheckpointError` naming the damaged file and the last intact checkpoint beside it
    when the tensors do not match the checksum stored with them. A file without a checksum (older
    than checksums) loads with a one-time warning.
    """
    p = Path(path)
    if p.is_dir():
        last = latest_checkpoint(p)
        if last is None:
            raise FileNotFoundError(f"{p} has no checkpoints/{LAST}: is it a kp3d run dir, and has it saved a checkpoint yet?")
        p = last
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    ckpt = _read(p, map_location)
    ok = verify(ckpt)
    if ok is False:
        raise CheckpointError(f"checkpoint {p} is damaged: its tensors do not match the sha256 stored with it. "
                              f"{_intact_hint(p)}")
    if ok is None and str(p.resolve()) not in _WARNED_NO_CHECKSUM:
        _WARNED_NO_CHECKSUM.add(str(p.resolve()))
        warnings.warn(f"checkpoint {p} carries no checksum (written by an older kp3d), so damage to it cannot be "
                      f"detected; save it again to add one", stacklevel=2)
    return ckpt


def add_checksum(path: str | Path) -> Path:
    """Store the checksum of an older checkpoint file that has none (its tensors are left as they are)."""
    p = Path(path)
    ckpt = _read(p, "cpu")
    if ckpt.get(CHECKSUM_KEY) is not None:
        if verify(ckpt) is False:
            raise CheckpointError(f"checkpoint {p} is damaged: its tensors do not match the sha256 stored with it")
        return p
    _atomic_save(with_checksum(ckpt), p)
    return p


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
    _atomic_save(with_checksum({"format": COMPACT_FORMAT, "config": ckpt["config"], "step": int(ckpt["step"]),
                                "wall_s": float(ckpt.get("wall_s", 0.0)), "meta": dict(meta or {}), "tensors": tensors}),
                 out_path)
    return out_path


def is_compact(ckpt: dict[str, Any]) -> bool:
    return ckpt.get("format") == COMPACT_FORMAT


def load_model(path: str | Path, map_location: str | torch.device = "cpu"):
    """Rebuild the trained model of a checkpoint (file, run dir or compact file), in eval mode.

    Returns:
        (model, cfg): a :class:`kp3d.model.KeypointModel` and its :class:`Config`.
    """
    return model_from_checkpoint(load_checkpoint(path, map_location), map_location)


def model_from_checkpoint(ckpt: dict[str, Any], map_location: str | torch.device = "cpu"):
    """:func:`load_model` of a checkpoint already read (:func:`load_checkpoint`): (model, cfg), in eval mode."""
    cfg = Config.from_dict(ckpt["config"])
    model = KeypointModel(cfg)
    if is_compact(ckpt):
        state = {k: _dequantize(v) for k, v in ckpt["tensors"].items()}
    else:
        state = ckpt["model"]
    model.load_state_dict(state)
    model.to(map_location).eval()
    return model, cfg
