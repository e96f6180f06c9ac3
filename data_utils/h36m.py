"""Human3.6M in the extracted-frames layout most public multi-view code uses."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kp3d.cameras import H36M_CAMERA_IDS, h36m_rig

from .folders import _doc_layout, _frame_files, _layout_error, _MultiViewFolders
from .skeleton import NUM_JOINTS

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

# the 17 H36M joints within the 32 of the original Human3.6M release
H36M32_TO_17 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]


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
        subjects = self._subjects(root, split, subjects)
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



_doc_layout(Human36MDataset, H36M_LAYOUT)
