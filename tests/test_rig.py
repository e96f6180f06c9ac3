"""Tests of data_utils.rig and data_utils.video: a synthetic rig written as real mp4 files.

The scene: three cameras (landscape, portrait, square; two with lens distortion) around a "person"
made of six coloured disks at known 3D joints, over a textured static background. Frames are drawn
at the *distorted* projections (what a real lens does), encoded with H.264, then loaded back through
the calibration files; the disks' centroids in the decoded, undistorted and resized frames must sit
within 1 px of the loaded cameras' projections of the known joints.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("av")
pytest.importorskip("cv2")

from kp3d.cameras import Camera  # noqa: E402

from data_utils.calibration import (CalibrationError, Distortion, distort_points, undistortion_maps,  # noqa: E402
                                    write_opencv, write_toml)
from data_utils.rig import (ContaminatedBackgroundWarning, RigDataset, _prepare,  # noqa: E402
                            background_contamination, fit_camera, make_rig_dataset)
from data_utils.video import read_frames, video_info, write_video  # noqa: E402
from kp3d.profiles import make_dataset  # noqa: E402

T = 24
IMAGE_SIZE = 96
# joints 450 mm apart in height, so that no two disks overlap in any view; neighbours get colours
# whose differences from the grey background are anti-correlated, so each centroid sees one disk
COLOURS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=np.float64)
RADIUS = 4.5  # disk radius, native pixels


# ---------------------------------------------------------------------------------------------
# building a rig
# ---------------------------------------------------------------------------------------------
def look_at(name, centre, target, f, width, height) -> Camera:
    z = np.asarray(target, float) - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    K = np.array([[f, 0, (width - 1) / 2 + 3.0], [0, f * 1.01, (height - 1) / 2 - 2.0], [0, 0, 1]])
    return Camera(name=name, K=K, R=R, t=-R @ np.asarray(centre, float), width=width, height=height)


def make_cameras(n: int = 3):
    target = [0, 0, 1000.0]
    cams = [look_at("camA", np.array([4500.0, 0, 1200]), target, 150, 192, 128),     # landscape
            look_at("camB", np.array([0, 4500.0, 1500]), target, 150, 128, 192),     # portrait
            look_at("Cam_C", np.array([-3200.0, -3200, 900]), target, 140, 160, 160),  # square
            look_at("camD", np.array([-1500.0, 4000, 2500]), target, 200, 256, 144)]  # 16:9, from above
    dist = {"camA": Distortion("opencv", [-0.3, 0.08, 0.002, -0.001, 0.0]),
            "camB": Distortion("opencv", [0.06, -0.01, 0.0, 0.0]), "Cam_C": None,
            "camD": Distortion("fisheye", [0.02, 0.005, 0.0, 0.0])}
    return cams[:n], {c.name: dist[c.name] for c in cams[:n]}


def joints_at(frame: int, walking: bool) -> np.ndarray:
    """(5, 3) world mm: head, raised hand, pelvis, lowered hand, foot."""
    base = np.array([[0, 0, 1750], [300, 0, 1300], [0, 0, 850], [-300, 0, 400], [0, 0, 0.0]])
    if walking:  # a circle around the room's centre, as in Human3.6M
        a = 2 * np.pi * frame / T
        base = base + np.array([1500 * np.cos(a), 1500 * np.sin(a), 0])
    else:  # standing still, arms swinging slightly
        base = base.copy()
        base[[1, 3], 2] += 120 * np.sin(2 * np.pi * frame / 8)
    return base


def background_image(cam: Camera, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.3, 0.6, size=(cam.height // 8 + 2, cam.width // 8 + 2, 3))
    import cv2

    img = cv2.resize(coarse, (cam.width, cam.height), interpolation=cv2.INTER_CUBIC)
    gray = img.mean(-1, keepdims=True)
    return np.clip(gray + 0.3 * (img - gray), 0, 1)  # low saturation: the joints' colours stand out


def render_frame(cam: Camera, dist, bg: np.ndarray, X: np.ndarray, rng) -> np.ndarray:
    """(H, W, 3) uint8: antialiased disks at the distorted projections of X over bg, plus noise."""
    img = bg.copy()
    centres = distort_points(cam, dist, cam.project(X))
    v, u = np.mgrid[0:cam.height, 0:cam.width]
    for c, colour in zip(centres, COLOURS):
        d = np.hypot(u - c[0], v - c[1])
        a = np.clip(RADIUS + 0.5 - d, 0, 1)[..., None]
        img = img * (1 - a) + colour * a
    img = img + rng.normal(0, 0.01, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def build_rig(root, walking=True, n_frames=None, empty_clips=False, formats=("toml",), n_cameras=3):
    cams, dist = make_cameras(n_cameras)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X = np.stack([joints_at(f, walking) for f in range(T)])
    bgs = {}
    for k, cam in enumerate(cams):
        bg = background_image(cam, k)
        bgs[cam.name] = bg
        n = (n_frames or {}).get(cam.name, T)
        write_video(root / f"{cam.name}.mp4", [render_frame(cam, dist[cam.name], bg, X[f], rng) for f in range(n)])
        if empty_clips:
            (root / "background").mkdir(exist_ok=True)
            write_video(root / "background" / f"{cam.name}.mp4",
                        [render_frame(cam, dist[cam.name], bg, np.full((5, 3), 1e9), rng) for _ in range(8)])
    if "toml" in formats:
        write_toml(root / "calibration.toml", cams, dist, units="m")
    if "yml" in formats:
        write_opencv(root / "rig.yml", cams, dist, units="mm")
    if "json_yup" in formats:
        # the same rig in a y-up world (x_file = M x_kp3d), Rodrigues rotations, metres
        M = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
        moved = [Camera(c.name, c.K, c.R @ M.T, c.t, c.width, c.height) for c in cams]
        write_opencv(root / "rig_yup.json", moved, dist, units="m", rodrigues=True)
        np.save(root / "joints_yup.npy", (X @ M.T) / 1000)
    return cams, dist, X, bgs


def blob_centroids(img: np.ndarray, bg: np.ndarray, expected: np.ndarray, window: int = 5) -> np.ndarray:
    """(3, H, W) frame, background -> (5, 2) centroid of each colour's alpha around its expected spot."""
    img, bg = img.permute(1, 2, 0).numpy().astype(np.float64), bg.permute(1, 2, 0).numpy().astype(np.float64)
    out = np.zeros((len(COLOURS), 2))
    H, W = img.shape[:2]
    for j, (colour, e) in enumerate(zip(COLOURS, expected)):
        u0, v0 = int(round(e[0])), int(round(e[1]))
        ys, xs = slice(max(0, v0 - window), min(H, v0 + window + 1)), slice(max(0, u0 - window), min(W, u0 + window + 1))
        diff, ref = img[ys, xs] - bg[ys, xs], colour - bg[ys, xs]
        alpha = np.clip((diff * ref).sum(-1) / (ref * ref).sum(-1), 0, 1)
        alpha[alpha < 0.15] = 0  # ignore compression noise
        vv, uu = np.mgrid[ys, xs]
        out[j] = [(alpha * uu).sum() / alpha.sum(), (alpha * vv).sum() / alpha.sum()]
    return out


