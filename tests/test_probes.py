"""Tests of kp3d.probes: linear / MLP probes, label-fraction sweep, 3D metrics, the 2D evaluation."""
import numpy as np
import pytest
import torch

from kp3d import metrics
from kp3d.probes import (
    LinearProbe,
    MLPProbe,
    ProbeConfig,
    fit_probe,
    keypoint_features,
    label_fraction_sweep,
    pose_errors,
    pose_targets,
    probe_2d,
    probe_config,
    subset_indices,
)

torch.set_num_threads(1)


def _rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


# ---------------------------------------------------------------- shapes
def test_features_and_targets_shapes_and_frames():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(5, 7, 3)) * 100 + 1000.0
    x = keypoint_features(kp)
    assert x.shape == (5, 21)
    np.testing.assert_allclose(x.reshape(5, 7, 3).mean(axis=1), 0.0, atol=1e-9)  # centred per frame
    joints = rng.normal(size=(5, 17, 3)) * 100
    y = pose_targets(joints)
    assert y.shape == (5, 51)
    np.testing.assert_allclose(y.reshape(5, 17, 3)[:, 0], 0.0)  # pelvis at the origin
    np.testing.assert_allclose(y.reshape(5, 17, 3)[:, 3], joints[:, 3] - joints[:, 0])
    # torch input works too
    assert keypoint_features(torch.as_tensor(kp)).shape == (5, 21)


def test_sweep_rows_and_subset_sizes():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(200, 9)), rng.normal(size=(9, 51))
    y = x @ w
    fr = (0.05, 0.5, 1.0)
    rows = label_fraction_sweep(x[:150], y[:150], x[150:], y[150:], fr, kinds=("linear", "mlp"),
                                cfg=ProbeConfig(hidden=16, epochs=2, patience=0), progress=False)
    assert len(rows) == 6
    assert [r["probe"] for r in rows] == ["linear"] * 3 + ["mlp"] * 3
    assert [r["n_train"] for r in rows[:3]] == [8, 75, 150]
    assert {"mpjpe", "n_mpjpe", "p_mpjpe", "fraction", "features"} <= set(rows[0])
    assert subset_indices(1000, 0.01).shape == (10,)
    assert subset_indices(10, 0.01).shape == (2,)  # at least min_frames
    np.testing.assert_array_equal(subset_indices(50, 0.3, seed=3), subset_indices(50, 0.3, seed=3))


def test_probe_config_profiles():
    assert probe_config("paper-h36m").hidden == 2048
    assert probe_config("paper-h36m").dropout == 0.5 and probe_config("paper-h36m").batch_size == 256
    assert probe_config("smoke", hidden=8).hidden == 8
    with pytest.raises(ValueError, match="unknown profile"):
        probe_config("nope")


