"""Calibration writers (the tests build rigs with them; also handy to convert between formats)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from kp3d.cameras import Camera

from .model import matrix_to_rodrigues


def _fmt(x: float) -> str:
    return repr(float(x))


def _toml_list(a) -> str:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        return "[ " + ", ".join(_fmt(v) for v in a) + " ]"
    return "[ " + ", ".join(_toml_list(r) for r in a) + " ]"


def _check_units(units: str) -> float:
    if units not in ("m", "mm"):
        raise ValueError(f"units must be 'm' or 'mm', got {units!r}")
    return 1e-3 if units == "m" else 1.0


def _default_dist(distortions, name):
    d = (distortions or {}).get(name)
    return d


def write_toml(path: str | Path, cameras: Sequence[Camera], distortions: dict | None = None,
               units: str = "m", overwrite: bool = False) -> None:
    """Write cameras as an anipose/Pose2Sim TOML (Rodrigues rotation, translations in ``units``).

    Args:
        cameras: kp3d cameras (world mm, world-to-camera).
        distortions: name -> :class:`Distortion` ("opencv" or "fisheye"); None: no distortion.
        units: "m" (Pose2Sim) or "mm".
        overwrite: replace an existing file (refused otherwise).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    k = _check_units(units)
    lines = []
    for i, cam in enumerate(cameras, start=1):
        d = _default_dist(distortions, cam.name)
        if d is not None and d.model == "h36m":
            raise ValueError("the TOML format stores OpenCV distortion; the Human3.6M model cannot be written to it")
        coeffs = d.coeffs if d is not None else np.zeros(4)
        lines += [f"[cam_{i}]", f'name = "{cam.name}"', f"size = [ {cam.width}, {cam.height} ]",
                  f"matrix = {_toml_list(cam.K)}", f"distortions = {_toml_list(coeffs)}",
                  f"rotation = {_toml_list(matrix_to_rodrigues(cam.R))}",
                  f"translation = {_toml_list(cam.t * k)}",
                  f"fisheye = {'true' if d is not None and d.model == 'fisheye' else 'false'}", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.0", ""]
    path.write_text("\n".join(lines))


def write_opencv(path: str | Path, cameras: Sequence[Camera], distortions: dict | None = None,
                 units: str = "mm", rodrigues: bool = False, overwrite: bool = False) -> None:
    """Write cameras as an OpenCV YAML (``.yml``/``.yaml``, ``!!opencv-matrix``) or JSON (``.json``) file.

    The file holds a ``cameras`` list; each camera has ``name``, ``size = [w, h]``, ``K``, ``dist``,
    ``R`` (3x3, or a Rodrigues 3-vector with ``rodrigues=True``) and ``t`` in ``units``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    k = _check_units(units)
    entries = []
    for cam in cameras:
        d = _default_dist(distortions, cam.name)
        if d is not None and d.model == "h36m":
            raise ValueError("the OpenCV format stores OpenCV distortion; the Human3.6M model cannot be written to it")
        entries.append({"name": cam.name, "size": [cam.width, cam.height], "K": cam.K,
                        "dist": d.coeffs if d is not None else np.zeros(5),
                        "R": matrix_to_rodrigues(cam.R) if rodrigues else cam.R, "t": cam.t * k,
                        "fisheye": int(d is not None and d.model == "fisheye")})
    if path.suffix.lower() == ".json":
        data = {"cameras": [{key: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
                             for key, v in e.items()} for e in entries]}
        path.write_text(json.dumps(data, indent=1))
        return
    import cv2  # lazy: OpenCV is loaded only where a lens is undistorted or a video written

    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.startWriteStruct("cameras", cv2.FileNode_SEQ)
    for e in entries:
        fs.startWriteStruct("", cv2.FileNode_MAP)
        fs.write("name", e["name"])
        fs.write("size", np.array(e["size"], dtype=np.float64).reshape(1, 2))
        for key in ("K", "dist", "R", "t"):
            fs.write(key, np.asarray(e[key], dtype=np.float64).reshape(-1, 3) if key in ("K", "R") and
                     np.asarray(e[key]).size == 9 else np.asarray(e[key], dtype=np.float64).reshape(1, -1))
        fs.write("fisheye", e["fisheye"])
        fs.endWriteStruct()
    fs.endWriteStruct()
    fs.release()
