"""Multi-view data sets with one interface: synthetic (default), Human3.6M and MPI-INF-3DHP.

Every ``__getitem__`` returns the sample dict of docs/architecture.md::

    images       (V, 3, H, W) float32 in [0, 1]
    backgrounds  (V, 3, H, W) float32, the ESTIMATED (per-pixel median) background per view
    K            (V, 3, 3) float32 pixel intrinsics at this resolution (OpenCV pixel centres)
    R            (V, 3, 3) float32 world-to-camera rotation
    t            (V, 3) float32 world-to-camera translation, mm
    index        int64 scalar
    gt           dict, ONLY for evaluation and ablations:
        joints_3d (17, 3) world mm; joints_2d (V, 17, 2) pixels; masks (V, 1, H, W) {0, 1}
        (synthetic only); backgrounds (V, 3, H, W) the true background (synthetic only)

The model may read only the first six; ``gt`` holds labels. ``frame_info(i)`` returns
``dict(subject, frame, split, action)``.

Use :func:`make_dataset`: ``make_dataset("synthetic", "cpu-demo", "train")``,
``make_dataset("h36m:/data/h36m", "cpu-demo", "test")``, ``make_dataset("3dhp:/data/3dhp", ...)`` or,
for a user's own calibrated cameras, ``make_dataset("rig:/data/my_rig", "cpu-demo", "train",
calibration="")`` (``data_utils.rig``; "" = the calibration file inside the folder). The notebooks
pass their ``DATA`` and ``CALIBRATION`` parameters this way; :func:`data_views` and
:func:`view_sequence` are their other helpers.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .background import median_background
from .skeleton import NUM_JOINTS
from .synthetic import SyntheticConfig, ensure_rendered, load_subject, split_subjects


def _to_chw(x: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(x)).movedim(-1, -3).float().div_(255.0)  # copy: memmaps are read-only


class SyntheticDataset(Dataset):
    """The rendered synthetic humans (``data_utils.synthetic``), rendered on first use and cached.

    Images are pinhole renders (no lens distortion); ``gt.joints_2d`` are the pinhole projections
    of ``gt.joints_3d`` with the sample's K, R, t. Backgrounds are the per-camera median over the
    subject's whole sequence (``SyntheticConfig.background_frames`` frames when set).

    Args:
        config: a :class:`SyntheticConfig` (``SyntheticConfig.for_profile(profile)``).
        split: "train" (S1, S5-S8), "test" (S9, S11) or "all".
        frame_step: keep every ``frame_step``-th frame.
        progress: show the rendering progress bar.

    Example:
        >>> ds = SyntheticDataset(SyntheticConfig.for_profile("smoke"), "test")  # doctest: +SKIP
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


# ------------------------------------------------------------------ real data sets
H36M_LAYOUT = """\
<root>/
  S1/ S5/ S6/ S7/ S8/ S9/ S11/          one folder per subject (those of the split are needed)
    <Action>/                           any action folder, e.g. Directions-1, Walking-2
      imageSequence/
        54138969/ 55011271/ 58860488/ 60457274/
          img_000001.jpg ...            extracted frames (.jpg or .png), same count per camera
      poses_3d.npy                      (T, 17, 3) world mm in H36M 17-joint order, or (T, 32, 3)
                                        in the original 32-joint order (reduced to 17)
Frames come from the released videos (e.g. ffmpeg -i Directions.54138969.mp4
imageSequence/54138969/img_%06d.jpg); poses_3d.npy from D3_Positions (or VideoPose3D's
data_3d_h36m.npz, one array per action)."""

MPI3DHP_LAYOUT = """\
<root>/
  S1/ ... S8/                           training subjects as released
    Seq1/ Seq2/
      camera.calibration                as released (per-sequence intrinsics and extrinsics)
      annot.mat                         as released (annot3: camera-space 28-joint 3D, mm)
      imageFrames/
        video_0/ video_2/ ...           frames extracted from imageSequence/video_<c>.avi:
          frame_000001.jpg ...          ffmpeg -i imageSequence/video_0.avi imageFrames/video_0/frame_%06d.jpg
Reading annot.mat needs scipy (pip install scipy)."""

