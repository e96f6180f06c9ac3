"""The course pipeline on Human3.6M's folder layout: ``DATA = "h36m:<root>"``, the path of the
README's paper-profile commands (``python -m kp3d.replicate --profile paper-h36m -p DATA h36m:/data/h36m``).

Human3.6M is licensed and not here, so the test writes its layout from the smoke synthetic set, which
is filmed by the same four Human3.6M cameras of each subject: the frames become JPEG files under
``S*/<Action>/imageSequence/<camera id>/img_%06d.jpg`` and the 17 joints ``poses_3d.npy`` (world mm).
All five notebooks then run through ``kp3d.replicate`` in the smoke profile (03, geometry only, gets
the parameter and ignores it), into a temporary output folder, and 05 probes the labels that came
with the layout.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from data_utils.synthetic import SUBJECTS, ensure_rendered, load_subject
from kp3d.profiles import synthetic_config
from kp3d.cameras import H36M_CAMERA_IDS

FRAMES = 24  # per subject: enough for the probes, few enough to write in a second


def write_h36m_layout(root: Path, frames: int = FRAMES) -> Path:
    """Write the smoke synthetic set as a Human3.6M folder tree under ``root``; return ``root``."""
    from PIL import Image

    rendered = ensure_rendered(synthetic_config("smoke"), progress=False)
    for subject in SUBJECTS:
        d = load_subject(rendered, subject)
        images = np.asarray(d["images"][:frames])  # (T, V, H, W, 3) uint8
        act = root / subject / "Directions-1"
        for v, cam in enumerate(H36M_CAMERA_IDS):
            folder = act / "imageSequence" / cam
            folder.mkdir(parents=True, exist_ok=True)
            for f in range(len(images)):
                Image.fromarray(images[f, v]).save(folder / f"img_{f + 1:06d}.jpg", quality=95)
        np.save(act / "poses_3d.npy", d["joints_3d"][:frames].astype(np.float32))
    return root


@pytest.fixture(autouse=True)
def _outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("KP3D_OUTPUT_DIR", str(tmp_path / "outputs"))


def test_layout_loads_with_labels(tmp_path):
    from kp3d.profiles import make_dataset

    root = write_h36m_layout(tmp_path / "h36m")
    ds = make_dataset(f"h36m:{root}", "smoke", "test")
    assert len(ds) == 2 * FRAMES  # S9 and S11
    s = ds[3]
    assert s["images"].shape == (4, 3, 64, 64) and s["gt"]["joints_3d"].shape == (17, 3)
    rendered = load_subject(ensure_rendered(synthetic_config("smoke"), progress=False), "S9")
    np.testing.assert_allclose(s["gt"]["joints_3d"].numpy(), rendered["joints_3d"][3], atol=1e-3)


@pytest.mark.slow
def test_notebooks_on_the_h36m_layout(tmp_path):
    """The five notebooks finish on DATA=h36m:...; 04 exports with labels; 05 probes them and saves the viewer."""
    pytest.importorskip("papermill")
    from kp3d.export import load_export
    from kp3d.replicate import run_pipeline

    data = f"h36m:{write_h36m_layout(tmp_path / 'h36m')}"
    t0 = time.time()
    run_dir = run_pipeline("smoke", run="h36m", outputs=tmp_path / "outputs", parameters={"DATA": data},
                           log=print)
    stages = json.loads((run_dir / "stages.json").read_text())["stages"]
    print({k: round(v["seconds"], 1) for k, v in stages.items()}, f"total {time.time() - t0:.0f} s")
    assert [s["status"] for s in stages.values()] == ["done"] * 5

    assert json.loads((run_dir / "01_background_estimation" / "results.json").read_text())["data"] == data
    assert json.loads((run_dir / "02_image_reconstruction" / "summary.json").read_text())["data"] == data
    s04 = json.loads((run_dir / "04_full_training" / "summary.json").read_text())
    assert s04["data"] == data
    ex = load_export(s04["export"])
    assert json.loads(str(ex["config_json"]))["data"] == data
    assert ex["gt_joints_3d"].shape[1:] == (17, 3)
    assert set(ex["split"]) == {"train", "test"} and {"S9", "S11"} <= set(ex["subject"])

    out05 = run_dir / "05_probing"
    metrics = json.loads((out05 / "metrics.json").read_text())
    assert metrics["data"] == data and metrics["export"] == s04["export"]
    settings = {r["setting"] for r in metrics["rows"]}
    assert any(s.startswith("ours MV") for s in settings) and "mean pose" in settings, settings
    assert all(np.isfinite(r["mpjpe"]) for r in metrics["rows"] if isinstance(r.get("mpjpe"), float))
    html = out05 / "keypoint_viewer.html"
    assert html.is_file() and html.stat().st_size > 100_000
