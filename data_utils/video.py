"""Frames from a video file or an image-sequence folder, and an mp4 writer.

Decoding uses PyAV (``pip install av``: wheels bundle FFmpeg, so nothing else is needed); image
folders are read with OpenCV (``opencv-python-headless``). Frames come out as (H, W, 3) uint8 RGB.

- :func:`frame_source` tells a video from an image folder; :func:`video_info` gives width, height,
  frame count and fps without decoding the pictures (the count comes from the stream header, or
  from counting packets when the container does not store it);
- :func:`iter_frames` decodes in order (no seeking: seeking in long-GOP mp4 is slow and, in some
  containers, inexact), optionally every ``step``-th frame and at most ``max_frames``;
- :func:`write_video` encodes (T, H, W, 3) uint8 frames to H.264 mp4 (used by the tests to build
  rigs, and handy to turn image folders into videos).

Example:
    >>> import numpy as np, tempfile, os
    >>> from data_utils.video import write_video, video_info, read_frames
    >>> path = os.path.join(tempfile.mkdtemp(), "clip.mp4")
    >>> write_video(path, np.full((5, 32, 48, 3), 128, np.uint8))
    >>> info = video_info(path); (info["width"], info["height"], info["frames"])
    (48, 32, 5)
    >>> read_frames(path).shape
    (5, 32, 48, 3)
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".mts")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("video decoding needs PyAV: pip install av (its wheels bundle FFmpeg)") from e
    return av


def _cv2():
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading image folders needs OpenCV: pip install opencv-python-headless") from e
    return cv2


def image_files(folder: str | Path) -> list[Path]:
    """Image files of a folder in natural order (``frame2.png`` before ``frame10.png``)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", p.name)])


def _frame_files(path: Path) -> list[Path]:
    """The image files behind an image folder or a single image file."""
    return [path] if path.is_file() else image_files(path)


def frame_source(path: str | Path) -> str:
    """"video", "images" (a folder, one image per frame) or "image" (one file) for ``path``."""
    path = Path(path)
    if path.is_dir():
        if not image_files(path):
            raise ValueError(f"{path}: folder without images ({', '.join(IMAGE_SUFFIXES)}); expected one image "
                             f"per frame, e.g. 000001.png")
        return "images"
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return "video"
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file or image folder")
    raise ValueError(f"{path}: not a video ({', '.join(VIDEO_SUFFIXES)}), an image ({', '.join(IMAGE_SUFFIXES)}) "
                     f"nor a folder of images")


def video_info(path: str | Path) -> dict:
    """``dict(width, height, frames, fps)`` of a video, image folder or image (videos not decoded)."""
    path = Path(path)
    if frame_source(path) != "video":
        files = _frame_files(path)
        img = _cv2().imread(str(files[0]), _cv2().IMREAD_UNCHANGED)
        if img is None:
            raise ValueError(f"{files[0]}: OpenCV cannot read this image")
        return {"width": int(img.shape[1]), "height": int(img.shape[0]), "frames": len(files), "fps": None}
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            fps = float(stream.average_rate) if stream.average_rate else None
            frames = int(stream.frames or 0)
            if frames <= 0:  # header without a count: count the packets (no decoding)
                frames = sum(1 for p in container.demux(stream) if p.size > 0)
    except av.error.FFmpegError as e:
        raise ValueError(f"{path}: FFmpeg cannot read this video ({e}): the file is damaged or incomplete (an .mp4 "
                         f"cut short loses its index, which most cameras write at its end). Fix: copy the complete "
                         f"file again from the camera or its card (a recovery tool such as untrunc, given an intact "
                         f"recording of the same camera, can rebuild a lost index).") from None
    return {"width": int(width), "height": int(height), "frames": frames, "fps": fps}


def iter_frames(path: str | Path, step: int = 1, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode frames 0, step, 2 step, ... (at most ``max_frames``) as (H, W, 3) uint8 RGB arrays."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    path = Path(path)
    count = 0
    if frame_source(path) != "video":
        cv2 = _cv2()
        for f in _frame_files(path)[::step]:
            if max_frames is not None and count >= max_frames:
                return
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"{f}: OpenCV cannot read this image")
            count += 1
            yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return
    av = _av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if max_frames is not None and count >= max_frames:
                    return
                if i % step:
                    continue
                count += 1
                yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as e:
        raise ValueError(f"{path}: FFmpeg failed while decoding ({e})") from None


def read_frames(path: str | Path, step: int = 1, max_frames: int | None = None) -> np.ndarray:
    """All decoded frames as one (T, H, W, 3) uint8 array (small clips; use :func:`iter_frames` otherwise)."""
    frames = list(iter_frames(path, step, max_frames))
    if not frames:
        raise ValueError(f"{path}: no frames decoded")
    return np.stack(frames)


def write_video(path: str | Path, frames, fps: float = 25.0, crf: int = 12, overwrite: bool = False) -> None:
    """Encode frames to an H.264 mp4 (yuv420p, so width and height must be even).

    Args:
        frames: (T, H, W, 3) uint8 RGB, or an iterable of (H, W, 3) uint8.
        fps: frame rate written in the file.
        crf: x264 quality, 0 (lossless luma) to 51; 12 keeps edges sharp enough for sub-pixel tests.
        overwrite: replace an existing file (refused otherwise).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    av = _av()
    it = iter(frames)
    first = next(it, None)
    first = None if first is None else np.asarray(first)
    if first is None or first.ndim != 3 or first.shape[-1] != 3 or first.dtype != np.uint8:
        raise ValueError(f"frames: expected (T, H, W, 3) uint8 RGB, got a frame of shape "
                         f"{getattr(first, 'shape', None)} dtype {getattr(first, 'dtype', None)}")
    H, W = first.shape[:2]
    if H % 2 or W % 2:
        raise ValueError(f"frames: H.264 yuv420p needs an even width and height, got {W}x{H}; crop or pad by one pixel")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": "veryfast"}
        for img in _chain(first, it):
            img = np.ascontiguousarray(img)
            if img.shape != (H, W, 3):
                raise ValueError(f"frames: every frame must be {(H, W, 3)}, got {img.shape}")
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _chain(first, rest):
    yield first
    yield from rest
