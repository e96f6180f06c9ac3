"""Procedural human motion with joint limits, as 17 Human3.6M joints in world mm (z up).

A motion is a timeline of *segments*: the person walks to a random waypoint of the capture area
(turning towards it first), then performs one action in place — arm raising, bending, squatting,
reaching, turning on the spot — and walks on. Walking between random waypoints is what lets a
per-pixel median recover the background (paper footnote 1): every floor spot is occupied only briefly.

Pose parameters (radians) and their limits are in ``JOINT_LIMITS``; ``pose_to_joints`` is the
forward kinematics. Body-local frame: x forward, y left, z up; the heading rotates it about world z.
Feet are kept on the floor: the pelvis height follows from the lower ankle.

Example:
    >>> import numpy as np
    >>> from data_utils.bodies import subject_body
    >>> from data_utils.motion import procedural_motion
    >>> out = procedural_motion(subject_body("S1"), n_frames=50, fps=10, seed=0)
    >>> out["joints"].shape, out["action"][:1]
    ((50, 17, 3), array(['walk'], dtype='<U6'))
"""
from __future__ import annotations

import numpy as np

from .bodies import Body

# name: (low, high) radians; "l_"/"r_" per side
JOINT_LIMITS = {
    "spine_bend": (-0.3, 1.4), "spine_side": (-0.4, 0.4), "spine_twist": (-0.7, 0.7),
    "neck_bend": (-0.5, 0.7),
    "hip_flex": (-0.5, 2.1), "hip_abd": (-0.15, 0.7), "knee": (0.0, 2.4),
    "sh_flex": (-0.8, 3.0), "sh_abd": (-0.1, 2.9), "elbow": (0.0, 2.5),
}
SIDED = ("hip_flex", "hip_abd", "knee", "sh_flex", "sh_abd", "elbow")
PARAMS = ("spine_bend", "spine_side", "spine_twist", "neck_bend") + tuple(
    f"{s}_{p}" for s in "lr" for p in SIDED)
ACTIONS = ("walk", "turn", "raise", "bend", "squat", "reach")

# a relaxed standing pose (arms slightly off the body so they do not sink into the torso)
NEUTRAL = {p: 0.0 for p in PARAMS} | {"l_sh_abd": 0.15, "r_sh_abd": 0.15, "l_elbow": 0.15,
                                      "r_elbow": 0.15, "l_knee": 0.05, "r_knee": 0.05}


