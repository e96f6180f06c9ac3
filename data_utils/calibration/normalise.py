"""Normalising a calibration to the project's conventions: millimetres and a z-up world
(:func:`load_calibration`)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kp3d.cameras import Camera

from .model import FORMATS, METRES_BELOW, UP_AXES, Calibration, CalibrationError, log
from .readers import _read_h36m, _read_opencv, _read_toml, detect_format

_AXES = {"x": np.array([1.0, 0, 0]), "y": np.array([0, 1.0, 0]), "z": np.array([0, 0, 1.0])}


def _axis(name: str) -> np.ndarray:
    return -_AXES[name[1]] if name.startswith("-") else _AXES[name]


def rotation_to_z_up(up) -> np.ndarray:
    """(3, 3) proper rotation ``A`` with ``A @ up = (0, 0, 1)`` (``up``: (3,) unit vector)."""
    a = np.asarray(up, dtype=np.float64)
    a = a / np.linalg.norm(a)
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(a, z), float(a @ z)
    if c < -1 + 1e-9:  # a = -z: half turn about x
        return np.diag([1.0, -1.0, -1.0])
    Vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + Vx + Vx @ Vx / (1 + c)


def _camera_up(raw: list[dict]) -> np.ndarray:
    """Mean direction in the world of the cameras' image 'up' (-y_cam)."""
    ups = np.stack([c["R"].T @ np.array([0.0, -1.0, 0.0]) for c in raw])
    m = ups.mean(axis=0)
    return m / max(np.linalg.norm(m), 1e-12)


def load_calibration(path: str | Path, format: str = "auto", units: str = "auto", up_axis: str = "auto",
                     subject: str | None = None) -> Calibration:
    """Read a calibration file and normalise it to kp3d's conventions (mm, world-to-camera, z up).

    Args:
        path: the file (.toml, .yml/.yaml/.xml, .json).
        format: "auto" (from suffix and content) or one of ``FORMATS``.
        units: length units of the file's translations: "auto", "m" or "mm".
        up_axis: the file world's up axis: "auto" (from the cameras' orientation) or one of
            "z", "-z", "y", "-y", "x", "-x".
        subject: Human3.6M-style files only: whose extrinsics to use (default S1 or the first).

    Returns:
        :class:`Calibration`; every conversion is logged and listed in ``conversions``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration file {path} not found; pass an anipose/Pose2Sim .toml, an OpenCV "
                                f".yml/.json or a Human3.6M-style .json")
    if format == "auto":
        format = detect_format(path)
    if format not in FORMATS:
        raise CalibrationError(f"unknown calibration format {format!r}: expected 'auto' or one of {FORMATS}")
    if units not in ("auto", "m", "mm"):
        raise CalibrationError(f"units must be 'auto', 'm' or 'mm', got {units!r}")
    if up_axis not in UP_AXES:
        raise CalibrationError(f"up_axis must be one of {UP_AXES}, got {up_axis!r}")
    raw = {"toml": _read_toml, "opencv": _read_opencv}.get(format, lambda p: _read_h36m(p, subject))(path)
    names = [c["name"] for c in raw]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CalibrationError(f"{path}: camera names must be unique, repeated: {dup}")
    conversions = [f"read {len(raw)} cameras ({', '.join(names)}) from {path.name} as {format}"]

    # units
    centres = np.stack([-c["R"].T @ c["t"] for c in raw])
    spread = float(np.median([np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1:]])) \
        if len(raw) > 1 else float(np.linalg.norm(centres[0]))
    if format == "h36m":
        file_units = "mm"
    elif units == "auto":
        file_units = "m" if spread < METRES_BELOW else "mm"
        conversions.append(f"units: median distance between camera centres is {spread:.4g} -> read as "
                           f"{'metres' if file_units == 'm' else 'millimetres'} (force with units='m'/'mm': "
                           f"kp3d-train --units mm, DATA = 'rig:PATH?units=mm')")
    else:
        file_units = units
    scale = 1000.0 if file_units == "m" else 1.0
    if scale != 1.0:
        conversions.append("units: translations converted from metres to millimetres (x1000)")

    # up axis
    A = np.eye(3)
    if up_axis == "auto":
        up = _camera_up(raw)
        best = max(("z", "-z", "y", "-y", "x", "-x"), key=lambda n: float(_axis(n) @ up))
        if float(_axis(best) @ up) >= math.cos(math.radians(35)):
            if best != "z":
                A = rotation_to_z_up(_axis(best))
                conversions.append(f"up axis: the cameras' mean up direction is the file's {best} axis -> world "
                                   f"rotated so that it becomes +z (force with up_axis='z' to keep the file's frame: "
                                   f"kp3d-train --up-axis z, DATA = 'rig:PATH?up_axis=z')")
        else:
            log.warning("%s: cannot tell the world's up axis from the cameras (mean camera up %s); the world frame "
                        "is kept as is. Pass up_axis='y', '-y', 'z', ... to set it (kp3d-train --up-axis=-y, "
                        "DATA = 'rig:PATH?up_axis=-y').", path.name, np.round(up, 2))
    elif up_axis != "z":
        A = rotation_to_z_up(_axis(up_axis))
        conversions.append(f"up axis: file's {up_axis} -> +z (world rotated)")

    cameras, distortion = [], {}
    for c in raw:
        R = c["R"] @ A.T
        # re-orthonormalise: files often store rotations rounded to a few digits
        U, _, Vt = np.linalg.svd(R)
        R = U @ Vt
        try:
            cam = Camera(name=c["name"], K=c["K"], R=R, t=c["t"] * scale, width=c["width"], height=c["height"])
        except ValueError as e:
            raise CalibrationError(f"{path.name} camera {c['name']!r}: {e}") from None
        cameras.append(cam)
        distortion[c["name"]] = c["dist"]
    models = sorted({d.model for d in distortion.values() if d is not None})
    conversions.append("distortion: " + (f"{', '.join(models)} lens model(s) kept; images are undistorted to pinhole"
                                         if models else "none"))
    for line in conversions:
        log.info("%s", line)
    return Calibration(cameras=cameras, distortion=distortion, source=str(path), format=format, units=file_units,
                       scale=scale, world_rotation=A, conversions=conversions)


