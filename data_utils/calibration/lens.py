"""Lens distortion of points and undistortion maps for images."""
from __future__ import annotations

import numpy as np

from kp3d.cameras import Camera, distort_normalized

from .model import Distortion


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


