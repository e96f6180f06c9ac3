"""A small vectorised ray caster for synthetic multi-view humans (numpy, CPU).

What is drawn:
- the *room*: a textured floor (tiles, grout, stains) and walls (coloured panels, posters, a
  skirting band) of a box around the Human3.6M capture area; each camera sees a different part;
- the *body*: capsules for limbs, hips and shoulders, feet and hands, and ellipsoids for the torso,
  pelvis and head, each with its garment's colour and texture (plain, stripes, checks, dots) and
  hair on the back and top of the head; Lambert shading from one directional light plus a fill;
  per pixel the nearest surface wins (a z-buffer in ray form), so limbs occlude each other;
- a soft *shadow* of every body part on the floor, cast along the light direction;
- per-frame *lighting flicker* (a global gain per camera) and Gaussian *sensor noise*, then uint8.

Cameras are pinhole, WITHOUT lens distortion: the intrinsics ``K`` are the rig's, scaled to the
image size, and ground-truth 2D joints are the pinhole projections ``K (R X + t)``. Pixel centres
follow OpenCV (pixel (i, j) is centred at (i, j)). Anti-aliasing: ``supersample`` x ``supersample``
rays per pixel, averaged; the ground-truth mask is "at least half of the rays hit the body".

Example:
    >>> import numpy as np
    >>> from kp3d.cameras import h36m_rig
    >>> from data_utils.bodies import subject_body
    >>> from data_utils.motion import procedural_motion
    >>> from data_utils.render import RenderSettings, make_room, render_background, render_person
    >>> cam = h36m_rig("S1", 64, 64)[0]
    >>> room = make_room(seed=0)
    >>> bg = render_background(cam, room, RenderSettings(supersample=1))
    >>> j = procedural_motion(subject_body("S1"), 1, seed=0)["joints"][0]
    >>> img, mask = render_person(cam, subject_body("S1"), j, room, bg, RenderSettings(supersample=1))
    >>> img.shape, mask.shape, bool(mask.any())
    ((64, 64, 3), (64, 64), True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bodies import PATTERNS, Body, Garment
from .room import Room, _room_color, make_room, trace_room, value_noise  # noqa: F401 (part of this API)


@dataclass(frozen=True)
class RenderSettings:
    """Rendering knobs (all part of the data set's cache key)."""

    supersample: int = 2  # rays per pixel per axis (anti-aliasing)
    light_dir: tuple[float, float, float] = (0.35, -0.25, 1.0)  # towards the light, world
    ambient: float = 0.38  # shading = ambient + diffuse * max(n.l, 0) + fill * |n.v|
    diffuse: float = 0.55
    fill: float = 0.17
    shadow_strength: float = 0.45  # floor darkening under the body (0 disables shadows)
    shadow_softness: float = 60.0  # mm of penumbra
    flicker: float = 0.04  # relative amplitude of the per-frame lighting gain
    noise_std: float = 0.015  # sensor noise, in [0, 1] intensity units


def camera_rays(K: np.ndarray, R: np.ndarray, t: np.ndarray, u: np.ndarray, v: np.ndarray):
    """World-space unit rays through pixel centres (u, v): returns origin (3,) and dirs (..., 3)."""
    Kinv = np.linalg.inv(K)
    pix = np.stack([u, v, np.ones_like(u)], -1)
    d = pix @ Kinv.T @ R  # camera -> world: R^T d, written for row vectors
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return -R.T @ t, d


@dataclass
class Background:
    """A camera's view of the empty room at the supersampled resolution."""

    color: np.ndarray  # (H*ss, W*ss, 3) float32 shaded albedo
    floor_points: np.ndarray  # (H*ss, W*ss, 3) world mm where the ray meets the floor (nan elsewhere)
    supersample: int
    small: np.ndarray | None = None  # (H, W, 3) float32 at the output resolution (computed once)

    def downsampled(self) -> np.ndarray:
        """(H, W, 3) float32: the true background at the output resolution."""
        if self.small is None:
            self.small = _block_mean(self.color, self.supersample).astype(np.float32)
        return self.small


def _block_mean(img: np.ndarray, s: int) -> np.ndarray:
    if s == 1:
        return img
    H, W = img.shape[0] // s, img.shape[1] // s
    return img.reshape(H, s, W, s, *img.shape[2:]).mean(axis=(1, 3))


def _camera_arrays(camera, ss: int):
    cam = camera.resized(camera.width * ss, camera.height * ss) if ss > 1 else camera
    return cam.K, cam.R, cam.t, cam.width, cam.height


def render_background(camera, room: Room, settings: RenderSettings) -> Background:
    """The empty room seen by ``camera`` (a ``kp3d.cameras.Camera``; distortion ignored)."""
    ss = settings.supersample
    K, R, t, W, H = _camera_arrays(camera, ss)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    origin, d = camera_rays(K, R, t, u.ravel(), v.ravel())
    p, which = trace_room(room, origin, d)
    albedo = _room_color(room, p, which)
    # walls lit mostly by ambient light, the floor by the key light too
    shade = np.where(which == 4, settings.ambient + settings.diffuse * _unit(settings.light_dir)[2],
                     settings.ambient + 0.5 * settings.diffuse)
    color = (albedo * shade[:, None]).reshape(H, W, 3).astype(np.float32)
    floor = np.where((which == 4)[:, None], p, np.nan).reshape(H, W, 3)
    return Background(np.clip(color, 0, 1), floor, ss)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ---------------------------------------------------------------- body primitives
REGIONS = ("shirt", "sleeves", "trousers", "legs", "shoes", "skin", "hair")


def body_primitives(body: Body, joints: np.ndarray) -> dict:
    """Capsules and ellipsoids dressing one pose.

    Args:
        joints: (17, 3) world mm, H36M order.
    Returns:
        dict with ``caps_a``, ``caps_b`` (C, 3) segment ends, ``caps_r`` (C,) radii,
        ``caps_region`` (C,) index into ``REGIONS``; ``ell_c`` (E, 3) centres, ``ell_Q`` (E, 3, 3)
        axes as columns (x front, y left, z along the body), ``ell_s`` (E, 3) semi-axes,
        ``ell_region`` (E,) (the head, region ``skin``, gets hair in ``shade_body``).
    """
    J = np.asarray(joints, dtype=np.float64)
    if J.shape != (17, 3):
        raise ValueError(f"joints: expected (17, 3) world mm, got {J.shape}")
    R = REGIONS.index
    up = np.array([0.0, 0.0, 1.0])
    left = _unit(J[4] - J[1])
    fwd = np.cross(left, up)
    fwd = _unit(fwd) if np.linalg.norm(fwd) > 1e-6 else np.array([1.0, 0.0, 0.0])
    caps = []
    for a, b, r, reg in (
        (2, 1, body.thigh_radius, "trousers"), (5, 4, body.thigh_radius, "trousers"),
        (3, 2, body.shin_radius, "legs"), (6, 5, body.shin_radius, "legs"),
        (11, 12, body.upper_arm_radius, "shirt"), (14, 15, body.upper_arm_radius, "shirt"),
        (12, 13, body.forearm_radius, "sleeves"), (15, 16, body.forearm_radius, "sleeves"),
        (11, 14, body.upper_arm_radius * 1.15, "shirt"), (8, 9, body.neck_radius, "skin"),
    ):
        caps.append((J[a], J[b], r, R(reg)))
    for wrist, elbow in ((13, 12), (16, 15)):  # hands continue the forearm
        d = _unit(J[wrist] - J[elbow])
        caps.append((J[wrist] + 30 * d, J[wrist] + 95 * d, body.forearm_radius * 1.05, R("skin")))
    for ankle in (3, 6):  # feet point forward and rest on the floor
        heel = J[ankle] - 0.25 * body.foot_length * fwd
        toe = J[ankle] + 0.75 * body.foot_length * fwd
        heel[2] = toe[2] = max(J[ankle, 2] - 0.55 * body.ankle_height, 0.0) + 0.45 * body.ankle_height
        caps.append((heel, toe, 0.45 * body.ankle_height, R("shoes")))
    ells = []
    z = _unit(J[8] - J[0])
    y = _unit((J[11] - J[14]) + (J[4] - J[1]))
    y = _unit(y - (y @ z) * z)
    Q = np.stack([np.cross(y, z), y, z], axis=1)
    half = 0.5 * np.linalg.norm(J[8] - J[0])
    ells.append((0.5 * (J[0] + J[8]) + 0.1 * half * z, Q,
                 (body.torso_half_depth, body.torso_half_width, half * 1.05), R("shirt")))
    ells.append((J[0] - 0.2 * half * z, Q,
                 (body.torso_half_depth * 0.97, body.hip_half_width + 0.55 * body.thigh_radius, 0.55 * half),
                 R("trousers")))
    zh = _unit(J[10] - J[9])
    xh = fwd - (fwd @ zh) * zh
    xh = _unit(xh) if np.linalg.norm(xh) > 1e-6 else _unit(np.cross(y, zh))
    Qh = np.stack([xh, np.cross(zh, xh), zh], axis=1)
    hr = body.head_radius
    ells.append((J[9] + 0.45 * (J[10] - J[9]) + 0.15 * hr * xh, Qh, (hr, 0.85 * hr, 1.15 * hr), R("skin")))
    return {
        "caps_a": np.array([c[0] for c in caps]), "caps_b": np.array([c[1] for c in caps]),
        "caps_r": np.array([c[2] for c in caps]), "caps_region": np.array([c[3] for c in caps]),
        "ell_c": np.array([e[0] for e in ells]), "ell_Q": np.array([e[1] for e in ells]),
        "ell_s": np.array([e[2] for e in ells], dtype=np.float64),
        "ell_region": np.array([e[3] for e in ells]),
    }


def intersect_capsules(o: np.ndarray, d: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Ray distance to each capsule (inf where missed).

    Args:
        o: (3,) ray origin; d: (P, 3) unit directions; a, b: (C, 3) segment ends; r: (C,) radii.
    Returns:
        (P, C) distances along the rays.
    """
    out = np.full((len(d), len(a)), np.inf)
    # cull with each capsule's bounding sphere: the exact test then runs on few (ray, capsule) pairs
    om = 0.5 * (a + b) - o
    dm = d @ om.T
    rb = 0.5 * np.linalg.norm(b - a, axis=-1) + r
    pi, ci = np.nonzero((om * om).sum(-1) - dm * dm <= rb * rb)
    if len(pi) == 0:
        return out
    ba, oa = (b - a)[ci], (o - a)[ci]
    dd = d[pi]
    rr = r[ci]
    baba = (ba * ba).sum(-1)
    baoa = (ba * oa).sum(-1)
    oaoa = (oa * oa).sum(-1)
    bard = (dd * ba).sum(-1)
    rdoa = (dd * oa).sum(-1)
    A = baba - bard * bard
    B = baba * rdoa - baoa * bard
    C = baba * oaoa - baoa * baoa - rr * rr * baba
    h = B * B - A * C
    hit = h >= 0
    sq = np.sqrt(np.where(hit, h, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-B - sq) / A
    y = baoa + t_side * bard
    side_ok = hit & (A > 1e-9) & (y > 0) & (y < baba)
    # otherwise try the end sphere on the side where the infinite-cylinder hit fell;
    # d.(o - b) = d.oa - d.ba
    at_a = y <= 0
    bb = np.where(at_a, rdoa, rdoa - bard)
    cc = np.where(at_a, oaoa, ((o - b)[ci] ** 2).sum(-1)) - rr * rr
    h2 = bb * bb - cc
    t_cap = -bb - np.sqrt(np.where(h2 > 0, h2, 0.0))
    t = np.where(side_ok, t_side, np.where(hit & (h2 > 0), t_cap, np.inf))
    out[pi, ci] = np.where(t > 0, t, np.inf)
    return out


def intersect_ellipsoids(o: np.ndarray, d: np.ndarray, c: np.ndarray, Q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Ray distance to each ellipsoid (inf where missed).

    Args:
        o: (3,) origin; d: (P, 3) unit directions; c: (E, 3) centres; Q: (E, 3, 3) axes as columns;
        s: (E, 3) semi-axes. Returns (P, E).
    """
    out = np.full((len(d), len(c)), np.inf)
    oc = c - o
    dm = d @ oc.T
    rb = s.max(-1)
    pi, ei = np.nonzero((oc * oc).sum(-1) - dm * dm <= rb * rb)  # bounding-sphere cull
    if len(pi) == 0:
        return out
    ol = (np.einsum("eji,ej->ei", Q, o - c) / s)[ei]  # origin in each unit-sphere frame
    dl = np.einsum("nji,nj->ni", Q[ei], d[pi]) / s[ei]
    aa = (dl * dl).sum(-1)
    bb = (dl * ol).sum(-1)
    cc = (ol * ol).sum(-1) - 1.0
    h = bb * bb - aa * cc
    t = (-bb - np.sqrt(np.where(h > 0, h, 0.0))) / aa
    out[pi, ei] = np.where((h > 0) & (t > 0), t, np.inf)
    return out


def _pattern(g: Garment, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colour (P, 3) of garment ``g`` at surface coordinates u (around) and v (along), in mm."""
    base, alt = np.asarray(g.color), np.asarray(g.color2)
    P = g.period
    if g.pattern == "plain":
        m = np.zeros(u.shape, bool)
    elif g.pattern == "stripes":
        m = np.sin(2 * np.pi * v / P) > 0.3
    elif g.pattern == "checks":
        m = (np.floor(u / P) + np.floor(v / P)).astype(int) % 2 == 1
    elif g.pattern == "dots":
        m = ((u % P) - P / 2) ** 2 + ((v % P) - P / 2) ** 2 < (0.25 * P) ** 2
    else:
        raise ValueError(f"unknown pattern {g.pattern!r}: expected one of {PATTERNS}")
    return np.where(m[:, None], alt, base)


def shade_body(body: Body, prims: dict, o: np.ndarray, d: np.ndarray, settings: RenderSettings):
    """Trace rays (P, 3) against the body. Returns colour (P, 3), hit (P,) bool, depth (P,)."""
    tc = intersect_capsules(o, d, prims["caps_a"], prims["caps_b"], prims["caps_r"])
    te = intersect_ellipsoids(o, d, prims["ell_c"], prims["ell_Q"], prims["ell_s"])
    t_all = np.concatenate([tc, te], axis=1)
    k = np.argmin(t_all, axis=1)  # the nearest surface wins: the z-buffer
    depth = t_all[np.arange(len(d)), k]
    hit = np.isfinite(depth)
    color = np.zeros((len(d), 3))
    if not hit.any():
        return color, hit, depth
    idx = np.nonzero(hit)[0]
    p = o + depth[idx, None] * d[idx]
    kk = k[idx]
    n = np.zeros((len(idx), 3))
    uu = np.zeros(len(idx))
    vv = np.zeros(len(idx))
    region = np.zeros(len(idx), int)
    hair = np.zeros(len(idx), bool)
    n_caps = tc.shape[1]
    isc = kk < n_caps
    if isc.any():
        ci = kk[isc]
        a, b, r = prims["caps_a"][ci], prims["caps_b"][ci], prims["caps_r"][ci]
        ba = b - a
        L = np.linalg.norm(ba, axis=-1)
        axis = ba / np.maximum(L, 1e-9)[:, None]
        along = ((p[isc] - a) * axis).sum(-1)
        radial = p[isc] - a - np.clip(along, 0, L)[:, None] * axis
        n[isc] = radial / np.maximum(np.linalg.norm(radial, axis=-1, keepdims=True), 1e-9)
        ref = np.cross(axis, np.array([0.0, 0.0, 1.0]))
        ref = np.where(np.linalg.norm(ref, axis=-1, keepdims=True) < 1e-3, np.array([1.0, 0, 0]), ref)
        ref /= np.linalg.norm(ref, axis=-1, keepdims=True)
        ang = np.arctan2((np.cross(ref, n[isc]) * axis).sum(-1), (ref * n[isc]).sum(-1))
        uu[isc], vv[isc] = ang * r, along
        region[isc] = prims["caps_region"][ci]
    ise = ~isc
    if ise.any():
        ei = kk[ise] - n_caps
        c, Q, s = prims["ell_c"][ei], prims["ell_Q"][ei], prims["ell_s"][ei]
        pl = np.einsum("eji,ej->ei", Q, p[ise] - c) / s  # on the unit sphere
        nw = np.einsum("eij,ej->ei", Q, pl / s)
        n[ise] = nw / np.linalg.norm(nw, axis=-1, keepdims=True)
        uu[ise] = np.arctan2(pl[:, 1], pl[:, 0]) * s[:, :2].mean(-1)
        vv[ise] = pl[:, 2] * s[:, 2]
        region[ise] = prims["ell_region"][ei]
        # hair: the top and back of the head ellipsoid (the last one)
        is_head = ei == len(prims["ell_c"]) - 1
        hair[np.nonzero(ise)[0][is_head]] = (pl[is_head, 2] > 0.35) | (pl[is_head, 0] < -0.25)
    region = np.where(hair, REGIONS.index("hair"), region)
    albedo = np.zeros((len(idx), 3))
    for ri, name in enumerate(REGIONS):
        m = region == ri
        if m.any():
            albedo[m] = _pattern(body.clothing[name], uu[m], vv[m])
    L = _unit(settings.light_dir)
    shade = settings.ambient + settings.diffuse * np.clip(n @ L, 0, None) \
        + settings.fill * np.abs((n * d[idx]).sum(-1))
    color[idx] = np.clip(albedo * shade[:, None], 0, 1)
    return color, hit, depth


def _shadow_capsules(prims: dict):
    """The body as capsules only (ellipsoids -> capsules along their long axis) for shadow casting."""
    c, Q, s = prims["ell_c"], prims["ell_Q"], prims["ell_s"]
    ax = Q[:, :, 2] * (s[:, 2:3] - s[:, :2].mean(-1, keepdims=True)).clip(0)
    a = np.concatenate([prims["caps_a"], c - ax])
    b = np.concatenate([prims["caps_b"], c + ax])
    r = np.concatenate([prims["caps_r"], s[:, :2].mean(-1)])
    return a, b, r


def floor_shadow(prims: dict, floor_xy: np.ndarray, settings: RenderSettings) -> np.ndarray:
    """Occlusion in [0, 1] of floor points (P, 2) by the body, cast along the light direction."""
    L = _unit(settings.light_dir)
    a, b, r = _shadow_capsules(prims)
    pa = a[:, :2] - a[:, 2:3] / L[2] * L[:2]
    pb = b[:, :2] - b[:, 2:3] / L[2] * L[:2]
    ab = pb - pa
    abab = np.maximum((ab * ab).sum(-1), 1e-9)
    xab = floor_xy @ ab.T - (pa * ab).sum(-1)  # (x - pa).ab, as a matmul: (P, C)
    xx = (floor_xy ** 2).sum(-1)[:, None] - 2 * floor_xy @ pa.T + (pa * pa).sum(-1)  # |x - pa|^2
    w = np.clip(xab / abab, 0, 1)
    dist = np.sqrt(np.maximum(xx - 2 * w * xab + w * w * abab, 0))
    soft = settings.shadow_softness
    occ = np.clip((r + soft - dist) / (2 * soft), 0, 1)
    return occ.max(axis=1)


def project(K: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Pinhole projection, no distortion: X (..., 3) world mm -> (..., 2) pixels."""
    x = X @ R.T + t
    x = x @ K.T
    return x[..., :2] / x[..., 2:3]


def render_person(camera, body: Body, joints: np.ndarray, room: Room, background: Background,
                  settings: RenderSettings) -> tuple[np.ndarray, np.ndarray]:
    """One view of one pose over the (shadowed) background, before flicker and noise.

    Only the person's bounding box (plus the shadow's) is traced; the rest is the background.

    Args:
        camera: a ``kp3d.cameras.Camera`` at the output resolution.
        joints: (17, 3) world mm.
        background: from ``render_background`` for this camera and settings.
    Returns:
        image (H, W, 3) float32 in [0, 1] and mask (H, W) bool.
    """
    ss = settings.supersample
    K, R, t, Ws, Hs = _camera_arrays(camera, ss)
    image = background.downsampled().copy()
    mask = np.zeros((camera.height, camera.width), bool)
    prims = body_primitives(body, joints)
    a, b, r = _shadow_capsules(prims)
    pts, rad = np.concatenate([a, b]), np.concatenate([r, r])
    boxes = [_screen_box(K, R, t, pts, rad, ss, camera.width, camera.height)]  # the body
    shadow = settings.shadow_strength > 0
    if shadow:  # the shadow's footprint on the floor
        L = _unit(settings.light_dir)
        sh = pts - pts[:, 2:3] / L[2] * L
        sh[:, 2] = 0.0
        rad_sh = rad + settings.shadow_softness
        boxes.append(_screen_box(K, R, t, sh, rad_sh, ss, camera.width, camera.height))
        lo, hi = sh[:, :2].min(0) - rad_sh.max(), sh[:, :2].max(0) + rad_sh.max()
    x0, y0 = min(bx[0] for bx in boxes), min(bx[1] for bx in boxes)
    x1, y1 = max(bx[2] for bx in boxes), max(bx[3] for bx in boxes)
    if x1 <= x0 or y1 <= y0:
        return image, mask
    h, w = y1 - y0, x1 - x0
    col = background.color[y0 * ss:y1 * ss, x0 * ss:x1 * ss].reshape(-1, 3).astype(np.float64)
    if shadow:
        fp = background.floor_points[y0 * ss:y1 * ss, x0 * ss:x1 * ss].reshape(-1, 2 + 1)[:, :2]
        with np.errstate(invalid="ignore"):  # nan off the floor compares False
            near = np.nonzero(np.all((fp > lo) & (fp < hi), axis=1))[0]
        if len(near):
            occ = floor_shadow(prims, fp[near], settings)
            col[near] *= (1 - settings.shadow_strength * occ)[:, None]
    bx0, by0, bx1, by1 = boxes[0]
    hit = np.zeros(len(col), bool)
    if bx1 > bx0 and by1 > by0:  # trace the body only inside its own box
        v, u = np.mgrid[by0 * ss:by1 * ss, bx0 * ss:bx1 * ss]
        o, d = camera_rays(K, R, t, u.ravel().astype(np.float64), v.ravel().astype(np.float64))
        sel = ((v - y0 * ss) * (w * ss) + (u - x0 * ss)).ravel()
        body_col, body_hit, _ = shade_body(body, prims, o, d, settings)
        col[sel[body_hit]] = body_col[body_hit]
        hit[sel] = body_hit
    image[y0:y1, x0:x1] = _block_mean(col.reshape(h * ss, w * ss, 3), ss)
    mask[y0:y1, x0:x1] = _block_mean(hit.reshape(h * ss, w * ss).astype(np.float32), ss) >= 0.5
    return image.astype(np.float32), mask


def _screen_box(K, R, t, pts, rad, ss, width, height) -> tuple[int, int, int, int]:
    """Output-pixel box (x0, y0, x1, y1) covering spheres (pts (M, 3), rad (M,)) seen by a camera."""
    cam_z = pts @ R[2] + t[2]
    if (cam_z <= 1.0).any():
        raise ValueError("the person is behind or at the camera: check the motion's capture area")
    uv = project(K, R, t, pts)
    pad = rad * max(K[0, 0], K[1, 1]) / cam_z + 2 * ss
    x0 = int(np.clip(np.floor((uv[:, 0] - pad).min() / ss), 0, width))
    x1 = int(np.clip(np.ceil((uv[:, 0] + pad).max() / ss) + 1, 0, width))
    y0 = int(np.clip(np.floor((uv[:, 1] - pad).min() / ss), 0, height))
    y1 = int(np.clip(np.ceil((uv[:, 1] + pad).max() / ss) + 1, 0, height))
    return x0, y0, max(x1, x0), max(y1, y0)


def camera_effects(images: np.ndarray, times: np.ndarray, rng: np.random.Generator,
                   settings: RenderSettings, extra_gain: np.ndarray | None = None) -> np.ndarray:
    """Lighting flicker and sensor noise, then uint8.

    Args:
        images: (T, H, W, 3) float in [0, 1], one camera's frames.
        times: (T,) seconds (the flicker is a slow sine plus a random jitter per frame).
        extra_gain: optional (T,) multiplier, e.g. lights dimmed halfway through a clip.
    Returns:
        (T, H, W, 3) uint8.
    """
    T = len(images)
    phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.6)
    gain = 1 + settings.flicker * (0.7 * np.sin(2 * np.pi * freq * times + phase) + 0.3 * rng.standard_normal(T))
    tint = 1 + 0.25 * settings.flicker * rng.standard_normal((T, 1, 1, 3))
    if extra_gain is not None:
        gain = gain * np.asarray(extra_gain, dtype=np.float64).reshape(T)
    out = images * (gain[:, None, None, None] * tint)
    out = out + settings.noise_std * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
