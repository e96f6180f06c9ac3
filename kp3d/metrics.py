"""3D pose errors: MPJPE, N-MPJPE, P-MPJPE (the paper's Sec. 4.2).

All three take ``pred, gt: (..., J, 3)`` (numpy arrays or torch tensors, same shape, same units) and
return the mean over joints *and* every leading dimension: a Python float for numpy input, a 0-d
tensor (differentiable) for torch input. Errors are in the input units (mm on Human3.6M and the
synthetic set; the 3DHP tables use cm).

- MPJPE: mean Euclidean distance per joint.
- N-MPJPE: each frame's prediction is first scaled by ``s* = sum<p, g> / sum |p|^2`` (the optimal
  scale, no translation or rotation), as the paper's protocol uses it. Pass root-relative poses.
- P-MPJPE: each frame's prediction is first aligned to the ground truth by the optimal similarity
  transform (Procrustes: translation, rotation with det(R) = +1, i.e. no reflection, and scale).

Example:
    >>> import numpy as np
    >>> gt = np.random.default_rng(0).normal(size=(10, 17, 3))
    >>> round(mpjpe(gt + [3.0, 4.0, 0.0], gt), 6)
    5.0
    >>> n_mpjpe(2.0 * gt, gt) < 1e-9 and p_mpjpe(gt + 1.0, gt) < 1e-9
    True
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["mpjpe", "n_mpjpe", "p_mpjpe"]


def _prepare(pred, gt):
    is_numpy = not isinstance(pred, torch.Tensor)
    if isinstance(pred, torch.Tensor) != isinstance(gt, torch.Tensor):
        raise TypeError(
            f"pred and gt must both be numpy arrays or both torch tensors, got {type(pred).__name__} and {type(gt).__name__}"
        )
    if is_numpy:
        pred = torch.as_tensor(np.asarray(pred, dtype=np.float64))
        gt = torch.as_tensor(np.asarray(gt, dtype=np.float64))
    if pred.shape != gt.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must have the same shape (..., J, 3)")
    if pred.dim() < 2 or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must have shape (..., J, 3), got {tuple(pred.shape)}")
    if pred.shape[-2] == 0 or pred.numel() == 0:
        raise ValueError(f"pred and gt are empty: shape {tuple(pred.shape)}")
    if not (bool(torch.isfinite(pred).all()) and bool(torch.isfinite(gt).all())):
        raise ValueError("pred or gt contains NaN or inf values")
    return pred, gt.to(pred.dtype), is_numpy


def _finish(err: torch.Tensor, is_numpy: bool):
    return float(err) if is_numpy else err


def _mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    return (pred - gt).norm(dim=-1).mean()


def mpjpe(pred, gt):
    """Mean per-joint position error. pred, gt: (..., J, 3)."""
    pred, gt, is_numpy = _prepare(pred, gt)
    return _finish(_mpjpe(pred, gt), is_numpy)


def n_mpjpe(pred, gt):
    """MPJPE after the per-frame optimal scale ``s* = sum<p, g> / sum |p|^2``. pred, gt: (..., J, 3)."""
    pred, gt, is_numpy = _prepare(pred, gt)
    num = (pred * gt).sum(dim=(-1, -2), keepdim=True)
    den = (pred * pred).sum(dim=(-1, -2), keepdim=True).clamp_min(1e-12)
    return _finish(_mpjpe(pred * (num / den), gt), is_numpy)


def procrustes_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Align each frame of ``pred (..., J, 3)`` to ``gt`` by the optimal similarity transform.

    Rotation from the SVD of the cross-covariance with the reflection fix (det(R) = +1), scale
    ``trace(S D) / |pred_centred|^2``, translation from the centroids (Umeyama's solution).
    """
    mu_p = pred.mean(dim=-2, keepdim=True)
    mu_g = gt.mean(dim=-2, keepdim=True)
    p = pred - mu_p
    g = gt - mu_g
    cov = p.transpose(-1, -2) @ g  # (..., 3, 3)
    U, S, Vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(U @ Vh))  # -1 where the best orthogonal map is a reflection
    d = torch.where(d == 0, torch.ones_like(d), d)
    D = torch.ones_like(S)
    D[..., -1] = d
    R = (U * D.unsqueeze(-2)) @ Vh  # maps row vectors: p @ R ~ g
    scale = (S * D).sum(-1) / (p * p).sum(dim=(-1, -2)).clamp_min(1e-12)
    return scale[..., None, None] * (p @ R) + mu_g


def p_mpjpe(pred, gt):
    """MPJPE after per-frame Procrustes alignment (similarity, no reflection). pred, gt: (..., J, 3)."""
    pred, gt, is_numpy = _prepare(pred, gt)
    return _finish(_mpjpe(procrustes_align(pred, gt), gt), is_numpy)
