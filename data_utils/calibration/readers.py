"""The calibration file readers: each returns raw cameras (name, K, R, t in file units, size,
:class:`Distortion` or None)."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

from .model import CalibrationError, Distortion, _array, _get, _rotation, _size, log


def _raw_camera(cam: dict, name: str, where: str, fisheye: bool = False) -> dict:
    K = _array(_get(cam, "K", where), f"{where}.K", shape=(3, 3))
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CalibrationError(f"{where}.K: focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    R = _rotation(_get(cam, "R", where), f"{where}.R")
    t = _array(_get(cam, "t", where), f"{where}.t", sizes=(3,)).ravel()
    dist_value = _get(cam, "dist", where, required=False)
    dist = None
    if dist_value is not None and np.asarray(dist_value).size:
        coeffs = _array(dist_value, f"{where}.dist").ravel()
        model = "fisheye" if fisheye else "opencv"
        if model == "opencv" and coeffs.size not in (4, 5, 8, 12, 14):
            raise CalibrationError(f"{where}.dist: OpenCV models have 4, 5, 8, 12 or 14 coefficients, got {coeffs.size}")
        dist = Distortion(model, coeffs)
        if dist.is_zero:
            dist = None
    w, h = _size(cam, where)
    return {"name": str(name), "K": K, "R": R, "t": t, "width": w, "height": h, "dist": dist}


def _read_toml(path: Path) -> list[dict]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise CalibrationError(f"{path}: not valid TOML ({e})") from None
    cams = []
    for key, table in data.items():
        if key == "metadata" or not isinstance(table, dict):
            continue
        where = f"{path.name} [{key}]"
        name = table.get("name", key)
        cams.append(_raw_camera(table, name, where, fisheye=bool(table.get("fisheye", False))))
    if not cams:
        raise CalibrationError(f"{path}: no camera tables found (expected [cam_1], [cam_2], ... with name, size, "
                               f"matrix, distortions, rotation, translation)")
    return cams


def _filenode_to_python(node):
    """An OpenCV FileNode -> nested dict / list / ndarray / float / str."""
    if node.isMap():
        if set(node.keys()) >= {"rows", "cols", "data"}:  # an !!opencv-matrix written without the tag
            return node.mat()
        return {k: _filenode_to_python(node.getNode(k)) for k in node.keys()}
    if node.isSeq():
        return [_filenode_to_python(node.at(i)) for i in range(node.size())]
    if node.isString():
        return node.string()
    if node.isInt() or node.isReal():
        return node.real()
    mat = node.mat()
    return mat if mat is not None else None


def _read_opencv_tree(path: Path) -> dict:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise CalibrationError(f"{path}: not valid JSON ({e})") from None
    import cv2  # lazy: OpenCV is loaded only where a lens is undistorted or a video written

    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except cv2.error as e:
        raise CalibrationError(f"{path}: OpenCV cannot parse this YAML ({str(e).strip().splitlines()[-1]})") from None
    if not fs.isOpened():
        raise CalibrationError(f"{path}: OpenCV cannot open this file as YAML")
    try:
        return _filenode_to_python(fs.root())
    finally:
        fs.release()


def _read_opencv(path: Path) -> list[dict]:
    tree = _read_opencv_tree(path)
    if not isinstance(tree, dict):
        raise CalibrationError(f"{path}: expected a map at the top level (a 'cameras' list or one map per camera)")
    if "cameras" in tree:
        items = tree["cameras"]
        if isinstance(items, dict):
            items = [dict(v, name=v.get("name", k)) for k, v in items.items()]
        if not isinstance(items, list):
            raise CalibrationError(f"{path}: 'cameras' must be a list of camera maps")
        pairs = []
        for i, cam in enumerate(items):
            if not isinstance(cam, dict) or "name" not in cam:
                raise CalibrationError(f"{path}: cameras[{i}] must be a map with a 'name'")
            pairs.append((str(cam["name"]), cam, f"{path.name} cameras[{i}]"))
    else:
        pairs = [(str(k), v, f"{path.name} {k}") for k, v in tree.items() if isinstance(v, dict)]
    if not pairs:
        raise CalibrationError(f"{path}: no cameras found (expected a 'cameras' list, or one map per camera "
                               f"with K, dist, R, t, size)")
    return [_raw_camera(cam, name, where, fisheye=bool(cam.get("fisheye", False))) for name, cam, where in pairs]


def _read_h36m(path: Path, subject: str | None) -> list[dict]:
    data = json.loads(path.read_text())
    subjects = data.get("subjects", {})
    if not subjects:
        raise CalibrationError(f"{path}: Human3.6M-style file without a 'subjects' table")
    if subject is None:
        subject = sorted(subjects)[0] if "S1" not in subjects else "S1"
        log.info("%s: Human3.6M-style file, using the extrinsics of subject %s (pass subject= to choose)",
                 path.name, subject)
    if subject not in subjects:
        raise CalibrationError(f"{path}: no subject {subject!r}; subjects: {', '.join(sorted(subjects))}")
    cams = []
    for ext in subjects[subject]:
        cid = str(ext.get("camera_id"))
        where = f"{path.name} {subject}/{cid}"
        intr = data.get("intrinsics", {}).get(cid)
        if intr is None:
            raise CalibrationError(f"{where}: no intrinsics for camera {cid!r}")
        (fx, fy) = _array(intr.get("focal_length"), f"{where}.focal_length", sizes=(2,)).ravel()
        (cx, cy) = _array(intr.get("center"), f"{where}.center", sizes=(2,)).ravel()
        k = _array(intr.get("radial_distortion", [0, 0, 0]), f"{where}.radial_distortion", sizes=(3,)).ravel()
        p = _array(intr.get("tangential_distortion", [0, 0]), f"{where}.tangential_distortion", sizes=(2,)).ravel()
        raw = {"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "R": ext.get("R_w2c"), "t": ext.get("t_w2c_mm"),
               "width": intr.get("res_w"), "height": intr.get("res_h")}
        missing = [k_ for k_, v in raw.items() if v is None]
        if missing:
            raise CalibrationError(f"{where}: missing field(s) {missing}")
        cam = _raw_camera(raw, cid, where)
        dist = Distortion("h36m", np.concatenate([k, p]))
        cam["dist"] = None if dist.is_zero else dist
        cams.append(cam)
    return cams


def detect_format(path: str | Path) -> str:
    """The calibration format of ``path`` ("toml", "opencv" or "h36m") from its suffix and content."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix in (".yml", ".yaml", ".xml"):
        return "opencv"
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise CalibrationError(f"{path}: not valid JSON ({e})") from None
        return "h36m" if isinstance(data, dict) and "intrinsics" in data and "subjects" in data else "opencv"
    raise CalibrationError(f"{path}: unknown calibration format {suffix!r}; supported: .toml (anipose/Pose2Sim), "
                           f".yml/.yaml/.json (OpenCV K, dist, R, t), .json (Human3.6M style)")


