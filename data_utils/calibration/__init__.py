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

from .lens import distort_points, undistortion_maps
from .model import DISTORTION_MODELS, FORMATS, METRES_BELOW, UP_AXES, Calibration, CalibrationError, Distortion, matrix_to_rodrigues, rodrigues_to_matrix
from .normalise import load_calibration, rotation_to_z_up
from .readers import detect_format
from .writers import write_opencv, write_toml

__all__ = ["Calibration", "CalibrationError", "DISTORTION_MODELS", "Distortion", "FORMATS", "METRES_BELOW", "UP_AXES",
           "detect_format", "distort_points", "load_calibration", "matrix_to_rodrigues", "rodrigues_to_matrix",
           "rotation_to_z_up", "undistortion_maps", "write_opencv", "write_toml"]