def inside(cam: Camera, dist, X: np.ndarray, margin: float = RADIUS + 2) -> np.ndarray:
    """(J,) bool: joints whose disk lies whole inside the raw frame (a cut disk has a biased centroid)."""
    x = distort_points(cam, dist, cam.project(X))
    return np.all((x >= margin) & (x <= [cam.width - 1 - margin, cam.height - 1 - margin]), axis=-1)


@pytest.fixture(scope="module")
def walking_rig(tmp_path_factory):
    root = tmp_path_factory.mktemp("rig") / "walk"
    cams, dist, X, bgs = build_rig(root, walking=True, formats=("toml", "yml", "json_yup"))
    np.save(root / "joints_3d.npy", X / 1000)  # the TOML's world is in metres
    return root, cams, dist, X, bgs


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KP3D_CACHE_DIR", str(tmp_path / "cache"))


# ---------------------------------------------------------------------------------------------
# video
# ---------------------------------------------------------------------------------------------
def test_video_roundtrip_and_image_folder(tmp_path):
    import cv2

    v, u = np.mgrid[0:16, 0:24]
    frames = np.stack([np.stack([u * 2 + 10 * t + 20, v * 2 + 20, 200 - u - v], -1) for t in range(4)]).astype(np.uint8)
    write_video(tmp_path / "a.mp4", frames, crf=0)
    back = read_frames(tmp_path / "a.mp4")
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean() < 2.5  # smooth colours survive yuv420p
    assert read_frames(tmp_path / "a.mp4", step=2).shape[0] == 2
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"frame{i + 1}.png"), f[..., ::-1])
    assert video_info(folder) == {"width": 24, "height": 16, "frames": 4, "fps": None}
    np.testing.assert_array_equal(read_frames(folder), frames)
    with pytest.raises(FileExistsError):
        write_video(tmp_path / "a.mp4", frames)
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 15, 24, 3), np.uint8))
    with pytest.raises(FileNotFoundError):
        video_info(tmp_path / "nope.mp4")


