"""The calibration model: what a calibration file becomes (cameras, distortion, conversions), and the
checks and small conversions the readers share."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from kp3d.cameras import Camera

log = logging.getLogger("data_utils.calibration")  # one logger for the package (docs name it)

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


