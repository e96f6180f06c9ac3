"""The checkpoint that ships with kp3d: a model trained by the project's own command on the embedded
synthetic data set (``docs/recipe.md`` records the command, seed, profile and figures).

It is a compact file (:func:`kp3d.checkpoint.save_compact`: int8 weights, no optimizer) inside the
package, with the version of the synthetic data generator it was trained on in its ``meta``. Notebook
05 probes it by default; ``tests/test_shipped_checkpoint.py`` re-measures it on freshly rendered
frames so that it can never silently rot.

Example:
    >>> from kp3d.shipped import shipped_checkpoint, shipped_meta
    >>> shipped_checkpoint().name
    'cpu-demo-discovery.pt'
    >>> shipped_meta()["profile"]
    'cpu-demo'
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from data_utils.datasets import SyntheticDataset
from data_utils.synthetic import GENERATOR_VERSION
from kp3d.checkpoint import load_checkpoint
from kp3d.discovery_check import check_discovery
from kp3d.export import export, load_export
from kp3d.profiles import synthetic_config

NAME = "cpu-demo-discovery.pt"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


def shipped_checkpoint() -> Path:
    """Path of the shipped compact checkpoint; a clear error when the installation lacks it."""
    p = CHECKPOINT_DIR / NAME
    if not p.is_file():
        raise FileNotFoundError(f"the shipped checkpoint {p} is missing: reinstall kp3d from a full clone "
                                f"(pip install -e .), or train one with the command in docs/recipe.md")
    return p


def shipped_meta() -> dict[str, Any]:
    """The facts stored with the shipped checkpoint: profile, seed, command, data generator version,
    training steps and wall time, and the figures measured when it was made."""
    ckpt = load_checkpoint(shipped_checkpoint())
    meta = dict(ckpt.get("meta", {}))
    meta.setdefault("profile", ckpt["config"]["profile"])
    meta["step"] = ckpt["step"]
    return meta


def check_data_version(meta: dict[str, Any]) -> None:
    """Raise when the installed synthetic generator differs from the one the checkpoint was trained on
    (its figures would then describe other images)."""
    trained = meta.get("data_version")
    if trained is not None and str(trained) != str(GENERATOR_VERSION):
        raise RuntimeError(f"the shipped checkpoint was trained on synthetic data generator {trained}, this "
                           f"installation renders version {GENERATOR_VERSION}: retrain it with the command in "
                           f"docs/recipe.md and replace {shipped_checkpoint()}")


def shipped_export(out_dir: str | Path, max_frames: int | None = 200, progress: bool = True) -> Path:
    """Export the shipped model's predictions on the synthetic train and test splits (cpu-demo
    sizes) to ``out_dir/shipped_export.npz``, reusing that file when it exists; return its path."""
    meta = shipped_meta()
    check_data_version(meta)
    out = Path(out_dir) / "shipped_export.npz"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    return export(shipped_checkpoint(), out, max_frames=max_frames, progress=progress, device="cpu")


def measure_fresh(out_dir: str | Path, frames_per_subject: int = 120, checkpoint: str | Path | None = None) -> dict:
    """Render a fresh cpu-demo synthetic set (``frames_per_subject`` per subject, into the current
    cache folder), export the model on it and measure the recipe bar's figures
    (:func:`kp3d.discovery_check.check_discovery`, probes trained on the training subjects).

    Returns:
        dict(spread_ratio, close_pairs, in_gt_mask, limb_reach {joint: fraction}, limb_reach_mean,
        mean_pose_mpjpe, ridge/mlp {mpjpe, n_mpjpe, p_mpjpe}, ridge_ratio, mlp_ratio, frames_per_subject).
    """

    cfg = synthetic_config("cpu-demo", frames_per_subject=frames_per_subject)
    datasets = {split: SyntheticDataset(cfg, split, progress=False) for split in ("train", "test")}
    out = Path(out_dir) / "fresh_export.npz"
    export(checkpoint or shipped_checkpoint(), out, datasets=datasets, device="cpu", progress=False,
           mask_downsample=2, overwrite=True)
    ex = load_export(out)
    res = check_discovery(ex)
    g, p = res["geometry"], res["probes"]
    return {
        "spread_ratio": round(g["spread_ratio"], 3), "close_pairs": g["close_pairs"],
        "in_gt_mask": round(g["in_gt_mask"], 3), "limb_reach": {k: round(v, 3) for k, v in g["limb_reach"].items()},
        "limb_reach_mean": round(float(np.mean(list(g["limb_reach"].values()))), 3),
        "mean_pose_mpjpe": round(p["mean_pose"]["mpjpe"], 1),
        "ridge": {k: round(float(v), 1) for k, v in p["ridge"].items()},
        "mlp": {k: round(float(v), 1) for k, v in p["mlp"].items()},
        "ridge_ratio": round(p["ridge_ratio"], 3), "mlp_ratio": round(p["mlp_ratio"], 3),
        "frames_per_subject": frames_per_subject,
    }