# ---------------------------------------------------------------------------------------------
# shapes and the sample interface
# ---------------------------------------------------------------------------------------------
def test_sample_interface(walking_rig):
    root, cams, *_ = walking_rig
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContaminatedBackgroundWarning)  # a walking person: clean median
        ds = RigDataset(root, image_size=IMAGE_SIZE, progress=False)
    assert len(ds) == T and ds.camera_names == [c.name for c in cams]
    s = ds[3]
    V = len(cams)
    assert s["images"].shape == (V, 3, IMAGE_SIZE, IMAGE_SIZE) and s["images"].dtype == torch.float32
    assert 0 <= s["images"].min() and s["images"].max() <= 1
    assert s["backgrounds"].shape == (V, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert s["K"].shape == (V, 3, 3) and s["R"].shape == (V, 3, 3) and s["t"].shape == (V, 3)
    assert all(s[k].dtype == torch.float32 for k in ("backgrounds", "K", "R", "t"))
    assert s["index"].dtype == torch.int64 and int(s["index"]) == 3
    assert s["gt"]["joints_3d"].shape == (5, 3) and s["gt"]["joints_2d"].shape == (V, 5, 2)
    assert ds.frame_info(3)["frame"] == 3
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["images"].shape == (2, V, 3, IMAGE_SIZE, IMAGE_SIZE)
    text = ds.describe()
    assert "metres to millimetres" in text and "undistorted (opencv)" in text


@pytest.mark.filterwarnings("ignore::data_utils.rig.ContaminatedBackgroundWarning")  # 2-5 frames: a poor median
def test_make_rig_dataset_profile_and_no_labels(walking_rig, tmp_path):
    root, *_ = walking_rig
    ds = make_dataset(f"rig:{root}", "smoke", calibration=str(root / "rig.yml"), progress=False,
                      max_frames=5, frame_step=2)
    assert ds.image_size == 64 and len(ds) == 5 and [ds.frame_info(i)["frame"] for i in range(5)] == [0, 2, 4, 6, 8]
    assert ds.has_labels  # joints_3d.npy is in the folder
    # a copy of the folder without labels has no gt key
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for p in root.glob("*.mp4"):
        shutil.copy(p, bare / p.name)
    shutil.copy(root / "calibration.toml", bare)
    ds = make_rig_dataset(str(bare), image_size=64, progress=False, max_frames=2)
    assert "gt" not in ds[0]
    with pytest.raises(ValueError, match="rig:"):
        make_rig_dataset("h36m:/x", image_size=64)


def test_fit_camera_pad_keeps_aspect():
    cams, _ = make_cameras()
    X = joints_at(0, True)
    for cam in cams:
        fitted, (w, h, left, top) = fit_camera(cam, 64, "pad")
        assert fitted.width == fitted.height == 64 and max(w, h) == 64
        # a point's position relative to the image content is unchanged, up to the scale
        u = cam.project(X)
        u2 = fitted.project(X)
        s = w / cam.width
        np.testing.assert_allclose(u2, (u + 0.5) * [w / cam.width, h / cam.height] - 0.5 + [left, top], atol=1e-9)
        assert abs(s - h / cam.height) < 0.02
    with pytest.raises(ValueError, match="fit"):
        fit_camera(cams[0], 64, "crop")


# ---------------------------------------------------------------------------------------------
# accuracy: loaded cameras reproject the known joints onto the decoded frames
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("calibration,joints", [("calibration.toml", None), ("rig.yml", "mm"),
                                                ("rig_yup.json", "joints_yup.npy")])
def test_reprojection_under_one_pixel(walking_rig, calibration, joints):
    root, cams, dist, X, _ = walking_rig
    ds = RigDataset(root, calibration=root / calibration, image_size=IMAGE_SIZE, progress=False)
    if joints == "mm":
        Xw = X
    elif joints is None:
        Xw = ds.calibration.points_to_world(X / 1000)
    else:
        Xw = ds.calibration.points_to_world(np.load(root / joints))
    if calibration == "rig_yup.json":
        assert any("up axis" in c for c in ds.calibration.conversions)
        for cam in ds.cameras:  # the cameras stand upright again in the converted world
            assert (cam.R.T @ [0, -1, 0])[2] > 0.9
    errors = []
    for f in (0, 7, 10, 15, 23):
        s = ds[f]
        for v, cam in enumerate(ds.cameras):
            expected = cam.project(Xw[f])
            found = blob_centroids(s["images"][v], s["backgrounds"][v], expected)
            ok = inside(cams[v], dist[cams[v].name], X[f])
            errors.append(np.linalg.norm(found - expected, axis=-1)[ok])
    errors = np.concatenate(errors)
    assert errors.size >= 60
    assert errors.max() < 1.0, f"max reprojection error {errors.max():.3f} px (mean {errors.mean():.3f})"
    if calibration == "calibration.toml":  # the labels' 2D joints are the same projections
        np.testing.assert_allclose(ds[5]["gt"]["joints_2d"].numpy(),
                                   np.stack([c.project(Xw[5]) for c in ds.cameras]), atol=1e-3)


def test_four_cameras_with_a_fisheye(tmp_path):
    root = tmp_path / "four"
    cams, dist, X, _ = build_rig(root, n_cameras=4, formats=("yml",))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContaminatedBackgroundWarning)
        ds = RigDataset(root, calibration=root / "rig.yml", image_size=IMAGE_SIZE, progress=False)
    assert ds.camera_names == ["camA", "camB", "Cam_C", "camD"] and len(ds) == T
    assert ds.calibration.distortion["camD"].model == "fisheye"
    errors = []
    for i in range(0, T, 5):
        s = ds[i]
        for v, cam in enumerate(ds.cameras):
            expected = cam.project(X[i])
            ok = inside(cams[v], dist[cams[v].name], X[i])
            found = blob_centroids(s["images"][v], s["backgrounds"][v], expected)
            errors.append(np.linalg.norm(found - expected, axis=-1)[ok])
    errors = np.concatenate(errors)
    assert errors.size >= 80 and errors.max() < 1.0, errors.max()


