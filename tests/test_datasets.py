"""Data sets: the synthetic cache and sample contract, ground-truth consistency, real-data loaders' errors."""
import json

import numpy as np
import pytest
import torch

from data_utils.datasets import Human36MDataset, MPI3DHPDataset, SyntheticDataset
from kp3d.profiles import make_dataset, synthetic_config
from data_utils.synthetic import GENERATOR_VERSION, SyntheticConfig, cache_path, ensure_rendered


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("kp3d_cache")
        mp.setenv("KP3D_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def smoke_all(cache):
    return make_dataset("synthetic", "smoke", "all", progress=False)


@pytest.fixture(scope="module")
def sharp(cache):
    """A few frames at the cpu-demo resolution with anti-aliasing."""
    cfg = SyntheticConfig(image_size=128, frames_per_subject=12, subjects=("S1", "S11"), fps=2.0)
    return SyntheticDataset(cfg, "all", progress=False)


def test_sample_contract(smoke_all):
    assert len(smoke_all) == 7 * 40 and smoke_all.subjects == ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
    s = smoke_all[45]
    assert s["images"].shape == (4, 3, 64, 64) and s["images"].dtype == torch.float32
    assert 0 <= s["images"].min() and s["images"].max() <= 1
    assert s["backgrounds"].shape == (4, 3, 64, 64)
    assert s["K"].shape == (4, 3, 3) and s["R"].shape == (4, 3, 3) and s["t"].shape == (4, 3)
    assert s["index"].dtype == torch.int64 and int(s["index"]) == 45
    gt = s["gt"]
    assert gt["joints_3d"].shape == (17, 3) and gt["joints_2d"].shape == (4, 17, 2)
    assert gt["masks"].shape == (4, 1, 64, 64) and set(gt["masks"].unique().tolist()) <= {0.0, 1.0}
    assert gt["backgrounds"].shape == (4, 3, 64, 64)
    assert smoke_all.frame_info(45) == {"subject": "S5", "frame": 5, "split": "train",
                                        "action": smoke_all.frame_info(45)["action"]}
    torch.testing.assert_close(smoke_all[-1]["images"], smoke_all[len(smoke_all) - 1]["images"])
    with pytest.raises(IndexError):
        smoke_all[len(smoke_all)]
    # R is a rotation
    torch.testing.assert_close(s["R"] @ s["R"].transpose(1, 2), torch.eye(3).expand(4, 3, 3), atol=1e-5, rtol=0)


def test_splits(cache, smoke_all):
    train = make_dataset("synthetic", "smoke", "train", progress=False)
    test = make_dataset("synthetic", "smoke", "test", progress=False)
    assert train.subjects == ("S1", "S5", "S6", "S7", "S8") and test.subjects == ("S9", "S11")
    assert len(train) + len(test) == len(smoke_all)
    assert test.frame_info(0)["split"] == "test"
    step = make_dataset("synthetic", "smoke", "test", frame_step=10, progress=False)
    assert len(step) == 2 * 4
    with pytest.raises(ValueError, match="split"):
        make_dataset("synthetic", "smoke", "val")


@pytest.mark.parametrize("which", ["smoke_all", "sharp"])
def test_gt_projection_matches_stored_2d(which, request):
    ds = request.getfixturevalue(which)
    for i in range(0, len(ds), 7):
        s = ds[i]
        X = s["gt"]["joints_3d"].double()
        xc = X @ s["R"].double().transpose(1, 2) + s["t"].double()[:, None]  # (V, 17, 3)
        uv = xc @ s["K"].double().transpose(1, 2)
        uv = uv[..., :2] / uv[..., 2:]
        assert (uv - s["gt"]["joints_2d"].double()).norm(dim=-1).max() < 0.5


@pytest.mark.parametrize("which, need", [("sharp", 0.95), ("smoke_all", 0.90)])
def test_joints_inside_masks(which, need, request):
    """>= 95% of the GT 2D joints fall on the GT mask (at 64 px thin forearms may alias away)."""
    ds = request.getfixturevalue(which)
    inside = total = 0
    for i in range(len(ds)):
        s = ds[i]
        uv = s["gt"]["joints_2d"].round().long()
        H, W = s["images"].shape[-2:]
        ok = (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
        v, j = ok.nonzero(as_tuple=True)
        inside += int(s["gt"]["masks"][v, 0, uv[v, j, 1], uv[v, j, 0]].sum())
        total += int(ok.sum())
    assert inside / total >= need


def test_every_subject_and_view_shows_the_person(smoke_all):
    by_subject = {}
    for i in range(len(smoke_all)):
        s = smoke_all[i]
        sub = smoke_all.frame_info(i)["subject"]
        uv = s["gt"]["joints_2d"]
        inframe = ((uv >= 0) & (uv <= 63)).all(-1)  # (V, 17)
        area = s["gt"]["masks"].sum(dim=(1, 2, 3))  # (V,)
        acc = by_subject.setdefault(sub, {"inframe": [], "area": []})
        acc["inframe"].append(inframe)
        acc["area"].append(area)
    assert set(by_subject) == set(smoke_all.subjects)
    for sub, acc in by_subject.items():
        inframe = torch.stack(acc["inframe"])  # (T, V, 17)
        area = torch.stack(acc["area"])  # (T, V)
        assert inframe.all(), f"{sub}: a joint leaves the image"
        assert (area >= 10).all(), f"{sub}: a view shows (almost) no person"


def test_backgrounds_estimated_close_to_truth(sharp):
    s = sharp[0]
    mse = ((s["backgrounds"] - s["gt"]["backgrounds"]) ** 2).mean()
    assert 10 * torch.log10(1 / mse) > 25  # dB
    assert not torch.equal(s["backgrounds"], s["gt"]["backgrounds"])  # estimated, not copied


def test_cache_manifest_reuse_and_foreign_folders(cache):
    cfg = SyntheticConfig(image_size=32, frames_per_subject=3, subjects=("S9",), supersample=1)
    path = ensure_rendered(cfg, progress=False)
    assert path == cache_path(cfg) and str(path).startswith(str(cache))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["generator_version"] == GENERATOR_VERSION and manifest["params"]["image_size"] == 32
    mtime = (path / "S9_images.npy").stat().st_mtime_ns
    assert ensure_rendered(cfg, progress=False) == path
    assert (path / "S9_images.npy").stat().st_mtime_ns == mtime  # not re-rendered
    # workers is not part of the key; any data parameter is
    assert SyntheticConfig(image_size=32, frames_per_subject=3, subjects=("S9",), supersample=1, workers=1).cache_key() \
        == cfg.cache_key()
    other = SyntheticConfig(image_size=32, frames_per_subject=3, subjects=("S9",), supersample=1, seed=1)
    assert other.cache_key() != cfg.cache_key()
    # a folder at the target path with other parameters is left alone and reported
    foreign = cache_path(other)
    foreign.mkdir(parents=True)
    (foreign / "manifest.json").write_text(json.dumps({"generator_version": "0", "params": {}}))
    with pytest.raises(RuntimeError, match="other parameters"):
        ensure_rendered(other, progress=False)
    assert (foreign / "manifest.json").is_file()
    (foreign / "manifest.json").unlink()
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(RuntimeError, match="no manifest"):
        ensure_rendered(other, progress=False)
    assert (foreign / "mine.txt").read_text() == "keep me"
    assert not list(foreign.parent.glob("*.tmp-*"))


def test_profiles_and_config_errors(cache):
    assert synthetic_config("cpu-demo").image_size == 128
    assert synthetic_config("smoke").image_size == 64
    with pytest.raises(ValueError, match="profile"):
        synthetic_config("huge")
    with pytest.raises(ValueError, match="subjects"):
        SyntheticConfig(subjects=("S2",)).validate()
    with pytest.raises(FileNotFoundError, match="bvh_clips"):
        SyntheticConfig(bvh_clips=("/nonexistent.bvh",)).validate()


def test_config_synthetic_frames_sizes_the_data_set(cache):
    """Config.synthetic_frames reaches the renderer through kp3d.profiles.dataset_for (train, export and
    evaluation all build their data there); it is refused for other data."""
    from kp3d.profiles import get_config
    from kp3d.profiles import dataset_for as make_from_config

    default = make_from_config(get_config("smoke"), "test")
    small = make_from_config(get_config("smoke", synthetic_frames=20), "test")
    assert len(default) == 2 * 40 and len(small) == 2 * 20  # 2 test subjects x frames per subject
    with pytest.raises(ValueError, match="synthetic_frames=-1"):
        get_config("smoke", synthetic_frames=-1)
    with pytest.raises(ValueError, match="use 0 for other data"):
        get_config("smoke", synthetic_frames=100, data="h36m:/data/h36m")


# ---------------------------------------------------------------- real-data loaders
def _write_png(path, h=20, w=24, value=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, dtype=np.uint8)
    img[5:15, 8:12] = 255
    Image.fromarray(img).save(path)


def test_data_string_errors(cache):
    with pytest.raises(ValueError, match="h36m:/path/to/root"):
        make_dataset("human36m")
    with pytest.raises(ValueError, match="unknown kind"):
        make_dataset("coco:/tmp")
    with pytest.raises(ValueError, match="profile"):
        make_dataset("h36m:/tmp", profile="laptop")
    # a user's own rig is handed to data_utils.rig, whose error names its layout
    with pytest.raises(FileNotFoundError, match="Expected layout"):
        make_dataset("rig:/nonexistent/rig", "smoke")


def test_h36m_missing_and_malformed_roots(cache, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        make_dataset(f"h36m:{tmp_path / 'nothere'}", "smoke", "test")
    msg = str(e.value)
    assert "does not exist" in msg and "imageSequence" in msg and "54138969" in msg and "Fix:" in msg
    (tmp_path / "S9" / "Walking-1" / "imageSequence" / "54138969").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="S11/ is missing"):
        make_dataset(f"h36m:{tmp_path}", "smoke", "test")
    (tmp_path / "S11").mkdir()
    with pytest.raises(FileNotFoundError, match="55011271/ is missing"):
        Human36MDataset(tmp_path, "test", subjects=("S9",))


def test_h36m_fake_layout(cache, tmp_path):
    from kp3d.cameras import H36M_CAMERA_IDS

    act = tmp_path / "S9" / "Posing-1"
    for c in H36M_CAMERA_IDS:
        for f in range(1, 4):
            _write_png(act / "imageSequence" / c / f"img_{f:06d}.png", value=40 * f)
    joints = np.zeros((3, 32, 3))
    joints[:, :, 2] = 1000.0
    np.save(act / "poses_3d.npy", joints)
    ds = make_dataset(f"h36m:{tmp_path}", "smoke", "test", subjects=("S9",), background_frames=3)
    assert len(ds) == 3 and ds.frame_info(1) == {"subject": "S9", "frame": 1, "split": "test", "action": "Posing-1"}
    s = ds[1]
    assert s["images"].shape == (4, 3, 64, 64) and s["backgrounds"].shape == (4, 3, 64, 64)
    assert s["gt"]["joints_3d"].shape == (17, 3) and s["gt"]["joints_2d"].shape == (4, 17, 2)
    assert "masks" not in s["gt"]
    # the median of frames valued 40, 80, 120 is 80 outside the bright block
    assert abs(float(s["backgrounds"][0, 0, 0, 0]) - 80 / 255) < 0.02
    assert s["K"][0, 0, 0] < 100  # intrinsics scaled from the 1000 px sensor to 64 px
    np.save(act / "poses_3d.npy", np.zeros((3, 15, 3)))
    with pytest.raises(FileNotFoundError, match="poses_3d.npy has shape"):
        Human36MDataset(tmp_path, "test", subjects=("S9",))


def _calibration(n=9):
    lines = ["Skeletool Camera Calibration File V1.0"]
    for c in range(n):
        ext = np.eye(4)
        ext[:3, 3] = [0, 0, 4000 + c]
        lines += [f"name          {c}", "  sensor      10 10", "  size        2048 2048", "  animated    0",
                  "  intrinsic   1500 0 1024 0 0 1500 1024 0 0 0 1 0 0 0 0 1",
                  "  extrinsic   " + " ".join(str(v) for v in ext.ravel()), "  radial      0"]
    return "\n".join(lines) + "\n"


def test_3dhp_layout_and_errors(cache, tmp_path):
    seq = tmp_path / "S7" / "Seq1"
    with pytest.raises(FileNotFoundError, match="subject folder S7/ is missing"):
        make_dataset(f"3dhp:{tmp_path}", "smoke", "test")
    seq.mkdir(parents=True)
    (tmp_path / "S8").mkdir()
    with pytest.raises(FileNotFoundError, match="camera.calibration is missing"):
        make_dataset(f"3dhp:{tmp_path}", "smoke", "test")
    (seq / "camera.calibration").write_text(_calibration().replace("intrinsic   1500 0", "intrinsic   1500"))
    with pytest.raises(FileNotFoundError, match="malformed calibration"):
        make_dataset(f"3dhp:{tmp_path}", "smoke", "test")
    (seq / "camera.calibration").write_text(_calibration())
    with pytest.raises(FileNotFoundError, match="video_0/ is missing"):
        make_dataset(f"3dhp:{tmp_path}", "smoke", "test")
    for c in (0, 2, 7, 8):
        for f in range(1, 3):
            _write_png(seq / "imageFrames" / f"video_{c}" / f"frame_{f:06d}.jpg")
    ds = MPI3DHPDataset(tmp_path, "test", image_size=32, subjects=("S7",))
    s = ds[0]
    assert len(ds) == 2 and s["images"].shape == (4, 3, 32, 32) and "gt" not in s  # no annot.mat
    torch.testing.assert_close(s["t"][1], torch.tensor([0.0, 0.0, 4002.0]))
    assert abs(float(s["K"][0, 0, 0]) - 1500 * 32 / 2048) < 1e-3
