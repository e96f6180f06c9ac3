"""Read and write the multi-camera calibration files people already have, as kp3d cameras.

Supported formats (picked by :func:`load_calibration` from the file's suffix and content):

- ``toml``: the anipose / Pose2Sim file. One ``[cam_N]`` table per camera with ``name``,
  ``size = [width, height]``, ``matrix`` (3x3 K), ``distortions`` (OpenCV coefficients
  ``[k1, k2, p1, p2(, k3)]``), ``rotation`` (Rodrigues vector), ``translation``, optional
  ``fisheye = true``; world-to-camera; Pose2Sim writes metres, anipose the units of its board.
  Other tables (``[metadata]``) are ignored.
- ``opencv``: a YAML (OpenCV ``FileStorage``, ``!!opencv-matrix`` allowed) or JSON file holding
  either a ``cameras`` list of maps with a ``name``, or one map per camera keyed by its name.
  Each camera has ``K`` (3x3), ``dist`` (OpenCV coefficients, may be empty), ``R`` (3x3 matrix or
  3-vector Rodrigues) or ``rvec``, ``t`` (3), and ``size = [width, height]`` (or ``width`` and
  ``height``); world-to-camera. Common aliases are accepted (``camera_matrix``, ``D``,
  ``distortion``, ``tvec``, ``T``, ``image_size`` ...).
- ``h36m``: the Human3.6M-style JSON of ``kp3d/data/h36m_cameras.json`` (``intrinsics`` per camera
  id, ``subjects`` with per-subject ``R_w2c`` and ``t_w2c_mm``); pick the session with ``subject``.

Everything is normalised to the project's conventions (docs/architecture.md): world-to-camera
``x_cam = R X + t`` with ``t`` in millimetres and the world's z axis up. What was converted is
logged (``logging`` at INFO, logger ``data_utils.calibration``) and kept in
:attr:`Calibration.conversions`:

- units: ``units="auto"`` reads metres when the median distance between camera centres is under
  50 (a rig of cameras 50 mm apart is implausible, one 50 m wide too) and multiplies by 1000;
  ``"m"`` / ``"mm"`` force it;
- up axis: ``up_axis="auto"`` averages the cameras' up directions (image -y) in the world; when it
  lies within 35 degrees of a signed world axis other than +z (anipose's world is camera 1's frame,
  so its up is -y), the world is rotated so that axis becomes +z (``R <- R A^T``, points
  ``X <- A X``, :attr:`Calibration.world_rotation` is ``A``). ``"z"`` keeps the world; ``"y"``,
  ``"-y"``, ``"x"``, ... name the file's up axis;
- distortion stays with the calibration (:attr:`Calibration.distortion`, OpenCV, fisheye or the
  Human3.6M model); :attr:`Calibration.cameras` are pinhole ``kp3d.cameras.Camera`` with
  ``dist=None``: the rig loader undistorts the *images* (``undistortion_maps``) so that the
  pinhole ``P = K [R | t]`` holds for everything downstream.

Example:
    >>> import numpy as np, tempfile, os
    >>> from kp3d.cameras import h36m_rig
    >>> from data_utils.calibration import write_toml, load_calibration
    >>> path = os.path.join(tempfile.mkdtemp(), "calibration.toml")
    >>> write_toml(path, h36m_rig("S1"), units="m")
    >>> calib = load_calibration(path)
    >>> [c.name for c in calib.cameras][:2], calib.units
    (['54138969', '55011271'], 'm')
    >>> bool(np.allclose(calib.cameras[0].t, h36m_rig("S1")[0].t, atol=1e-3))
    True
"""
from __future__ import annotations

import json
import logging
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from kp3d.cameras import Camera, distort_normalized

log = logging.getLogger(__name__)

FORMATS = ("toml", "opencv", "h36m")
DISTORTION_MODELS = ("opencv", "fisheye", "h36m")
UP_AXES = ("auto", "z", "-z", "y", "-y", "x", "-x")
METRES_BELOW = 50.0  # median camera-centre distance under which "auto" reads metres

_ALIASES = {
    "K": ("K", "matrix", "camera_matrix", "cameraMatrix", "intrinsic", "intrinsics", "mtx"),
    "dist": ("dist", "distortions", "distortion", "dist_coeffs", "distCoeffs", "distortion_coefficients", "D"),
    "R": ("R", "rotation", "rotation_matrix", "rvec", "r"),
    "t": ("t", "T", "translation", "tvec"),
    "size": ("size", "image_size", "imageSize", "resolution"),
    "width": ("width", "image_width", "w"),
    "height": ("height", "image_height", "h"),
}


