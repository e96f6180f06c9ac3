"""The ray caster: intersections, z-buffer, shading/texture, shadows, camera effects, determinism."""
import numpy as np
import pytest

from data_utils.bodies import Garment, subject_body
from data_utils.motion import procedural_motion
from data_utils.render import (RenderSettings, body_primitives, camera_effects, camera_rays,
                               floor_shadow, intersect_capsules, intersect_ellipsoids, make_room, project,
                               render_background, render_person, shade_body, value_noise)
from data_utils.synthetic import SyntheticConfig, render_clip, subject_cameras, subject_motion


@pytest.fixture(scope="module")
def cam():
    return subject_cameras("S1", 64)[0]


# ---------------------------------------------------------------- intersections
def test_capsule_hits_side_cap_and_miss():
    o = np.array([0.0, 0.0, 10.0])
    d = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    a, b, r = np.array([[-2.0, 0, 0]]), np.array([[2.0, 0, 0]]), np.array([1.0])
    # straight down onto the side at x=0, onto the end sphere at x=2.5, past the end at x=3.5
    t = intersect_capsules(o, d, a, b, r)
    assert t[0, 0] == pytest.approx(9.0)
    o2 = np.array([2.5, 0.0, 10.0])
    assert intersect_capsules(o2, d[:1], a, b, r)[0, 0] == pytest.approx(10 - np.sqrt(1 - 0.25))
    assert np.isinf(intersect_capsules(np.array([3.5, 0, 10.0]), d[:1], a, b, r)[0, 0])
    # behind the origin does not count
    assert np.isinf(intersect_capsules(o, -d[:1], a, b, r)[0, 0])


def test_ellipsoid_hit_and_miss():
    o = np.array([0.0, 0.0, 10.0])
    d = np.array([[0.0, 0.0, -1.0], [0.6, 0.0, -0.8]])
    c, Q, s = np.zeros((1, 3)), np.eye(3)[None], np.array([[2.0, 1.0, 3.0]])
    t = intersect_ellipsoids(o, d, c, Q, s)
    assert t[0, 0] == pytest.approx(7.0)
    assert np.isinf(t[1, 0])  # passes x = 7.5 at z = 0


def test_intersection_agrees_with_sampling():
    """Random rays: the analytic capsule distance matches a dense march along the ray."""
    rng = np.random.default_rng(0)
    a, b, r = np.array([[0.0, 0, 0]]), np.array([[1.0, 2, 0.5]]), np.array([0.4])
    o = np.array([3.0, -2.0, 4.0])
    target = rng.uniform(-0.5, 1.5, (200, 3))
    d = target - o
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    t = intersect_capsules(o, d, a, b, r)[:, 0]
    s = np.linspace(0, 10, 20001)
    p = o + s[None, :, None] * d[:, None, :]
    ab = b[0] - a[0]
    w = np.clip(((p - a[0]) @ ab) / (ab @ ab), 0, 1)
    inside = np.linalg.norm(p - (a[0] + w[..., None] * ab), axis=-1) <= r[0]
    first = np.where(inside.any(1), s[np.argmax(inside, axis=1)], np.inf)
    hit = np.isfinite(first)
    assert hit.sum() > 20 and (~hit).sum() > 20
    np.testing.assert_array_equal(np.isfinite(t), hit)
    np.testing.assert_allclose(t[hit], first[hit], atol=1e-3)


def test_zbuffer_nearest_surface_wins():
    """Two capsules on one line of sight: the colour is the nearer one's, whichever order."""
    body = subject_body("S1")
    clothing = dict(body.clothing, shirt=Garment((1.0, 0.0, 0.0)), trousers=Garment((0.0, 0.0, 1.0)))
    body = type(body)(**{**body.__dict__, "clothing": clothing})
    o = np.zeros(3)
    d = np.array([[0.0, 0.0, 1.0]])
    near = (np.array([-1.0, 0, 5]), np.array([1.0, 0, 5]))
    far = (np.array([-1.0, 0, 8]), np.array([1.0, 0, 8]))
    for order in ((near, far, 0, 2), (far, near, 2, 0)):
        prims = {"caps_a": np.array([order[0][0], order[1][0]]), "caps_b": np.array([order[0][1], order[1][1]]),
                 "caps_r": np.array([0.5, 0.5]), "caps_region": np.array([order[2], order[3]]),
                 "ell_c": np.array([[0.0, 0, 100]]), "ell_Q": np.eye(3)[None], "ell_s": np.ones((1, 3)),
                 "ell_region": np.array([0])}
        col, hit, depth = shade_body(body, prims, o, d, RenderSettings())
        assert hit[0] and depth[0] == pytest.approx(4.5)
        assert col[0, 0] > 0 and col[0, 2] == 0  # red shirt (region 0) is nearer: no blue