# the 17 H36M joints within the 32 of the original Human3.6M release
H36M32_TO_17 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
# the 17 H36M joints within MPI-INF-3DHP's 28 (pelvis, hips, knees, ankles, spine, neck as thorax,
# head as neck/nose, head top as head, shoulders, elbows, wrists)
MPI28_TO_17 = [4, 23, 24, 25, 18, 19, 20, 3, 5, 6, 7, 9, 10, 11, 14, 15, 16]


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
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


class _MultiViewFolders(Dataset):
    """Shared machinery: sequences of synchronised per-camera frame files plus 3D joints.

    Subclasses fill ``self._seqs``: list of dict(subject, name, frames (list over views of lists of
    paths), cameras (list of kp3d Camera at native size), joints (T, 17, 3) world mm or None).
    Backgrounds are medians over at most ``background_frames`` frames per sequence and camera, at
    ``image_size``, cached under ``kp3d.profiles.cache_dir()/<kind>_backgrounds``.
    """

    kind = "?"
    layout = ""

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
        from kp3d.profiles import cache_dir

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


class Human36MDataset(_MultiViewFolders):
    """Human3.6M in the extracted-frames layout most public multi-view code uses.

    Expected layout (also in the error messages)::

    {layout}

    Images keep the real lens distortion; the pipeline models pinhole cameras (K, R, t), as the
    paper does. ``gt.joints_2d`` are the distorted projections (where the joints are in the image);
    there are no ground-truth masks. Splits: train S1, S5-S8; test S9, S11 (``frame_step`` 10 is the
    usual test subsampling).

    Args:
        root: the folder above S1, S5, ...
        split: "train", "test" or "all"; subjects: override the split's subjects.
        image_size: square resize of every view (K scaled to match).
        frame_step: keep every n-th frame; background_frames: frames per median background.
    """

    kind = "H36M"
    layout = H36M_LAYOUT
    SPLITS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11"),
              "all": ("S1", "S5", "S6", "S7", "S8", "S9", "S11")}

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 128, frame_step: int = 1,
                 background_frames: int = 200, subjects: tuple[str, ...] | None = None):
        from kp3d.cameras import H36M_CAMERA_IDS, h36m_rig

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
        self._seqs = []
        for subject in subjects:
            sdir = self.root / subject
            cams = h36m_rig(subject)
            for act in sorted(p for p in sdir.iterdir() if p.is_dir()):
                seq_dirs = [act / "imageSequence" / str(cid) for cid in H36M_CAMERA_IDS]
                missing = [str(p.relative_to(self.root)) for p in seq_dirs if not p.is_dir()]
                if missing:
                    raise _layout_error(self.kind, self.root, f"{missing[0]}/ is missing", self.layout)
                frames = [_frame_files(p) for p in seq_dirs]
                counts = {len(v) for v in frames}
                if len(counts) != 1 or 0 in counts:
                    raise _layout_error(self.kind, self.root, f"{act.relative_to(self.root)}: cameras have "
                                        f"{sorted(len(v) for v in frames)} frames (need the same, > 0)", self.layout)
                joints = None
                pose_file = act / "poses_3d.npy"
                if pose_file.is_file():
                    joints = np.load(pose_file).astype(np.float64)
                    if joints.ndim == 3 and joints.shape[1:] == (32, 3):
                        joints = joints[:, H36M32_TO_17]
                    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or len(joints) < len(frames[0]):
                        raise _layout_error(self.kind, self.root, f"{pose_file.relative_to(self.root)} has shape "
                                            f"{joints.shape}, need (T >= {len(frames[0])}, 17 or 32, 3)", self.layout)
                self._seqs.append({"subject": subject, "name": act.name, "frames": frames, "cameras": cams,
                                   "joints": joints})
            if not any(s["subject"] == subject for s in self._seqs):
                raise _layout_error(self.kind, self.root, f"{subject}/ has no action folder", self.layout)
        super().__init__(image_size, background_frames, frame_step)