class CalibrationError(ValueError):
    """A calibration file that cannot be read as a rig (missing field, bad shape, non-finite number)."""


@dataclass(frozen=True)
class Distortion:
    """A camera's lens model.

    Args:
        model: "opencv" (``[k1, k2, p1, p2, k3, ...]``, 4/5/8/12/14 coefficients), "fisheye"
            (OpenCV fisheye ``[k1, k2, k3, k4]``) or "h36m" (``[k1, k2, k3, p1, p2]``, see
            ``kp3d.cameras.distort_normalized``).
        coeffs: (C,) float64 coefficients.
    """

    model: str
    coeffs: np.ndarray

    def __post_init__(self):
        if self.model not in DISTORTION_MODELS:
            raise CalibrationError(f"unknown distortion model {self.model!r}: expected one of {DISTORTION_MODELS}")
        c = np.asarray(self.coeffs, dtype=np.float64).ravel()
        valid = {"opencv": (4, 5, 8, 12, 14), "fisheye": (4,), "h36m": (5,)}[self.model]
        if c.size not in valid:
            raise CalibrationError(f"{self.model} distortion needs {' or '.join(map(str, valid))} coefficients, got {c.size}")
        object.__setattr__(self, "coeffs", c)

    @property
    def is_zero(self) -> bool:
        return not np.any(self.coeffs)


@dataclass
class Calibration:
    """A loaded rig: pinhole cameras in the project's conventions plus their lens models.

    Attributes:
        cameras: list of pinhole :class:`kp3d.cameras.Camera` (``dist=None``), native image size,
            world-to-camera, mm, world z up.
        distortion: camera name -> :class:`Distortion` or None (no distortion).
        source: the file read; format: one of ``FORMATS``; units: "m" or "mm" (of the file).
        world_rotation: (3, 3) ``A`` with ``X_kp3d = A X_file / scale`` mm (identity when unchanged).
        scale: factor applied to the file's lengths to get mm (1000 for metres).
        conversions: human-readable lines saying what was converted.
    """

    cameras: list
    distortion: dict
    source: str = ""
    format: str = ""
    units: str = "mm"
    scale: float = 1.0
    world_rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    conversions: list = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def camera(self, name: str) -> Camera:
        for c in self.cameras:
            if c.name == name:
                return c
        raise KeyError(f"no camera {name!r} in {self.source or 'the calibration'} (cameras: {', '.join(self.names)})")

    def points_to_world(self, X) -> np.ndarray:
        """Points in the file's world frame and units (..., 3) -> kp3d world mm (..., 3)."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1] != 3:
            raise ValueError(f"X must have shape (..., 3), got {X.shape}")
        return (X * self.scale) @ self.world_rotation.T


# ---------------------------------------------------------------------------------------------
# checks and small conversions
# ---------------------------------------------------------------------------------------------
def _array(value, what: str, shape: tuple | None = None, sizes: tuple | None = None) -> np.ndarray:
    """``value`` as float64 with a clear error on a bad shape or a non-finite number."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise CalibrationError(f"{what}: not a numeric array ({e}); got {value!r}") from None
    if shape is not None and arr.shape != shape:
        if arr.size == int(np.prod(shape)):
            arr = arr.reshape(shape)
        else:
            raise CalibrationError(f"{what}: expected shape {shape}, got {arr.shape}")
    if sizes is not None and arr.size not in sizes:
        raise CalibrationError(f"{what}: expected {' or '.join(map(str, sizes))} numbers, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{what}: contains non-finite numbers {arr.ravel().tolist()}; fix the calibration file")
    return arr


def rodrigues_to_matrix(rvec) -> np.ndarray:
    """(3,) axis-angle (Rodrigues) vector -> (3, 3) rotation matrix."""
    r = np.asarray(rvec, dtype=np.float64).ravel()
    theta = float(np.linalg.norm(r))
    if theta < 1e-12:
        return np.eye(3)
    k = r / theta
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * Kx + (1 - math.cos(theta)) * Kx @ Kx


