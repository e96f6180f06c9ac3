"""The embedded default data set: synthetic people filmed by the Human3.6M rig, cached on disk.

Each subject (S1, S5-S8 train; S9, S11 test) gets its own body and clothing (``bodies``), a
procedural motion (``motion``) over the part of the floor all four of its cameras see, and the four
cameras of that Human3.6M subject (``kp3d.cameras.h36m_rig``), scaled to ``image_size``. Rendering
(``render``) is pinhole WITHOUT lens distortion; ground-truth 2D joints are pinhole projections.

Cache: ``data_utils.cache.cache_dir()/synthetic/<hash>/`` where the hash covers ``GENERATOR_VERSION``
and every field of :class:`SyntheticConfig` except ``workers``. The folder holds ``manifest.json``
(version, parameters, files) and per subject ``<S>_images.npy`` (T, V, H, W, 3) uint8,
``<S>_masks.npy`` (T, V, H, ceil(W/8)) bit-packed along W, and ``<S>_meta.npz`` (joints_3d
(T, 17, 3), joints_2d (T, V, 17, 2), K (V, 3, 3), R, t, action (T,), bg_true and bg_median
(V, H, W, 3) uint8). It is written to a temporary folder and renamed, so an interrupted run leaves
nothing half-written under the final name; a folder made by someone else with other parameters is
never deleted or overwritten (an error says what to do). The manifest stores the sha256 of every
file; they are checked on first use in a process, and a damaged cache (flipped bytes, a file cut
short) is re-rendered with a warning naming the file. A manifest from before the checksums gets them
added on first use.

Example:
    >>> from data_utils.synthetic import SyntheticConfig, ensure_rendered
    >>> cfg = SyntheticConfig(image_size=64, frames_per_subject=40, supersample=1)  # the smoke profile's
    >>> path = ensure_rendered(cfg)  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from kp3d.cameras import h36m_rig

from .background import median_background
from .bodies import SUBJECTS, TEST_SUBJECTS, TRAIN_SUBJECTS, subject_body
from .bvh import load_bvh_h36m
from .cache import cache_dir
from .motion import procedural_motion
from .render import RenderSettings, camera_effects, make_room, project, render_background, render_person
from .skeleton import retarget

GENERATOR_VERSION = "1.1"


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that defines a rendered synthetic data set (and its cache key)."""

    image_size: int = 128  # square views, pixels (scaled from the ~1000x1000 H36M sensor)
    frames_per_subject: int = 480  # procedural frames per subject (BVH clips come on top)
    fps: float = 10.0  # sampling rate of the motion; low = more varied poses per frame
    subjects: tuple[str, ...] = SUBJECTS
    seed: int = 0  # bodies, motions, room, flicker and noise all follow from it
    supersample: int = 2  # anti-aliasing rays per pixel per axis
    flicker: float = 0.04  # lighting gain amplitude per frame
    noise_std: float = 0.015  # sensor noise, [0, 1] units
    shadow_strength: float = 0.45  # 0 disables shadows
    bvh_clips: tuple[str, ...] = ()  # optional mocap clips added to every subject (retargeted)
    background_frames: int = 0  # frames for the median background; 0 = all
    area_margin: float = 500.0  # mm around the pelvis (up to 2 m high) kept inside every view
    workers: int = field(default=0, compare=False)  # processes; 0 = min(2, cpu count); not in the key

    def validate(self) -> "SyntheticConfig":
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16 pixels, got {self.image_size}")
        if self.frames_per_subject < 1 or self.fps <= 0 or self.supersample < 1:
            raise ValueError("frames_per_subject, fps and supersample must be positive")
        bad = [s for s in self.subjects if s not in SUBJECTS]
        if bad or not self.subjects:
            raise ValueError(f"subjects {bad or '()'}: expected a non-empty subset of {SUBJECTS}")
        for clip in self.bvh_clips:
            if not Path(clip).is_file():
                raise FileNotFoundError(f"bvh_clips: {clip} does not exist")
        return self

    def key_params(self) -> dict:
        """The parameters that define the data (JSON-able), with BVH clips identified by content."""
        d = dataclasses.asdict(self)
        d.pop("workers")
        d["subjects"] = list(self.subjects)
        d["bvh_clips"] = [{"name": Path(c).name, "sha1": hashlib.sha1(Path(c).read_bytes()).hexdigest()}
                          for c in self.bvh_clips]
        return d

    def cache_key(self) -> str:
        blob = json.dumps({"version": GENERATOR_VERSION, "params": self.key_params()}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def render_settings(self) -> RenderSettings:
        return RenderSettings(supersample=self.supersample, flicker=self.flicker, noise_std=self.noise_std,
                              shadow_strength=self.shadow_strength)


def subject_cameras(subject: str, image_size: int) -> list:
    """The subject's four Human3.6M cameras at ``image_size``, without distortion (pinhole)."""
    return [c.without_distortion() for c in h36m_rig(subject, image_size, image_size)]


def capture_area(cameras, margin: float = 500.0, step: float = 100.0, height: float = 2000.0) -> np.ndarray:
    """Floor points (M, 2) world mm where a person fits in every view.

    A point qualifies when a box of half-width ``margin`` from the floor to ``height`` around it
    projects inside every camera's image, one pixel from the border.
    """
    g = np.arange(-4000.0, 4000.0 + step, step)
    xy = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    corners = np.array([[dx, dy, z] for dx in (-margin, margin) for dy in (-margin, margin) for z in (0.0, height)])
    P = xy[:, None, :] + np.zeros((1, len(corners), 2))
    X = np.concatenate([P + corners[None, :, :2], np.broadcast_to(corners[None, :, 2:], P.shape[:2] + (1,))], -1)
    ok = np.ones(len(xy), bool)
    for c in cameras:
        z = X @ c.R[2] + c.t[2]
        uv = project(c.K, c.R, c.t, X)
        inside = (z > 0) & (uv[..., 0] >= 1) & (uv[..., 0] <= c.width - 2) & (uv[..., 1] >= 1) & (uv[..., 1] <= c.height - 2)
        ok &= inside.all(axis=1)
    if ok.sum() < 2:
        raise ValueError(f"no floor area is seen by all cameras with margin {margin} mm: lower area_margin")
    return xy[ok]


def subject_motion(cfg: SyntheticConfig, subject: str) -> dict:
    """Joints (T, 17, 3) world mm and actions (T,) of one subject: procedural, then any BVH clips."""
    body = subject_body(subject, cfg.seed)
    area = capture_area(subject_cameras(subject, cfg.image_size), cfg.area_margin)
    seed = cfg.seed * 1000 + SUBJECTS.index(subject)
    out = procedural_motion(body, cfg.frames_per_subject, cfg.fps, seed=seed, waypoints=area)
    joints, action = [out["joints"]], [out["action"]]
    for clip in cfg.bvh_clips:
        j, _ = load_bvh_h36m(clip, fps=cfg.fps)
        j = retarget(j, body.bone_lengths())
        centre = area.mean(0)
        j[..., :2] += centre - j[:, 0, :2].mean(0)
        j[..., 2] += body.ankle_height - np.minimum(j[:, 3, 2], j[:, 6, 2]).min()
        joints.append(j)
        action.append(np.full(len(j), "mocap", dtype="<U6"))
    return {"joints": np.concatenate(joints), "action": np.concatenate(action)}


def render_camera(cfg: SyntheticConfig, subject: str, view: int, joints: np.ndarray,
                  rng: np.random.Generator, extra_gain: np.ndarray | None = None) -> tuple:
    """Render one camera of a subject for any joint sequence.

    Args:
        joints: (T, 17, 3) world mm.
        extra_gain: optional (T,) lighting multiplier on top of the flicker.
    Returns:
        images (T, H, W, 3) uint8, masks (T, H, W) bool, true background (H, W, 3) uint8.
    """
    settings = cfg.render_settings()
    cam = subject_cameras(subject, cfg.image_size)[view]
    body = subject_body(subject, cfg.seed)
    room = make_room(cfg.seed)
    bg = render_background(cam, room, settings)
    T, S = len(joints), cfg.image_size
    images = np.empty((T, S, S, 3), np.float32)
    masks = np.empty((T, S, S), bool)
    for f in range(T):
        images[f], masks[f] = render_person(cam, body, joints[f], room, bg, settings)
    images8 = camera_effects(images, np.arange(T) / cfg.fps, rng, settings, extra_gain)
    bg_true = np.clip(np.round(bg.downsampled() * 255), 0, 255).astype(np.uint8)
    return images8, masks, bg_true


def render_clip(cfg: SyntheticConfig, subject: str, joints: np.ndarray, extra_gain: np.ndarray | None = None,
                seed: int = 0) -> dict:
    """All four views of a custom clip (not cached), e.g. a person standing still.

    Returns dict with images (T, V, H, W, 3) uint8, masks (T, V, H, W) bool, bg_true (V, H, W, 3) uint8.
    """
    out = [render_camera(cfg, subject, v, joints, np.random.default_rng([seed, v]), extra_gain) for v in range(4)]
    return {"images": np.stack([o[0] for o in out], 1), "masks": np.stack([o[1] for o in out], 1),
            "bg_true": np.stack([o[2] for o in out])}


def _render_view(args) -> tuple:
    """Worker: one subject, one camera of the data set."""
    cfg, subject, view = args
    joints = subject_motion(cfg, subject)["joints"]
    rng = np.random.default_rng([cfg.seed, SUBJECTS.index(subject), view])
    return (subject, view) + render_camera(cfg, subject, view, joints, rng)


def _write_subject(folder: Path, cfg: SyntheticConfig, subject: str, views: list) -> None:
    motion = subject_motion(cfg, subject)
    cams = subject_cameras(subject, cfg.image_size)
    images = np.stack([v[0] for v in views], axis=1)  # (T, V, H, W, 3)
    masks = np.stack([v[1] for v in views], axis=1)
    np.save(folder / f"{subject}_images.npy", images)
    np.save(folder / f"{subject}_masks.npy", np.packbits(masks, axis=-1))
    n_bg = cfg.background_frames or None
    bg_median = np.stack([median_background(images[:, v], max_frames=n_bg) for v in range(len(cams))])
    j3 = motion["joints"]
    np.savez(
        folder / f"{subject}_meta.npz",
        joints_3d=j3.astype(np.float32),
        joints_2d=np.stack([project(c.K, c.R, c.t, j3) for c in cams], axis=1).astype(np.float32),
        K=np.stack([c.K for c in cams]).astype(np.float32),
        R=np.stack([c.R for c in cams]).astype(np.float32),
        t=np.stack([c.t for c in cams]).astype(np.float32),
        camera_names=np.array([c.name for c in cams]),
        action=motion["action"],
        bg_true=np.stack([v[2] for v in views]),
        bg_median=np.clip(np.round(bg_median), 0, 255).astype(np.uint8),
    )


def cache_path(cfg: SyntheticConfig) -> Path:
    return cache_dir() / "synthetic" / cfg.cache_key()


def _manifest(cfg: SyntheticConfig, seconds: float, folder: Path) -> dict:
    return {"generator_version": GENERATOR_VERSION, "key": cfg.cache_key(), "params": cfg.key_params(),
            "subjects": list(cfg.subjects), "render_seconds": round(seconds, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sha256": _checksums(folder, cfg)}


class DamagedCache(RuntimeError):
    """A cached file does not match the checksum in the manifest (the cache is re-rendered)."""


def _file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _data_files(cfg: SyntheticConfig) -> list[str]:
    return [f"{s}_{k}" for s in cfg.subjects for k in ("images.npy", "masks.npy", "meta.npz")]


def _checksums(folder: Path, cfg: SyntheticConfig) -> dict[str, str]:
    return {name: _file_sha256(folder / name) for name in _data_files(cfg)}


# files verified in this process: (path, size, mtime ns) -> True; hashing a large set once is enough
_VERIFIED: set[tuple] = set()


def _verify_checksums(path: Path, cfg: SyntheticConfig, manifest: dict) -> None:
    """Raise :class:`DamagedCache` naming the first file whose sha256 differs from the manifest's."""
    stored = manifest.get("sha256")
    if stored is None:  # written before checksums: record them now (nothing to compare with)
        manifest["sha256"] = _checksums(path, cfg)
        tmp = path / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, path / "manifest.json")
        stored = manifest["sha256"]
    for name in _data_files(cfg):
        f = path / name
        st = f.stat()
        key = (str(f), st.st_size, st.st_mtime_ns)
        if key in _VERIFIED:
            continue
        if stored.get(name) != _file_sha256(f):
            raise DamagedCache(f"{f} is damaged (its sha256 differs from the one in {path / 'manifest.json'})")
        _VERIFIED.add(key)


def _check_existing(path: Path, cfg: SyntheticConfig) -> bool:
    """True when ``path`` holds this data set; raise when it holds something else, and
    :class:`DamagedCache` when one of its files no longer matches its checksum."""
    mf = path / "manifest.json"
    if not mf.is_file():
        raise RuntimeError(f"{path} exists but has no manifest.json: it was not written by this generator "
                           f"or a copy was interrupted. Move it away (nothing is deleted automatically).")
    m = json.loads(mf.read_text())
    if m.get("generator_version") != GENERATOR_VERSION or m.get("params") != cfg.key_params():
        raise RuntimeError(f"{path} holds a data set with other parameters (manifest {mf}); "
                           f"set KP3D_CACHE_DIR to another folder or move it away.")
    missing = [name for name in _data_files(cfg) if not (path / name).is_file()]
    if missing:
        raise RuntimeError(f"{path} is incomplete (missing {missing[0]}...): move it away to re-render.")
    _verify_checksums(path, cfg, m)
    return True


def ensure_rendered(cfg: SyntheticConfig, progress: bool = True) -> Path:
    """Render the data set unless the cache already holds it; returns its folder."""
    cfg = cfg.validate()
    path = cache_path(cfg)
    try:
        if path.exists() and _check_existing(path, cfg):
            return path
    except DamagedCache as e:
        # the folder is this generator's own cache of these parameters (the manifest says so), and
        # everything in it can be rendered again: replace it rather than train on damaged frames
        warnings.warn(f"synthetic data cache: {e}; rendering the data set again (delete {path} yourself "
                      f"if this repeats: the disk may be failing)", stacklevel=2)
        shutil.rmtree(path)

    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=False)
    try:
        start = time.time()
        jobs = [(cfg, s, v) for s in cfg.subjects for v in range(4)]
        workers = cfg.workers or min(2, os.cpu_count() or 1)
        results: dict[str, list] = {s: [None] * 4 for s in cfg.subjects}
        bar = tqdm(total=len(jobs), desc=f"rendering synthetic humans ({len(cfg.subjects)} subjects x 4 views)",
                   unit="view", disable=not progress)
        done = {s: 0 for s in cfg.subjects}

        def collect(res):
            subject, view, images, masks, bg_true = res
            results[subject][view] = (images, masks, bg_true)
            done[subject] += 1
            bar.update(1)
            if done[subject] == 4:  # write as soon as a subject is complete, then free its memory
                _write_subject(tmp, cfg, subject, results[subject])
                results[subject] = [None] * 4

        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for res in pool.map(_render_view, jobs):
                    collect(res)
        else:
            for job in jobs:
                collect(_render_view(job))
        bar.close()
        (tmp / "manifest.json").write_text(json.dumps(_manifest(cfg, time.time() - start, tmp), indent=1))
        try:
            tmp.rename(path)
        except OSError:  # someone else finished the same data set first: use theirs
            if not (path.exists() and _check_existing(path, cfg)):
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # only our own temporary folder
        raise
    return path


def load_subject(path: Path, subject: str, mmap: bool = True) -> dict:
    """Arrays of one subject from a rendered folder (images memory-mapped by default)."""
    path = Path(path)
    meta = dict(np.load(path / f"{subject}_meta.npz"))
    meta["images"] = np.load(path / f"{subject}_images.npy", mmap_mode="r" if mmap else None)
    meta["masks_packed"] = np.load(path / f"{subject}_masks.npy", mmap_mode="r" if mmap else None)
    return meta


def split_subjects(split: str, subjects=SUBJECTS) -> tuple[str, ...]:
    """Subjects of a split: "train" (S1, S5-S8), "test" (S9, S11) or "all"."""
    pick = {"train": TRAIN_SUBJECTS, "test": TEST_SUBJECTS, "all": SUBJECTS}
    if split not in pick:
        raise ValueError(f"split must be one of {list(pick)}, got {split!r}")
    return tuple(s for s in pick[split] if s in subjects)


def _to_chw(x: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(x)).movedim(-1, -3).float().div_(255.0)  # copy: memmaps are read-only


class SyntheticDataset(Dataset):
    """The rendered synthetic humans (``data_utils.synthetic``), rendered on first use and cached.

    Images are pinhole renders (no lens distortion); ``gt.joints_2d`` are the pinhole projections
    of ``gt.joints_3d`` with the sample's K, R, t. Backgrounds are the per-camera median over the
    subject's whole sequence (``SyntheticConfig.background_frames`` frames when set).

    Args:
        config: a :class:`SyntheticConfig` (a profile's: ``kp3d.profiles.synthetic_config(profile)``).
        split: "train" (S1, S5-S8), "test" (S9, S11) or "all".
        frame_step: keep every ``frame_step``-th frame.
        progress: show the rendering progress bar.

    Example:
        >>> ds = SyntheticDataset(SyntheticConfig(image_size=64, frames_per_subject=40, supersample=1), "test")  # doctest: +SKIP
        >>> ds[0]["images"].shape  # doctest: +SKIP
        torch.Size([4, 3, 64, 64])
    """

    def __init__(self, config: SyntheticConfig | None = None, split: str = "train", frame_step: int = 1,
                 progress: bool = True):
        self.config = config or SyntheticConfig()
        self.split = split
        self.subjects = split_subjects(split, self.config.subjects)
        if not self.subjects:
            raise ValueError(f"split {split!r} has no subject among {self.config.subjects}")
        if frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        self.root = ensure_rendered(self.config, progress=progress)
        self._data = {s: load_subject(self.root, s) for s in self.subjects}
        self._index = [(s, f) for s in self.subjects for f in range(0, len(self._data[s]["joints_3d"]), frame_step)]
        self._tensors = {s: {
            "backgrounds": _to_chw(d["bg_median"]), "gt_backgrounds": _to_chw(d["bg_true"]),
            "K": torch.from_numpy(d["K"]), "R": torch.from_numpy(d["R"]), "t": torch.from_numpy(d["t"]),
        } for s, d in self._data.items()}

    def __len__(self) -> int:
        return len(self._index)

    def frame_info(self, i: int) -> dict:
        s, f = self._index[i]
        split = "train" if s in split_subjects("train") else "test"
        return {"subject": s, "frame": f, "split": split, "action": str(self._data[s]["action"][f])}

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        i = i % len(self)
        s, f = self._index[i]
        d, tt = self._data[s], self._tensors[s]
        W = d["images"].shape[-2]
        masks = np.unpackbits(d["masks_packed"][f], axis=-1, count=W)  # (V, H, W)
        return {
            "images": _to_chw(d["images"][f]),
            "backgrounds": tt["backgrounds"],
            "K": tt["K"], "R": tt["R"], "t": tt["t"],
            "index": torch.tensor(i, dtype=torch.int64),
            "gt": {
                "joints_3d": torch.from_numpy(d["joints_3d"][f].copy()),
                "joints_2d": torch.from_numpy(d["joints_2d"][f].copy()),
                "masks": torch.from_numpy(masks[:, None].astype(np.float32)),
                "backgrounds": tt["gt_backgrounds"],
            },
        }
