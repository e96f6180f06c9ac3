"""Skeleton conventions, the BVH loader (a BVH the test writes, and the shared CMU clip) and motion."""
from pathlib import Path

import numpy as np
import pytest

from data_utils.bodies import SUBJECTS, subject_body
from data_utils.bvh import detect_unit_scale, forward_kinematics, load_bvh_h36m, parse_bvh, read_bvh
from data_utils.motion import JOINT_LIMITS, PARAMS, procedural_motion, standing_motion
from data_utils.skeleton import (H36M_BONES, H36M_FLIP, H36M_JOINTS, H36M_PARENTS, LEFT_JOINTS,
                                 RIGHT_JOINTS, bone_lengths, retarget, root_relative)

SHARED_BVH = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmu_mocap_131_01.bvh"


# ---------------------------------------------------------------- skeleton
def test_skeleton_tables():
    assert len(H36M_JOINTS) == 17 and H36M_JOINTS[0] == "pelvis" and H36M_JOINTS[16] == "r_wrist"
    assert H36M_PARENTS[0] == -1 and all(H36M_PARENTS[c] < c for c in range(1, 17))
    assert len(H36M_BONES) == 16
    assert np.array_equal(H36M_FLIP[H36M_FLIP], np.arange(17))
    for l, r in zip(LEFT_JOINTS, RIGHT_JOINTS):
        assert H36M_FLIP[l] == r and H36M_JOINTS[l][2:] == H36M_JOINTS[r][2:]


def test_retarget_keeps_directions_and_sets_lengths():
    x = np.random.default_rng(0).normal(size=(4, 17, 3)) * 300
    target = np.linspace(50, 450, 16)
    y = retarget(x, target)
    np.testing.assert_allclose(bone_lengths(y), np.broadcast_to(target, (4, 16)), rtol=1e-9)
    np.testing.assert_allclose(y[:, 0], x[:, 0])
    for p, c in H36M_BONES:
        dx, dy = x[:, c] - x[:, p], y[:, c] - y[:, p]
        cos = (dx * dy).sum(-1) / np.linalg.norm(dx, axis=-1) / np.linalg.norm(dy, axis=-1)
        np.testing.assert_allclose(cos, 1.0, atol=1e-9)
    np.testing.assert_allclose(root_relative(y)[:, 0], 0.0)


def test_skeleton_bad_input():
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        bone_lengths(np.zeros((5, 16, 3)))
    with pytest.raises(ValueError, match="one per bone"):
        retarget(np.zeros((17, 3)), np.ones(15))


# ---------------------------------------------------------------- BVH written by the test
NAMES = [("LeftHip", "LeftKnee", "LeftAnkle", 1), ("RightHip", "RightKnee", "RightAnkle", -1)]


def _small_bvh(frames: list[list[float]], unit: float = 1.0, frame_time: float = 0.04) -> str:
    """A CMU-like skeleton (Y up, facing +Z, left = +X) with offsets in cm when unit = 1."""
    u = unit
    lines = ["HIERARCHY", "ROOT Hips", "{", f"OFFSET 0 0 0",
             "CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation"]
    for hip, knee, ankle, s in NAMES:
        lines += [f"JOINT {hip}", "{", f"OFFSET {s * 10 * u} {-5 * u} 0", "CHANNELS 3 Zrotation Yrotation Xrotation",
                  f"JOINT {knee}", "{", f"OFFSET 0 {-42 * u} 0", "CHANNELS 3 Zrotation Yrotation Xrotation",
                  f"JOINT {ankle}", "{", f"OFFSET 0 {-42 * u} 0", "CHANNELS 3 Zrotation Yrotation Xrotation",
                  "End Site", "{", f"OFFSET 0 {-5 * u} {10 * u}", "}", "}", "}", "}"]
    lines += ["JOINT Chest", "{", f"OFFSET 0 {22 * u} 0", "CHANNELS 3 Zrotation Yrotation Xrotation",
              "JOINT Neck", "{", f"OFFSET 0 {25 * u} 0", "CHANNELS 3 Zrotation Yrotation Xrotation",
              "JOINT Head", "{", f"OFFSET 0 {10 * u} 0", "CHANNELS 3 Zrotation Yrotation Xrotation",
              "End Site", "{", f"OFFSET 0 {20 * u} 0", "}", "}", "}"]
    for side, s in (("Left", 1), ("Right", -1)):
        lines += [f"JOINT {side}Shoulder", "{", f"OFFSET {s * 18 * u} {22 * u} 0",
                  "CHANNELS 3 Zrotation Yrotation Xrotation",
                  f"JOINT {side}Elbow", "{", f"OFFSET 0 {-28 * u} 0", "CHANNELS 3 Zrotation Yrotation Xrotation",
                  f"JOINT {side}Wrist", "{", f"OFFSET 0 {-25 * u} 0", "CHANNELS 3 Zrotation Yrotation Xrotation",
                  "End Site", "{", f"OFFSET 0 {-8 * u} 0", "}", "}", "}", "}"]
    lines += ["}", "}"]
    n_ch = 6 + 3 * 15
    lines += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time}"]
    for f in frames:
        row = list(f) + [0.0] * (n_ch - len(f))
        lines.append(" ".join(f"{v:.6f}" for v in row))
    return "\n".join(lines) + "\n"