def matrix_to_rodrigues(R) -> np.ndarray:
    """(3, 3) rotation matrix -> (3,) Rodrigues vector (robust near 0 and pi)."""
    R = np.asarray(R, dtype=np.float64)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2  # sin(theta) * axis
    s, c = float(np.linalg.norm(w)), (np.trace(R) - 1) / 2
    theta = math.atan2(s, c)  # accurate over the whole range, unlike acos near 0 and pi
    if s > 1e-7:
        return w / s * theta
    if c > 0:
        return np.zeros(3)
    # half turn: R = 2 k k^T - I, the axis from the largest diagonal entry of (R + I) / 2
    B = (R + np.eye(3)) / 2
    i = int(np.argmax(np.diag(B)))
    axis = B[:, i] / math.sqrt(max(B[i, i], 1e-300))
    return axis / np.linalg.norm(axis) * theta


def _rotation(value, what: str) -> np.ndarray:
    arr = _array(value, what)
    if arr.size == 3:
        return rodrigues_to_matrix(arr)
    if arr.size == 9:
        R = arr.reshape(3, 3)
        if abs(np.linalg.det(R) - 1) > 1e-3 or not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
            raise CalibrationError(f"{what}: not a rotation matrix (R R^T != I or det(R) != 1)")
        return R
    raise CalibrationError(f"{what}: expected a 3x3 matrix or a 3-vector (Rodrigues), got {arr.size} numbers")


def _get(cam: dict, key: str, where: str, required: bool = True):
    for alias in _ALIASES[key]:
        if alias in cam:
            return cam[alias]
    if required:
        raise CalibrationError(f"{where}: missing field {key!r} (accepted names: {', '.join(_ALIASES[key])})")
    return None


def _size(cam: dict, where: str) -> tuple[int, int]:
    size = _get(cam, "size", where, required=False)
    if size is not None:
        s = _array(size, f"{where}.size", sizes=(2,)).ravel()
        w, h = s
    else:
        w, h = _get(cam, "width", where, required=False), _get(cam, "height", where, required=False)
        if w is None or h is None:
            raise CalibrationError(f"{where}: missing the image size; add size = [width, height]")
        w, h = _array(w, f"{where}.width"), _array(h, f"{where}.height")
    if not (float(w) >= 1 and float(h) >= 1):
        raise CalibrationError(f"{where}: image size must be positive, got {w} x {h}")
    return int(round(float(w))), int(round(float(h)))


# ---------------------------------------------------------------------------------------------
# readers (each returns raw cameras: name, K, R, t (file units), size, Distortion | None)
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# distortion of points and undistortion maps for images
# ---------------------------------------------------------------------------------------------
def distort_points(camera: Camera, distortion: Distortion | None, x) -> np.ndarray:
    """Pinhole pixels (..., 2) of ``camera`` -> where the lens puts them in the raw (distorted) image."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] != 2:
        raise ValueError(f"x must have shape (..., 2) pixels, got {x.shape}")
    if distortion is None:
        return x.copy()
    Kinv = np.linalg.inv(camera.K)
    xy = x @ Kinv[:2, :2].T + Kinv[:2, 2]
    if distortion.model == "h36m":
        xy_d = distort_normalized(xy, distortion.coeffs)
        return xy_d @ camera.K[:2, :2].T + camera.K[:2, 2]
    import cv2  # lazy: OpenCV is loaded only where a lens is undistorted or a video written

    pts = np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1).reshape(-1, 1, 3)
    if distortion.model == "fisheye":
        out, _ = cv2.fisheye.projectPoints(pts, np.zeros((3, 1)), np.zeros((3, 1)), camera.K,
                                           distortion.coeffs.reshape(4, 1))
    else:
        out, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), camera.K, distortion.coeffs)
    return out.reshape(x.shape)


def undistortion_maps(camera: Camera, distortion: Distortion | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(map_x, map_y)`` float32 (H, W) for ``cv2.remap``: raw image -> pinhole image with the same K.

    Each pinhole output pixel is pushed through the lens model (a forward computation, no
    iterative inversion) to find where to sample the raw frame. None when there is no distortion.
    """
    if distortion is None or distortion.is_zero:
        return None
    u, v = np.meshgrid(np.arange(camera.width, dtype=np.float64), np.arange(camera.height, dtype=np.float64))
    src = distort_points(camera, distortion, np.stack([u, v], axis=-1))
    return src[..., 0].astype(np.float32), src[..., 1].astype(np.float32)


# ---------------------------------------------------------------------------------------------
# writers (used by the tests to build rigs; also handy to convert between formats)
# ---------------------------------------------------------------------------------------------
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
