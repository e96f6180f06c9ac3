"""Tests for kp3d.cameras: the embedded Human3.6M rig, distortion, resizing, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kp3d.cameras import H36M_CAMERA_IDS, H36M_SUBJECTS, Camera, h36m_rig, to_tensors

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_rig_shapes_and_ids():
    for subject in H36M_SUBJECTS:
        cams = h36m_rig(subject)
        assert [c.name for c in cams] == list(H36M_CAMERA_IDS)
        for c in cams:
            assert c.P.shape == (3, 4) and c.dist.shape == (5,)
    t = to_tensors(h36m_rig("S1", 64, 64))
    assert t["K"].shape == (4, 3, 3) and t["P"].shape == (4, 3, 4) and t["t"].shape == (4, 3)
    assert t["P"].dtype == torch.float32


def test_centres_match_the_released_numbers():
    """C = -R^T t reproduces the camera centres stored with the calibration (to 1 mm)."""
    data = json.loads((Path(__file__).resolve().parents[1] / "kp3d" / "data" / "h36m_cameras.json").read_text())
    for subject in H36M_SUBJECTS:
        for cam, ext in zip(h36m_rig(subject), data["subjects"][subject]):
            assert np.allclose(cam.center, ext["camera_center_world_mm"], atol=1.0)
            # cameras are about 5 m from the capture area and 1.5 m up (world z up)
            assert 4000 < np.linalg.norm(cam.center[:2]) < 7000 and 1000 < cam.center[2] < 2000


@pytest.mark.skipif(not (SHARED / "h36m_cameras.json").exists(), reason="../shared/data is not beside this checkout")
def test_embedded_data_equals_shared_numbers():
    embedded = (Path(__file__).resolve().parents[1] / "kp3d" / "data" / "h36m_cameras.json").read_text()
    assert json.loads(embedded) == json.loads((SHARED / "h36m_cameras.json").read_text())


def test_cameras_look_at_the_capture_area():
    X = np.array([[0.0, 0.0, 900.0]])  # a pelvis at the world origin
    for subject in H36M_SUBJECTS:
        for cam in h36m_rig(subject):
            Xc = cam.world_to_camera(X)
            assert Xc[0, 2] > 3000  # in front of the camera
            u, v = cam.project(X)[0]
            assert 0 < u < cam.width and 0 < v < cam.height


def test_distortion_round_trip():
    cam = h36m_rig("S9")[2]
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(-1500, 1500, 200), rng.uniform(-1500, 1500, 200), rng.uniform(0, 2000, 200)])
    xd = cam.project_distorted(X)
    x = cam.project(X)
    assert np.abs(xd - x).max() > 1.0  # distortion is not negligible at the native resolution
    assert np.abs(cam.undistort_points(xd) - x).max() < 1e-6
    assert np.allclose(cam.without_distortion().project_distorted(X), x)


def test_distortion_formula_by_hand():
    """One point through the Human3.6M model computed by hand."""
    cam = Camera("c", np.diag([100.0, 100.0, 1.0]), np.eye(3), np.zeros(3), 200, 200, dist=[0.1, 0.01, 0.0, 0.001, 0.002])
    x, y = 0.3, -0.2
    r2 = x * x + y * y
    radial = 1 + 0.1 * r2 + 0.01 * r2 * r2
    tan = 0.001 * x + 0.002 * y
    expect = [100 * (x * (radial + tan) + 0.001 * r2), 100 * (y * (radial + tan) + 0.002 * r2)]
    assert np.allclose(cam.project_distorted([[x, y, 1.0]])[0], expect)


def test_resized_matches_scaled_pixels():
    """Projecting with the resized K equals scaling native pixels with the pixel-centre convention."""
    cam = h36m_rig("S1")[0]  # 1000 x 1002
    small = cam.resized(128, 96)
    X = np.array([[100.0, -200.0, 1000.0], [-400.0, 300.0, 200.0]])
    x = cam.project(X)
    expect = (x + 0.5) * [128 / 1000, 96 / 1002] - 0.5
    assert np.allclose(small.project(X), expect)
    assert (small.width, small.height) == (128, 96)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown Human3.6M subject 'S2'"):
        h36m_rig("S2")
    with pytest.raises(ValueError, match="both width and height"):
        h36m_rig("S1", width=64)
    with pytest.raises(ValueError, match=r"Camera.K must have shape \(3, 3\)"):
        Camera("c", np.eye(2), np.eye(3), np.zeros(3), 10, 10)
    with pytest.raises(ValueError, match="not a rotation"):
        Camera("c", np.eye(3), 2 * np.eye(3), np.zeros(3), 10, 10)
    with pytest.raises(ValueError, match="non-finite"):
        Camera("c", np.eye(3), np.eye(3), [0, np.nan, 0], 10, 10)
    with pytest.raises(ValueError, match="positive"):
        h36m_rig("S1")[0].resized(0, 10)
