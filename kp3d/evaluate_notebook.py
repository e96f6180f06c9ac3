"""What notebook 05 needs around the probe runner (:mod:`kp3d.evaluate`): the export to probe
(the shipped model's, notebook 04's, or a smoke model trained on the spot, :func:`prepare_export`),
its rows, the probe behind the viewer, and the figures of a fresh run.

Example:
    >>> same_data("rig:/data/my_rig/", "rig:/data/my_rig")
    True
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from data_utils.datasets import synthetic_options
from kp3d import probes as P
from kp3d.config import is_synthetic
from kp3d.discovery_check import probe_figures
from kp3d.evaluate import _export_config, _require_labels, split_indices
from kp3d.export import export, load_export
from kp3d.profiles import data_config, output_dir
from kp3d.shipped import shipped_export
from kp3d.train import train


__all__ = ["fit_keypoint_probe", "select_rows", "find_export", "prepare_export", "missing_labels", "fresh_run_figures",
           "same_data"]


def fit_keypoint_probe(export: dict, kind: str = "mlp", cfg: P.ProbeConfig | None = None):
    """The probe of ``kind`` fitted on all labelled training frames of an export (for the viewer).

    Its ``predict(keypoint_features(kp3d))`` gives pelvis-relative world-frame joints (T, 51).
    """
    tr, _ = split_indices(export)
    joints = _require_labels(export)
    cfg = cfg or P.probe_config(_export_config(export).get("profile", "paper-h36m"))
    return P.fit_probe(P.keypoint_features(np.asarray(export["kp3d"])[tr]), P.pose_targets(joints[tr]), cfg, kind=kind)


def select_rows(export: dict, split: str | None = None, max_frames: int | None = None) -> dict:
    """The export restricted to one split and/or at most ``max_frames`` evenly spaced rows."""
    T = len(export["kp3d"])
    idx = np.arange(T)
    if split is not None:
        idx = idx[np.asarray(export["split"]).astype(str) == split]
        if len(idx) == 0:
            raise ValueError(f"the export has no {split!r} frames")
    if max_frames is not None and len(idx) > max_frames:
        idx = idx[np.unique(np.linspace(0, len(idx) - 1, max_frames).round().astype(int))]
    return {k: (np.asarray(v)[idx] if np.ndim(v) >= 1 and len(v) == T else v) for k, v in export.items()}
def find_export(search_dirs=None) -> Path | None:
    """Notebook 04's export: the ``export`` named in its ``summary.json``, else the newest ``*.npz``
    under ``search_dirs`` (default: notebook 04's output folder). None when there is none."""
    dirs = [Path(d) for d in (search_dirs or [output_dir("04_full_training", create=False)])]
    for d in dirs:
        summary_file = d / "summary.json"
        if summary_file.is_file():
            try:
                named = json.loads(summary_file.read_text()).get("export")
            except ValueError:
                named = None
            if named and Path(named).is_file():
                return Path(named)
    found = [p for d in dirs if d.is_dir() for p in d.rglob("*.npz") if not p.name.endswith(".tmp.npz")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def fresh_run_figures(probe_cfg=None, search_dirs=None) -> dict | None:
    """Ridge and MLP probes (100 % labels) of notebook 04's export, for reporting a fresh run beside
    the shipped model; None when notebook 04 has not exported or its data has no 3D labels.

    Returns:
        dict(export, mean_pose, ridge, mlp: {mpjpe, n_mpjpe, p_mpjpe} in mm, ridge_ratio, mlp_ratio).
    """

    path = find_export(search_dirs)
    if path is None:
        return None
    ex = load_export(path)
    if missing_labels(ex) is not None:
        return None
    fig = probe_figures(ex, probe_cfg=probe_cfg)
    out = {"export": str(path)}
    for k in ("mean_pose", "ridge", "mlp"):
        out[k] = {m: round(float(fig[k][m]), 2) for m in ("mpjpe", "n_mpjpe", "p_mpjpe") if m in fig[k]}
    out.update(ridge_ratio=round(float(fig["ridge_ratio"]), 3), mlp_ratio=round(float(fig["mlp_ratio"]), 3))
    return out


def missing_labels(export: dict) -> str | None:
    """Why the probes cannot run on ``export`` (it has no 3D labels), or None when they can.

    A user's own rig (``data="rig:PATH"``) has labels only with a ``joints_3d.npy`` in its folder;
    without them the keypoints can still be exported and viewed, but there is nothing to probe against.
    """
    if "gt_joints_3d" in export:
        return None
    data = _export_config(export).get("data", "the data set")
    fix = ("put joints_3d.npy (T, 17, 3) in the rig folder to probe (docs/own_rig.md)"
           if str(data).startswith("rig:") else "probe a model trained on labelled data (synthetic, h36m:, 3dhp:)")
    return (f"probing skipped: the export has no 3D labels (gt_joints_3d); {data} has none. Fix: {fix}. "
            f"The viewer still shows the discovered 2D and 3D keypoints.")


def _data_key(data: str) -> tuple[str, str]:
    """("rig", "/abs/path") for "rig:path": data names compared with their folders resolved."""
    kind, sep, path = str(data).partition(":")
    return (kind, str(Path(path).expanduser().resolve())) if sep and path else (str(data), "")


def same_data(a: str, b: str) -> bool:
    """Whether two ``data`` names point at the same data set ("rig:./x" and "rig:/abs/x" do)."""
    return _data_key(a) == _data_key(b)


def _smoke_name(data: str, calibration: str) -> str:
    """File stem of the fallback smoke model: ``smoke`` on the synthetic set, keyed by data otherwise."""
    if data == "synthetic":
        return "smoke"
    if is_synthetic(data):  # another render of the embedded set: "synthetic?seed=3" -> smoke-synthetic-seed3
        return "smoke-synthetic-" + "-".join(f"{k}{v}" for k, v in synthetic_options(data).items())

    key = hashlib.sha1(json.dumps([*_data_key(data), calibration]).encode()).hexdigest()[:8]
    return f"smoke-{_data_key(data)[0]}-{key}"


def prepare_export(export_path: str | Path | None, out_dir, max_iters: int | None = None,
                   max_frames: int | None = None, progress: bool = True, data: str = "synthetic",
                   calibration: str = "", model: str = "notebook04", profile: str = "cpu-demo") -> tuple[dict, Path]:
    """Load the export to probe: ``export_path``, else notebook 04's (:func:`find_export`) when it was
    made on ``data``, else train a smoke model on ``data``.

    The fallback trains ``data_config("smoke", data, calibration)`` (seconds; its probes say nothing
    about the method) under ``out_dir/smoke_run`` and exports it to ``out_dir/smoke_export.npz``
    (``smoke-<kind>-<hash>_run`` / ``_export.npz`` for other data); both are reused when they
    already exist. Run notebook 04 (or ``kp3d-train``) for a real model.

    Args:
        export_path: an export ``.npz``; "" or None: look for notebook 04's, then the fallback.
        out_dir: where the fallback writes.
        data, calibration: the data set of the notebook (``DATA``, ``CALIBRATION``). Notebook 04's
            export of another data set is not used (it is reported); an explicit ``export_path``
            is used whatever its data.
        model: "shipped": the checkpoint that ships with kp3d (:mod:`kp3d.shipped`), exported once to
            ``out_dir/shipped_export.npz`` (needs ``data="synthetic"`` and a non-smoke ``profile``;
            otherwise reported and the notebook-04 route is taken); "notebook04": the route above.
        profile: the notebook's profile (the smoke profile never renders the cpu-demo set).

    Returns:
        (export dict, its path).
    """
    if model not in ("shipped", "notebook04"):
        raise ValueError(f"MODEL={model!r}: expected 'shipped' (the repository's checkpoint) or 'notebook04'")
    if export_path:
        p = Path(export_path)
        if not p.exists():
            raise FileNotFoundError(f"EXPORT_PATH={p} does not exist: run notebook 04 or kp3d.export.export(...) first")
        return load_export(p), p
    if model == "shipped":
        if data == "synthetic" and profile != "smoke":
            p = shipped_export(out_dir, max_frames=max_frames, progress=progress)
            print(f"using the shipped checkpoint's export {p} (MODEL = 'notebook04' probes notebook 04's run)")
            return load_export(p), p
        print(f"MODEL='shipped' needs DATA='synthetic' and a non-smoke profile (got {data!r}, {profile!r}): "
              f"probing notebook 04's model instead")
    p = find_export()
    if p is not None:
        found = load_export(p)
        made_on = _export_config(found).get("data", "synthetic")
        if same_data(made_on, data):
            print(f"using notebook 04's export {p}")
            return found, p
        print(f"notebook 04's export {p} was made on data {made_on!r}, not {data!r}: not used "
              f"(run notebook 04 with DATA = {data!r}, or set EXPORT_PATH)")
    out_dir = Path(out_dir)
    name = _smoke_name(data, calibration)
    p = out_dir / f"{name}_export.npz"
    if not p.exists():

        print(f"no export of {data!r} found: training a SMOKE model (seconds; for a real result run notebook 04 first)")
        cfg = data_config("smoke", data, calibration, **({"max_iters": max_iters} if max_iters else {}))
        run = out_dir / f"{name}_run"
        run = train(cfg, run_dir=run, resume=run.exists(), progress=progress)
        export(run, p, max_frames=max_frames, progress=progress)
    return load_export(p), p
