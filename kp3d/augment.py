"""Random zooms and shifts of whole frames: the detector's box prior on frames it has not seen.

Not in the paper (``Config.box_prior_augment``, docs/recipe.md "Does a detector trained on shifted
and zoomed frames hold its box on new subjects?"). The cpu-demo detector, fitted on five subjects
standing near the same spot of each view, shrinks and shifts its box on the test subjects; showing it
each training frame moved and rescaled asks it to find the person wherever the person is.

A frame box uses the spatial transformer's convention (:mod:`kp3d.geometry`): ``(s_x, s_y, u_x, u_y)``
in normalised image units, the resampled frame covers x in ``[u_x - s_x, u_x + s_x]`` of the original;
``s > 1`` zooms out (zero padding around the frame), ``s < 1`` zooms in.

Example:
    >>> import torch
    >>> frames = torch.rand(2, 3, 32, 48)
    >>> zoom_frames(frames, torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 2)).allclose(frames, atol=1e-5)
    True
    >>> random_frame_boxes(5, 0.25, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([5, 4])
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kp3d.geometry import box_to_theta

__all__ = ["random_frame_boxes", "zoom_frames"]


def random_frame_boxes(n: int, strength: float, device: torch.device | str = "cpu",
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` random frame boxes: scale log-uniform in ``[1 / (1 + strength), 1 + strength]`` (the same
    on both axes, so the aspect is kept), centre uniform in ``[-strength, strength]`` on each axis.

    Args:
        n: number of boxes (>= 1).
        strength: > 0; 0.25 moves the frame by up to an eighth of its width and zooms by up to 1.25x.
        device: where the boxes live.
        generator: a torch.Generator, or None for the global RNG (saved with each checkpoint, so a
            resumed run draws the same boxes).

    Returns:
        (n, 4) float32 ``(s_x, s_y, u_x, u_y)``.
    """
    if n < 1 or not strength > 0:
        raise ValueError(f"random_frame_boxes: expected n >= 1 and strength > 0, got n={n}, strength={strength}")
    r = torch.rand(n, 3, generator=generator, device="cpu" if generator is not None else device)
    r = r.to(device)
    log_s = math.log1p(strength) * (2 * r[:, 0] - 1)
    s = log_s.exp()
    u = strength * (2 * r[:, 1:] - 1)
    return torch.stack([s, s, u[:, 0], u[:, 1]], -1)


def zoom_frames(images: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Resample each frame through its box at the frame's own size (bilinear, zeros outside).

    Args:
        images: (B, C, H, W).
        box: (B, 4) ``(s_x, s_y, u_x, u_y)`` normalised, e.g. from :func:`random_frame_boxes`.

    Returns:
        (B, C, H, W): what a camera zoomed and panned by ``box`` would see (the rest black).
    """
    if images.ndim != 4:
        raise ValueError(f"images: expected (B, C, H, W), got {tuple(images.shape)}")
    if box.ndim != 2 or box.shape != (images.shape[0], 4):
        raise ValueError(f"box: expected ({images.shape[0]}, 4) to match images {tuple(images.shape)}, got {tuple(box.shape)}")
    theta = box_to_theta(box).to(images.dtype)
    grid = F.affine_grid(theta, tuple(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
