"""Your own calibrated rig: synchronised videos (or image folders) plus a calibration file.

Folder layout a user brings (``data="rig:/path/to/my_rig"``)::

{layout}

What the loader does, in order:

1. reads the calibration (:func:`data_utils.calibration.load_calibration`: anipose/Pose2Sim TOML,
   OpenCV YAML/JSON, Human3.6M-style JSON) and normalises it to mm, world-to-camera, z up;
2. matches one video file or image folder per calibrated camera by name (case-insensitive file stem,
   in the root or in ``videos/``). A camera without a video, a video without a camera, fewer than
   two cameras, a video whose size is not the calibration's up to a uniform scale and a crop or
   pad of at most 2% (:func:`recorded_camera`: what a camera or encoder does, e.g. 1088 rows
   calibrated, 1080 recorded; centred unless ``crop_edge`` says which edge; the intrinsics follow
   with a warning), or frame counts that differ
   are errors naming the fix (``trim=True`` cuts every camera to the shortest one with a warning
   instead: only right when the recordings start together);
3. decodes each camera once (PyAV), **undistorts the images** with the camera's lens model
   (``cv2.remap`` to a pinhole image with the same K) so that ``P = K [R | t]`` is exact for the
   triangulation downstream, fits them to a square ``image_size`` (``fit="pad"``: keep the aspect
   ratio and pad with black, any orientation; ``fit="stretch"``: scale each axis) with the intrinsics
   updated to match (``Camera.resized`` plus the padding offset), and caches the result as a
   memory-mapped uint8 array under ``data_utils.cache.cache_dir()/rig`` (keyed by the files' sizes and
   times, the calibration and the options, so a changed input is re-decoded);
4. backgrounds per camera, in this order of preference: an image of the empty scene
   (``background/<camera>.png``), an empty-scene clip (``background/<camera>.mp4`` or a folder),
   else the per-pixel median over the recording (``data_utils.background.median_background``). A
   median is checked for contamination (:func:`background_contamination`) and a
   :class:`ContaminatedBackgroundWarning` says how to fix it (not caught: someone who stands still
   in one place for most of the recording while another person moves; see docs/own_rig.md); a
   supplied empty scene is checked against the recording the same way when the recording's own
   median is clean (someone standing in the "empty" scene differs from most frames where the
   recording shows the scene);
5. optional labels ``joints_3d.npy`` (T, 17, 3) in the calibration's world units and frame give the
   ``gt`` entry (3D joints and their pinhole projections); without them there is no ``gt`` key.

The options of the loader are also part of the data spec, so that ``kp3d-train --data`` and the
notebooks' ``DATA`` reach them: ``rig:/data/my_rig?trim=true&cameras=cam1,cam3&units=m&up_axis=-y``
(and ``backgrounds=/folder``, ``max_frames=N``, ``crop_edge=end``); :func:`parse_rig_spec` reads them.

Samples follow docs/architecture.md (``images``, ``backgrounds``, ``K``, ``R``, ``t``, ``index``,
optional ``gt``). A rig has no held-out split: every ``split`` returns all (selected) frames; an export
(:mod:`kp3d.export`) holds each frame once, the last fifth labelled "test".

Example:
    >>> ds = RigDataset("my_rig", image_size=128)  # doctest: +SKIP
    >>> ds[0]["images"].shape  # doctest: +SKIP
    torch.Size([3, 3, 128, 128])
"""
from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .background import median_background
from .cache import cache_dir
from .calibration import Calibration, load_calibration, undistortion_maps
from .frame_cache import decode_cached
from .rig_background import MIN_CHECK_FRAMES, ContaminatedBackgroundWarning, background_contamination  # noqa: F401 (part of this API)
from .rig_files import CALIBRATION_NAMES, RIG_LAYOUT, _background_source, find_calibration, howto, match_sources, too_few_cameras, unreadable_frames  # noqa: F401 (part of this API)
from .rig_geometry import CROP_EDGES, FITS, MAX_CROP_PAD, _prepare, fit_camera, recorded_camera  # noqa: F401 (API)
from .rig_spec import RIG_OPTIONS, parse_rig_spec, rig_root, with_rig_options  # noqa: F401 (part of this API)
from .video import image_files, iter_frames, video_info

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# the data set
# ---------------------------------------------------------------------------------------------
class RigDataset(Dataset):
    """A user's own calibrated multi-view recording, with the sample interface of the other data sets.

    Args:
        root: the rig folder (layout in the module docstring).
        calibration: the calibration file (default: found in ``root``).
        image_size: side of the square views fed to the model (the profile's ``image_size``).
        split: "train", "test" or "all": a rig has no held-out part, all return every frame.
        fit: "pad" (keep the aspect ratio, pad with black) or "stretch" (scale each axis).
        frame_step: keep every ``frame_step``-th frame; max_frames: at most this many (after the step).
        trim: cut cameras to the shortest frame count (with a warning) instead of raising.
        cameras: names of the cameras to use, in this order (default: all, in the calibration's order).
        backgrounds: None (``root/background`` when present), a folder, or dict name -> image/clip path.
        background_frames: frames used for a median background (evenly spaced).
        units, up_axis, subject: passed to :func:`data_utils.calibration.load_calibration`.
        cache: keep decoded frames under ``data_utils.cache.cache_dir()/rig`` (False: a temporary in-memory array).
        progress: tqdm bars while decoding.
        crop_edge: where a video smaller or larger than its calibration lost or gained its pixels:
            "centre" (default), "start" (top/left) or "end" (bottom/right); :func:`recorded_camera`.
    """

    held_out = False  # every split is the same frames (kp3d.export exports each frame once)

    def __init__(self, root: str | Path, calibration: str | Path | None = None, image_size: int = 128,
                 split: str = "train", fit: str = "pad", frame_step: int = 1, max_frames: int | None = None,
                 trim: bool = False, cameras: list[str] | None = None, backgrounds=None,
                 background_frames: int = 200, units: str = "auto", up_axis: str = "auto",
                 subject: str | None = None, cache: bool = True, progress: bool = True, crop_edge: str = "centre"):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"rig folder {self.root} not found.\nExpected layout:\n{RIG_LAYOUT}")
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        if frame_step < 1 or (max_frames is not None and max_frames < 1):
            raise ValueError(f"frame_step and max_frames must be >= 1, got {frame_step}, {max_frames}")
        self.split, self.image_size, self.fit = split, int(image_size), fit
        calib_path = Path(calibration).expanduser() if calibration is not None else find_calibration(self.root)
        self.calibration: Calibration = load_calibration(calib_path, units=units, up_axis=up_axis, subject=subject)
        conv = self.calibration.conversions[1:]
        changed = ([c for c in conv if c.startswith("units:")] if any("converted" in c for c in conv) else []) + \
            [c for c in conv if c.startswith("up axis")]
        if changed:  # the file's numbers are not used as written: say so where the user looks
            log.warning("rig %s: calibration %s: %s", self.root, calib_path.name, "; ".join(changed))
        names = self.calibration.names if cameras is None else list(cameras)
        unknown = [n for n in names if n not in self.calibration.names]
        if unknown:
            raise ValueError(f"cameras={cameras}: {unknown} not in the calibration (cameras: {self.calibration.names})")
        if len(names) < 2:
            raise ValueError(too_few_cameras(self.root, names))
        self.sources = match_sources(self.root, names, allow_extra=cameras is not None)
        self.camera_names = names

        # sizes and frame counts
        infos = {n: video_info(self.sources[n]) for n in names}
        self.crop_edge = crop_edge
        self.size_changes: dict[str, str] = {}  # camera -> how its video differs from its calibration
        native = []
        for n in names:
            cam, info = self.calibration.camera(n), infos[n]
            if (info["width"], info["height"]) != (cam.width, cam.height):
                fitted = recorded_camera(cam, info["width"], info["height"], crop_edge)
                if fitted is None:
                    raise ValueError(
                        f"camera {n}: video {self.sources[n].name} is {info['width']}x{info['height']} but the "
                        f"calibration says {cam.width}x{cam.height} (another aspect ratio, not a uniform scale "
                        f"plus a crop/pad of at most {100 * MAX_CROP_PAD:.0f}%): wrong file or wrong calibration? "
                        f"Fix: calibrate at the recording's resolution.")
                # a warning: the user should know the intrinsics are not the file's
                self.size_changes[n] = (f"calibrated at {cam.width}x{cam.height}, video is {info['width']}x"
                                        f"{info['height']} -> intrinsics rescaled ({fitted[1]}; crop_edge="
                                        f"{crop_edge!r}: {howto('crop_edge')})")
                log.warning("camera %s: %s", n, self.size_changes[n])
                cam = fitted[0]
            native.append(cam)
        counts = {n: infos[n]["frames"] for n in names}
        n_frames = min(counts.values())
        if len(set(counts.values())) > 1:
            msg = f"rig {self.root}: frame counts differ across cameras: {counts}"
            if not trim:
                raise ValueError(msg + ". The videos must be synchronised and equally long. Fix: cut them to the "
                                 "same frames, or pass trim=True to keep the first "
                                 f"{n_frames} frames of each (right only when they start together; "
                                 f"{howto('trim')}).")
            warnings.warn(msg + f"; trim=True: keeping the first {n_frames} frames of every camera", stacklevel=2)
        if n_frames < 1:
            raise ValueError(f"rig {self.root}: no frames in {[n for n in names if counts[n] == 0]}")
        self.frames = list(range(0, n_frames, frame_step))[:max_frames]
        self._native = native
        fitted = [fit_camera(c, self.image_size, fit) for c in native]
        self.cameras = [c for c, _ in fitted]
        self._placement = [p for _, p in fitted]
        self._maps = [undistortion_maps(c, self.calibration.distortion[c.name]) for c in native]
        self.subjects = (self.root.name,)

        self._images = self._decode_all(cache, progress)  # (T, V, S, S, 3) uint8
        self.background_sources: dict[str, str] = {}
        self.background_report: dict[str, dict] = {}
        bgs = [self._background(v, backgrounds, background_frames, progress) for v in range(len(names))]
        self._backgrounds = torch.from_numpy(np.stack(bgs)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
        self._joints = self._load_labels(n_frames)
        K = np.stack([c.K for c in self.cameras])
        self._K = torch.tensor(K, dtype=torch.float32)
        self._R = torch.tensor(np.stack([c.R for c in self.cameras]), dtype=torch.float32)
        self._t = torch.tensor(np.stack([c.t for c in self.cameras]), dtype=torch.float32)

    # -- decoding ---------------------------------------------------------------------------
    def _cache_key(self) -> str:
        stats = [[str(Path(self.sources[n]).resolve()), *self._stat(self.sources[n])] for n in self.camera_names]
        calib = Path(self.calibration.source)
        payload = [stats, hashlib.sha1(calib.read_bytes()).hexdigest(),
                   self.calibration.conversions, self.image_size, self.fit, self.frames[:3], len(self.frames),
                   self.frames[-1]] + ([self.crop_edge] if self.crop_edge != "centre" else [])  # K moved
        return hashlib.sha1(json.dumps(payload, default=str).encode()).hexdigest()[:16]

    @staticmethod
    def _stat(p: Path) -> list:
        p = Path(p)
        if p.is_dir():
            files = image_files(p)
            return [len(files), max(f.stat().st_mtime_ns for f in files), sum(f.stat().st_size for f in files)]
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]

    def _decode_camera(self, v: int, out: np.ndarray, progress: bool) -> None:
        name = self.camera_names[v]
        wanted = set(self.frames)
        last = self.frames[-1]
        k = 0
        bar = tqdm(total=len(self.frames), desc=f"decoding {name}", disable=not progress, leave=False)
        try:
            for i, img in enumerate(iter_frames(self.sources[name], max_frames=last + 1)):
                if i in wanted:
                    out[k, v] = _prepare(img, self._maps[v], self._placement[v], self.image_size)
                    k += 1
                    bar.update(1)
        except ValueError as e:  # FFmpeg stopped in the middle: the frames before are still usable
            raise ValueError(unreadable_frames(self.root, name, self.sources[name], k, len(self.frames), str(e))) from None
        finally:
            bar.close()
        if k != len(self.frames):
            raise ValueError(unreadable_frames(self.root, name, self.sources[name], k, len(self.frames)))

    def _decode_all(self, cache: bool, progress: bool) -> np.ndarray:
        shape = (len(self.frames), len(self.camera_names), self.image_size, self.image_size, 3)

        def fill(out: np.ndarray) -> None:
            for v in range(len(self.camera_names)):
                self._decode_camera(v, out, progress)

        if not cache:
            out = np.zeros(shape, np.uint8)
            fill(out)
            return out
        path = cache_dir() / "rig" / f"{self.root.name}-{self._cache_key()}.npy"
        if path.is_file():
            arr = np.load(path, mmap_mode="r")
            if arr.shape == shape:
                log.info("rig %s: decoded frames from the cache %s", self.root, path)
                return arr
        arr = decode_cached(path, shape, fill)
        log.info("rig %s: %d frames x %d cameras decoded to %s", self.root, shape[0], shape[1], path)
        return arr

    # -- backgrounds ------------------------------------------------------------------------
    def _background(self, v: int, backgrounds, background_frames: int, progress: bool) -> np.ndarray:
        name = self.camera_names[v]
        src = _background_source(self.root, name, backgrounds)
        if src is not None:
            info = video_info(src)
            if (info["width"], info["height"]) != (self._native[v].width, self._native[v].height):
                raise ValueError(f"camera {name}: background {src} is {info['width']}x{info['height']}, the video "
                                 f"is {self._native[v].width}x{self._native[v].height}; they must match")
            frames = [_prepare(img, self._maps[v], self._placement[v], self.image_size)
                      for img in iter_frames(src, step=max(1, info["frames"] // max(1, background_frames)),
                                             max_frames=background_frames)]
            kind = "empty-scene image" if len(frames) == 1 else f"empty-scene clip ({len(frames)} frames, median)"
            self.background_sources[name] = f"{kind}: {src}"
            log.info("camera %s: background from the %s", name, self.background_sources[name])
            bg = np.asarray(median_background(np.stack(frames)), dtype=np.float32)  # 0-255
            self._check_supplied_background(v, src, bg, background_frames)
            return bg
        T = len(self.frames)
        idx = np.unique(np.linspace(0, T - 1, min(T, background_frames)).round().astype(int))
        frames = np.asarray(self._images[idx, v])
        bg = np.asarray(median_background(frames), dtype=np.float32)  # 0-255, not rounded
        self.background_sources[name] = f"median over {len(idx)} frames"
        if len(idx) < MIN_CHECK_FRAMES:
            report = {"contaminated": True, "reason": f"a median over only {len(idx)} frames keeps whatever was in "
                      f"them (at least {MIN_CHECK_FRAMES} are needed to check it)"}
        else:
            report = background_contamination(frames, bg)
        self.background_report[name] = report
        if report["contaminated"]:
            msg = (f"camera {name}: the median background looks contaminated: {report['reason']}. The model would "
                   f"learn to ignore whoever is burned into it. Fix: record the empty scene and put an image at "
                   f"{self.root / 'background' / (name + '.png')} or a clip at "
                   f"{self.root / 'background' / (name + '.mp4')} (or pass backgrounds=FOLDER; "
                   f"{howto('backgrounds')}).")
            log.warning("%s", msg)
            warnings.warn(msg, ContaminatedBackgroundWarning, stacklevel=3)
        return bg

    def _check_supplied_background(self, v: int, src: Path, bg: np.ndarray, background_frames: int) -> None:
        """Warn when a supplied empty scene shows someone: it then differs from most frames of the recording
        where the recording's own median sees a clean, static scene.

        Only when that median is itself clean: when the recording's person stands still, the frames differ
        from a truly empty scene in the same way, and the supplied scene is the fix, not a fault.
        """
        T = len(self.frames)
        idx = np.unique(np.linspace(0, T - 1, min(T, background_frames)).round().astype(int))
        if len(idx) < MIN_CHECK_FRAMES:
            return
        frames = np.asarray(self._images[idx, v])
        if background_contamination(frames, median_background(frames))["contaminated"]:
            return
        report = background_contamination(frames, bg)
        if not report["contaminated"]:
            return
        name = self.camera_names[v]
        self.background_report[name] = report
        msg = (f"camera {name}: the supplied background {src} does not look empty: {report['reason']}, while the "
               f"recording itself shows a static scene there. Someone may stand in it (or the scene changed since "
               f"it was recorded), and the model would learn to ignore them. Fix: record the empty scene again, "
               f"or remove {src.name} to use the median over the recording.")
        log.warning("%s", msg)
        warnings.warn(msg, ContaminatedBackgroundWarning, stacklevel=4)

    # -- labels -----------------------------------------------------------------------------
    def _load_labels(self, n_frames: int) -> np.ndarray | None:
        path = self.root / "joints_3d.npy"
        if not path.is_file():
            return None
        X = np.load(path)
        if X.ndim != 3 or X.shape[-1] != 3 or X.shape[0] < n_frames:
            raise ValueError(f"{path}: expected (T, J, 3) with T >= {n_frames} frames, got {X.shape}")
        if not np.all(np.isfinite(X[:n_frames])):
            raise ValueError(f"{path}: contains non-finite numbers; mark missing labels by removing the file")
        return self.calibration.points_to_world(X[self.frames]).astype(np.float32)

    # -- the Dataset interface --------------------------------------------------------------
    @property
    def has_labels(self) -> bool:
        return self._joints is not None

    def __len__(self) -> int:
        return len(self.frames)

    def frame_info(self, i: int) -> dict:
        return {"subject": self.root.name, "frame": self.frames[i], "split": self.split, "action": "rig"}

    def view_frames(self, view: int) -> np.ndarray:
        """(T, S, S, 3) uint8: every frame of camera ``view`` as the model sees it (undistorted, fitted),
        memory-mapped when cached (for background studies, notebook 01)."""
        if not 0 <= view < len(self.camera_names):
            raise IndexError(f"view {view} out of range: the rig has {len(self.camera_names)} cameras "
                             f"{self.camera_names} (views 0..{len(self.camera_names) - 1})")
        return self._images[:, view]

    def empty_scene_background(self, view: int) -> np.ndarray | None:
        """(S, S, 3) float32 in [0, 1]: the background of camera ``view`` when it comes from an image or
        clip of the empty scene (``background/``), else None (it is a median over the recording)."""
        name = self.camera_names[view]
        if not self.background_sources.get(name, "").startswith("empty-scene"):
            return None
        return self._backgrounds[view].permute(1, 2, 0).numpy()

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        i = i % len(self)
        images = torch.from_numpy(np.array(self._images[i])).permute(0, 3, 1, 2).float().div_(255.0)
        sample = {"images": images, "backgrounds": self._backgrounds, "K": self._K, "R": self._R, "t": self._t,
                  "index": torch.tensor(i, dtype=torch.int64)}
        if self._joints is not None:
            X = self._joints[i]
            j2d = np.stack([c.project(X) for c in self.cameras])  # images are undistorted: pinhole
            sample["gt"] = {"joints_3d": torch.from_numpy(X.copy()),
                            "joints_2d": torch.tensor(j2d, dtype=torch.float32)}
        return sample

    def describe(self) -> str:
        """A few lines for the log: cameras, conversions, sizes (a video at another size than its
        calibration, the fit into the square), undistortion, backgrounds and their check."""
        lines = [f"rig {self.root}: {len(self.camera_names)} cameras, {len(self)} frames, "
                 f"{self.image_size}x{self.image_size} ({self.fit}), labels: {'yes' if self.has_labels else 'no'}"]
        lines += [f"  {c}" for c in self.calibration.conversions]
        for n, cam, (w, h, left, top) in zip(self.camera_names, self._native, self._placement):
            d = self.calibration.distortion[n]
            lines.append(f"  {n}: {self.sources[n].name} {cam.width}x{cam.height}, "
                         f"{'undistorted (' + d.model + ')' if d is not None else 'no distortion'}, "
                         f"resized to {w}x{h}" + (f" at column {left}, row {top}" if (w, h) != (self.image_size,) * 2
                                                   else "") + f" of {self.image_size}x{self.image_size}")
            if n in self.size_changes:
                lines.append(f"    size: {self.size_changes[n]}")
            report = self.background_report.get(n)
            check = ("compared with the recording where the recording's own median is clean" if report is None
                     else f"CONTAMINATED: {report['reason']}" if report["contaminated"] else "checked, clean")
            lines.append(f"    background: {self.background_sources[n]}; {check}")
        return "\n".join(lines)


__doc__ = __doc__.replace("{layout}", "\n".join("    " + line for line in RIG_LAYOUT.splitlines()))


def rig_camera_names(spec: str, calibration: str | Path | None = None, **calibration_kw) -> list[str]:
    """The cameras of a rig, in the calibration's order, read from its calibration file only (no video
    is decoded): what a model trained on the rig takes as its views.

    Args:
        spec: "rig:/path/to/folder" (or just the path).
        calibration: the calibration file (default: found in the folder, :func:`find_calibration`).
        calibration_kw: ``units``, ``up_axis``, ``subject`` of :func:`data_utils.calibration.load_calibration`.
    """
    root = rig_root(spec)
    if not root.is_dir():
        raise FileNotFoundError(f"rig folder {root} not found (data={spec!r}). Fix: point DATA / --data at the "
                                f"folder holding the videos and the calibration.\nExpected layout:\n{RIG_LAYOUT}")
    options = parse_rig_spec(spec)[1]
    for key in ("units", "up_axis"):
        if key in options:
            calibration_kw.setdefault(key, options[key])
    path = Path(calibration).expanduser() if calibration else find_calibration(root)
    names = load_calibration(path, **calibration_kw).names
    if "cameras" in options:
        unknown = [n for n in options["cameras"] if n not in names]
        if unknown:
            raise ValueError(f"data={spec!r}: cameras {unknown} are not in the calibration (cameras: {names})")
        return list(options["cameras"])
    return names


def make_rig_dataset(spec: str, calibration: str | None = None, split: str = "train", **overrides) -> RigDataset:
    """The rig data set for ``data="rig:PATH"`` (``kp3d.profiles.make_dataset`` sets a profile's ``image_size``).

    Args:
        spec: "rig:/path/to/folder" (or just the path).
        calibration: the calibration file (default: found in the folder).
        split: "train", "test" or "all" (all frames for each).
        overrides: any :class:`RigDataset` argument (``image_size``, ``fit``, ``frame_step``, ``trim`` ...).
    """
    root = rig_root(spec)
    for key, value in parse_rig_spec(spec)[1].items():  # arguments given here win over the spec's
        overrides.setdefault(key, value)
    return RigDataset(root, calibration=calibration, split=split, **overrides)
