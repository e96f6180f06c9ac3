"""The 17-joint Human3.6M skeleton used for every ground truth in kp3d.

Order (the one most public Human3.6M code uses; see docs/architecture.md):
0 pelvis, 1 r_hip, 2 r_knee, 3 r_ankle, 4 l_hip, 5 l_knee, 6 l_ankle, 7 spine, 8 thorax,
9 neck/nose, 10 head, 11 l_shoulder, 12 l_elbow, 13 l_wrist, 14 r_shoulder, 15 r_elbow, 16 r_wrist.

Joints are world millimetres, z up. ``retarget`` moves a motion onto other bone lengths by keeping
every bone's direction, which is how the synthetic data set puts one motion on bodies of different
proportions.

Example:
    >>> import numpy as np
    >>> from data_utils.skeleton import H36M_PARENTS, bone_lengths, retarget
    >>> x = np.random.default_rng(0).normal(size=(5, 17, 3))
    >>> y = retarget(x, np.full(16, 100.0))
    >>> bool(np.allclose(bone_lengths(y), 100.0))
    True
"""
from __future__ import annotations

import numpy as np

H36M_JOINTS = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
    "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)
NUM_JOINTS = len(H36M_JOINTS)
# parent of each joint (-1 for the root); parents come before children
H36M_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15])
# bones as (parent, child), one per non-root joint, in joint order
H36M_BONES = tuple((int(p), c) for c, p in enumerate(H36M_PARENTS) if p >= 0)
BONE_NAMES = tuple(f"{H36M_JOINTS[p]}-{H36M_JOINTS[c]}" for p, c in H36M_BONES)
# left/right swap of joint indices (for flips and symmetry checks)
H36M_FLIP = np.array([0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13])
LEFT_JOINTS = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS = (1, 2, 3, 14, 15, 16)


def _check_joints(joints: np.ndarray, name: str = "joints") -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim < 2 or joints.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name}: expected shape (..., 17, 3) in H36M order, got {joints.shape}")
    return joints


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of each bone of ``H36M_BONES``.

    Args:
        joints: (..., 17, 3) positions.
    Returns:
        (..., 16) lengths in the units of ``joints``.
    """
    joints = _check_joints(joints)
    child = joints[..., 1:, :]
    parent = joints[..., H36M_PARENTS[1:], :]
    return np.linalg.norm(child - parent, axis=-1)


def retarget(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rebuild a pose with new bone lengths, keeping the root and every bone's direction.

    Args:
        joints: (..., 17, 3) source poses.
        lengths: (16,) or (..., 16) target bone lengths, in ``H36M_BONES`` order.
    Returns:
        (..., 17, 3) retargeted poses (root unchanged).
    """
    joints = _check_joints(joints)
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.shape[-1:] != (NUM_JOINTS - 1,):
        raise ValueError(f"lengths: expected shape (..., 16) (one per bone), got {lengths.shape}")
    out = np.empty_like(joints)
    out[..., 0, :] = joints[..., 0, :]
    for c in range(1, NUM_JOINTS):  # parents precede children, so one pass suffices
        p = H36M_PARENTS[c]
        d = joints[..., c, :] - joints[..., p, :]
        n = np.linalg.norm(d, axis=-1, keepdims=True)
        d = d / np.maximum(n, 1e-9)
        out[..., c, :] = out[..., p, :] + d * lengths[..., c - 1 : c]
    return out


def root_relative(joints: np.ndarray) -> np.ndarray:
    """Subtract the pelvis (joint 0) from every joint: (..., 17, 3) -> (..., 17, 3)."""
    joints = _check_joints(joints)
    return joints - joints[..., :1, :]
