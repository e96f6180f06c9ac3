"""A rig folder: its layout, finding its calibration, videos and empty-scene backgrounds, and the
error messages that say how to fix it."""
from __future__ import annotations

import logging
from pathlib import Path

from .video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

log = logging.getLogger("data_utils.rig")

RIG_LAYOUT = """\
my_rig/
  calibration.toml     anipose/Pose2Sim TOML, or calibration.yml / .yaml / .json (or pass calibration=FILE)
  cam1.mp4             one synchronised video per camera, named like the calibration's cameras
  cam2.mp4             (any of .mp4 .avi .mov .mkv .webm; or a folder cam2/ of images 000001.png ...;
  cam3/                 the videos may also sit in my_rig/videos/)
  background/          optional, per camera, used instead of the median background:
    cam1.png             an image of the empty scene, or
    cam2.mp4             a clip of the empty scene (its median is used)
  joints_3d.npy        optional labels: (T, 17, 3) joints in the calibration's world units"""

CALIBRATION_NAMES = ("calibration.toml", "calibration.yml", "calibration.yaml", "calibration.json")
# how each option is given on the command line and in the notebooks (for the error messages)
_OPTION_HOWTO = {
    "trim": "kp3d-train --trim; DATA = 'rig:PATH?trim=true' in the notebooks",
    "cameras": "kp3d-train --cameras cam1,cam3; DATA = 'rig:PATH?cameras=cam1,cam3'",
    "backgrounds": "kp3d-train --backgrounds FOLDER; DATA = 'rig:PATH?backgrounds=FOLDER'",
    "units": "kp3d-train --units m; DATA = 'rig:PATH?units=m'",
    "up_axis": "kp3d-train --up-axis=-y; DATA = 'rig:PATH?up_axis=-y'",
    "max_frames": "kp3d-train --max-frames N; DATA = 'rig:PATH?max_frames=N'",
    "crop_edge": "DATA = 'rig:PATH?crop_edge=end' (start, centre, end), also for kp3d-train --data",
}


def howto(option: str) -> str:
    """Where a loader option is set outside Python, for an error message."""
    return _OPTION_HOWTO[option]


def too_few_cameras(root: Path, names: list[str]) -> str:
    return (f"rig {root}: {len(names)} camera(s) {names}; triangulation needs at least 2 calibrated cameras with "
            f"videos. Fix: add the calibration and video of another camera.")


def unreadable_frames(root: Path, name: str, source: Path, decoded: int, wanted: int, why: str = "") -> str:
    """The error for a video that ends before the frames its header announced (a copy cut short)."""
    what = (f"rig {root}: camera {name}: {source} decoded {decoded} of the {wanted} frames its header announced "
            f"(a truncated or damaged file{': ' + why if why else ''}).")
    if decoded == 0:
        return what + " Fix: copy the complete file again from the camera or its card."
    return (what + f" Fix: use the {decoded} readable frames with max_frames={decoded} "
            f"({howto('max_frames').replace('N', str(decoded))}), or copy the complete file again.")



def find_calibration(root: Path) -> Path:
    """The calibration file of a rig folder (``calibration.toml|yml|yaml|json``, or the only .toml)."""
    for name in CALIBRATION_NAMES:
        if (root / name).is_file():
            return root / name
    tomls = sorted(root.glob("*.toml"))
    if len(tomls) == 1:
        return tomls[0]
    raise FileNotFoundError(f"rig {root}: no calibration file found (looked for {', '.join(CALIBRATION_NAMES)}).\n"
                            f"Fix: put it there or pass calibration=FILE (--calibration FILE; CALIBRATION = \"FILE\" in the notebooks).\n"
                            f"Expected layout:\n{RIG_LAYOUT}")


def _candidates(folder: Path, exclude: set) -> dict:
    """lower-case stem -> path of the videos and image folders directly in ``folder``."""
    found = {}
    if not folder.is_dir():
        return found
    for p in sorted(folder.iterdir()):
        if p.name in exclude or p.name.startswith("."):
            continue
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            found.setdefault(p.stem.lower(), p)
        elif p.is_dir() and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir()):
            found.setdefault(p.name.lower(), p)
    return found


def match_sources(root: Path, names: list[str], allow_extra: bool = False) -> dict:
    """camera name -> video file or image folder, with clear errors for either side missing.

    ``allow_extra``: ignore videos of cameras not in ``names`` (when the user picked cameras).
    """
    found = _candidates(root, {"background", "videos"})
    for stem, p in _candidates(root / "videos", set()).items():
        found.setdefault(stem, p)
    lower = {n.lower(): n for n in names}
    missing = [n for n in names if n.lower() not in found]
    extra = sorted(str(p.relative_to(root)) for s, p in found.items() if s not in lower)
    if missing:
        raise FileNotFoundError(
            f"rig {root}: the calibration names camera(s) {missing} but there is no video or image folder for "
            f"them (found: {sorted(str(p.relative_to(root)) for p in found.values()) or 'nothing'}).\n"
            f"Fix: name each video like its camera (e.g. {missing[0]}.mp4 or a folder {missing[0]}/), or remove "
            f"the camera from the calibration.\nExpected layout:\n{RIG_LAYOUT}")
    if extra and not allow_extra:
        raise ValueError(
            f"rig {root}: {extra} match no camera of the calibration (cameras: {names}).\n"
            f"Fix: add their calibration, rename them to a camera's name, move them out of the folder, "
            f"or choose cameras with cameras=[...] ({howto('cameras')}).")
    return {n: found[n.lower()] for n in names}


def _background_source(root: Path, name: str, backgrounds) -> Path | None:
    """A user-supplied empty-scene image/clip for camera ``name`` (None: use the median)."""
    if isinstance(backgrounds, dict):
        p = backgrounds.get(name)
        return None if p is None else Path(p)
    folder = Path(backgrounds) if backgrounds is not None else root / "background"
    if not folder.is_dir():
        if backgrounds is not None:
            raise FileNotFoundError(f"backgrounds={backgrounds}: no such folder; give the folder of the "
                                    f"empty-scene images or clips ({howto('backgrounds')})")
        return None
    for p in sorted(folder.iterdir()):
        stem = p.stem if p.is_file() else p.name
        if stem.lower() == name.lower() and (p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES):
            return p
    return None