def test_bvh_parse_and_fk_rest_pose(tmp_path):
    path = tmp_path / "small.bvh"
    path.write_text(_small_bvh([[0, 94, 0, 0, 0, 0], [10, 94, 0, 0, 0, 0]]))
    bvh = read_bvh(path)
    assert bvh.motion.shape == (2, 51) and abs(bvh.fps - 25) < 1e-9
    assert "Head/End" in bvh.names
    pos = forward_kinematics(bvh)
    knee = bvh.names.index("LeftKnee")
    np.testing.assert_allclose(pos[0, knee], [10, 94 - 5 - 42, 0])
    np.testing.assert_allclose(pos[1, knee] - pos[0, knee], [10, 0, 0])  # root translation
    assert detect_unit_scale(bvh)[0] == "cm"
    joints, fps = load_bvh_h36m(path)
    # Y up -> z up: the head is above the pelvis, left hip on +x (facing +Z in the file = -y world)
    assert joints.shape == (2, 17, 3) and fps == 25
    np.testing.assert_allclose(joints[0, 0], [0, 0, 940])
    np.testing.assert_allclose(joints[0, 10] - joints[0, 9], [0, 0, 200])
    np.testing.assert_allclose(joints[0, 4] - joints[0, 0], [100, 0, -50])


def test_bvh_rotation_order_and_units(tmp_path):
    # a 90 degree yaw (about the file's Y) turns the left hip from +X to -Z in the file
    path = tmp_path / "turn.bvh"
    path.write_text(_small_bvh([[0, 0.94, 0, 0, 90, 0]], unit=0.01))
    joints, _ = load_bvh_h36m(path)  # offsets in metres: detected
    assert detect_unit_scale(read_bvh(path))[0] == "m"
    # file (x, y, z) -> world (x, -z, y): file -Z is world +y
    np.testing.assert_allclose(joints[0, 4] - joints[0, 0], [0, 100, -50], atol=1e-6)
    # 90 deg about X at the elbow turns the forearm from file -Y to file -Z, i.e. world +y
    frame = [0, 94, 0, 0, 0, 0] + [0.0] * 45
    le = 6 + 3 * 9 + 3  # channels: root 6, 6 leg joints, chest, neck, head = 9 joints, l_shoulder
    frame[le + 2] = 90.0
    path.write_text(_small_bvh([frame]))
    j, _ = load_bvh_h36m(path, unit="cm")
    np.testing.assert_allclose(j[0, 13] - j[0, 12], [0, 250, 0], atol=1e-6)


def test_bvh_resample(tmp_path):
    path = tmp_path / "long.bvh"
    path.write_text(_small_bvh([[i, 94, 0, 0, 0, 0] for i in range(100)], frame_time=0.01))
    j, fps = load_bvh_h36m(path, fps=25)
    assert fps == 25 and len(j) == 25
    np.testing.assert_allclose(j[1:, 0, 0] - j[:-1, 0, 0], 40.0)  # 4 source frames per sample, cm -> mm