def test_without_undistortion_the_error_is_larger(walking_rig):
    """The accuracy test can fail: ignoring the lens puts the joints off by more than a pixel."""
    root, cams, dist, X, _ = walking_rig
    ds = RigDataset(root, image_size=IMAGE_SIZE, progress=False)
    Xw = ds.calibration.points_to_world(X / 1000)  # (T, 5, 3)
    cam = ds.cameras[0]
    _, (w, h, left, top) = fit_camera(cams[0], IMAGE_SIZE)
    raw_px = distort_points(cams[0], dist["camA"], cams[0].project(Xw))  # where the raw frame has them
    raw_fitted = (raw_px + 0.5) * [w / cams[0].width, h / cams[0].height] - 0.5 + [left, top]
    offset = np.linalg.norm(raw_fitted - cam.project(Xw), axis=-1)  # (T, 5)
    f = int(offset.max(1).argmax())
    assert offset[f].max() > 1.5
    found = blob_centroids(ds[f]["images"][0], ds[f]["backgrounds"][0], cam.project(Xw[f]))
    assert np.linalg.norm(found - cam.project(Xw[f]), axis=-1).max() < 1.0


def test_video_smaller_than_calibration_rescales_intrinsics(walking_rig, tmp_path, caplog):
    import logging
    import shutil

    import cv2

    root, cams, dist, X, _ = walking_rig
    rig = tmp_path / "half"
    shutil.copytree(root, rig, ignore=shutil.ignore_patterns("*.json", "*.yml", "joints*"))
    half = [cv2.resize(f, (96, 64), interpolation=cv2.INTER_AREA) for f in read_frames(root / "camA.mp4")]
    write_video(rig / "camA.mp4", half, overwrite=True)  # recorded at half the calibrated resolution
    with caplog.at_level(logging.INFO, logger="data_utils.rig"):
        ds = RigDataset(rig, image_size=IMAGE_SIZE, progress=False)
    assert "calibrated at 192x128, video is 96x64 -> intrinsics rescaled" in caplog.text
    errors = []
    for f in (2, 9, 16):
        Xw = ds.calibration.points_to_world(X[f] / 1000)
        expected = ds.cameras[0].project(Xw)
        found = blob_centroids(ds[f]["images"][0], ds[f]["backgrounds"][0], expected)
        errors.append(np.linalg.norm(found - expected, axis=-1)[inside(cams[0], dist["camA"], X[f])])
    assert np.concatenate(errors).max() < 1.0


