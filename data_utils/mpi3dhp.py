"""MPI-INF-3DHP training sequences in their released layout, frames extracted."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kp3d.cameras import Camera

from .folders import _doc_layout, _frame_files, _layout_error, _MultiViewFolders

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

# the 17 H36M joints within MPI-INF-3DHP's 28 (pelvis, hips, knees, ankles, spine, neck as thorax,
# head as neck/nose, head top as head, shoulders, elbows, wrists)
MPI28_TO_17 = [4, 23, 24, 25, 18, 19, 20, 3, 5, 6, 7, 9, 10, 11, 14, 15, 16]


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
        subjects = self._subjects(root, split, subjects)
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



_doc_layout(MPI3DHPDataset, MPI3DHP_LAYOUT)
