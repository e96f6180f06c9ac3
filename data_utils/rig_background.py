"""Checking a rig's median background: does it contain the person (or someone else)?"""
from __future__ import annotations

import numpy as np

MIN_CHECK_FRAMES = 10  # fewer frames than this: the median cannot be checked (and is rarely clean)


class ContaminatedBackgroundWarning(UserWarning):
    """The median background probably contains the person (or someone else): supply an empty scene."""



def background_contamination(frames: np.ndarray, background: np.ndarray, unstable_freq: float = 0.45,
                             min_unstable_area: float = 0.001, min_moving_area: float = 0.001) -> dict:
    """Check a median background against the frames it came from.

    A pixel is *foreground* in a frame when it differs from the background by more than
    ``tau = 5 sigma`` clipped to [0.05, 0.15] (mean over channels, [0, 1] units; sigma is the noise level, a robust
    MAD estimate over all pixels and frames). Two signatures of a median that kept the person:

    - an *unstable region*: pixels that are foreground in more than ``unstable_freq`` of the frames
      cover more than ``min_unstable_area`` of the image. A person who walks around covers each pixel
      for a few frames only (under 45% even at the turning points of a one-circle clip in the tests);
      one on a treadmill or a chair keeps moving limbs over the same pixels, so the median there is
      a coin flip between the person and the scene;
    - *nothing moves*: in 90% of the frames less than ``min_moving_area`` of the image is foreground:
      the person stood still and is part of the median (or the clip is empty).

    Not caught: someone still in one place for more than about ``1 - unstable_freq`` of the frames
    while another person moves: the median takes them in and they never differ from it.

    A third check catches frames that share no static background at all (typical difference over
    0.05: a moving camera, changing light, automatic exposure).

    Args:
        frames: (T, H, W, 3) uint8 or float in [0, 1], the frames the median was taken over.
        background: (H, W, 3) same units.

    Returns:
        dict(contaminated: bool, reason: str, unstable_area: float, moving_area_p90: float,
        tau: float, frequency: (H, W) float32 per-pixel foreground frequency).
    """
    frames = np.asarray(frames)
    background = np.asarray(background)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected (T, H, W, 3), got {frames.shape}")
    if background.shape != frames.shape[1:]:
        raise ValueError(f"background: expected {frames.shape[1:]} like the frames, got {background.shape}")
    scale = 255.0 if frames.dtype == np.uint8 else 1.0
    bg = background.astype(np.float32) / (255.0 if background.dtype == np.uint8 or scale == 255.0 else 1.0)
    diff = np.stack([np.abs(f.astype(np.float32) / scale - bg).mean(-1) for f in frames])  # (T, H, W)
    typical = float(np.median(diff))
    sigma = 1.4826 * typical
    tau = min(max(0.05, 5 * sigma), 0.15)  # capped: a scene that changes everywhere must not hide as "noise"
    fg = diff > tau
    freq = fg.mean(0).astype(np.float32)
    unstable = float((freq > unstable_freq).mean())
    moving = float(np.quantile(fg.reshape(len(fg), -1).mean(1), 0.9))
    reasons = []
    if typical > 0.05:
        reasons.append(f"the frames differ from the median almost everywhere (typical difference {typical:.3f}): "
                       f"a moving camera, changing light or automatic exposure leaves no static background")
    if unstable > min_unstable_area:
        reasons.append(f"{100 * unstable:.2f}% of the image differs from the median in more than "
                       f"{100 * unstable_freq:.0f}% of the frames (someone stays in place)")
    if moving < min_moving_area:
        reasons.append(f"in 90% of the frames under {100 * min_moving_area:.2f}% of the image differs from the "
                       f"median (nothing moves: a still person is burned into it)")
    return {"contaminated": bool(reasons), "reason": "; ".join(reasons), "unstable_area": unstable,
            "moving_area_p90": moving, "tau": tau, "frequency": freq}