@pytest.mark.filterwarnings("ignore::data_utils.rig.ContaminatedBackgroundWarning")  # 3-frame medians
def test_cache_is_reused_and_keyed_on_options(walking_rig, tmp_path):
    root, *_ = walking_rig
    from kp3d.profiles import cache_dir

    a = RigDataset(root, image_size=32, max_frames=3, progress=False)
    files = sorted((cache_dir() / "rig").glob("*.npy"))
    assert len(files) == 1
    b = RigDataset(root, image_size=32, max_frames=3, progress=False)
    torch.testing.assert_close(a[2]["images"], b[2]["images"])
    RigDataset(root, image_size=32, max_frames=3, fit="stretch", progress=False)
    assert len(list((cache_dir() / "rig").glob("*.npy"))) == 2


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def test_mismatched_frame_counts(tmp_path):
    root = tmp_path / "short"
    build_rig(root, n_frames={"Cam_C": T - 4})
    with pytest.raises(ValueError, match=r"frame counts differ.*trim=True"):
        RigDataset(root, image_size=32, progress=False)
    with pytest.warns(UserWarning, match="keeping the first 20 frames"):
        ds = RigDataset(root, image_size=32, trim=True, progress=False)
    assert len(ds) == T - 4


@pytest.mark.filterwarnings("ignore::data_utils.rig.ContaminatedBackgroundWarning")  # 1-frame medians
def test_missing_and_extra_cameras(walking_rig, tmp_path):
    import shutil

    root, *_ = walking_rig
    rig = tmp_path / "r"
    rig.mkdir()
    shutil.copy(root / "calibration.toml", rig)
    shutil.copy(root / "camA.mp4", rig)
    shutil.copy(root / "camB.mp4", rig)
    with pytest.raises(FileNotFoundError, match=r"names camera\(s\) \['Cam_C'\] but there is no video"):
        RigDataset(rig, image_size=32, progress=False)
    ds = RigDataset(rig, image_size=32, cameras=["camB", "camA"], progress=False)  # a subset works
    assert ds.camera_names == ["camB", "camA"] and ds[0]["images"].shape[0] == 2
    shutil.copy(root / "Cam_C.mp4", rig / "videos_cam_c.mp4")
    shutil.copy(root / "Cam_C.mp4", rig / "cam_c.mp4")  # case-insensitive match
    with pytest.raises(ValueError, match=r"videos_cam_c.mp4.*match no camera"):
        RigDataset(rig, image_size=32, progress=False)
    (rig / "videos_cam_c.mp4").unlink()
    assert RigDataset(rig, image_size=32, progress=False, max_frames=1).camera_names[-1] == "Cam_C"
    with pytest.raises(ValueError, match="at least 2"):
        RigDataset(rig, image_size=32, cameras=["camA"], progress=False)
    with pytest.raises(FileNotFoundError, match="no calibration file"):
        RigDataset(tmp_path, image_size=32, progress=False)