def test_bvh_malformed(tmp_path):
    good = _small_bvh([[0, 94, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="malformed BVH"):
        parse_bvh(good.replace("HIERARCHY", "HIER"))
    with pytest.raises(ValueError, match="frames x 51 channels"):
        parse_bvh(good.replace("Frames: 1", "Frames: 2"))
    with pytest.raises(ValueError, match="malformed BVH"):
        parse_bvh(good[: good.index("MOTION")])
    with pytest.raises(FileNotFoundError):
        read_bvh(tmp_path / "missing.bvh")
    (tmp_path / "noneck.bvh").write_text(good.replace("JOINT Neck", "JOINT Throat"))
    with pytest.raises(ValueError, match="thorax"):
        load_bvh_h36m(tmp_path / "noneck.bvh")


@pytest.mark.skipif(not SHARED_BVH.is_file(), reason=f"shared CMU clip not present at {SHARED_BVH}")
def test_cmu_clip():
    joints, fps = load_bvh_h36m(SHARED_BVH, fps=25)
    assert joints.shape[1:] == (17, 3) and len(joints) > 100 and fps == 25
    L = bone_lengths(joints)
    rigid = [0, 1, 2, 3, 4, 5, 11, 12, 14, 15]  # hips, legs, arms: rigid in the source skeleton
    assert L[:, rigid].std(0).max() < 1.0
    height = joints[:, 10, 2] - np.minimum(joints[:, 3, 2], joints[:, 6, 2])
    assert 1200 < np.median(height) < 2000  # mm, upright
    assert np.all(joints[:, 10, 2] > joints[:, 0, 2])


# ---------------------------------------------------------------- bodies and motion
def test_bodies_differ():
    bodies = [subject_body(s) for s in SUBJECTS]
    assert len({round(b.height) for b in bodies}) == len(SUBJECTS)
    assert len({b.clothing["shirt"].color for b in bodies}) == len(SUBJECTS)
    assert all(1500 < b.height < 2000 for b in bodies)
    with pytest.raises(ValueError, match="S2"):
        subject_body("S2")


def test_procedural_motion_covers_actions_and_respects_limits():
    body = subject_body("S5")
    out = procedural_motion(body, 600, fps=10, seed=3)
    j = out["joints"]
    assert j.shape == (600, 17, 3)
    np.testing.assert_allclose(bone_lengths(j), np.broadcast_to(body.bone_lengths(), (600, 16)), atol=1e-6)
    assert {"walk", "turn", "raise", "bend", "squat", "reach"} <= set(out["action"])
    for p in PARAMS:
        lo, hi = JOINT_LIMITS[p[2:] if p[:2] in ("l_", "r_") else p]
        assert lo - 1e-9 <= out["pose"][p].min() and out["pose"][p].max() <= hi + 1e-9
    # feet on the floor, head above the pelvis
    np.testing.assert_allclose(np.minimum(j[:, 3, 2], j[:, 6, 2]), body.ankle_height, atol=1e-6)
    assert np.all(j[:, 10, 2] > j[:, 0, 2])
    # the person moves over the area: the pelvis covers more than a metre in x and y
    assert np.ptp(j[:, 0, 0]) > 1000 and np.ptp(j[:, 0, 1]) > 1000
    # deterministic
    np.testing.assert_array_equal(procedural_motion(body, 600, fps=10, seed=3)["joints"], j)


def test_motion_stays_on_waypoints_and_standing():
    body = subject_body("S1")
    area = np.array([[x, y] for x in range(-500, 501, 100) for y in range(0, 801, 100)], float)
    j = procedural_motion(body, 300, fps=10, seed=1, waypoints=area)["joints"]
    assert j[:, 0, 0].min() > -650 and j[:, 0, 0].max() < 650 and j[:, 0, 1].min() > -150
    s = standing_motion(body, 50, position=(100.0, 200.0))["joints"]
    assert np.ptp(s[:, 0, :2], axis=0).max() < 1e-9 and np.allclose(s[0, 0, :2], [100, 200])
    with pytest.raises(ValueError, match="waypoints"):
        procedural_motion(body, 10, waypoints=np.zeros((3, 3)))


def test_bvh_clip_in_synthetic_motion(tmp_path):
    """A BVH clip added to the synthetic data set is retargeted onto the subject and put in the area."""
    from data_utils.synthetic import SyntheticConfig, capture_area, subject_cameras, subject_motion

    path = tmp_path / "clip.bvh"
    path.write_text(_small_bvh([[i, 94, 0, 0, 3 * i, 0] for i in range(20)], frame_time=0.1))
    cfg = SyntheticConfig(image_size=64, frames_per_subject=10, subjects=("S5",), bvh_clips=(str(path),)).validate()
    out = subject_motion(cfg, "S5")
    j, body = out["joints"], subject_body("S5")
    assert j.shape == (30, 17, 3) and list(out["action"][10:]) == ["mocap"] * 20
    np.testing.assert_allclose(bone_lengths(j[10:]), np.broadcast_to(body.bone_lengths(), (20, 16)), atol=1e-6)
    area = capture_area(subject_cameras("S5", 64))
    np.testing.assert_allclose(j[10:, 0, :2].mean(0), area.mean(0), atol=1e-6)
    assert np.minimum(j[10:, 3, 2], j[10:, 6, 2]).min() == pytest.approx(body.ankle_height)
    assert cfg.key_params()["bvh_clips"][0]["name"] == "clip.bvh"  # the clip's content is in the cache key
    other = tmp_path / "other.bvh"
    other.write_text(_small_bvh([[0, 94, 0, 0, 0, 0]]))
    assert SyntheticConfig(bvh_clips=(str(other),)).cache_key() != SyntheticConfig(bvh_clips=(str(path),)).cache_key()


def test_motion_leaves_every_floor_spot_free_most_of_the_time():
    """The pelvis stays within 250 mm of any floor point in well under half the frames (median background)."""
    from data_utils.synthetic import capture_area, subject_cameras

    for subject in ("S8", "S11"):
        area = capture_area(subject_cameras(subject, 128))
        j = procedural_motion(subject_body(subject), 480, fps=10, seed=7, waypoints=area)["joints"]
        g = area[::3]
        near = np.linalg.norm(j[None, :, 0, :2] - g[:, None], axis=-1) < 250.0  # (grid, T)
        assert near.mean(1).max() < 0.4, subject