def parse_3dhp_calibration(path: Path) -> list[dict]:
    """Cameras of an MPI-INF-3DHP ``camera.calibration`` file: list of dict(K, R, t, width, height).

    The file lists per camera ``name``, ``size W H``, ``intrinsic`` (16 numbers, row-major 4x4) and
    ``extrinsic`` (16 numbers, row-major 4x4 world-to-camera, translation in mm).
    """
    cams, cur = [], None
    for line in Path(path).read_text().splitlines():
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "name":
            cur = {}
            cams.append(cur)
        elif cur is None:
            continue
        elif tok[0] == "size":
            cur["width"], cur["height"] = int(tok[1]), int(tok[2])
        elif tok[0] in ("intrinsic", "extrinsic"):
            if len(tok) != 17:
                raise ValueError(f"{path}: '{tok[0]}' needs 16 numbers, found {len(tok) - 1}")
            cur[tok[0]] = np.array(tok[1:], dtype=np.float64).reshape(4, 4)
    out = []
    for c in cams:
        if not {"width", "height", "intrinsic", "extrinsic"} <= set(c):
            raise ValueError(f"{path}: a camera entry lacks size/intrinsic/extrinsic")
        out.append({"K": c["intrinsic"][:3, :3], "R": c["extrinsic"][:3, :3], "t": c["extrinsic"][:3, 3],
                    "width": c["width"], "height": c["height"]})
    return out


class MPI3DHPDataset(_MultiViewFolders):
    """MPI-INF-3DHP training sequences in their released layout, frames extracted.

    Expected layout (also in the error messages)::

    {layout}

    The calibration is per sequence; world coordinates are those of its extrinsics (mm). 3D joints
    are the released camera-space ``annot3`` of the first view moved to the world frame and reduced
    to the 17 H36M joints (``MPI28_TO_17``). Splits: train S1-S6, test S7-S8 (the paper's Sec. 4.1).

    Args:
        root: the folder above S1..S8; cameras: which of the 14 camera indices (default the 4
            chest-height ones 0, 2, 7, 8); others as :class:`Human36MDataset`.
    """

    kind = "3DHP"
    layout = MPI3DHP_LAYOUT
    SPLITS = {"train": tuple(f"S{i}" for i in range(1, 7)), "test": ("S7", "S8"),
              "all": tuple(f"S{i}" for i in range(1, 9))}

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 128, frame_step: int = 1,
                 background_frames: int = 200, cameras: tuple[int, ...] = (0, 2, 7, 8),
                 subjects: tuple[str, ...] | None = None):
        from kp3d.cameras import Camera

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
        self._seqs = []
        for subject in subjects:
            sdir = self.root / subject
            for seq in sorted(p for p in sdir.iterdir() if p.is_dir() and p.name.startswith("Seq")):
                calib = seq / "camera.calibration"
                if not calib.is_file():
                    raise _layout_error(self.kind, self.root, f"{calib.relative_to(self.root)} is missing", self.layout)
                try:
                    cal = parse_3dhp_calibration(calib)
                except ValueError as e:
                    raise _layout_error(self.kind, self.root, f"malformed calibration ({e})", self.layout) from e
                if max(cameras) >= len(cal):
                    raise _layout_error(self.kind, self.root, f"{calib.relative_to(self.root)} has {len(cal)} "
                                        f"cameras, camera {max(cameras)} requested", self.layout)
                cams = [Camera(name=f"{subject}/{seq.name}/cam{c}", K=cal[c]["K"], R=cal[c]["R"], t=cal[c]["t"],
                               width=cal[c]["width"], height=cal[c]["height"], dist=None) for c in cameras]
                dirs = [seq / "imageFrames" / f"video_{c}" for c in cameras]
                missing = [str(p.relative_to(self.root)) for p in dirs if not p.is_dir()]
                if missing:
                    raise _layout_error(self.kind, self.root, f"{missing[0]}/ is missing (extract the video)", self.layout)
                frames = [_frame_files(p) for p in dirs]
                n = min(len(v) for v in frames)
                if n == 0:
                    raise _layout_error(self.kind, self.root, f"{seq.relative_to(self.root)} has no frames", self.layout)
                frames = [v[:n] for v in frames]
                joints = self._load_joints(seq, cams[0], cameras[0], n)
                self._seqs.append({"subject": subject, "name": seq.name, "frames": frames, "cameras": cams,
                                   "joints": joints})
        super().__init__(image_size, background_frames, frame_step)

    def _load_joints(self, seq: Path, cam, cam_index: int, n: int) -> np.ndarray | None:
        annot = seq / "annot.mat"
        if not annot.is_file():
            return None
        try:
            from scipy.io import loadmat
        except ImportError as e:
            raise ImportError(f"reading {annot} needs scipy: pip install scipy") from e
        a3 = loadmat(str(annot))["annot3"]
        Xc = np.asarray(a3[cam_index][0], dtype=np.float64).reshape(-1, 28, 3)[:n, MPI28_TO_17]
        return (Xc - cam.t) @ cam.R  # camera -> world: R^T (X_c - t)


