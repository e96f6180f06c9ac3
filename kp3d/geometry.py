"""Multi-view geometry: projection, DLT triangulation, crop intrinsics, soft-argmax, heatmaps.

Conventions:

- world points in millimetres, cameras world-to-camera, ``P = K [R | t]`` of shape (3, 4);
- pixel coordinates ``(u, v)`` = (column, row) with OpenCV centres: pixel (i, j) is centred at (i, j);
- every function is batched over any leading dimensions and differentiable;
- inputs are validated up front (shapes, dtypes, finiteness) with errors that name the argument;
  pass ``validate=False`` inside a training loop that already trusts its tensors (it avoids a
  device sync on GPUs).

The spatial transformer's box is ``box = (s_x, s_y, u_x, u_y)`` in normalised image units ([-1, 1]
across the image): the patch covers x in ``[u_x - s_x, u_x + s_x]`` and y in ``[u_y - s_y, u_y + s_y]``.
It is sampled with ``F.affine_grid(box_to_theta(box), (B, C, P, P), align_corners=False)`` and
``F.grid_sample(..., align_corners=False)``. With ``align_corners=False`` the normalised coordinate of
an OpenCV pixel u is ``(2u + 1) / W - 1``; :func:`crop_intrinsics`, :func:`patch_to_image` and
:func:`image_to_patch` use exactly this relation, so a point projected with the crop-adjusted
intrinsics lands on the patch pixel that ``grid_sample`` puts it on.

Example:
    >>> import torch
    >>> from kp3d.cameras import h36m_rig, to_tensors
    >>> P = to_tensors(h36m_rig("S1", 128, 128))["P"]          # (4, 3, 4)
    >>> X = torch.tensor([[0.0, 0.0, 900.0], [200.0, -100.0, 1500.0]])
    >>> x = project(P, X)                                        # (4, 2, 2) pixels
    >>> torch.allclose(triangulate_dlt(P, x), X, atol=0.5)
    True
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "project",
    "triangulate_dlt",
    "box_to_theta",
    "crop_intrinsics",
    "patch_to_image",
    "image_to_patch",
    "soft_argmax",
    "gaussian_heatmaps",
    "crop_patches",
    "uncrop_patches",
]

# Depths below this (in the units of P @ X, mm for a metric P) are clamped, keeping sign, so that
# a point on a camera's principal plane gives large but finite pixels and gradients.
_MIN_DEPTH = 1e-6


def _check_tensor(name: str, x, ndim_min: int, tail: Sequence[int | None], expected: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {expected}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of shape {expected}, got dtype {x.dtype}")
    if x.dim() < ndim_min or any(t is not None and s != t for s, t in zip(x.shape[x.dim() - len(tail):], tail)):
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")


def _check_finite(name: str, x: torch.Tensor) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf values; clean the input (e.g. drop frames with missing detections)")


def project(P: torch.Tensor, X: torch.Tensor, validate: bool = True) -> torch.Tensor:
    """Project world points into every view.

    Args:
        P: (..., V, 3, 4) projection matrices (world -> homogeneous pixels).
        X: (..., N, 3) world points; leading dims broadcast against P's.

    Returns:
        (..., V, N, 2) pixels. Points at (or behind) a camera's principal plane get their depth
        clamped to a tiny value of the same sign, so the result stays finite.

    Example:
        >>> P = torch.eye(3, 4).expand(2, 3, 4)
        >>> project(P, torch.tensor([[1.0, 2.0, 4.0]])).shape
        torch.Size([2, 1, 2])
    """
    if validate:
        _check_tensor("P", P, 3, (None, 3, 4), "(..., V, 3, 4)")
        _check_tensor("X", X, 2, (None, 3), "(..., N, 3)")
        _check_finite("P", P)
        _check_finite("X", X)
    Xh = torch.cat([X, torch.ones_like(X[..., :1])], dim=-1)  # (..., N, 4)
    xh = Xh.unsqueeze(-3) @ P.transpose(-1, -2)  # (..., V, N, 3)
    z = xh[..., 2:3]
    sign = torch.where(z < 0, -torch.ones_like(z), torch.ones_like(z))
    z = torch.where(z.abs() < _MIN_DEPTH, sign * _MIN_DEPTH, z)
    return xh[..., :2] / z


def _camera_centres(P: torch.Tensor) -> torch.Tensor:
    """(..., V, 3, 4) -> (..., V, 3) centres C with P [C; 1] = 0 (finite even for a degenerate P)."""
    M, p4 = P[..., :3], P[..., 3:]
    eye = torch.eye(3, dtype=P.dtype, device=P.device)
    scale = M.abs().amax(dim=(-1, -2), keepdim=True).clamp_min(1e-30)
    return -torch.linalg.solve(M / scale + 1e-12 * eye, p4 / scale).squeeze(-1)


def triangulate_dlt(
    P: torch.Tensor,
    x: torch.Tensor,
    weights: torch.Tensor | None = None,
    validate: bool = True,
    precise: bool = True,
) -> torch.Tensor:
    """Triangulate N points seen in V >= 2 views by the direct linear transform (Eq. 7).

    Each view v contributes the rows ``w (u P3 - P1)`` and ``w (v P3 - P2)`` (each scaled to unit
    norm before the weight applies, after the world normalisation below); with the fourth
    homogeneous coordinate fixed to 1 the system is solved as a 3x3 least-squares problem (normal
    equations) instead of an SVD. That keeps values and gradients finite in the cases where SVD
    backward produces NaNs (repeated singular values from coincident rays, zero weights). A relative
    Tikhonov term of 1e-10 keeps degenerate systems (all rays parallel, every weight zero)
    solvable; there the returned point is pulled towards the centre of the cameras.

    Numerical conditioning (why it is accurate in float32 with a world in mm and cameras 5 m away):
    the world is moved to the centroid of the camera centres and scaled by their spread, every DLT
    row is scaled to unit norm, and the 3x3 system is solved in float64 (``precise=True``).
    The affine normalisation does not change the least-squares solution, only its rounding.

    Args:
        P: (..., V, 3, 4) projection matrices, e.g. crop-adjusted ``K_p [R | t]``.
        x: (..., V, N, 2) pixels in the images that ``P`` maps to.
        weights: (..., V, N) non-negative confidences multiplying each view's rows, or None (all 1).
            At least two views per point should have a non-zero weight.
        validate: check shapes, dtypes and finiteness (a device sync on GPUs).
        precise: solve in float64 and cast back to x's dtype.

    Returns:
        X: (..., N, 3) world points.

    Example:
        >>> from kp3d.cameras import h36m_rig, to_tensors
        >>> P = to_tensors(h36m_rig("S9"))["P"]
        >>> X = torch.tensor([[10.0, -20.0, 1000.0]])
        >>> torch.allclose(triangulate_dlt(P, project(P, X)), X, atol=0.5)
        True
    """
    if validate:
        _check_tensor("P", P, 3, (None, 3, 4), "(..., V, 3, 4)")
        _check_tensor("x", x, 3, (None, None, 2), "(..., V, N, 2)")
        if P.shape[-3] < 2:
            raise ValueError(f"triangulate_dlt needs at least 2 views, got V={P.shape[-3]} in P of shape {tuple(P.shape)}")
        if x.shape[-3] != P.shape[-3]:
            raise ValueError(
                f"x has V={x.shape[-3]} views (shape {tuple(x.shape)}, expected (..., V, N, 2)) but P has "
                f"V={P.shape[-3]} (shape {tuple(P.shape)})"
            )
        try:
            torch.broadcast_shapes(P.shape[:-3], x.shape[:-3])
        except RuntimeError:
            raise ValueError(
                f"leading dims of P {tuple(P.shape[:-3])} and x {tuple(x.shape[:-3])} do not broadcast"
            ) from None
        _check_finite("P", P)
        _check_finite("x", x)
        if weights is not None:
            _check_tensor("weights", weights, 2, (x.shape[-3], x.shape[-2]), "(..., V, N)")
            _check_finite("weights", weights)
            if bool((weights < 0).any()):
                raise ValueError("weights must be non-negative (they scale each view's DLT rows)")
    out_dtype = x.dtype
    work = torch.float64 if precise else torch.promote_types(P.dtype, x.dtype)
    P = P.to(work)
    x = x.to(work)

    # Normalise the world: X = s X' + c, i.e. P' = P T with T = [[s I, c], [0, 1]]. The row
    # normalisation below happens in this frame, so T is part of the estimator (and differentiated).
    C = _camera_centres(P)  # (..., V, 3)
    c = C.mean(dim=-2, keepdim=True)  # (..., 1, 3)
    s = (C - c).norm(dim=-1).mean(dim=-1, keepdim=True).clamp_min(1e-9)  # (..., 1)
    eye4 = torch.eye(4, dtype=work, device=P.device)
    T = eye4 * torch.cat([s.expand(*s.shape[:-1], 3), torch.ones_like(s)], -1).unsqueeze(-1)
    T = T + torch.cat([c[..., 0, :], torch.zeros_like(s)], -1).unsqueeze(-1) * eye4[3]
    Pn = P @ T.unsqueeze(-3)  # (..., V, 3, 4)
    # Per-view row scaling: unit-norm depth row, so residuals are comparable across views.
    depth_norm = Pn[..., 2:3, :3].norm(dim=-1, keepdim=True).clamp_min(1e-30)
    Pn = Pn / depth_norm

    u = x[..., 0:1]  # (..., V, N, 1)
    v = x[..., 1:2]
    P1, P2, P3 = Pn[..., 0:1, :], Pn[..., 1:2, :], Pn[..., 2:3, :]  # (..., V, 1, 4)
    rows_u = u * P3 - P1  # (..., V, N, 4)
    rows_v = v * P3 - P2
    # Unit-norm rows: for ordinary views this changes little (all rows have similar norms), but a
    # point near a camera's principal plane has pixels ~1e8 whose raw rows would swamp the system;
    # normalised, such a row tends to the plane constraint P3 . X = 0, which is the right information.
    rows_u = rows_u / rows_u.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    rows_v = rows_v / rows_v.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    A = torch.stack([rows_u, rows_v], dim=-2)  # (..., V, N, 2, 4)
    if weights is not None:
        w = weights.to(work).unsqueeze(-1).unsqueeze(-1)  # (..., V, N, 1, 1)
        A = A * w
    A = A.movedim(-4, -3).flatten(-3, -2)  # (..., N, 2V, 4)
    A3, a4 = A[..., :3], A[..., 3:]
    M = A3.transpose(-1, -2) @ A3  # (..., N, 3, 3)
    b = -(A3.transpose(-1, -2) @ a4)  # (..., N, 3, 1)
    eye = torch.eye(3, dtype=work, device=P.device)
    lam = 1e-10 * M.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] + 1e-30
    Xn = torch.linalg.solve(M + lam * eye, b).squeeze(-1)  # (..., N, 3)
    X = Xn * s.unsqueeze(-1) + c  # back to world units
    return X.to(out_dtype)


def box_to_theta(box: torch.Tensor) -> torch.Tensor:
    """Spatial-transformer box -> affine matrix for ``F.affine_grid``.

    Args:
        box: (..., 4) ``(s_x, s_y, u_x, u_y)`` in normalised image units.

    Returns:
        theta: (..., 2, 3) ``[[s_x, 0, u_x], [0, s_y, u_y]]``.
    """
    _check_tensor("box", box, 1, (4,), "(..., 4) as (s_x, s_y, u_x, u_y)")
    sx, sy, ux, uy = box.unbind(-1)
    zero = torch.zeros_like(sx)
    return torch.stack([torch.stack([sx, zero, ux], -1), torch.stack([zero, sy, uy], -1)], -2)


def _crop_affine(box: torch.Tensor, patch_size: int, image_size: tuple[int, int]):
    """Per-axis scale s and offset b of the map patch_pixel = s (image_pixel - b) (OpenCV centres)."""
    H, W = image_size
    sx, sy, ux, uy = box.unbind(-1)
    scale_x = patch_size / (W * sx)
    scale_y = patch_size / (H * sy)
    # Box edge in continuous pixels is W/2 (u - s + 1); the -0.5 + 0.5/scale terms move between
    # continuous coordinates and OpenCV pixel centres on both sides of the map.
    bx = W / 2 * (ux - sx + 1) - 0.5 + 0.5 / scale_x
    by = H / 2 * (uy - sy + 1) - 0.5 + 0.5 / scale_y
    return torch.stack([scale_x, scale_y], -1), torch.stack([bx, by], -1)


def _check_crop_args(box, patch_size, image_size):
    _check_tensor("box", box, 1, (4,), "(..., 4) as (s_x, s_y, u_x, u_y)")
    if not (isinstance(patch_size, int) and patch_size > 0):
        raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (H, W) with positive entries, got {image_size!r}")


def crop_intrinsics(K: torch.Tensor, box: torch.Tensor, patch_size: int, image_size: tuple[int, int]) -> torch.Tensor:
    """Intrinsics of the patch cut out by the spatial transformer (Eq. 6).

    ``K_p = [[s f_x, 0, s (c_x - b_x)], [0, s f_y, s (c_y - b_y)], [0, 0, 1]]`` with
    ``s = P / (W s_x)`` (per axis) and ``b`` the image pixel that maps to patch pixel 0, i.e.
    ``b_x = W/2 (u_x - s_x + 1) - 0.5 + 0.5 / s`` (the box's left edge, shifted for OpenCV pixel
    centres under ``align_corners=False``). Computed as ``A @ K`` so skew is kept.

    Args:
        K: (..., 3, 3) intrinsics of the full image.
        box: (..., 4) ``(s_x, s_y, u_x, u_y)`` normalised; leading dims broadcast with K's.
        patch_size: P, the side of the square patch in pixels.
        image_size: (H, W) of the full image that K refers to.

    Returns:
        K_p: (..., 3, 3).

    Example:
        >>> K = torch.tensor([[100.0, 0, 63.5], [0, 100.0, 63.5], [0, 0, 1]])
        >>> Kp = crop_intrinsics(K, torch.tensor([0.5, 0.5, 0.0, 0.0]), 32, (128, 128))
        >>> Kp[0, 0].item(), Kp[0, 2].item()   # half the image into 32 px: s = 0.5
        (50.0, 15.5)
    """
    _check_tensor("K", K, 2, (3, 3), "(..., 3, 3)")
    _check_crop_args(box, patch_size, image_size)
    scale, b = _crop_affine(box, patch_size, image_size)
    A = torch.zeros(*scale.shape[:-1], 3, 3, dtype=scale.dtype, device=scale.device)
    A[..., 0, 0] = scale[..., 0]
    A[..., 1, 1] = scale[..., 1]
    A[..., 0, 2] = -scale[..., 0] * b[..., 0]
    A[..., 1, 2] = -scale[..., 1] * b[..., 1]
    A[..., 2, 2] = 1.0
    return A @ K


def image_to_patch(x: torch.Tensor, box: torch.Tensor, patch_size: int, image_size: tuple[int, int]) -> torch.Tensor:
    """Full-image pixels -> patch pixels.

    Args:
        x: (..., N, 2) image pixels.
        box: (..., 4) the box of each image (leading dims of x without N).
    """
    _check_tensor("x", x, 2, (None, 2), "(..., N, 2)")
    _check_crop_args(box, patch_size, image_size)
    scale, b = _crop_affine(box, patch_size, image_size)
    return (x - b.unsqueeze(-2)) * scale.unsqueeze(-2)


def patch_to_image(x: torch.Tensor, box: torch.Tensor, patch_size: int, image_size: tuple[int, int]) -> torch.Tensor:
    """Patch pixels -> full-image pixels (the inverse of :func:`image_to_patch`).

    Args:
        x: (..., N, 2) patch pixels.
        box: (..., 4) the box of each patch.
    """
    _check_tensor("x", x, 2, (None, 2), "(..., N, 2)")
    _check_crop_args(box, patch_size, image_size)
    scale, b = _crop_affine(box, patch_size, image_size)
    return x / scale.unsqueeze(-2) + b.unsqueeze(-2)


def soft_argmax(heatmaps: torch.Tensor, temperature: float = 1.0, return_spread: bool = False):
    """Expected pixel position under a softmax over each heatmap (Eq. 4).

    Args:
        heatmaps: (..., N, H, W) unnormalised scores.
        temperature: the scores are divided by it before the softmax (> 1 is softer).
        return_spread: also return each softmax map's spread around that position.

    Returns:
        (..., N, 2) ``(u, v)`` in that map's pixels (OpenCV centres: u in [0, W - 1]).
        A flat map returns its centre ((W - 1) / 2, (H - 1) / 2).
        With ``return_spread``, a tuple of that and (..., N) the RMS distance in pixels of the
        softmax's mass from ``(u, v)`` (0 for a one-pixel peak; about 0.41 x the side for a flat
        square map).

    Example:
        >>> h = torch.full((1, 5, 7), -1e4); h[0, 3, 6] = 0.0
        >>> soft_argmax(h).tolist()
        [[6.0, 3.0]]
    """
    _check_tensor("heatmaps", heatmaps, 3, (None, None, None), "(..., N, H, W)")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    H, W = heatmaps.shape[-2:]
    scores = heatmaps if heatmaps.dtype in (torch.float32, torch.float64) else heatmaps.float()
    prob = torch.softmax(scores.flatten(-2) / temperature, dim=-1).view(heatmaps.shape)
    us = torch.arange(W, dtype=prob.dtype, device=prob.device)
    vs = torch.arange(H, dtype=prob.dtype, device=prob.device)
    pu, pv = prob.sum(-2), prob.sum(-1)  # marginals over columns / rows
    u = (pu * us).sum(-1)
    v = (pv * vs).sum(-1)
    x = torch.stack([u, v], -1).to(heatmaps.dtype)
    if not return_spread:
        return x
    var = (pu * us ** 2).sum(-1) - u ** 2 + (pv * vs ** 2).sum(-1) - v ** 2
    return x, var.clamp_min(1e-12).sqrt().to(heatmaps.dtype)


def gaussian_heatmaps(x: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """Render an isotropic Gaussian at each point: ``exp(-|p - x|^2 / (2 sigma^2))``.

    Args:
        x: (..., N, 2) pixel centres ``(u, v)`` in the map's pixels (OpenCV centres).
        size: (H, W) of the maps.
        sigma: standard deviation in pixels of the map (the paper's 0.02 in normalised [-1, 1]
            patch units is ``0.02 * P / 2`` pixels).

    Returns:
        (..., N, H, W) with peak value 1 (not normalised to sum 1; divide by the sum for Eq. 13).
    """
    _check_tensor("x", x, 2, (None, 2), "(..., N, 2)")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    H, W = size
    us = torch.arange(W, dtype=x.dtype, device=x.device)
    vs = torch.arange(H, dtype=x.dtype, device=x.device)
    du = (us - x[..., 0:1]) ** 2  # (..., N, W)
    dv = (vs - x[..., 1:2]) ** 2  # (..., N, H)
    return torch.exp(-(dv.unsqueeze(-1) + du.unsqueeze(-2)) / (2 * sigma**2))


def crop_patches(images: torch.Tensor, box: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut each box out of its image with the spatial transformer (bilinear, ``align_corners=False``).

    Args:
        images: (B, C, H, W).
        box: (B, 4) ``(s_x, s_y, u_x, u_y)`` normalised.
        patch_size: P.

    Returns:
        (B, C, P, P) patches; outside the image is zero.
    """
    _check_tensor("images", images, 4, (None, None, None, None), "(B, C, H, W)")
    _check_tensor("box", box, 2, (4,), "(B, 4)")
    if box.shape[0] != images.shape[0]:
        raise ValueError(f"box has {box.shape[0]} rows but images has batch {images.shape[0]}")
    theta = box_to_theta(box).to(images.dtype)
    grid = F.affine_grid(theta, (images.shape[0], images.shape[1], patch_size, patch_size), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def uncrop_patches(patches: torch.Tensor, box: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Paste patches back into full frames (S^-1 in the paper): the inverse affine map of :func:`crop_patches`.

    Args:
        patches: (B, C, P, P).
        box: (B, 4) the boxes they were cut from.
        image_size: (H, W) of the full frame.

    Returns:
        (B, C, H, W); zero outside the box.
    """
    _check_tensor("patches", patches, 4, (None, None, None, None), "(B, C, P, P)")
    _check_tensor("box", box, 2, (4,), "(B, 4)")
    sx, sy, ux, uy = box.to(patches.dtype).unbind(-1)
    zero = torch.zeros_like(sx)
    theta = torch.stack(
        [torch.stack([1 / sx, zero, -ux / sx], -1), torch.stack([zero, 1 / sy, -uy / sy], -1)], -2
    )
    H, W = image_size
    grid = F.affine_grid(theta, (patches.shape[0], patches.shape[1], H, W), align_corners=False)
    return F.grid_sample(patches, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
