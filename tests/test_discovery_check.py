"""kp3d.discovery_check: the recipe bar passes for keypoints on the joints and fails for a collapse."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kp3d.cameras import h36m_rig
from kp3d.discovery_check import check_discovery, format_report
from kp3d.probes import probe_config


def fake_export(collapse: bool, T: int = 240, seed: int = 0) -> dict:
    """Keypoints = the 17 GT joints (or all on the pelvis), a person walking around, 4 views of S1."""
    rng = np.random.default_rng(seed)
    cams = h36m_rig("S1", 128, 128)
    base = np.array([[0, 0, 900], [-120, 0, 900], [-120, 0, 480], [-120, 0, 60], [120, 0, 900], [120, 0, 480],
                     [120, 0, 60], [0, 0, 1150], [0, 0, 1400], [0, 0, 1520], [0, 0, 1680], [190, 0, 1380],
                     [190, 0, 1100], [190, 0, 850], [-190, 0, 1380], [-190, 0, 1100], [-190, 0, 850]], float)
    joints = []
    for _ in range(T):
        j = base.copy()
        lift = rng.uniform(0, 700, 2)  # arms raised by a random amount: pose variation to probe
        j[[12, 13], 2] += lift[0] * np.array([0.6, 1.2])
        j[[15, 16], 2] += lift[1] * np.array([0.6, 1.2])
        j[:, :2] += rng.uniform(-600, 600, 2)
        joints.append(j)
    joints = np.stack(joints)
    kp3d = np.repeat(joints[:, :1], 17, 1) + rng.normal(0, 0.5, (T, 17, 3)) if collapse else joints.copy()
    j2d = np.stack([np.stack([c.project(j) for c in cams]) for j in joints])
    kp2d = np.stack([np.stack([c.project(k) for c in cams]) for k in kp3d])
    boxes = np.tile([0.5, 0.5, 0.0, 0.0], (T, 4, 1))
    return {
        "kp3d": kp3d.astype(np.float32), "kp2d": kp2d.astype(np.float32), "kp2d_reproj": kp2d.astype(np.float32),
        "gt_joints_3d": joints.astype(np.float32), "gt_joints_2d": j2d.astype(np.float32),
        "boxes": boxes.astype(np.float32), "latent": rng.normal(size=(T, 4, 8)).astype(np.float32),
        "kp_reproj_in_gt_mask": np.ones((T, 4, 17), np.uint8),
        "split": np.array(["train"] * (T * 3 // 4) + ["test"] * (T - T * 3 // 4)),
        "config_json": np.asarray(json.dumps({"profile": "smoke", "image_size": 128, "patch_size": 64})),
    }


@pytest.fixture(scope="module")
def cfg():
    return probe_config("smoke", hidden=64, epochs=60)


def test_keypoints_on_the_joints_pass(cfg):
    res = check_discovery(fake_export(False), latent_export=fake_export(False, seed=0) | {"latent": fake_export(False)["latent"]},
                          probe_cfg=cfg)
    g = res["geometry"]
    assert g["spread_ratio"] > 0.2 and g["close_pair_frac"] < 0.5
    assert all(v == 1.0 for v in g["limb_reach"].values())
    assert res["probes"]["ridge_ratio"] < 0.1  # the joints are the keypoints: a linear map is exact
    assert res["passed"]["spread"] and res["passed"]["limbs"] and res["passed"]["ridge"] and res["passed"]["latent"]
    assert "passed:" in format_report(res)


def test_collapse_fails(cfg):
    res = check_discovery(fake_export(True), probe_cfg=cfg)
    assert res["geometry"]["close_pair_frac"] > 0.9
    assert not res["passed"]["spread"] and not res["passed"]["no_close_pairs"] and not res["passed"]["limbs"]
    assert not res["passed"]["ridge"]


def test_unlabelled_export_is_refused():
    ex = fake_export(False)
    ex.pop("gt_joints_2d")
    with pytest.raises(ValueError, match="no gt_joints_2d"):
        check_discovery(ex, with_probes=False)


def test_pose_tracking_tells_followers_from_noise(cfg):
    """Keypoints that are the joints follow them exactly (R^2 = 1); keypoints at random places do not."""
    from kp3d.discovery_check import pose_tracking, symmetric_reference

    ex = fake_export(False)
    t = pose_tracking(ex, cfg)
    moving = [12, 13, 15, 16]  # the arms; the other joints of the fake poses are fixed to the pelvis
    assert len(t["r2"]) == 17 and min(t["r2"][i] for i in moving) > 0.99 and max(t["resid_mm"]) < 1.0
    assert np.isnan(t["r2"][3]) and t["median_r2"] > 0.99
    rng = np.random.default_rng(1)
    noisy = ex | {"kp3d": ex["gt_joints_3d"][:, :1] + rng.normal(0, 200, ex["kp3d"].shape).astype(np.float32)}
    tn = pose_tracking(noisy, cfg)
    assert max(tn["r2"]) < 0.2 and min(tn["resid_mm"]) > 200
    # the reference is a property of the GT poses alone
    assert tn["reference_ridge"] == t["reference_ridge"]
    ref = symmetric_reference(ex["gt_joints_3d"])
    assert ref.shape == (len(ex["kp3d"]), 9, 3)
    np.testing.assert_allclose(ref[:, 5], 0.5 * (ex["gt_joints_3d"][:, 2] + ex["gt_joints_3d"][:, 5]), rtol=1e-6)
    with pytest.raises(ValueError, match=r"expected shape \(T, 17, 3\)"):
        symmetric_reference(np.zeros((4, 16, 3)))
