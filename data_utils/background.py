"""Background estimation: the per-pixel temporal median of a static camera's frames (paper footnote 1).

A pixel shows the background in most frames when the person keeps moving, so the median over time
recovers it. Two things bound the memory on long sequences: ``max_frames`` subsamples the frames
evenly, and the median runs over chunks of pixels (``chunk_pixels`` at a time), so a memory-mapped
(T, H, W, 3) array is never loaded whole.

What goes wrong on real footage: a person who stands still for more than half the frames is
"burned into" the background; lighting that changes over the sequence leaves a median that matches
no frame exactly; sensor noise is averaged out only partly (the median of N noisy samples keeps
about 1.25 / sqrt(N) of the noise's standard deviation).

Example:
    >>> import numpy as np
    >>> from data_utils.background import median_background, psnr
    >>> rng = np.random.default_rng(0)
    >>> bg = rng.uniform(size=(8, 8, 3))
    >>> frames = np.clip(bg + rng.normal(0, 0.02, (50, 8, 8, 3)), 0, 1)
    >>> psnr(median_background(frames), bg) > 35
    True
"""
from __future__ import annotations

import numpy as np


def median_background(frames: np.ndarray, max_frames: int | None = None,
                      chunk_pixels: int = 1 << 16) -> np.ndarray:
    """Per-pixel median over time.

    Args:
        frames: (T, ...) any per-frame layout, e.g. (T, H, W, 3) uint8 or (T, 3, H, W) float;
            a numpy memmap works and is read chunk by chunk.
        max_frames: use at most this many frames, evenly spaced over the sequence (None: all).
        chunk_pixels: values per frame processed at once (memory ~ T * chunk_pixels * 8 bytes).
    Returns:
        (...) the median, float32, in the units of ``frames`` (uint8 input gives 0-255 values).
    """
    if not hasattr(frames, "shape") or len(frames.shape) < 2:
        raise ValueError(f"frames: expected an array (T, ...) with T frames, got {type(frames).__name__}")
    T = frames.shape[0]
    if T == 0:
        raise ValueError("frames: need at least one frame to estimate a background")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    idx = np.arange(T) if max_frames is None or max_frames >= T else \
        np.unique(np.round(np.linspace(0, T - 1, max_frames)).astype(int))
    per_frame = int(np.prod(frames.shape[1:]))
    out = np.empty(per_frame, dtype=np.float32)
    flat = frames.reshape(T, per_frame) if isinstance(frames, np.ndarray) else np.asarray(frames).reshape(T, -1)
    for start in range(0, per_frame, chunk_pixels):
        block = np.asarray(flat[idx, start:start + chunk_pixels])
        out[start:start + chunk_pixels] = np.median(block, axis=0)
    return out.reshape(frames.shape[1:])


def psnr(estimate: np.ndarray, truth: np.ndarray, max_val: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB between two images of the same shape and range."""
    estimate, truth = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    if estimate.shape != truth.shape:
        raise ValueError(f"psnr: shapes differ, estimate {estimate.shape} vs truth {truth.shape}")
    mse = np.mean((estimate - truth) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(max_val ** 2 / mse))


def error_map(estimate: np.ndarray, truth: np.ndarray, channel_axis: int = -1) -> np.ndarray:
    """Per-pixel absolute error averaged over channels: (H, W, 3) pairs -> (H, W)."""
    estimate, truth = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    if estimate.shape != truth.shape:
        raise ValueError(f"error_map: shapes differ, estimate {estimate.shape} vs truth {truth.shape}")
    return np.abs(estimate - truth).mean(axis=channel_axis)


def convergence(frames: np.ndarray, truth: np.ndarray, counts=(1, 3, 5, 11, 21, 51, 101, 201),
                sampling: str = "uniform", max_val: float = 1.0) -> dict:
    """Background PSNR as a function of the number of frames used for the median.

    Args:
        frames: (T, ...) one camera's frames, in the range of ``truth`` (scale uint8 first).
        truth: (...) the true background.
        counts: numbers of frames to try (those above T are dropped).
        sampling: "uniform" (evenly spaced over the sequence) or "first" (the first n frames, as a
            live system would have).
    Returns:
        dict with ``counts`` (K,) int and ``psnr`` (K,) float dB.
    """
    if sampling not in ("uniform", "first"):
        raise ValueError(f"sampling must be 'uniform' or 'first', got {sampling!r}")
    T = frames.shape[0]
    ns = [int(n) for n in counts if 1 <= n <= T]
    if not ns:
        raise ValueError(f"no count in {counts} fits the {T} frames given")
    values = []
    for n in ns:
        est = median_background(frames, max_frames=n) if sampling == "uniform" else median_background(frames[:n])
        values.append(psnr(est, truth, max_val))
    return {"counts": np.array(ns), "psnr": np.array(values)}