def test_value_noise_is_smooth_and_bounded():
    lat = np.random.default_rng(0).uniform(-1, 1, (64, 64))
    u = np.linspace(0, 10, 1000)
    n = value_noise(lat, u, u * 0.3)
    assert np.abs(n).max() <= 1 and np.abs(np.diff(n)).max() < 0.1


# ---------------------------------------------------------------- full views
def test_background_is_textured_and_floor_known(cam):
    bg = render_background(cam, make_room(0), RenderSettings(supersample=1))
    img = bg.downsampled()
    assert img.shape == (64, 64, 3) and 0 <= img.min() and img.max() <= 1
    assert img.std(axis=(0, 1)).min() > 0.03  # not flat
    assert np.isfinite(bg.floor_points[..., 0]).mean() > 0.3  # the floor is seen
    np.testing.assert_allclose(bg.floor_points[np.isfinite(bg.floor_points[..., 0])][:, 2], 0.0, atol=1e-6)


def test_render_person_mask_joints_and_shading(cam):
    body = subject_body("S1")
    joints = subject_motion(SyntheticConfig(image_size=64, frames_per_subject=5, supersample=1), "S1")["joints"]
    st = RenderSettings(supersample=2)
    bg = render_background(cam, make_room(0), st)
    img, mask = render_person(cam, body, joints[0], make_room(0), bg, st)
    assert img.shape == (64, 64, 3) and img.dtype == np.float32 and mask.dtype == bool
    assert 20 < mask.sum() < 64 * 64 / 4
    uv = np.round(project(cam.K, cam.R, cam.t, joints[0])).astype(int)
    assert mask[uv[[0, 7, 8], 1], uv[[0, 7, 8], 0]].all()  # pelvis, spine, thorax inside the body
    diff = np.abs(img - bg.downsampled()).mean(-1)
    assert diff[mask].mean() > 0.05
    # shading varies over the body: not a flat silhouette
    assert img[mask].std(0).max() > 0.02


def test_shadow_darkens_floor_near_feet(cam):
    body, room = subject_body("S1"), make_room(0)
    j = procedural_motion(body, 1, seed=0, waypoints=np.array([[0.0, 500.0], [100.0, 500.0]]))["joints"][0]
    on, off = RenderSettings(supersample=1), RenderSettings(supersample=1, shadow_strength=0.0)
    img_on, mask = render_person(cam, body, j, room, render_background(cam, room, on), on)
    img_off, _ = render_person(cam, body, j, room, render_background(cam, room, off), off)
    darker = (img_off - img_on).mean(-1)[~mask]
    assert darker.max() > 0.05 and darker.min() >= -1e-6
    prims = body_primitives(body, j)
    occ = floor_shadow(prims, np.array([[j[0, 0], j[0, 1]], [j[0, 0] + 3000, j[0, 1]]]), on)
    assert occ[1] == 0.0


def test_camera_effects_flicker_and_noise():
    imgs = np.full((200, 8, 8, 3), 0.5, np.float32)
    st = RenderSettings()
    out = camera_effects(imgs, np.arange(200) / 10.0, np.random.default_rng(0), st)
    assert out.dtype == np.uint8
    means = out.reshape(200, -1).mean(1) / 255.0
    assert 0.01 < means.std() < 0.05  # flicker of a few percent
    noise = (out.astype(float) / 255.0 - means[:, None, None, None]).std()
    assert 0.008 < noise < 0.03
    again = camera_effects(imgs, np.arange(200) / 10.0, np.random.default_rng(0), st)
    np.testing.assert_array_equal(out, again)


def test_rays_pass_through_pixel_centres(cam):
    X = np.array([[200.0, 300.0, 900.0]])
    uv = project(cam.K, cam.R, cam.t, X)
    o, d = camera_rays(cam.K, cam.R, cam.t, uv[:, 0], uv[:, 1])
    v = X[0] - o
    np.testing.assert_allclose(d[0], v / np.linalg.norm(v), atol=1e-9)


def test_render_is_deterministic():
    cfg = SyntheticConfig(image_size=48, frames_per_subject=6, subjects=("S9",), supersample=1)
    joints = subject_motion(cfg, "S9")["joints"]
    a, b = render_clip(cfg, "S9", joints, seed=4), render_clip(cfg, "S9", joints, seed=4)
    for k in ("images", "masks", "bg_true"):
        np.testing.assert_array_equal(a[k], b[k])
    c = render_clip(cfg, "S9", joints, seed=5)
    assert not np.array_equal(a["images"], c["images"])  # the noise follows the seed
    np.testing.assert_array_equal(a["masks"], c["masks"])


def test_bad_joints_shape():
    with pytest.raises(ValueError, match=r"\(17, 3\)"):
        body_primitives(subject_body("S1"), np.zeros((16, 3)))
