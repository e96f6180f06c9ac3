"""Tests of data_utils.calibration: anipose/Pose2Sim TOML, OpenCV YAML/JSON, Human3.6M-style JSON."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

pytest.importorskip("cv2")

from kp3d.cameras import Camera, h36m_rig  # noqa: E402

from data_utils.calibration import (CalibrationError, Distortion, detect_format, distort_points,  # noqa: E402
                                    load_calibration, matrix_to_rodrigues, rodrigues_to_matrix,
                                    rotation_to_z_up, undistortion_maps, write_opencv, write_toml)

# what anipose's CameraGroup.dump and Pose2Sim write (sizes as floats, a [metadata] table, metres)
ANIPOSE_TOML = """\
[cam_0]
name = "A"
size = [ 1920.0, 1080.0,]
matrix = [ [ 1400.0, 0.0, 960.0,], [ 0.0, 1400.0, 540.0,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.1, 0.01, 0.0, 0.0, 0.0,]
rotation = [ 1.2091995761561456, 1.2091995761561456, -1.2091995761561456,]
translation = [ 0.0, 1.0, 4.0,]

[cam_1]
name = "B"
size = [ 1080.0, 1920.0,]
matrix = [ [ 1400.0, 0.0, 540.0,], [ 0.0, 1400.0, 960.0,], [ 0.0, 0.0, 1.0,],]
distortions = [ 0.0, 0.0, 0.0, 0.0,]
rotation = [ 0.0, 2.221441469079183, -2.221441469079183,]
translation = [ 0.0, 1.0, 4.0,]
fisheye = false

[metadata]
adjusted = false
error = 0.0
"""


def rig(n=3):
    cams = h36m_rig("S1")[:n]
    return [Camera(c.name, c.K, c.R, c.t, c.width, c.height) for c in cams]


# ---------------------------------------------------------------------------------------------
# round trips (shape and accuracy)
# ---------------------------------------------------------------------------------------------
def test_anipose_toml_as_written_by_anipose(tmp_path, caplog):
    path = tmp_path / "calibration.toml"
    path.write_text(ANIPOSE_TOML)
    with caplog.at_level(logging.INFO, logger="data_utils.calibration"):
        calib = load_calibration(path)
    assert calib.format == "toml" and calib.names == ["A", "B"] and calib.units == "m"
    a, b = calib.cameras
    assert (a.width, a.height, b.width, b.height) == (1920, 1080, 1080, 1920)
    assert calib.distortion["A"].model == "opencv" and calib.distortion["B"] is None  # all-zero: no lens model
    # camera A stands at (4, 0, 1) m, B at (0, 4, 1) m, both look horizontally at the z axis: z up stays
    np.testing.assert_allclose(a.center, [4000, 0, 1000], atol=1e-6)
    np.testing.assert_allclose(b.center, [0, 4000, 1000], atol=1e-6)
    assert not any("up axis" in c for c in calib.conversions)
    assert "metres to millimetres" in caplog.text
    X = np.array([[0.0, 0.0, 1000.0]])  # 1 m above the floor at the origin: image centre column
    assert abs(a.project(X)[0, 0] - 960) < 1e-6


@pytest.mark.parametrize("units", ["m", "mm"])
def test_toml_round_trip(tmp_path, units):
    cams = rig()
    dist = {cams[0].name: Distortion("opencv", [-0.2, 0.05, 0.001, 0.002, -0.01]),
            cams[1].name: Distortion("fisheye", [0.01, -0.002, 0.0, 0.0])}
    write_toml(tmp_path / "c.toml", cams, dist, units=units)
    calib = load_calibration(tmp_path / "c.toml")
    assert calib.units == units
    for c0, c1 in zip(cams, calib.cameras):
        np.testing.assert_allclose(c1.P, c0.P, rtol=1e-9, atol=1e-6)
        assert (c1.width, c1.height, c1.dist) == (c0.width, c0.height, None)
    assert calib.distortion[cams[1].name].model == "fisheye" and calib.distortion[cams[2].name] is None
    np.testing.assert_allclose(calib.distortion[cams[0].name].coeffs, dist[cams[0].name].coeffs)


@pytest.mark.parametrize("suffix,rodrigues", [(".yml", False), (".yaml", True), (".json", False), (".json", True)])
def test_opencv_round_trip(tmp_path, suffix, rodrigues):
    cams = rig(4)
    dist = {cams[2].name: Distortion("opencv", [-0.2, 0.05, 0.001, 0.002])}
    path = tmp_path / f"c{suffix}"
    write_opencv(path, cams, dist, units="mm", rodrigues=rodrigues)
    calib = load_calibration(path)
    assert calib.format == "opencv" and calib.names == [c.name for c in cams]
    for c0, c1 in zip(cams, calib.cameras):
        np.testing.assert_allclose(c1.P, c0.P, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(calib.distortion[cams[2].name].coeffs, [-0.2, 0.05, 0.001, 0.002])


def test_opencv_yaml_written_by_hand_with_cameras_by_name(tmp_path):
    path = tmp_path / "rig.yaml"
    path.write_text("%YAML:1.0\n---\n"
                    "left:\n  camera_matrix: !!opencv-matrix\n    rows: 3\n    cols: 3\n    dt: d\n"
                    "    data: [ 500., 0., 320., 0., 500., 240., 0., 0., 1. ]\n"
                    "  distortion_coefficients: [ -0.1, 0.01, 0., 0., 0. ]\n"
                    "  rvec: [ 0., 0., 0. ]\n  tvec: [ 0., 0., 3000. ]\n  image_width: 640\n  image_height: 480\n"
                    "right:\n  K: [ [ 500., 0., 320. ], [ 0., 500., 240. ], [ 0., 0., 1. ] ]\n"
                    "  R: [ 1., 0., 0., 0., 1., 0., 0., 0., 1. ]\n  T: [ -500., 0., 3000. ]\n  size: [ 640, 480 ]\n")
    calib = load_calibration(path, up_axis="z")
    assert calib.names == ["left", "right"] and calib.units == "mm"
    np.testing.assert_allclose(calib.camera("right").t, [-500, 0, 3000])
    assert calib.distortion["right"] is None and calib.distortion["left"].coeffs.size == 5


def test_h36m_json_matches_the_embedded_rig():
    from pathlib import Path

    import kp3d

    path = Path(kp3d.__file__).parent / "data" / "h36m_cameras.json"
    assert detect_format(path) == "h36m"
    for subject in ("S1", "S9"):
        calib = load_calibration(path, subject=subject)
        assert calib.units == "mm" and np.allclose(calib.world_rotation, np.eye(3))  # already z up
        for c0, c1 in zip(h36m_rig(subject), calib.cameras):
            assert c0.name == c1.name and (c0.width, c0.height) == (c1.width, c1.height)
            np.testing.assert_allclose(c1.P, c0.P, atol=1e-6)
            d = calib.distortion[c1.name]
            assert d.model == "h36m"
            # the kept lens model is Human3.6M's: it distorts exactly like kp3d.cameras
            X = np.array([[300.0, -200.0, 1200.0], [-500, 400, 200]])
            np.testing.assert_allclose(distort_points(c1, d, c1.project(X)), c0.project_distorted(X), atol=1e-9)
    with pytest.raises(CalibrationError, match="no subject 'S3'"):
        load_calibration(path, subject="S3")


def test_rodrigues_round_trip():
    rng = np.random.default_rng(0)
    import cv2

    for theta in (0.0, 1e-9, 0.3, 2.0, np.pi - 1e-6, np.pi):
        axis = rng.normal(size=3)
        r = axis / np.linalg.norm(axis) * theta
        R = rodrigues_to_matrix(r)
        np.testing.assert_allclose(R, cv2.Rodrigues(r)[0], atol=1e-9)
        np.testing.assert_allclose(rodrigues_to_matrix(matrix_to_rodrigues(R)), R, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# conversions: units and up axis
# ---------------------------------------------------------------------------------------------
def test_units_auto_and_forced(tmp_path):
    cams = rig()
    write_toml(tmp_path / "m.toml", cams, units="m")
    write_toml(tmp_path / "mm.toml", cams, units="mm")
    assert load_calibration(tmp_path / "m.toml").units == "m"
    assert load_calibration(tmp_path / "mm.toml").units == "mm"
    forced = load_calibration(tmp_path / "mm.toml", units="m")  # wrong on purpose: 1000x too far
    np.testing.assert_allclose(forced.cameras[0].t, cams[0].t * 1000, rtol=1e-9)
    with pytest.raises(CalibrationError, match="units"):
        load_calibration(tmp_path / "m.toml", units="cm")


@pytest.mark.parametrize("file_up", ["y", "-y", "x", "-z"])
def test_up_axis_is_detected_and_rotated_to_z(tmp_path, file_up):
    cams = rig(4)
    A = rotation_to_z_up({"y": [0, 1, 0], "-y": [0, -1, 0], "x": [1, 0, 0], "-z": [0, 0, -1]}[file_up])
    # the file's world: x_file = A^T x_kp3d, so its up axis is file_up
    moved = [Camera(c.name, c.K, c.R @ A, c.t, c.width, c.height) for c in cams]
    write_opencv(tmp_path / "c.json", moved, units="m")
    calib = load_calibration(tmp_path / "c.json")
    assert any(f"file's {file_up} axis" in c for c in calib.conversions)
    for c in calib.cameras:  # upright cameras again
        assert (c.R.T @ [0, -1, 0])[2] > 0.9
    X_file = np.random.default_rng(0).normal(size=(5, 3))  # metres, the file's frame
    for c0, c1 in zip(moved, calib.cameras):  # same pixels before and after the conversion
        np.testing.assert_allclose(c1.project(calib.points_to_world(X_file)), c0.project(X_file * 1000), atol=1e-6)
    kept = load_calibration(tmp_path / "c.json", up_axis="z")
    assert np.allclose(kept.world_rotation, np.eye(3))
    forced = load_calibration(tmp_path / "c.json", up_axis=file_up)
    np.testing.assert_allclose(forced.world_rotation, calib.world_rotation, atol=1e-9)


def test_unclear_up_axis_warns(tmp_path, caplog):
    cams = rig(2)
    tilt = rodrigues_to_matrix([0.0, 0.0, 0.0]) @ rodrigues_to_matrix(np.array([1.0, 1.0, 0.0]) * 0.6)
    moved = [Camera(c.name, c.K, c.R @ tilt, c.t, c.width, c.height) for c in cams]
    write_opencv(tmp_path / "c.yml", moved)
    with caplog.at_level(logging.WARNING):
        calib = load_calibration(tmp_path / "c.yml")
    assert "cannot tell the world's up axis" in caplog.text and np.allclose(calib.world_rotation, np.eye(3))


# ---------------------------------------------------------------------------------------------
# lens models
# ---------------------------------------------------------------------------------------------
def test_undistortion_maps_invert_the_lens():
    import cv2

    cam = rig(1)[0].resized(200, 160)
    d = Distortion("opencv", [-0.25, 0.07, 0.001, -0.002, 0.0])
    map_x, map_y = undistortion_maps(cam, d)
    assert map_x.shape == (160, 200) and map_x.dtype == np.float32
    # a pinhole pixel's map entry is where the lens puts it; OpenCV's own inverse brings it back
    for u, v in [(10, 12), (100, 80), (190, 150)]:
        src = np.array([[[map_x[v, u], map_y[v, u]]]], dtype=np.float64)
        back = cv2.undistortPoints(src, cam.K, d.coeffs, P=cam.K).reshape(2)
        np.testing.assert_allclose(back, [u, v], atol=1e-3)
    assert undistortion_maps(cam, None) is None
    fish = Distortion("fisheye", [0.05, 0.01, 0.0, 0.0])
    x = np.array([[20.0, 30.0], [150.0, 100.0]])
    xd = distort_points(cam, fish, x)
    back = cv2.fisheye.undistortPoints(xd.reshape(-1, 1, 2), cam.K, fish.coeffs, P=cam.K).reshape(-1, 2)
    np.testing.assert_allclose(back, x, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def _toml_with(tmp_path, old: str, new: str):
    path = tmp_path / "bad.toml"
    path.write_text(ANIPOSE_TOML.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old,new,match", [
    ("translation = [ 0.0, 1.0, 4.0,]", "translation = [ nan, 1.0, 4.0,]", r"\[cam_0\]\.t: contains non-finite"),
    ("distortions = [ -0.1,", "distortions = [ inf,", r"\[cam_0\]\.dist: contains non-finite"),
    ("[ 0.0, 1400.0, 540.0,]", "[ 0.0, nan, 540.0,]", r"\[cam_0\]\.K: contains non-finite"),
    ("rotation = [ 1.2091995761561456, 1.2091995761561456, -1.2091995761561456,]\n", "", "missing field 'R'"),
    ('size = [ 1920.0, 1080.0,]\n', "", "missing the image size"),
    ("translation = [ 0.0, 1.0, 4.0,]", "translation = [ 0.0, 1.0,]", r"\.t: expected 3 numbers"),
    ("matrix = [ [ 1400.0,", "matrix = [ [ -1400.0,", "focal lengths must be positive"),
    ('name = "B"', 'name = "A"', "unique"),
    ("distortions = [ -0.1, 0.01, 0.0, 0.0, 0.0,]", "distortions = [ -0.1, 0.01, 0.0,]", "4, 5, 8, 12 or 14"),
])
def test_bad_toml_gives_clear_errors(tmp_path, old, new, match):
    with pytest.raises(CalibrationError, match=match):
        load_calibration(_toml_with(tmp_path, old, new))


def test_bad_files(tmp_path):
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(CalibrationError, match="unknown calibration format"):
        load_calibration(tmp_path / "c.txt")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_calibration(tmp_path / "nope.toml")
    (tmp_path / "empty.toml").write_text("[metadata]\nerror = 0.0\n")
    with pytest.raises(CalibrationError, match="no camera tables"):
        load_calibration(tmp_path / "empty.toml")
    (tmp_path / "broken.toml").write_text("[cam_1\n")
    with pytest.raises(CalibrationError, match="not valid TOML"):
        load_calibration(tmp_path / "broken.toml")
    cams = rig(2)
    write_opencv(tmp_path / "c.json", cams)
    data = json.loads((tmp_path / "c.json").read_text())
    data["cameras"][1]["R"] = [[1, 0, 0], [0, 1, 0], [0, 0, 2]]
    (tmp_path / "notrot.json").write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="not a rotation matrix"):
        load_calibration(tmp_path / "notrot.json")
    data["cameras"][1]["R"] = [0.1, float("nan"), 0.0]
    (tmp_path / "nan.json").write_text(json.dumps(data))  # json writes NaN, as numpy users do
    with pytest.raises(CalibrationError, match="non-finite"):
        load_calibration(tmp_path / "nan.json")
    with pytest.raises(CalibrationError, match="up_axis"):
        load_calibration(tmp_path / "c.json", up_axis="up")


def test_writers_refuse_to_overwrite_and_h36m_model(tmp_path):
    cams = rig(2)
    write_toml(tmp_path / "c.toml", cams)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_toml(tmp_path / "c.toml", cams)
    write_toml(tmp_path / "c.toml", cams, overwrite=True)
    with pytest.raises(ValueError, match="Human3.6M model"):
        write_opencv(tmp_path / "h.yml", cams, {cams[0].name: Distortion("h36m", [0.1, 0, 0, 0, 0])})
    with pytest.raises(CalibrationError, match="coefficients"):
        Distortion("fisheye", [0.1, 0.2])
