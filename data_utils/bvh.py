"""BVH motion files: parser, forward kinematics, and mapping to the 17 Human3.6M joints.

Conventions:
- A BVH file is Y up; kp3d's world is z up in millimetres. ``load_bvh_h36m`` maps
  (x, y, z)_bvh -> (x, -z, y)_world (a proper rotation, so left stays left) and scales to mm.
- Euler channels are applied in the order they are listed (``CHANNELS 3 Zrotation Yrotation
  Xrotation`` means R = Rz @ Ry @ Rx), angles in degrees; a joint's world position is
  ``parent_pos + parent_rot @ offset`` and its rotation ``parent_rot @ local_rot``.
- Units are not stored in BVH files. ``detect_unit_scale`` picks the factor among metres,
  centimetres, millimetres, inches and the CMU ASF unit (1/0.45 inch) that makes the rest pose's
  17-joint height (lowest ankle to head) closest to 1.6 m. The CMU clip 131_01 shipped in
  ``../shared/data`` has metre-like offsets (thigh 0.41, a 1.5 m skeleton) and is detected as metres.

Example:
    >>> from data_utils.bvh import load_bvh_h36m  # doctest: +SKIP
    >>> joints, fps = load_bvh_h36m("../shared/data/cmu_mocap_131_01.bvh", fps=25)  # doctest: +SKIP
    >>> joints.shape[1:]  # doctest: +SKIP
    (17, 3)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .skeleton import H36M_JOINTS

# candidate BVH names per H36M joint: CMU (ASF-converted) names first, then common
# MotionBuilder-style names (cgspeed CMU conversions, Mixamo without prefix)
DEFAULT_NAME_MAP: dict[str, tuple[str, ...]] = {
    "pelvis": ("Hips", "hip", "Pelvis"),
    "r_hip": ("RightHip", "RightUpLeg", "rThigh"),
    "r_knee": ("RightKnee", "RightLeg", "rShin"),
    "r_ankle": ("RightAnkle", "RightFoot", "rFoot"),
    "l_hip": ("LeftHip", "LeftUpLeg", "lThigh"),
    "l_knee": ("LeftKnee", "LeftLeg", "lShin"),
    "l_ankle": ("LeftAnkle", "LeftFoot", "lFoot"),
    "spine": ("Chest", "Spine1", "Spine", "abdomen"),
    "thorax": ("Neck", "Neck1", "neck"),
    "neck": ("Head", "head"),
    "head": ("Head/End", "HeadTop_End", "head/End"),
    "l_shoulder": ("LeftShoulder", "LeftArm", "lShldr"),
    "l_elbow": ("LeftElbow", "LeftForeArm", "lForeArm"),
    "l_wrist": ("LeftWrist", "LeftHand", "lHand"),
    "r_shoulder": ("RightShoulder", "RightArm", "rShldr"),
    "r_elbow": ("RightElbow", "RightForeArm", "rForeArm"),
    "r_wrist": ("RightWrist", "RightHand", "rHand"),
}

UNIT_SCALES_MM = {"m": 1000.0, "cm": 10.0, "mm": 1.0, "in": 25.4, "cmu": 25.4 / 0.45}

_AXES = {"X": 0, "Y": 1, "Z": 2}


@dataclass
class BVH:
    """A parsed BVH file. End sites are joints named ``<parent>/End`` with no channels."""

    names: list[str]
    parents: np.ndarray  # (J,) int, -1 for the root
    offsets: np.ndarray  # (J, 3) file units
    channels: list[list[str]]  # per joint, e.g. ["Xposition", ..., "Zrotation"]
    motion: np.ndarray  # (T, C) all channel values per frame
    frame_time: float  # seconds
    channel_start: list[int] = field(default_factory=list)  # first column of each joint

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


def parse_bvh(text: str, source: str = "<string>") -> BVH:
    """Parse BVH text. Raises ValueError naming ``source`` and the problem when malformed."""
    tokens = text.split()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []
    i = 0

    def fail(msg: str) -> ValueError:
        return ValueError(f"{source}: malformed BVH ({msg})")

    try:
        if tokens[0] != "HIERARCHY":
            raise fail("it must start with HIERARCHY")
        i = 1
        pending: int | None = None
        while tokens[i] != "MOTION":
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                names.append(tokens[i + 1])
                parents.append(stack[-1] if stack else -1)
                offsets.append([0.0, 0.0, 0.0])
                channels.append([])
                pending = len(names) - 1
                i += 2
            elif tok == "End":
                names.append(names[stack[-1]] + "/End")
                parents.append(stack[-1])
                offsets.append([0.0, 0.0, 0.0])
                channels.append([])
                pending = len(names) - 1
                i += 2
            elif tok == "{":
                if pending is None:
                    raise fail("'{' without a joint")
                stack.append(pending)
                pending = None
                i += 1
            elif tok == "}":
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                offsets[stack[-1]] = [float(v) for v in tokens[i + 1 : i + 4]]
                i += 4
            elif tok == "CHANNELS":
                n = int(tokens[i + 1])
                channels[stack[-1]] = tokens[i + 2 : i + 2 + n]
                i += 2 + n
            else:
                raise fail(f"unexpected token {tok!r}")
        if stack:
            raise fail("unbalanced braces")
        if tokens[i + 1] != "Frames:" or tokens[i + 3:i + 5] != ["Frame", "Time:"]:
            raise fail("MOTION must be followed by 'Frames: N' and 'Frame Time: dt'")
        n_frames = int(tokens[i + 2])
        frame_time = float(tokens[i + 5])
        values = np.asarray(tokens[i + 6 :], dtype=np.float64)
    except (IndexError, ValueError) as e:
        if isinstance(e, ValueError) and str(e).startswith(source):
            raise
        raise fail(str(e) or "truncated file") from e
    n_ch = sum(len(c) for c in channels)
    if not names:
        raise fail("no joints")
    if n_ch == 0 or values.size != n_frames * n_ch:
        raise fail(f"expected {n_frames} frames x {n_ch} channels, found {values.size} numbers")
    starts, s = [], 0
    for c in channels:
        starts.append(s)
        s += len(c)
    return BVH(names, np.array(parents), np.array(offsets), channels,
               values.reshape(n_frames, n_ch), frame_time, starts)


def read_bvh(path: str | Path) -> BVH:
    """Read and parse a BVH file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BVH file not found: {path}")
    return parse_bvh(path.read_text(), source=str(path))


