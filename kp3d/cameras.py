"""Calibrated pinhole cameras and the Human3.6M rig.

Conventions (the whole project uses them):

- world coordinates in millimetres, z up (the Human3.6M capture frame);
- world-to-camera extrinsics: ``x_cam = R @ X_world + t``; the camera looks along +z, x right, y down;
- pixel coordinates follow OpenCV: the centre of pixel column i, row j is at (u, v) = (i, j);
- intrinsics ``K = [[f_x, 0, c_x], [0, f_y, c_y], [0, 0, 1]]`` in pixels.

Distortion: Human3.6M ships a radial + tangential model that is *not* OpenCV's (see
:func:`distort_normalized`). The learning pipeline ignores distortion: the synthetic renderer
draws pinhole images, and for real footage keypoints (or images) are undistorted first, so that
``P = K [R | t]`` is exact for triangulation (:mod:`kp3d.geometry`). :meth:`Camera.project_distorted`
and :meth:`Camera.undistort_points` convert between the two.

The Human3.6M calibration numbers are embedded as package data (``kp3d/data/h36m_cameras.json``):
four cameras with per-subject extrinsics for S1, S5, S6, S7, S8, S9, S11.

Example:
    >>> from kp3d.cameras import h36m_rig
    >>> cams = h36m_rig("S9", width=128, height=128)
    >>> [c.name for c in cams]
    ['54138969', '55011271', '58860488', '60457274']
    >>> cams[0].project([[0.0, 0.0, 900.0]]).shape
    (1, 2)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

H36M_SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
H36M_CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")


def _as_array(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"Camera.{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Camera.{name} contains non-finite values: {arr.tolist()}")
    return arr


def distort_normalized(xy: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Apply the Human3.6M distortion model to normalised image coordinates.

    With ``x, y = X/Z, Y/Z``, ``r2 = x^2 + y^2``, ``radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3`` and
    ``tan = p1 x + p2 y``: ``xd = x (radial + tan) + p1 r2`` and ``yd = y (radial + tan) + p2 r2``.

    Args:
        xy: (..., 2) normalised coordinates (X/Z, Y/Z).
        dist: (5,) ``[k1, k2, k3, p1, p2]``.

    Returns:
        (..., 2) distorted normalised coordinates.
    """
    xy = np.asarray(xy, dtype=np.float64)
    k1, k2, k3, p1, p2 = np.asarray(dist, dtype=np.float64)
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tan = p1 * xy[..., :1] + p2 * xy[..., 1:2]
    return xy * (radial + tan) + np.array([p1, p2]) * r2


