"""Geometry of a rig's image pipeline: a recording at another size than its calibration, then the
undistorted frame fitted into the model's square (:mod:`data_utils.rig`).
"""
from __future__ import annotations

import numpy as np

from kp3d.cameras import Camera

FITS = ("pad", "stretch")
CROP_EDGES = ("centre", "start", "end")  # where a recording's extra or missing pixels are (recorded_camera)
MAX_CROP_PAD = 0.02  # a recording may differ from its calibration by a crop/pad of this share


# ---------------------------------------------------------------------------------------------
def fit_camera(camera: Camera, size: int, fit: str = "pad") -> tuple[Camera, tuple[int, int, int, int]]:
    """The pinhole camera of an image fitted into ``size x size``.

    Returns:
        (camera at size x size, (w, h, left, top)): the image is resized to w x h and pasted at
        column ``left``, row ``top`` (zeros around it for ``fit="pad"``).
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if int(size) < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {size}")
    if fit == "stretch":
        return camera.resized(size, size), (size, size, 0, 0)
    s = size / max(camera.width, camera.height)
    w, h = max(1, round(camera.width * s)), max(1, round(camera.height * s))
    left, top = (size - w) // 2, (size - h) // 2
    cam = camera.resized(w, h)
    K = cam.K.copy()
    K[0, 2] += left
    K[1, 2] += top
    return Camera(name=cam.name, K=K, R=cam.R, t=cam.t, width=size, height=size), (w, h, left, top)


def recorded_camera(camera: Camera, width: int, height: int, edge: str = "centre") -> tuple[Camera, str] | None:
    """The calibrated ``camera`` for a recording of ``width x height`` pixels, as a camera makes it.

    A sensor mode or encoder changes the resolution by a uniform scale ``s`` and then crops or pads
    the image (e.g. 1920x1088 calibrated, 1920x1080 encoded: 8 rows cut). So ``f' = s f`` on both
    axes and ``c' = (c + 0.5) s - 0.5 + o``, where ``o`` is what was added before the first row
    (column): half the difference for ``edge="centre"`` (a centred crop, as ffmpeg's crop filter
    and sensor windows do), all of it for ``"start"`` (the top/left edge), none for ``"end"``
    (bottom/right: where H.264 and HEVC pad a size up to their 16-pixel blocks). The default is
    the centre because the edge is rarely known: whichever edge was cut, the principal point is
    then at most half the difference off (4 px for 1088 -> 1080), against the whole of it for a
    wrong edge. The lens model, in normalised coordinates, stays valid. ``s`` comes from the axis
    that leaves the fewer pixels to crop/pad on the other one.

    Returns:
        (camera at width x height, what was done, for the log), or None when no uniform scale plus a
        crop/pad of at most ``MAX_CROP_PAD`` of the image explains the recording's size.
    """
    if edge not in CROP_EDGES:
        raise ValueError(f"crop_edge={edge!r}: expected one of {', '.join(CROP_EDGES)}")
    W, H = int(width), int(height)
    best = None
    for s in (W / camera.width, H / camera.height):
        diff = (W - s * camera.width, H - s * camera.height)  # px added in all (< 0: cut)
        pixels = max(abs(diff[0]), abs(diff[1]))  # the fewest pixels cut or added wins
        if best is None or pixels < best[2]:
            best = (s, diff, pixels)
    s, diff, _ = best
    if max(abs(diff[0]) / W, abs(diff[1]) / H) > MAX_CROP_PAD + 1e-9:
        return None
    share = {"centre": 0.5, "start": 1.0, "end": 0.0}[edge]
    K = camera.K.copy()
    K[0, 0] *= s
    K[0, 1] *= s
    K[1, 1] *= s
    K[0, 2] = (K[0, 2] + 0.5) * s - 0.5 + share * diff[0]
    K[1, 2] = (K[1, 2] + 0.5) * s - 0.5 + share * diff[1]
    what = f"scaled x{s:.4g}" if abs(s - 1) > 1e-12 else "same scale"
    where = {"centre": "on each side", "start": "at the {} edge", "end": "at the {} edge"}[edge]
    for axis, d, first, last in zip(("columns", "rows"), diff, ("left", "top"), ("right", "bottom")):
        if abs(d) > 1e-9:
            n = abs(d) / 2 if edge == "centre" else abs(d)
            what += (f", {n:g} {axis} {'padded' if d > 0 else 'cropped'} "
                     + where.format(first if edge == "start" else last))
    return Camera(name=camera.name, K=K, R=camera.R, t=camera.t, width=W, height=H), what


def _prepare(img: np.ndarray, maps, placement: tuple[int, int, int, int], size: int) -> np.ndarray:
    """(H, W, 3) uint8 raw frame -> (size, size, 3) uint8 undistorted and fitted frame."""
    import cv2  # lazy: OpenCV is loaded only where a lens is undistorted or a video written

    if maps is not None:
        img = cv2.remap(img, maps[0], maps[1], interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    w, h, left, top = placement
    interp = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_LINEAR  # area averaging avoids aliasing
    small = cv2.resize(img, (w, h), interpolation=interp)
    if (w, h) == (size, size):
        return small
    out = np.zeros((size, size, 3), np.uint8)
    out[top:top + h, left:left + w] = small
    return out