# ---------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"kp3d: expected shape \(T, N, 3\)"):
        keypoint_features(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="joints_3d"):
        pose_targets(np.zeros((4, 16, 3)))
    with pytest.raises(ValueError, match="different frame counts"):
        LinearProbe().fit(np.zeros((5, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        LinearProbe().fit(np.full((5, 3), np.nan), np.zeros((5, 2)))
    with pytest.raises(RuntimeError, match="before fit"):
        LinearProbe().predict(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="before fit"):
        MLPProbe().predict(np.zeros((2, 3)))
    probe = LinearProbe().fit(np.random.default_rng(0).normal(size=(10, 3)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"expected shape \(T, 3\)"):
        probe.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="unknown probe kind"):
        fit_probe(np.zeros((5, 3)), np.zeros((5, 2)), kind="svm")
    with pytest.raises(ValueError, match="fraction"):
        subset_indices(10, 0.0)
    with pytest.raises(ValueError, match="kp2d_train"):
        probe_2d(np.zeros((3, 2, 4)), np.zeros((3, 2, 17, 2)), np.zeros((3, 2, 4, 2)), np.zeros((3, 2, 17, 2)), (64, 64))


# ---------------------------------------------------------------- accuracy
def test_linear_probe_recovers_a_known_linear_map_exactly():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(24, 51)), rng.normal(size=51) * 50
    x = rng.normal(size=(300, 24)) * 80 + 500  # mm-like scale and offset
    probe = LinearProbe(alpha=0.0).fit(x, x @ w + b)
    np.testing.assert_allclose(probe.weight, w, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(probe.bias, b, rtol=1e-7, atol=1e-6)
    x_new = rng.normal(size=(50, 24)) * 80 + 500
    np.testing.assert_allclose(probe.predict(x_new), x_new @ w + b, rtol=1e-8, atol=1e-6)
    # a tiny ridge penalty stays close; a large one does not (the penalty is really applied)
    err_small = np.abs(LinearProbe(1e-8).fit(x, x @ w + b).predict(x_new) - (x_new @ w + b)).max()
    err_big = np.abs(LinearProbe(10.0).fit(x, x @ w + b).predict(x_new) - (x_new @ w + b)).max()
    assert err_small < 1e-3 < err_big


def test_linear_probe_on_keypoints_gives_zero_pose_error():
    """Keypoints that are a linear function of the pose: a linear probe recovers the joints exactly."""
    rng = np.random.default_rng(2)
    joints = rng.normal(size=(400, 17, 3)) * 200
    mix = rng.normal(size=(17, 20))  # each keypoint a fixed mix of joints
    kp = np.einsum("tjc,jn->tnc", joints, mix) + rng.normal(size=(400, 1, 3)) * 1000  # + a per-frame shift
    x, y = keypoint_features(kp), pose_targets(joints)
    probe = LinearProbe(0.0).fit(x[:300], y[:300])
    err = pose_errors(probe.predict(x[300:]), y[300:])
    assert err["mpjpe"] < 1e-6 and err["p_mpjpe"] < 1e-6


def test_mlp_probe_learns_a_nonlinear_map():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(600, 3))
    y = np.stack([x[:, 0] ** 2, np.abs(x[:, 1]), np.sin(2 * x[:, 2])], axis=1)
    cfg = ProbeConfig(hidden=64, lr=3e-3, epochs=150, dropout=0.0, patience=0, batch_size=64)
    mlp = MLPProbe(cfg).fit(x[:500], y[:500])
    lin = LinearProbe(0.0).fit(x[:500], y[:500])
    mse_mlp = ((mlp.predict(x[500:]) - y[500:]) ** 2).mean()
    mse_lin = ((lin.predict(x[500:]) - y[500:]) ** 2).mean()
    assert mse_mlp < 0.05 < mse_lin
    assert mse_mlp < 0.1 * mse_lin
    # paper architecture: 2 hidden layers, ReLU, dropout
    kinds = [type(m).__name__ for m in MLPProbe(ProbeConfig(hidden=8, epochs=1)).fit(x[:20], y[:20]).net]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def test_mlp_early_stopping_keeps_history():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    cfg = ProbeConfig(hidden=16, epochs=500, patience=3, lr=1e-2, val_fraction=0.2)
    probe = MLPProbe(cfg).fit(x, x[:, :2] * 3)
    assert len(probe.history) < 500 and "val_mse" in probe.history[-1]


# ---------------------------------------------------------------- metrics via kp3d.metrics
def test_pose_errors_match_kp3d_metrics_and_invariances():
    rng = np.random.default_rng(3)
    gt = rng.normal(size=(20, 17, 3)) * 200
    gt -= gt[:, :1]
    shift = gt + np.array([30.0, 40.0, 0.0])
    e = pose_errors(shift.reshape(20, -1), gt.reshape(20, -1))  # flattened input works
    assert e["mpjpe"] == pytest.approx(50.0)
    assert e["p_mpjpe"] == pytest.approx(0.0, abs=1e-8)  # Procrustes removes the translation
    scaled = pose_errors(1.7 * gt, gt)
    assert scaled["mpjpe"] > 10 and scaled["n_mpjpe"] == pytest.approx(0.0, abs=1e-8)
    rot = gt @ _rotation(0).T * 0.8
    r = pose_errors(rot, gt)
    assert r["p_mpjpe"] == pytest.approx(0.0, abs=1e-6) and r["n_mpjpe"] > 10
    noisy = gt + rng.normal(size=gt.shape) * 10
    e = pose_errors(noisy, gt)
    assert e["mpjpe"] == pytest.approx(metrics.mpjpe(noisy, gt))
    assert e["n_mpjpe"] == pytest.approx(metrics.n_mpjpe(noisy, gt))
    assert e["p_mpjpe"] == pytest.approx(metrics.p_mpjpe(noisy, gt))
    assert e["p_mpjpe"] <= e["n_mpjpe"] <= e["mpjpe"] + 1e-9


# ---------------------------------------------------------------- 2D evaluation (Table 3)
def test_probe_2d_percent_of_image_size():
    rng = np.random.default_rng(4)
    T, V, N = 60, 2, 10
    kp = rng.uniform(0, 128, size=(T, V, N, 2))
    a = rng.normal(size=(2 * N, 34)) * 0.1
    joints = (kp.reshape(T, V, -1) @ a).reshape(T, V, 17, 2) + 5.0
    r = probe_2d(kp[:40], joints[:40], kp[40:], joints[40:], image_size=(128, 128))
    assert r["pct_mse"] < 1e-8 and r["n_train"] == 80 and r["n_test"] == 40
    # a constant error of (3.2, 0) px on a 128 x 64 (H x W) image is 5 % of the width
    r = probe_2d(kp[:40], joints[:40], kp[40:], joints[40:] + np.array([3.2, 0.0]), image_size=(128, 64))
    assert r["pct_mse"] == pytest.approx(5.0, rel=1e-6)
    assert r["pct_mse_sq"] == pytest.approx(100 * 0.05 ** 2, rel=1e-6)


def test_ridge_selection_on_held_out_frames():
    from kp3d.probes import select_ridge

    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 10))
    exact = select_ridge(x, x @ rng.normal(size=(10, 3)))
    assert exact.alpha == 1e-6  # a noiseless linear map: the smallest penalty wins
    # 40 frames, 30 noisy near-collinear features, targets from one of them: a large penalty wins
    base = rng.normal(size=(40, 1))
    xs = base + rng.normal(size=(40, 30)) * 0.05
    ys = base * 100 + rng.normal(size=(40, 1)) * 20
    assert select_ridge(xs, ys).alpha >= 1e-2
    # fit_probe uses it when cfg.alpha is None, the fixed alpha otherwise
    assert fit_probe(x, x[:, :2], ProbeConfig(alpha=None), kind="linear").alpha == 1e-6
    assert fit_probe(x, x[:, :2], ProbeConfig(alpha=0.5), kind="linear").alpha == 0.5