def _doc_layout(cls, layout: str) -> None:
    cls.__doc__ = cls.__doc__.replace("{layout}", "\n    ".join(layout.splitlines()))


_doc_layout(Human36MDataset, H36M_LAYOUT)
_doc_layout(MPI3DHPDataset, MPI3DHP_LAYOUT)


def check_calibration(data: str, calibration: str | Path | None) -> str | None:
    """The rig calibration file to use with ``data`` (None: the one inside the rig folder).

    A calibration file belongs to ``data="rig:PATH"`` only; with any other data set it is an error
    (the synthetic set and Human3.6M / 3DHP bring their own cameras).
    """
    if calibration is None or str(calibration).strip() == "":
        return None
    if not str(data).startswith("rig:"):
        raise ValueError(f"calibration={str(calibration)!r} is only used with data='rig:/path/to/folder', but "
                         f"data={data!r}. Fix: leave CALIBRATION empty (--calibration unset), or set DATA to "
                         f"'rig:<your rig folder>'")
    return str(calibration)


def synthetic_options(data: str) -> dict | None:
    """The :class:`SyntheticConfig` fields a ``"synthetic[?seed=N]"`` data name sets; None for other data.

    ``seed`` renders the embedded set anew (bodies, clothing, rooms, motions): ``synthetic?seed=3``
    is the validation render settings are chosen on, while ``synthetic`` (seed 0) holds the test
    subjects that results are reported on (docs/recipe.md, "Validation protocol"). Each seed has its
    own cache folder (the seed is part of the cache key).

    Example:
        >>> synthetic_options("synthetic?seed=3"), synthetic_options("synthetic"), synthetic_options("h36m:/x")
        ({'seed': 3}, {}, None)
    """
    name, sep, query = str(data).partition("?")
    if name != "synthetic":
        return None
    out: dict = {}
    for item in (query.split("&") if sep else []):
        key, eq, value = (s.strip() for s in item.partition("="))
        if key != "seed" or not eq or not re.fullmatch(r"\d+", value):
            raise ValueError(f"data={data!r}: {item!r} is not a synthetic option; the one option is the render's "
                             f"data seed, e.g. 'synthetic?seed=3' (an integer >= 0)")
        out["seed"] = int(value)
    return out


