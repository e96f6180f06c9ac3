"""The course notebooks on a user's own rig: ``DATA = "rig:<folder>"`` (docs/own_rig.md).

The rig is the one of tests/test_rig.py: three cameras (landscape, portrait, square; two with lens
distortion) filming a walking "person" of coloured disks, written as real H.264 mp4 files, with its
calibration in an OpenCV YAML file that is NOT found automatically (so ``CALIBRATION`` must reach the
loader), and no labels (no ``joints_3d.npy``). The notebook test runs 01, 02, 04 and 05 with papermill
through ``kp3d.replicate`` (what ``python -m kp3d.replicate -p DATA rig:... -p CALIBRATION ...`` does),
in the smoke profile, into a temporary output folder.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

sys.path.insert(0, str(Path(__file__).parent))
from test_rig import T, build_rig  # noqa: E402

from data_utils.datasets import check_calibration, data_views, view_sequence
from kp3d.profiles import make_dataset  # noqa: E402
from data_utils.rig import ContaminatedBackgroundWarning, RigDataset, rig_camera_names, rig_root  # noqa: E402
from kp3d import evaluate as E  # noqa: E402
from kp3d import evaluate_notebook as NB  # noqa: E402
from kp3d.profiles import data_config  # noqa: E402


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """(folder, calibration file): 3 cameras, T frames, calibration in rig.yml, no labels."""
    root = tmp_path_factory.mktemp("rigs") / "my_rig"
    build_rig(root, formats=("yml",))
    return root, root / "rig.yml"


@pytest.fixture(autouse=True)
def _dirs(tmp_path, monkeypatch):
    """Decoded frames and notebook outputs of each test go to its own folders."""
    monkeypatch.setenv("KP3D_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KP3D_OUTPUT_DIR", str(tmp_path / "outputs"))


# ---------------------------------------------------------------------------------------------
# the library helpers behind the notebooks' DATA / CALIBRATION parameters
# ---------------------------------------------------------------------------------------------
def test_data_config_uses_every_rig_camera(rig):
    root, calib = rig
    assert rig_root(f"rig:{root}") == root and rig_camera_names(f"rig:{root}", calib) == ["camA", "camB", "Cam_C"]
    assert data_views(f"rig:{root}", str(calib)) == (0, 1, 2) and data_views("synthetic") is None
    cfg = data_config("smoke", f"rig:{root}", str(calib), max_iters=3)
    assert (cfg.views, cfg.data, cfg.calibration, cfg.max_iters) == ((0, 1, 2), f"rig:{root}", str(calib), 3)
    assert data_config("smoke", f"rig:{root}", str(calib), views=(0, 2)).views == (0, 2)
    assert data_config("smoke").views == (0, 1, 2, 3) and data_config("smoke").calibration == ""
    # the calibration file is not one of the names found automatically: the error says what to do
    with pytest.raises(FileNotFoundError, match="calibration=FILE"):
        data_config("smoke", f"rig:{root}")
    with pytest.raises(ValueError, match="only used with data='rig:"):
        data_config("smoke", "synthetic", str(calib))
    with pytest.raises(ValueError, match="leave CALIBRATION empty"):
        make_dataset("synthetic", "smoke", "test", calibration="x.toml")
    assert check_calibration("synthetic", "") is None and check_calibration("rig:/x", "  ") is None
    with pytest.raises(FileNotFoundError, match="rig folder .* not found"):
        data_views("rig:/nonexistent/rig")


@pytest.mark.filterwarnings("ignore::data_utils.rig.ContaminatedBackgroundWarning")
def test_view_sequence_on_a_rig(rig, tmp_path):
    import shutil

    import cv2

    from data_utils.video import read_frames

    root, calib = rig
    ds = make_dataset(f"rig:{root}", "smoke", "test", calibration=str(calib), progress=False)
    assert isinstance(ds, RigDataset) and "gt" not in ds[0]
    seq = view_sequence(ds, 1)
    assert seq["frames"].shape == (T, 64, 64, 3) and seq["reference"].shape == (64, 64, 3)
    assert seq["reference_kind"] == "median of all frames" and seq["name"] == "rig camera camB"
    assert 0 <= seq["frames"].min() and seq["frames"].max() <= 1
    assert view_sequence(ds, 0, max_frames=5)["frames"].shape[0] == 5
    with pytest.raises(IndexError, match="VIEW = 0..2"):
        view_sequence(ds, 3)
    # an empty-scene image in background/ is the reference when there is one
    with_bg = tmp_path / "with_bg"
    shutil.copytree(root, with_bg)
    (with_bg / "background").mkdir()
    cv2.imwrite(str(with_bg / "background" / "camB.png"), read_frames(with_bg / "camB.mp4")[0][..., ::-1])
    ds = make_dataset(f"rig:{with_bg}", "smoke", "test", calibration=str(with_bg / "rig.yml"), progress=False)
    seq = view_sequence(ds, 1)
    assert seq["reference_kind"] == "empty-scene background"
    np.testing.assert_allclose(seq["reference"], ds[0]["backgrounds"][1].permute(1, 2, 0).numpy())
    assert view_sequence(ds, 0)["reference_kind"] == "median of all frames"


def test_missing_labels_and_export_of_other_data(rig, tmp_path, capsys):
    root, _ = rig
    sys.path.insert(0, str(Path(__file__).parent))
    from test_evaluate import fake_export

    ex = fake_export(T=20, n_test=5)
    assert NB.missing_labels(ex) is None
    no_gt = {k: v for k, v in ex.items() if not k.startswith("gt_")}
    no_gt["config_json"] = np.asarray(json.dumps({"data": f"rig:{root}", "profile": "smoke"}))
    msg = NB.missing_labels(no_gt)
    assert msg.startswith("probing skipped") and "joints_3d.npy" in msg and "viewer" in msg
    assert NB.same_data(f"rig:{root}/", f"rig:{root}") and not NB.same_data("synthetic", f"rig:{root}")
    # notebook 04's export was made on the synthetic set: notebook 05 on a rig does not use it
    out04 = tmp_path / "outputs" / "04_full_training"
    out04.mkdir(parents=True)
    np.savez(out04 / "export.npz", **ex)
    (out04 / "summary.json").write_text(json.dumps({"export": str(out04 / "export.npz")}))
    assert NB.prepare_export("", tmp_path, data="synthetic")[1] == out04 / "export.npz"
    with pytest.raises(FileNotFoundError, match="rig folder .* not found"):  # falls back to training on it
        NB.prepare_export("", tmp_path, data="rig:/nonexistent/rig")
    assert "was made on data 'synthetic', not 'rig:/nonexistent/rig': not used" in capsys.readouterr().out


def test_viewer_without_labels_writes_html_and_png(tmp_path):
    from kp3d.viz.viewer import KeypointViewer

    rng = np.random.default_rng(0)
    T_, V, N = 4, 3, 5
    ex = {"kp3d": rng.normal(size=(T_, N, 3)) * 100, "kp2d": rng.uniform(0, 64, (T_, V, N, 2)),
          "kp2d_reproj": rng.uniform(0, 64, (T_, V, N, 2)), "split": np.array(["test"] * T_),
          "subject": np.array(["my_rig"] * T_), "frame": np.arange(T_),
          "config_json": np.asarray(json.dumps({"image_size": 64, "views": [0, 1, 2]}))}
    viewer = KeypointViewer(ex, images=rng.uniform(size=(T_, V, 3, 64, 64)).astype(np.float32), probe=None)
    html = viewer.to_html(tmp_path / "viewer.html")
    png = viewer.multiview_png(tmp_path / "views.png")
    assert "plotly" in html.read_text()[:200000].lower() and png.read_bytes()[:4] == b"\x89PNG"
    assert viewer.figure.data[2].visible == "legendonly"  # no GT skeleton


# ---------------------------------------------------------------------------------------------
# the notebooks themselves
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_notebooks_01_02_04_05_on_an_unlabelled_rig(rig, tmp_path):
    """01, 02, 04, 05 finish on the rig; 04 exports its keypoints; 05 skips probing and saves the viewer."""
    pytest.importorskip("papermill")
    from kp3d.export import load_export
    from kp3d.replicate import run_pipeline

    root, calib = rig
    data = f"rig:{root}"
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContaminatedBackgroundWarning)  # a walking person: clean medians
        run_dir = run_pipeline("smoke", run="rig", outputs=tmp_path / "outputs", only=["01", "02", "04", "05"],
                               parameters={"DATA": data, "CALIBRATION": str(calib)}, log=print)
    stages = json.loads((run_dir / "stages.json").read_text())["stages"]
    print({k: round(v["seconds"], 1) for k, v in stages.items()}, f"total {time.time() - t0:.0f} s")
    assert [s["status"] for s in stages.values()] == ["done"] * 4

    text01 = (run_dir / "01_background_estimation" / "results.json").read_text()
    r01 = json.loads(text01)
    assert r01["data"] == data and r01["reference"] == "median of all frames" and r01["frames"] == T
    assert r01["psnr_db"]["median"] is None and "Infinity" not in text01  # the median IS the reference: strict JSON
    assert len([k for k in r01["convergence_db"] if "uniform" in k]) == 3  # one curve per camera
    r02 = json.loads((run_dir / "02_image_reconstruction" / "summary.json").read_text())
    assert r02["data"] == data and r02["mask_iou_gt_last"] is None  # no GT masks on a rig

    s04 = json.loads((run_dir / "04_full_training" / "summary.json").read_text())
    assert s04["data"] == data
    ex = load_export(s04["export"])
    cfg = json.loads(str(ex["config_json"]))
    assert (cfg["data"], cfg["calibration"], cfg["views"]) == (data, str(calib), [0, 1, 2])
    assert ex["kp2d"].shape[1] == 3 and "gt_joints_3d" not in ex
    assert set(ex["subject"]) == {"my_rig"} and set(ex["split"]) == {"train", "test"}

    out05 = run_dir / "05_probing"
    html = out05 / "keypoint_viewer.html"
    assert html.is_file() and html.stat().st_size > 100_000  # plotly.js inlined
    assert (out05 / "multiview_keypoints.png").is_file() and not (out05 / "label_fraction_curves.png").exists()
    metrics = json.loads((out05 / "metrics.json").read_text())
    assert metrics["rows"] == [] and metrics["probing"].startswith("probing skipped")
    assert metrics["data"] == data and metrics["export"] == s04["export"]
    executed = (run_dir / "05_probing.ipynb").read_text()
    assert "probing skipped: the export has no 3D labels" in executed