def undistort_normalized(xy_d: np.ndarray, dist: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Invert :func:`distort_normalized` by fixed-point iteration.

    The Human3.6M model has no closed-form inverse; the iteration ``x <- (x_d - p r2) / (radial + tan)``
    converges in a few steps inside the image (distortion of a few per cent).

    Args:
        xy_d: (..., 2) distorted normalised coordinates.
        dist: (5,) ``[k1, k2, k3, p1, p2]``.

    Returns:
        (..., 2) undistorted normalised coordinates.
    """
    xy_d = np.asarray(xy_d, dtype=np.float64)
    k1, k2, k3, p1, p2 = np.asarray(dist, dtype=np.float64)
    p = np.array([p1, p2])
    xy = xy_d.copy()
    for _ in range(iterations):
        r2 = np.sum(xy**2, axis=-1, keepdims=True)
        radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
        tan = p1 * xy[..., :1] + p2 * xy[..., 1:2]
        xy = (xy_d - p * r2) / (radial + tan)
    return xy


@dataclass(frozen=True)
class Camera:
    """A calibrated camera: intrinsics ``K``, world-to-camera ``R, t`` (mm), image size, distortion.

    Args:
        name: an identifier, e.g. the Human3.6M camera id.
        K: (3, 3) pixel intrinsics, OpenCV pixel-centre convention.
        R: (3, 3) world-to-camera rotation.
        t: (3,) world-to-camera translation in mm.
        width, height: image size in pixels that ``K`` refers to.
        dist: (5,) Human3.6M distortion ``[k1, k2, k3, p1, p2]`` or None for a pinhole camera.
    """

    name: str
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int
    dist: np.ndarray | None = field(default=None)

    def __post_init__(self):
        object.__setattr__(self, "K", _as_array("K", self.K, (3, 3)))
        object.__setattr__(self, "R", _as_array("R", self.R, (3, 3)))
        object.__setattr__(self, "t", _as_array("t", np.ravel(self.t), (3,)))
        if self.dist is not None:
            object.__setattr__(self, "dist", _as_array("dist", np.ravel(self.dist), (5,)))
        if not (int(self.width) > 0 and int(self.height) > 0):
            raise ValueError(f"Camera size must be positive, got {self.width}x{self.height}")
        if abs(np.linalg.det(self.R) - 1.0) > 1e-4 or not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-4):
            raise ValueError(f"Camera {self.name!r}: R is not a rotation matrix (R R^T != I or det != 1)")

    @property
    def P(self) -> np.ndarray:
        """(3, 4) projection matrix ``K [R | t]`` (world mm -> homogeneous pixels)."""
        return self.K @ np.concatenate([self.R, self.t[:, None]], axis=1)

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in world mm: ``-R^T t``."""
        return -self.R.T @ self.t

    def world_to_camera(self, X) -> np.ndarray:
        """(..., 3) world mm -> (..., 3) camera-frame mm."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1] != 3:
            raise ValueError(f"X must have shape (..., 3), got {X.shape}")
        return X @ self.R.T + self.t

    def project(self, X) -> np.ndarray:
        """Pinhole projection, no distortion: (..., 3) world mm -> (..., 2) pixels."""
        Xc = self.world_to_camera(X)
        xy = Xc[..., :2] / Xc[..., 2:3]
        return xy @ self.K[:2, :2].T + self.K[:2, 2]

    def project_distorted(self, X) -> np.ndarray:
        """Projection through the Human3.6M distortion model: (..., 3) world mm -> (..., 2) pixels.

        Equals :meth:`project` for a camera without distortion.
        """
        if self.dist is None:
            return self.project(X)
        Xc = self.world_to_camera(X)
        xy = distort_normalized(Xc[..., :2] / Xc[..., 2:3], self.dist)
        return xy @ self.K[:2, :2].T + self.K[:2, 2]

    def undistort_points(self, x) -> np.ndarray:
        """Map distorted pixels (..., 2) to the pixels a pinhole camera with the same K would see."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != 2:
            raise ValueError(f"x must have shape (..., 2) pixels, got {x.shape}")
        if self.dist is None:
            return x.copy()
        Kinv = np.linalg.inv(self.K)
        xy_d = x @ Kinv[:2, :2].T + Kinv[:2, 2]
        xy = undistort_normalized(xy_d, self.dist)
        return xy @ self.K[:2, :2].T + self.K[:2, 2]

    def resized(self, width: int, height: int) -> "Camera":
        """The same camera for an image resized to ``width x height``.

        Scaling keeps pixel *areas* aligned: with OpenCV centres, ``u' = (u + 0.5) s - 0.5``, so
        ``f' = s f`` and ``c' = (c + 0.5) s - 0.5`` (per axis; non-uniform scaling allowed).
        """
        if not (int(width) > 0 and int(height) > 0):
            raise ValueError(f"resized() needs a positive size, got {width}x{height}")
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, 0] *= sx
        K[0, 1] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return replace(self, K=K, width=int(width), height=int(height))

    def without_distortion(self) -> "Camera":
        """This camera with ``dist=None`` (what the learning pipeline assumes)."""
        return replace(self, dist=None)


def to_tensors(cameras: Sequence[Camera], dtype=None) -> dict:
    """Stack cameras into torch tensors: ``K (V,3,3), R (V,3,3), t (V,3), P (V,3,4)`` (float32 default)."""
    if len(cameras) == 0:
        raise ValueError("to_tensors needs at least one camera")
    dtype = dtype or torch.float32
    return {
        "K": torch.tensor(np.stack([c.K for c in cameras]), dtype=dtype),
        "R": torch.tensor(np.stack([c.R for c in cameras]), dtype=dtype),
        "t": torch.tensor(np.stack([c.t for c in cameras]), dtype=dtype),
        "P": torch.tensor(np.stack([c.P for c in cameras]), dtype=dtype),
    }


@lru_cache(maxsize=1)
def _h36m_calibration() -> dict:
    text = (Path(__file__).resolve().parent / "data" / "h36m_cameras.json").read_text()
    return json.loads(text)


def h36m_rig(subject: str = "S1", width: int | None = None, height: int | None = None) -> list[Camera]:
    """The four Human3.6M cameras of one subject's sessions, with distortion.

    Args:
        subject: one of ``H36M_SUBJECTS`` (S2-S4 have no calibration).
        width, height: resize every camera to this image size (both or neither); native sizes are
            1000x1002 (camera 54138969) and 1000x1000 (the others).

    Returns:
        list of 4 :class:`Camera`, ordered as ``H36M_CAMERA_IDS``.
    """
    if subject not in H36M_SUBJECTS:
        raise ValueError(f"unknown Human3.6M subject {subject!r}: calibrated subjects are {', '.join(H36M_SUBJECTS)}")
    if (width is None) != (height is None):
        raise ValueError("h36m_rig: give both width and height, or neither")
    data = _h36m_calibration()
    cams = []
    for ext in data["subjects"][subject]:
        intr = data["intrinsics"][ext["camera_id"]]
        (fx, fy), (cx, cy) = intr["focal_length"], intr["center"]
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        dist = np.concatenate([intr["radial_distortion"], intr["tangential_distortion"]])
        cam = Camera(
            name=ext["camera_id"],
            K=K,
            R=np.asarray(ext["R_w2c"]),
            t=np.asarray(ext["t_w2c_mm"]),
            width=int(intr["res_w"]),
            height=int(intr["res_h"]),
            dist=dist,
        )
        if width is not None:
            cam = cam.resized(width, height)
        cams.append(cam)
    return cams