def make_dataset(data: str = "synthetic", profile: str = "cpu-demo", split: str = "train",
                 calibration: str | Path | None = None, **overrides) -> Dataset:
    """The data set named by ``data`` at the sizes of ``profile``.

    Args:
        data: "synthetic" (or "synthetic?seed=N", the embedded set rendered with data seed N,
            :func:`synthetic_options`), "h36m:/path/to/root", "3dhp:/path/to/root" or
            "rig:/path/to/folder" (a user's own rig, ``data_utils.rig``).
        profile: a kp3d profile (sets the synthetic preset; the image size of real data defaults to
            ``kp3d.config.get_config(profile).image_size``).
        split: "train", "test" or "all".
        calibration: rig only: the calibration file; None or "" = the one inside the rig folder
            (the notebooks' ``CALIBRATION`` parameter). Any other data set with a calibration raises.
        overrides: synthetic: any :class:`SyntheticConfig` field plus ``frame_step``/``progress``;
            real: ``image_size``, ``frame_step``, ``background_frames``, ``subjects`` (and
            ``cameras`` for 3DHP); rig: any :class:`data_utils.rig.RigDataset` argument.
    """
    from kp3d.profiles import check_profile

    check_profile(profile)
    calibration = check_calibration(data, calibration)
    options = synthetic_options(data)
    if options is not None:
        for key, value in options.items():
            if key in overrides and overrides[key] != value:
                raise ValueError(f"data={data!r} sets {key}={value} but {key}={overrides[key]} was also given: name it once")
            overrides[key] = value
        ds_kw = {k: overrides.pop(k) for k in ("frame_step", "progress") if k in overrides}
        return SyntheticDataset(SyntheticConfig.for_profile(profile, **overrides), split, **ds_kw)
    kind, sep, path = data.partition(":")
    if not sep or not path:
        raise ValueError(f"data={data!r}: expected 'synthetic', 'h36m:/path/to/root', '3dhp:/path/to/root' "
                         f"or 'rig:/path/to/folder'")
    if kind == "rig":  # a user's own calibrated rig (data_utils.rig)
        from .rig import make_rig_dataset

        return make_rig_dataset(data, calibration=calibration, profile=profile, split=split, **overrides)
    if "image_size" not in overrides:
        from kp3d.config import get_config

        overrides["image_size"] = get_config(profile).image_size
    if kind == "h36m":
        return Human36MDataset(path, split, **overrides)
    if kind == "3dhp":
        return MPI3DHPDataset(path, split, **overrides)
    raise ValueError(f"data={data!r}: unknown kind {kind!r}; expected 'synthetic', 'h36m:<root>', '3dhp:<root>' "
                     f"or 'rig:<folder>'")


def absolute_data(data: str, base: str | Path) -> str:
    """``data`` with a relative folder (and a rig's ``backgrounds=`` folder) made absolute against
    ``base``, so that it means the same from any working directory (the notebooks run in notebooks/).

    Example:
        >>> absolute_data("rig:my_rig?trim=true", "/home/me")
        'rig:/home/me/my_rig?trim=true'
        >>> absolute_data("synthetic", "/home/me")
        'synthetic'
    """
    kind, sep, rest = str(data).partition(":")
    if not sep or kind not in ("h36m", "3dhp", "rig") or not rest:
        return str(data)
    path, qsep, query = rest.partition("?")

    def absolute(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else Path(base) / q)

    out = f"{kind}:{absolute(path)}"
    if qsep:
        items = []
        for item in query.split("&"):
            key, eq, value = item.partition("=")
            items.append(f"{key}={absolute(value)}" if key.strip() == "backgrounds" and eq and value else item)
        out += "?" + "&".join(items)
    return out


def data_views(data: str, calibration: str | Path | None = None) -> tuple[int, ...] | None:
    """The view indices a model trained on ``data`` should use: every camera of a rig (read from its
    calibration, no video decoded), None for the other data sets (the profile's ``views``).

    Example:
        >>> data_views("synthetic") is None
        True
    """
    calibration = check_calibration(data, calibration)
    if not str(data).startswith("rig:"):
        return None
    from .rig import rig_camera_names, rig_root, too_few_cameras

    names = rig_camera_names(data, calibration)
    if len(names) < 2:  # said here, before a model is configured with too few views
        raise ValueError(too_few_cameras(rig_root(data), names))
    return tuple(range(len(names)))


