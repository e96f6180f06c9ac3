"""What the data sets read from extracted frame folders (Human3.6M, MPI-INF-3DHP) share: the layout
error, image reading and resizing, the per-sequence median background cached on disk.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .background import median_background
from .cache import cache_dir


def _layout_error(kind: str, root: Path, problem: str, layout: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{kind} data root {root}: {problem}.\nExpected layout:\n{layout}\n"
        f"Fix: point the data option at a folder laid out like this (e.g. data='{kind.lower()}:/path/to/root'), "
        f"or use data='synthetic' (the embedded default, rendered on first use)."
    )


def _resize_images(imgs: torch.Tensor, size: int) -> torch.Tensor:
    """(V, 3, h, w) -> (V, 3, size, size), antialiased."""
    if imgs.shape[-2:] == (size, size):
        return imgs
    return torch.nn.functional.interpolate(imgs, size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False).clamp_(0, 1)


def _read_image(path: Path) -> torch.Tensor:
    """(3, h, w) float32 in [0, 1] from a .jpg/.png (Pillow, a matplotlib dependency)."""
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


class _MultiViewFolders(Dataset):
    """Shared machinery: sequences of synchronised per-camera frame files plus 3D joints.

    Subclasses fill ``self._seqs``: list of dict(subject, name, frames (list over views of lists of
    paths), cameras (list of kp3d Camera at native size), joints (T, 17, 3) world mm or None).
    Backgrounds are medians over at most ``background_frames`` frames per sequence and camera, at
    ``image_size``, cached under ``data_utils.cache.cache_dir()/<kind>_backgrounds``.
    """

    kind = "?"
    layout = ""

    def _subjects(self, root, split: str, subjects) -> tuple[str, ...]:
        """Set ``root`` and ``split``; the subjects to read (``subjects`` or the split's), each folder checked."""
        self.root, self.split = Path(root).expanduser(), split
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {list(self.SPLITS)}, got {split!r}")
        if not self.root.is_dir():
            raise _layout_error(self.kind, self.root, "the folder does not exist", self.layout)
        subjects = tuple(subjects or self.SPLITS[split])
        missing = [s for s in subjects if not (self.root / s).is_dir()]
        if missing:
            raise _layout_error(self.kind, self.root, f"subject folder {missing[0]}/ is missing "
                                f"(needed: {', '.join(subjects)})", self.layout)
        return subjects

    def __init__(self, image_size: int, background_frames: int, frame_step: int):
        self.image_size = int(image_size)
        self.background_frames = background_frames
        self._index = [(k, f) for k, s in enumerate(self._seqs) for f in range(0, len(s["frames"][0]), frame_step)]
        if not self._index:
            raise _layout_error(self.kind, self.root, "no frames found", self.layout)
        self.subjects = tuple(dict.fromkeys(s["subject"] for s in self._seqs))
        self._bg: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._index)

    def frame_info(self, i: int) -> dict:
        k, f = self._index[i]
        s = self._seqs[k]
        return {"subject": s["subject"], "frame": f, "split": self.split, "action": s["name"]}

    def _cameras(self, seq: dict) -> list:
        return [c.resized(self.image_size, self.image_size) for c in seq["cameras"]]

    def _load_views(self, seq: dict, f: int) -> torch.Tensor:
        return torch.stack([_resize_images(_read_image(v[f])[None], self.image_size)[0] for v in seq["frames"]])

    def background(self, k: int) -> torch.Tensor:
        """(V, 3, H, W) median background of sequence ``k`` (computed once, cached on disk)."""
        if k in self._bg:
            return self._bg[k]
        seq = self._seqs[k]
        key = hashlib.sha1(json.dumps([str(seq["frames"][0][0]), len(seq["frames"][0]), self.image_size,
                                       self.background_frames]).encode()).hexdigest()[:16]
        path = cache_dir() / f"{self.kind.lower()}_backgrounds" / f"{key}.npy"
        if path.is_file():
            bg = np.load(path)
        else:
            T = len(seq["frames"][0])
            idx = np.unique(np.linspace(0, T - 1, min(T, self.background_frames)).round().astype(int))
            frames = torch.stack([self._load_views(seq, f) for f in idx])  # (n, V, 3, H, W)
            bg = median_background(frames.numpy())
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path.with_suffix(".tmp.npy"), bg)
            path.with_suffix(".tmp.npy").replace(path)
        self._bg[k] = torch.from_numpy(np.asarray(bg, dtype=np.float32))
        return self._bg[k]

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        i = i % len(self)
        k, f = self._index[i]
        seq = self._seqs[k]
        cams = self._cameras(seq)
        sample = {
            "images": self._load_views(seq, f),
            "backgrounds": self.background(k),
            "K": torch.tensor(np.stack([c.K for c in cams]), dtype=torch.float32),
            "R": torch.tensor(np.stack([c.R for c in cams]), dtype=torch.float32),
            "t": torch.tensor(np.stack([c.t for c in cams]), dtype=torch.float32),
            "index": torch.tensor(i, dtype=torch.int64),
        }
        if seq["joints"] is not None:
            X = seq["joints"][f]
            # real images carry lens distortion: the labels' 2D joints are where the joints appear
            j2d = np.stack([c.project_distorted(X) if c.dist is not None else c.project(X) for c in cams])
            sample["gt"] = {"joints_3d": torch.tensor(X, dtype=torch.float32),
                            "joints_2d": torch.tensor(j2d, dtype=torch.float32)}
        return sample


def _frame_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return sorted(files, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])


def _doc_layout(cls, layout: str) -> None:
    cls.__doc__ = cls.__doc__.replace("{layout}", "\n    ".join(layout.splitlines()))


