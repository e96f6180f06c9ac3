"""Tests for kp3d.metrics: hand-computed cases, invariances, torch/numpy parity, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kp3d.metrics import mpjpe, n_mpjpe, p_mpjpe


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q * np.sign(np.linalg.det(q))


@pytest.fixture
def gt():
    return np.random.default_rng(0).normal(size=(8, 17, 3)) * 300


def test_hand_computed():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert mpjpe(pred, gt) == pytest.approx(3.0)  # (5 + 1) / 2
    # N-MPJPE: s* = <p,g>/|p|^2 = (2*1 + 0)/(1 + 1) = 1 for p = [[1,0,0],[0,1,0]], g = [[2,0,0],[0,0,0]]
    p = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])
    g = np.array([[[2.0, 0, 0], [0, 0, 0]]])
    assert n_mpjpe(p, g) == pytest.approx((1.0 + 1.0) / 2)
    # leading dims are averaged
    pred2 = np.stack([np.zeros((2, 3)), np.ones((2, 3))])
    assert mpjpe(pred2, np.zeros((2, 2, 3))) == pytest.approx(np.sqrt(3) / 2)


def test_similarity_has_zero_p_mpjpe(gt):
    rng = np.random.default_rng(1)
    R = random_rotation(rng)
    pred = 0.7 * gt @ R.T + np.array([100.0, -50.0, 20.0])
    assert mpjpe(pred, gt) > 50
    assert p_mpjpe(pred, gt) < 1e-8


def test_scaled_has_zero_n_mpjpe(gt):
    assert n_mpjpe(1.9 * gt, gt) < 1e-9
    assert mpjpe(1.9 * gt, gt) > 50


def test_mirror_is_not_a_similarity(gt):
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert p_mpjpe(mirrored, gt) > 10.0


def test_p_mpjpe_never_worse_than_n_or_plain(gt):
    rng = np.random.default_rng(2)
    pred = gt + rng.normal(size=gt.shape) * 40
    assert p_mpjpe(pred, gt) <= mpjpe(pred, gt) + 1e-9


def test_torch_numpy_parity_and_gradient(gt):
    rng = np.random.default_rng(3)
    pred = gt + rng.normal(size=gt.shape) * 30
    pt = torch.tensor(pred, requires_grad=True)
    gtt = torch.tensor(gt)
    for fn in (mpjpe, n_mpjpe, p_mpjpe):
        out = fn(pt, gtt)
        assert isinstance(out, torch.Tensor) and out.dim() == 0
        assert out.item() == pytest.approx(fn(pred, gt), rel=1e-9)
        out.backward()
        assert torch.isfinite(pt.grad).all()
        pt.grad = None
    assert isinstance(mpjpe(pred, gt), float)


def test_bad_input(gt):
    with pytest.raises(ValueError, match="same shape"):
        mpjpe(gt[:, :16], gt)
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        mpjpe(gt[..., :2], gt[..., :2])
    with pytest.raises(TypeError, match="both be numpy arrays or both torch tensors"):
        mpjpe(torch.tensor(gt), gt)
    bad = gt.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        p_mpjpe(bad, gt)