def _even_indices(n: int, max_frames: int | None) -> np.ndarray:
    """range(n), or at most ``max_frames`` evenly spaced indices of it."""
    if max_frames is None or n <= max_frames:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(int))


def view_sequence(dataset: Dataset, view: int, subject: str | None = None, max_frames: int | None = 1000) -> dict:
    """One camera's frames over one sequence and the background to compare a median with (notebook 01).

    Where the frames and the reference come from, by data set:

    - synthetic: the rendered frames of ``subject`` and the TRUE background (``"true background"``);
    - a rig (:class:`data_utils.rig.RigDataset`): its frames (one sequence; ``subject`` is ignored);
      the empty-scene image or clip when the rig folder has one (``"empty-scene background"``), else
      the median over the frames (``"median of all frames"``: no truth exists, so smaller medians are
      compared with the best one and the full median's own score is infinite);
    - any other data set: the samples of ``subject`` (all samples when None); the true background
      when they carry ``gt.backgrounds``, else the median over the frames.

    Args:
        dataset: a data set of the sample contract (``make_dataset``).
        view: the camera index.
        subject: the subject (synthetic, Human3.6M, 3DHP); ignored for a rig.
        max_frames: at most this many frames, evenly spaced (a long recording in float64 would not fit
            in memory: 1000 frames of 128 px take 0.4 GB); None = all. The synthetic presets have
            at most 1000 frames per subject.

    Returns:
        dict(frames (T, H, W, 3) float64 in [0, 1], reference (H, W, 3) float64 in [0, 1],
        reference_kind str, name str: a label such as "S9, view 0" or "rig camera cam1").
    """
    from .rig import RigDataset

    n_views = int(dataset[0]["images"].shape[0])
    if not 0 <= view < n_views:
        raise IndexError(f"view {view} out of range: the data set has {n_views} views (VIEW = 0..{n_views - 1})")
    if isinstance(dataset, SyntheticDataset):
        if subject not in dataset.subjects:
            raise ValueError(f"subject {subject!r} is not in the {dataset.split!r} split (subjects: "
                             f"{list(dataset.subjects)}). Fix: set SUBJECT to one of them")
        data = load_subject(dataset.root, subject)
        images = data["images"]
        frames = np.asarray(images[_even_indices(len(images), max_frames), view]) / 255.0
        return {"frames": frames, "reference": data["bg_true"][view] / 255.0,
                "reference_kind": "true background", "name": f"{subject}, view {view}"}
    if isinstance(dataset, RigDataset):
        images = dataset.view_frames(view)
        frames = np.asarray(images[_even_indices(len(images), max_frames)]) / 255.0
        ref = dataset.empty_scene_background(view)
        kind = "empty-scene background"
        if ref is None:
            ref, kind = median_background(frames), "median of all frames"
        return {"frames": frames, "reference": np.asarray(ref, dtype=np.float64), "reference_kind": kind,
                "name": f"rig camera {dataset.camera_names[view]}"}
    idx = [i for i in range(len(dataset)) if subject is None or not hasattr(dataset, "frame_info")
           or dataset.frame_info(i).get("subject") == subject]
    if not idx:
        raise ValueError(f"no sample of subject {subject!r} in the data set. Fix: set SUBJECT to a subject of the split")
    frames = np.stack([dataset[idx[k]]["images"][view].permute(1, 2, 0).numpy()
                       for k in _even_indices(len(idx), max_frames)]).astype(np.float64)
    gt = dataset[idx[0]].get("gt", {})
    if "backgrounds" in gt:
        ref, kind = gt["backgrounds"][view].permute(1, 2, 0).numpy(), "true background"
    else:
        ref, kind = median_background(frames), "median of all frames"
    return {"frames": frames, "reference": np.asarray(ref, dtype=np.float64), "reference_kind": kind,
            "name": f"{subject or 'all subjects'}, view {view}"}