def _axis_rot(axis: int, deg: np.ndarray) -> np.ndarray:
    """(T,) degrees -> (T, 3, 3) rotation about a coordinate axis."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def forward_kinematics(bvh: BVH) -> np.ndarray:
    """World positions of every joint (end sites included), in file units and axes.

    Returns:
        (T, J, 3) positions.
    """
    T, J = bvh.motion.shape[0], len(bvh.names)
    pos = np.zeros((T, J, 3))
    rot = np.zeros((T, J, 3, 3))
    for j in range(J):
        local_t = np.broadcast_to(bvh.offsets[j], (T, 3)).copy()
        local_R = np.broadcast_to(np.eye(3), (T, 3, 3)).copy()
        for k, ch in enumerate(bvh.channels[j]):
            v = bvh.motion[:, bvh.channel_start[j] + k]
            if ch.endswith("position"):
                local_t[:, _AXES[ch[0]]] += v  # the root's offset plus its position channel
            elif ch.endswith("rotation"):
                local_R = local_R @ _axis_rot(_AXES[ch[0]], v)
            else:
                raise ValueError(f"unknown BVH channel {ch!r} on joint {bvh.names[j]!r}")
        p = bvh.parents[j]
        if p < 0:
            pos[:, j], rot[:, j] = local_t, local_R
        else:
            pos[:, j] = pos[:, p] + np.einsum("tij,tj->ti", rot[:, p], local_t)
            rot[:, j] = rot[:, p] @ local_R
    return pos


def h36m_indices(bvh: BVH, name_map: dict[str, tuple[str, ...]] | None = None) -> list[int]:
    """Index in ``bvh.names`` of each of the 17 H36M joints (first candidate name found)."""
    name_map = name_map or DEFAULT_NAME_MAP
    idx = []
    for joint in H36M_JOINTS:
        found = [bvh.names.index(n) for n in name_map[joint] if n in bvh.names]
        if not found:
            raise ValueError(
                f"BVH has no joint for H36M joint {joint!r} (tried {name_map[joint]}); "
                f"pass name_map={{'{joint}': ('<name>',), ...}} using one of: {', '.join(bvh.names)}"
            )
        idx.append(found[0])
    return idx


def detect_unit_scale(bvh: BVH, name_map=None) -> tuple[str, float]:
    """Guess the file's length unit from its rest pose height; returns (unit name, mm per unit)."""
    rest = BVH(bvh.names, bvh.parents, bvh.offsets, bvh.channels,
               np.zeros((1, bvh.motion.shape[1])), bvh.frame_time, bvh.channel_start)
    j = forward_kinematics(rest)[0][h36m_indices(bvh, name_map)]
    height = j[10, 1] - min(j[3, 1], j[6, 1])  # Y up in the file
    if height <= 0:
        raise ValueError("BVH rest pose is not upright (head below ankles): cannot detect its units")
    unit = min(UNIT_SCALES_MM, key=lambda u: abs(np.log(height * UNIT_SCALES_MM[u] / 1600.0)))
    return unit, UNIT_SCALES_MM[unit]


def load_bvh_h36m(path: str | Path, fps: float | None = None, unit: str | None = None,
                  name_map: dict[str, tuple[str, ...]] | None = None) -> tuple[np.ndarray, float]:
    """Load a BVH clip as 17 H36M joints in world mm, z up.

    Args:
        path: the .bvh file.
        fps: resample to this rate (nearest frame); None keeps the file's rate.
        unit: one of ``UNIT_SCALES_MM`` or None to detect it (see module docstring).
        name_map: H36M joint name -> candidate BVH joint names (defaults cover CMU clips).
    Returns:
        joints (T, 17, 3) float64 world mm, and the frame rate.
    """
    bvh = read_bvh(path)
    if unit is None:
        _, scale = detect_unit_scale(bvh, name_map)
    elif unit in UNIT_SCALES_MM:
        scale = UNIT_SCALES_MM[unit]
    else:
        raise ValueError(f"unit {unit!r}: expected one of {list(UNIT_SCALES_MM)} or None (detect)")
    pos = forward_kinematics(bvh)[:, h36m_indices(bvh, name_map)] * scale
    world = np.stack([pos[..., 0], -pos[..., 2], pos[..., 1]], axis=-1)  # Y up -> z up
    rate = bvh.fps
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        n = int(np.floor((len(world) - 1) * fps / rate)) + 1
        world = world[np.round(np.arange(n) * rate / fps).astype(int)]
        rate = float(fps)
    return world, rate