def test_non_finite_calibration_and_wrong_size(walking_rig, tmp_path):
    import shutil

    root, *_ = walking_rig
    rig = tmp_path / "nf"
    shutil.copytree(root, rig, ignore=shutil.ignore_patterns("*.json", "*.yml", "joints*"))
    text = (rig / "calibration.toml").read_text().splitlines()
    i = next(k for k, line in enumerate(text) if line.startswith("translation"))
    text[i] = "translation = [ nan, 0.0, 4.5 ]"
    (rig / "calibration.toml").write_text("\n".join(text))
    with pytest.raises(CalibrationError, match=r"translation|\.t: contains non-finite"):
        RigDataset(rig, image_size=32, progress=False)
    cams, dist = make_cameras()
    wrong = [Camera(c.name, c.K, c.R, c.t, c.height, c.width) if c.name == "camA" else c for c in cams]
    write_toml(rig / "calibration.toml", wrong, dist, overwrite=True)
    with pytest.raises(ValueError, match="another aspect ratio"):
        RigDataset(rig, image_size=32, progress=False)


# ---------------------------------------------------------------------------------------------
# backgrounds
# ---------------------------------------------------------------------------------------------
def test_still_person_warns_and_empty_scene_clip_fixes_it(tmp_path):
    root = tmp_path / "still"
    cams, dist, X, bgs = build_rig(root, walking=False, empty_clips=True)
    (root / "background").rename(root / "empty")  # not auto-discovered: the median is used first
    with pytest.warns(ContaminatedBackgroundWarning) as record:
        ds = RigDataset(root, image_size=IMAGE_SIZE, progress=False)
    messages = [str(w.message) for w in record if w.category is ContaminatedBackgroundWarning]
    assert len(messages) == len(cams) and all("Fix: record the empty scene" in m for m in messages)
    assert any(str(root / "background" / "camA.png") in m for m in messages)
    assert all(r["contaminated"] for r in ds.background_report.values())
    median_bg = ds[0]["backgrounds"]
    # the same rig with the empty-scene clips: no warning, and the background is the empty scene
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContaminatedBackgroundWarning)
        ds2 = RigDataset(root, image_size=IMAGE_SIZE, backgrounds=root / "empty", progress=False)
    assert all("empty-scene clip" in s for s in ds2.background_sources.values())
    assert ds2.background_report == {}
    clean = ds2[0]["backgrounds"]
    # the median kept the person (coloured disks); the empty-scene background does not
    assert (median_bg - clean).abs().amax(1).gt(0.3).float().mean() > 0.005
    # the clean background matches the true one rendered through the same pipeline
    for v, cam in enumerate(cams):
        _, placement = fit_camera(cam, IMAGE_SIZE)
        truth = _prepare((bgs[cam.name] * 255).round().astype(np.uint8), undistortion_maps(cam, dist[cam.name]),
                         placement, IMAGE_SIZE)
        err = np.abs(clean[v].permute(1, 2, 0).numpy() - truth / 255.0).mean()
        assert err < 0.02, (cam.name, err)


