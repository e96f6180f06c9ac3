"""Bad inputs are refused with the fix: repeated or negative views, zero intervals, a calibration of
another size than the video, a "background" with someone in it, a file that is not an export."""
from __future__ import annotations

import logging
import shutil
import warnings

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

from kp3d.profiles import get_config  # noqa: E402

from data_utils.calibration import write_toml  # noqa: E402
from data_utils.rig import ContaminatedBackgroundWarning, RigDataset, make_rig_dataset  # noqa: E402
from test_rig import IMAGE_SIZE, build_rig, make_cameras  # noqa: E402


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KP3D_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust") / "walk"
    cams, dist, X, bgs = build_rig(root, walking=True)
    return root, cams, dist, bgs


def test_views_and_intervals_are_checked():
    for views in ((0, 0), (-1, 2)):
        with pytest.raises(ValueError, match="distinct camera indices >= 0"):
            get_config("smoke", views=views)
    for name in ("ckpt_every", "log_every"):
        with pytest.raises(ValueError, match=f"{name}=0: expected a number of steps >= 1"):
            get_config("smoke", **{name: 0})


def test_calibration_at_another_resolution_is_a_crop_not_a_stretch(rig, tmp_path, caplog):
    from kp3d.cameras import Camera

    root, cams, dist, _ = rig
    copy = tmp_path / "crop"
    shutil.copytree(root, copy)
    # camA calibrated 2 rows taller, centred (what an encoder's crop to 128 rows does; 1088 -> 1080)
    tall = [Camera(c.name, c.K + np.array([[0, 0, 0], [0, 0, 1.0], [0, 0, 0]]), c.R, c.t, c.width, c.height + 2)
            if c.name == "camA" else c for c in cams]
    write_toml(copy / "calibration.toml", tall, dist, units="m", overwrite=True)
    with caplog.at_level(logging.WARNING, logger="data_utils.rig"):
        ds = RigDataset(copy, image_size=IMAGE_SIZE, progress=False)
    native = ds._native[0]
    np.testing.assert_allclose(native.K, cams[0].K, atol=1e-9)  # uniform scale 1, one row off each side
    assert (native.width, native.height) == (192, 128)
    assert "1 rows cropped on each side" in caplog.text
    # 4:3 recorded for a 3:2 calibration is no crop of it: refused with the fix
    wide = [Camera(c.name, c.K, c.R, c.t, 192, 144) if c.name == "camA" else c for c in cams]
    write_toml(copy / "calibration.toml", wide, dist, units="m", overwrite=True)
    with pytest.raises(ValueError, match="another aspect ratio.*Fix: calibrate at the recording's resolution"):
        RigDataset(copy, image_size=IMAGE_SIZE, progress=False)


def test_a_supplied_background_with_someone_in_it_warns(rig, tmp_path):
    import cv2

    root, cams, dist, bgs = rig
    copy = tmp_path / "bg"
    shutil.copytree(root, copy)
    (copy / "background").mkdir()
    clean = (bgs["camA"] * 255).round().astype(np.uint8)
    cv2.imwrite(str(copy / "background" / "camA.png"), clean[..., ::-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContaminatedBackgroundWarning)
        RigDataset(copy, image_size=IMAGE_SIZE, progress=False, cache=False)
    person = clean.copy()
    person[40:90, 20:40] = [200, 30, 30]  # a standing figure
    cv2.imwrite(str(copy / "background" / "camA.png"), person[..., ::-1])
    with pytest.warns(ContaminatedBackgroundWarning, match="supplied background .*camA.png does not look empty"):
        ds = RigDataset(copy, image_size=IMAGE_SIZE, progress=False, cache=False)
    assert ds.background_report["camA"]["contaminated"]


def test_loader_options_are_reachable_from_the_data_spec(rig, tmp_path):
    from data_utils.datasets import data_views
    from data_utils.video import read_frames, write_video

    root, *_ = rig
    ds = make_rig_dataset(f"rig:{root}?cameras=camB,camA", image_size=64, progress=False, cache=False)
    assert ds.camera_names == ["camB", "camA"] and data_views(f"rig:{root}?cameras=camB,camA") == (0, 1)
    short = tmp_path / "short"
    shutil.copytree(root, short)
    write_video(short / "camB.mp4", list(read_frames(root / "camB.mp4"))[:20], overwrite=True)
    with pytest.raises(ValueError, match=r"trim=True .*kp3d-train --trim; DATA = 'rig:PATH\?trim=true'"):
        make_rig_dataset(f"rig:{short}", image_size=64, progress=False, cache=False)
    with pytest.warns(UserWarning, match="trim=True"):
        assert len(make_rig_dataset(f"rig:{short}?trim=true", image_size=64, progress=False, cache=False)) == 20


def test_a_file_that_is_not_an_export_says_so(tmp_path, capsys):
    from kp3d.discovery_check import main as discovery_main
    from kp3d.evaluate import main as evaluate_main
    from kp3d.export import load_export

    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, kp3d=np.array([{"a": 1}], dtype=object))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    for path in (pickled, broken):
        with pytest.raises(ValueError, match="is not a kp3d export.*python -m kp3d.export"):
            load_export(path)
    assert discovery_main([str(other)]) == 2
    err = capsys.readouterr().err
    assert "is not a kp3d export (it has no kp3d" in err and "python -m kp3d.export" in err
    with pytest.raises(ValueError, match="is not a kp3d export"):
        evaluate_main(["probe", "--export", str(other), "--out", str(tmp_path / "o"), "--quiet"])
