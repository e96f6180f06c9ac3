"""Tests of kp3d.lifter: the single-view lifter of Table S2 (shapes, frames, fitting)."""
import numpy as np
import pytest
import torch

from kp3d.lifter import (
    LifterConfig,
    ResidualBlock,
    SingleViewLifter,
    camera_targets,
    lift,
    lifter_config,
    normalize_2d,
    train_lifter,
)

torch.set_num_threads(1)


def _rig(V=3, seed=0):
    """V cameras on a circle 4 m away looking at the origin (world z up), 64 x 64 pixels."""
    Ks, Rs, ts = [], [], []
    for v in range(V):
        a = 2 * np.pi * v / V
        c = np.array([4000 * np.cos(a), 4000 * np.sin(a), 1000.0])
        z = -c / np.linalg.norm(c)
        x = np.cross(z, [0, 0, 1.0]); x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R = np.stack([x, y, z])
        Ks.append(np.array([[80.0, 0, 31.5], [0, 80.0, 31.5], [0, 0, 1]]))
        Rs.append(R)
        ts.append(-R @ c)
    return np.stack(Ks), np.stack(Rs), np.stack(ts)


def _project(X, K, R, t):
    """X (T, N, 3) -> (T, V, N, 2) pixels."""
    cam = np.einsum("vij,tnj->tvni", R, X) + t[None, :, None]
    pix = np.einsum("vij,tvnj->tvni", K, cam)
    return pix[..., :2] / pix[..., 2:3]


def _toy(T=120, N=6, seed=0):
    """Keypoints of a rigid random 'body' that rotates about z and moves: a learnable lifting task."""
    rng = np.random.default_rng(seed)
    body = rng.normal(size=(N, 3)) * [150, 150, 400]
    ang = rng.uniform(0, 2 * np.pi, size=T)
    Rz = np.stack([np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) for a in ang])
    X = np.einsum("tij,nj->tni", Rz, body) + rng.uniform(-300, 300, size=(T, 1, 3)) * [1, 1, 0] + [0, 0, 900]
    K, R, t = _rig()
    return X, _project(X, K, R, t), K, R


# ---------------------------------------------------------------- shapes
def test_shapes_and_architecture():
    m = SingleViewLifter(n_keypoints=7, hidden=32, n_blocks=3)
    assert m(torch.zeros(4, 7, 2)).shape == (4, 7, 3)
    assert m.inp.in_features == 14 and m.out.out_features == 21
    assert len(m.blocks) == 3 and all(isinstance(b, ResidualBlock) for b in m.blocks)
    assert lifter_config("paper-h36m").hidden == 1024 and lifter_config("paper-h36m").n_blocks == 3
    blk = ResidualBlock(5)
    with torch.no_grad():  # zero weights: the block is the identity (input added)
        for p in blk.parameters():
            p.zero_()
    x = torch.randn(3, 5)
    assert torch.equal(blk(x), x)


def test_frames_of_inputs_and_targets():
    X, x2d, K, R = _toy(T=4)
    n = normalize_2d(x2d, K)
    assert n.shape == x2d.shape
    np.testing.assert_allclose(n.mean(axis=2), 0.0, atol=1e-12)
    y = camera_targets(X, R)
    assert y.shape == (4, 3, 6, 3)
    np.testing.assert_allclose(y.mean(axis=2), 0.0, atol=1e-9)
    # rotating back with R gives the centred world keypoints for every view
    back = np.einsum("vji,tvnj->tvni", R, y)
    np.testing.assert_allclose(back, np.repeat((X - X.mean(1, keepdims=True))[:, None], 3, axis=1), atol=1e-9)


# ---------------------------------------------------------------- bad input
def test_bad_inputs():
    m = SingleViewLifter(n_keypoints=5, hidden=8)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 5, 2\)"):
        m(torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match="kp2d"):
        normalize_2d(np.zeros((2, 3, 5)), np.eye(3)[None].repeat(3, 0))
    with pytest.raises(ValueError, match="K: expected"):
        normalize_2d(np.zeros((2, 3, 5, 2)), np.eye(3)[None].repeat(2, 0))
    with pytest.raises(ValueError, match="kp3d"):
        camera_targets(np.zeros((2, 5)), np.eye(3)[None])
    with pytest.raises(ValueError, match="frame must be"):
        lift(m, np.zeros((1, 1, 5, 2)), np.eye(3)[None], np.eye(3)[None], frame="pelvis")


# ---------------------------------------------------------------- accuracy
def test_lifter_fits_a_tiny_synthetic_set():
    X, x2d, K, R = _toy(T=150)
    cfg = LifterConfig(hidden=64, epochs=150, lr=2e-3, batch_size=64, patience=0, progress=False)
    model = train_lifter(x2d, X, K, R, cfg)
    out_w = lift(model, x2d, K, R)  # world frame, centred
    assert out_w.shape == (150, 3, 6, 3)
    target = np.repeat((X - X.mean(1, keepdims=True))[:, None], 3, axis=1)
    err = np.linalg.norm(out_w - target, axis=-1).mean()
    spread = np.linalg.norm(target, axis=-1).mean()
    assert err < 0.15 * spread, (err, spread)
    # the camera-frame output is the same points before the rotation back to the world
    out_c = lift(model, x2d, K, R, frame="camera")
    np.testing.assert_allclose(np.einsum("vji,tvnj->tvni", R, out_c), out_w, atol=1e-6)
    # an untrained lifter is far off (the test can fail)
    raw = lift(SingleViewLifter(6, hidden=64), x2d, K, R)
    assert np.linalg.norm(raw - target, axis=-1).mean() > 0.5 * spread


def test_gradients_reach_every_layer():
    m = SingleViewLifter(n_keypoints=4, hidden=16)
    m(torch.randn(8, 4, 2)).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