def clamp_pose(pose: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Clip every parameter to ``JOINT_LIMITS``."""
    out = {}
    for k, v in pose.items():
        lo, hi = JOINT_LIMITS[k[2:] if k[:2] in ("l_", "r_") else k]
        out[k] = np.clip(v, lo, hi)
    return out


def _rot_x(a):
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_y(a):
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_z(a):
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _limb_dir(flex, abd, side):
    """Unit direction of a limb hanging down (0,0,-1), flexed forward then abducted outward.

    flex, abd: (T,) radians; side: +1 left, -1 right. Returns (T, 3) in the local frame.
    """
    return np.stack([np.sin(flex), side * np.sin(abd) * np.cos(flex),
                     -np.cos(abd) * np.cos(flex)], -1)


def pose_to_joints(body: Body, pose: dict[str, np.ndarray], root_xy: np.ndarray,
                   heading: np.ndarray) -> np.ndarray:
    """Forward kinematics.

    Args:
        body: proportions (mm).
        pose: every name of ``PARAMS`` -> (T,) radians (clamped to ``JOINT_LIMITS`` here).
        root_xy: (T, 2) pelvis position on the floor, world mm.
        heading: (T,) radians, the facing direction (0 = +x world).
    Returns:
        (T, 17, 3) world mm, H36M order; the lower ankle at ``body.ankle_height``.
    """
    pose = clamp_pose(pose)
    T = len(heading)
    J = np.zeros((T, 17, 3))
    up = np.array([0.0, 0.0, 1.0])
    for side, hip, knee, ankle in ((-1, 1, 2, 3), (1, 4, 5, 6)):
        s = "l" if side > 0 else "r"
        J[:, hip] = [0.0, side * body.hip_half_width, 0.0]
        flex, abd, kn = pose[f"{s}_hip_flex"], pose[f"{s}_hip_abd"], pose[f"{s}_knee"]
        J[:, knee] = J[:, hip] + body.thigh * _limb_dir(flex, abd, side)
        J[:, ankle] = J[:, knee] + body.shin * _limb_dir(flex - kn, abd, side)
    R_t = _rot_z(pose["spine_twist"]) @ _rot_y(pose["spine_bend"]) @ _rot_x(-pose["spine_side"])
    J[:, 7] = body.pelvis_spine * (R_t @ up)
    J[:, 8] = J[:, 7] + body.spine_thorax * (R_t @ up)
    R_n = R_t @ _rot_y(pose["neck_bend"])
    J[:, 9] = J[:, 8] + body.thorax_neck * (R_n @ up)
    J[:, 10] = J[:, 9] + body.neck_head * (R_n @ up)
    fwd = np.array([1.0, 0.0, 0.2]) / np.hypot(1.0, 0.2)
    for side, sh, el, wr in ((1, 11, 12, 13), (-1, 14, 15, 16)):
        s = "l" if side > 0 else "r"
        off = np.array([0.0, side * body.shoulder_half_width, -body.shoulder_drop])
        J[:, sh] = J[:, 8] + R_t @ off
        d = _limb_dir(pose[f"{s}_sh_flex"], pose[f"{s}_sh_abd"], side)
        # the elbow bends the forearm towards the front (or up when the arm already points forward)
        perp = fwd - (d @ fwd)[:, None] * d
        alt = up - (d @ up)[:, None] * d
        n = np.linalg.norm(perp, axis=-1, keepdims=True)
        perp = np.where(n > 0.2, perp / np.maximum(n, 1e-9), alt / np.linalg.norm(alt, axis=-1, keepdims=True).clip(1e-9))
        e = pose[f"{s}_elbow"][:, None]
        d2 = np.cos(e) * d + np.sin(e) * perp
        J[:, el] = J[:, sh] + body.upper_arm * np.einsum("tij,tj->ti", R_t, d)
        J[:, wr] = J[:, el] + body.forearm * np.einsum("tij,tj->ti", R_t, d2)
    R_h = _rot_z(heading)
    J = np.einsum("tij,tkj->tki", R_h, J)
    J[..., :2] += root_xy[:, None, :]
    J[..., 2] += body.ankle_height - np.minimum(J[:, 3, 2], J[:, 6, 2])[:, None]
    return J


def _ease(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _envelope(tau, ramp):
    """0 -> 1 -> 0 over tau in [0, 1], ramping over a fraction ``ramp`` at each end."""
    return _ease(tau / ramp) * _ease((1 - tau) / ramp)


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def procedural_motion(body: Body, n_frames: int, fps: float = 10.0, seed: int = 0,
                      waypoints: np.ndarray | None = None, speed: float = 1100.0) -> dict:
    """A random sequence of walks and in-place actions.

    Args:
        body: the subject's proportions.
        n_frames: T frames sampled at ``fps`` (the motion is analytic in time, so a low fps gives
            more varied poses per frame rather than a coarser motion).
        seed: everything random follows from it.
        waypoints: (M, 2) world mm positions the pelvis may walk to (the safe capture area);
            default a 2 m disc around the origin.
        speed: walking speed, mm/s.
    Returns:
        dict with ``joints`` (T, 17, 3) world mm, ``action`` (T,) str (one of ``ACTIONS``),
        ``root_xy`` (T, 2), ``heading`` (T,), and every pose parameter under ``pose`` (T,) each.
    """
    if n_frames < 1 or fps <= 0:
        raise ValueError(f"need n_frames >= 1 and fps > 0, got {n_frames}, {fps}")
    rng = np.random.default_rng(seed)
    if waypoints is None:
        a = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        r = np.sqrt(np.linspace(0, 1, 8))[:, None] * 1000.0
        waypoints = np.stack([(r * np.cos(a)).ravel(), (r * np.sin(a)).ravel()], -1)
    waypoints = np.asarray(waypoints, dtype=np.float64)
    if waypoints.ndim != 2 or waypoints.shape[1] != 2 or len(waypoints) < 2:
        raise ValueError(f"waypoints: expected (M >= 2, 2) world mm, got {waypoints.shape}")
    t = np.arange(n_frames) / fps
    pose = {p: np.full(n_frames, NEUTRAL[p]) for p in PARAMS}
    root = np.zeros((n_frames, 2))
    heading = np.zeros(n_frames)
    action = np.full(n_frames, "walk", dtype="<U6")
    pos = waypoints[rng.integers(len(waypoints))].copy()
    psi = rng.uniform(-np.pi, np.pi)
    style = {"arm_swing": rng.uniform(0.25, 0.5), "stride": rng.uniform(0.35, 0.5),
             "elbow": rng.uniform(0.15, 0.5), "lean": rng.uniform(0.0, 0.12)}
    t0, k = 0.0, 0
    visited = [pos.copy()]
    while t0 < t[-1] + 1e-9:
        if k % 2 == 0:  # walk to a waypoint at least 1 m away, turning towards it first
            far = waypoints[np.linalg.norm(waypoints - pos, axis=1) > 1000.0]
            pool = far if len(far) else waypoints
            # of a few random candidates, go where the person has not been lately: spreading the
            # stops keeps every pixel free of the person in most frames (for the median background)
            cand = pool[rng.integers(len(pool), size=6)]
            gap = np.linalg.norm(cand[:, None] - np.array(visited[-4:])[None], axis=-1).min(1)
            goal = cand[np.argmax(gap)] + rng.uniform(-100, 100, 2)
            visited.append(goal)
            psi1 = np.arctan2(*(goal - pos)[::-1])
            dpsi = _wrap(psi1 - psi)
            dur_turn, dur_walk = abs(dpsi) / 2.0 + 0.2, max(np.linalg.norm(goal - pos) / speed, 0.2)
            m = (t >= t0) & (t < t0 + dur_turn + dur_walk)
            tt = t[m] - t0
            tw = np.clip((tt - dur_turn) / dur_walk, 0, 1)
            heading[m] = psi + dpsi * _ease(tt / dur_turn)
            root[m] = pos + (goal - pos) * tw[:, None]
            # gait: about 1.8 steps/s; amplitude ramps in/out so walks blend with the actions
            ph = 2 * np.pi * 0.9 * tt
            amp = _envelope(tt / (dur_turn + dur_walk), min(0.3, 0.6 / (dur_turn + dur_walk)))
            amp = amp * np.where(tt < dur_turn, 0.4, 1.0)  # small steps while turning on the spot
            A = style["stride"] * amp
            for s, sgn in (("l", 1.0), ("r", -1.0)):
                ph_s = ph if sgn > 0 else ph + np.pi  # legs in antiphase
                pose[f"{s}_hip_flex"][m] = 0.05 + A * np.sin(ph_s)
                pose[f"{s}_knee"][m] = 0.08 + 2.2 * A * np.clip(np.sin(ph_s + 1.2), 0, None)  # swing
                pose[f"{s}_sh_flex"][m] = -style["arm_swing"] * amp * np.sin(ph_s)  # arms opposite
                pose[f"{s}_elbow"][m] = style["elbow"] + 0.25 * amp * (1 - np.sin(ph_s)) / 2
            pose["spine_bend"][m] = style["lean"] * amp
            pose["spine_twist"][m] = -0.12 * amp * np.sin(ph)
            t0 += dur_turn + dur_walk
            pos, psi = goal, psi1
            action[m] = "walk"
        else:  # one action in place
            kind = ACTIONS[1 + int(rng.integers(len(ACTIONS) - 1))]
            dur = rng.uniform(1.5, 3.0)
            m = (t >= t0) & (t < t0 + dur)
            tau = (t[m] - t0) / dur
            env = _envelope(tau, 0.3)
            tgt = dict(NEUTRAL)
            if kind == "turn":
                dpsi = rng.choice([-1, 1]) * rng.uniform(0.8, 3.0)
                heading[m] = psi + dpsi * _ease(tau)
                ph = 2 * np.pi * 0.9 * tau * dur
                for s, sgn in (("l", 1.0), ("r", -1.0)):
                    pose[f"{s}_hip_flex"][m] = 0.05 + 0.15 * env * np.clip(sgn * np.sin(ph), 0, None)
                    pose[f"{s}_knee"][m] = 0.05 + 0.35 * env * np.clip(sgn * np.sin(ph), 0, None)
                psi = psi + dpsi
            else:
                heading[m] = psi
                if kind == "raise":
                    sides = [["l"], ["r"], ["l", "r"]][int(rng.integers(3))]
                    joint = "sh_flex" if rng.random() < 0.5 else "sh_abd"
                    for s in sides:
                        tgt[f"{s}_{joint}"] = rng.uniform(1.5, 2.9)
                        tgt[f"{s}_elbow"] = rng.uniform(0.0, 0.7)
                    tgt["neck_bend"] = rng.uniform(-0.4, 0.0)
                elif kind == "bend":
                    b = rng.uniform(0.6, 1.3)
                    tgt["spine_bend"] = b
                    tgt["spine_side"] = rng.uniform(-0.2, 0.2)
                    for s in "lr":
                        tgt[f"{s}_sh_flex"] = 0.8 * b + rng.uniform(-0.2, 0.3)  # arms hang
                        tgt[f"{s}_knee"] = rng.uniform(0.0, 0.3)
                elif kind == "squat":
                    hf = rng.uniform(1.1, 1.9)
                    for s in "lr":
                        tgt[f"{s}_hip_flex"] = hf
                        tgt[f"{s}_knee"] = hf + rng.uniform(0.3, 0.5)
                        tgt[f"{s}_hip_abd"] = rng.uniform(0.05, 0.3)
                        tgt[f"{s}_sh_flex"] = rng.uniform(0.6, 1.6)
                        tgt[f"{s}_elbow"] = rng.uniform(0.0, 1.0)
                    tgt["spine_bend"] = rng.uniform(0.2, 0.6)
                else:  # reach: one arm towards a random point, twisting and leaning
                    s = "lr"[int(rng.integers(2))]
                    tgt[f"{s}_sh_flex"] = rng.uniform(0.6, 2.4)
                    tgt[f"{s}_sh_abd"] = rng.uniform(0.0, 0.9)
                    tgt[f"{s}_elbow"] = rng.uniform(0.0, 0.4)
                    tgt["spine_twist"] = rng.uniform(-0.6, 0.6)
                    tgt["spine_bend"] = rng.uniform(0.0, 0.6)
                    tgt["neck_bend"] = rng.uniform(-0.2, 0.5)
                    o = "r" if s == "l" else "l"
                    tgt[f"{o}_hip_flex"] = rng.uniform(0.0, 0.4)  # a step forward with the other leg
                for p in PARAMS:
                    pose[p][m] = NEUTRAL[p] + env * (tgt[p] - NEUTRAL[p])
            root[m] = pos
            action[m] = kind
            t0 += dur
        k += 1
    # small smooth fidgeting on every angle, so no two frames are exactly alike
    for p in PARAMS:
        f = rng.uniform(0.1, 0.6, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        pose[p] = pose[p] + 0.03 * (np.sin(2 * np.pi * f[0] * t + ph[0]) + np.sin(2 * np.pi * f[1] * t + ph[1]))
    pose = clamp_pose(pose)
    joints = pose_to_joints(body, pose, root, heading)
    return {"joints": joints, "action": action, "root_xy": root, "heading": heading, "pose": pose}


def standing_motion(body: Body, n_frames: int, fps: float = 10.0, seed: int = 0,
                    position=(0.0, 0.0), heading: float = 0.0) -> dict:
    """A person standing on one spot, only fidgeting: the case a median background cannot handle.

    Returns the same dict as :func:`procedural_motion` (action "stand").
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    pose = {}
    for p in PARAMS:
        f, ph = rng.uniform(0.1, 0.5), rng.uniform(0, 2 * np.pi)
        pose[p] = NEUTRAL[p] + 0.05 * np.sin(2 * np.pi * f * t + ph)
    pose = clamp_pose(pose)
    root = np.broadcast_to(np.asarray(position, dtype=np.float64), (n_frames, 2)).copy()
    head = np.full(n_frames, float(heading))
    return {"joints": pose_to_joints(body, pose, root, head), "action": np.full(n_frames, "stand", dtype="<U6"),
            "root_xy": root, "heading": head, "pose": pose}