def test_background_image_per_camera(walking_rig, tmp_path):
    import shutil

    import cv2

    root, cams, dist, X, bgs = walking_rig
    rig = tmp_path / "img_bg"
    shutil.copytree(root, rig, ignore=shutil.ignore_patterns("*.json", "*.yml", "joints*"))
    (rig / "background").mkdir()
    img = (bgs["camA"] * 255).round().astype(np.uint8)
    cv2.imwrite(str(rig / "background" / "camA.png"), img[..., ::-1])
    # camB as a folder of images instead of a video
    (rig / "camB").mkdir()
    for i, frame in enumerate(read_frames(rig / "camB.mp4")):
        cv2.imwrite(str(rig / "camB" / f"{i + 1:06d}.png"), frame[..., ::-1])
    (rig / "camB.mp4").unlink()
    ds = RigDataset(rig, image_size=IMAGE_SIZE, progress=False)
    assert ds.sources["camB"].is_dir()
    Xw = ds.calibration.points_to_world(X[9] / 1000)
    found = blob_centroids(ds[9]["images"][1], ds[9]["backgrounds"][1], ds.cameras[1].project(Xw))
    assert np.linalg.norm(found - ds.cameras[1].project(Xw), axis=-1).max() < 1.0
    assert ds.background_sources["camA"].startswith("empty-scene image")
    assert ds.background_sources["camB"].startswith("median")
    cv2.imwrite(str(rig / "background" / "camB.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="must match"):
        RigDataset(rig, image_size=32, progress=False)


def test_background_contamination_detector():
    rng = np.random.default_rng(0)
    bg = rng.uniform(0.3, 0.6, (48, 48, 3))
    frames = np.repeat(bg[None], 30, 0) + rng.normal(0, 0.01, (30, 48, 48, 3))
    moving, still = frames.copy(), frames.copy()
    for t in range(30):
        c = 4 + t * 40 // 30
        moving[t, 20:30, c:c + 4] = [1, 0, 0]  # a 4-px wide figure walking across
        still[t, 20:30, 22:26] = [1, 0, 0]  # the same figure standing still ...
        still[t, 24:26, 26:30 if t % 2 else 28] = [0, 1, 0]  # ... moving an arm
    median = lambda f: np.median(f, 0)  # noqa: E731
    assert not background_contamination(moving, median(moving))["contaminated"]
    r = background_contamination(still, median(still))
    assert r["contaminated"] and "more than 45% of the frames" in r["reason"]
    frozen = still.copy()
    frozen[:, 24:26, 26:30] = [0, 1, 0]
    r = background_contamination(frozen, median(frozen))
    assert r["contaminated"] and "nothing moves" in r["reason"]
    flicker = frames * rng.uniform(0.6, 1.4, (30, 1, 1, 1))  # automatic exposure gone wild
    r = background_contamination(flicker, median(flicker))
    assert r["contaminated"] and "almost everywhere" in r["reason"]
    with pytest.raises(ValueError, match="frames"):
        background_contamination(frames[0], bg)


def test_smoke_training_on_a_loaded_rig(walking_rig, tmp_path, monkeypatch):
    """The documented command trains, exports and uses every camera of the rig."""
    from kp3d.cli import main
    from kp3d.export import load_export

    root, cams, *_ = walking_rig
    monkeypatch.setenv("KP3D_OUTPUT_DIR", str(tmp_path / "out"))
    run_dir, export = tmp_path / "run", tmp_path / "rig.npz"
    assert main(["--profile", "smoke", "--data", f"rig:{root}", "--calibration", str(root / "calibration.toml"),
                 "--set", "max_iters=3", "--set", "warmup_iters=1", "--run-dir", str(run_dir),
                 "--export", str(export), "--no-progress", "--device", "cpu"]) == 0
    ex = load_export(export)
    assert ex["kp3d"].shape[1:] == (8, 3) and ex["kp2d"].shape[1] == len(cams)
    assert np.isfinite(ex["kp3d"]).all()
