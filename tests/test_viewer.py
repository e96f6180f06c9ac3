"""Tests of kp3d.viz.viewer.KeypointViewer: update(), the widget, the self-contained HTML export."""
import re

import numpy as np
import pytest

from kp3d.viz.viewer import KeypointViewer, image_to_data_uri, skeleton_lines


def _export(T=5, V=3, N=6, seed=0, gt=True):
    rng = np.random.default_rng(seed)
    ex = {
        "kp3d": rng.normal(size=(T, N, 3)) * 100 + [0, 0, 900],
        "kp2d": rng.uniform(0, 64, size=(T, V, N, 2)),
        "kp2d_reproj": rng.uniform(0, 64, size=(T, V, N, 2)),
        "masks": (rng.uniform(size=(T, V, 1, 32, 32)) * 255).astype(np.uint8),
        "K": np.broadcast_to(np.array([[80.0, 0, 31.5], [0, 80.0, 31.5], [0, 0, 1]]), (T, V, 3, 3)),
        "subject": np.array(["S9"] * T), "split": np.array(["test"] * T), "frame": np.arange(T) * 10,
    }
    if gt:
        ex["gt_joints_3d"] = rng.normal(size=(T, 17, 3)) * 100 + [0, 0, 900]
        ex["gt_joints_2d"] = rng.uniform(0, 64, size=(T, V, 17, 2))
    return ex


# ---------------------------------------------------------------- update()
def test_update_builds_3d_and_image_panels():
    ex = _export()
    viewer = KeypointViewer(ex, probe=lambda kp: np.zeros((len(kp), 17, 3)))
    assert viewer.image_size == (64, 64)  # from K (no images, no config_json)
    fig = viewer.update(frame=3, view=2)
    assert fig is viewer.figure and (viewer.frame, viewer.view) == (3, 2)
    types = [tr.type for tr in fig.data]
    assert types == ["scatter3d"] * 3 + ["image", "scatter", "scatter", "scatter"]
    kp, probed, gt, img, k2, kr, gt2 = fig.data
    np.testing.assert_allclose(np.c_[kp.x, kp.y, kp.z], ex["kp3d"][3])
    np.testing.assert_allclose(np.c_[k2.x, k2.y], ex["kp2d"][3, 2])
    np.testing.assert_allclose(np.c_[kr.x, kr.y], ex["kp2d_reproj"][3, 2])
    assert len(gt.x) == 16 * 3  # 16 bones, None-separated
    assert gt.x[0] == pytest.approx(ex["gt_joints_3d"][3, 0, 0])
    # the probe predicts pelvis-relative joints, drawn at the GT pelvis
    np.testing.assert_allclose([probed.x[0], probed.y[0], probed.z[0]], ex["gt_joints_3d"][3, 0])
    assert img.source.startswith("data:image/png;base64,")
    assert img.dx == pytest.approx(2.0) and img.x0 == pytest.approx(0.5)  # 32 px mask on a 64 px image
    assert fig.layout.title.text == "S9 frame 30 (test split) | view 2"  # the export's frame, not the row
    # another frame changes the data
    fig2 = viewer.update(0, 0)
    assert not np.allclose(np.asarray(fig2.data[0].x), np.asarray(kp.x))


def test_update_with_images_array_and_without_labels():
    ex = _export(gt=False)
    images = np.random.default_rng(1).uniform(size=(5, 3, 3, 48, 40)).astype(np.float32)
    viewer = KeypointViewer(ex, images=images)
    assert viewer.image_size == (48, 40)
    fig = viewer.update(1, 1)
    assert fig.data[2].visible == "legendonly" and len(fig.data[2].x) == 0  # no GT skeleton
    assert fig.data[1].visible == "legendonly"  # no probe
    calls = []
    viewer = KeypointViewer(ex, images=lambda f, v: calls.append((f, v)) or np.zeros((64, 64, 3)))
    viewer.update(4, 2)
    assert calls == [(4, 2)]


def test_fitted_probe_is_applied():
    from kp3d.probes import LinearProbe, keypoint_features, pose_targets

    ex = _export(T=30, N=20)
    probe = LinearProbe(1e-3).fit(keypoint_features(ex["kp3d"]), pose_targets(ex["gt_joints_3d"]))
    viewer = KeypointViewer(ex, probe=probe)
    assert viewer.probed.shape == (30, 17, 3)
    np.testing.assert_allclose(viewer.probed[:, 0], ex["gt_joints_3d"][:, 0], atol=1e-6)


# ---------------------------------------------------------------- bad input
def test_bad_input():
    ex = _export()
    with pytest.raises(KeyError, match="kp3d"):
        KeypointViewer({k: v for k, v in ex.items() if k != "kp3d"})
    with pytest.raises(ValueError, match="kp2d"):
        KeypointViewer(dict(ex, kp2d=ex["kp2d"][0]))
    viewer = KeypointViewer(ex)
    with pytest.raises(IndexError, match="frame 5 out of range"):
        viewer.update(5, 0)
    with pytest.raises(IndexError, match="view 3 out of range"):
        viewer.update(0, 3)
    with pytest.raises(ValueError, match="joints"):
        skeleton_lines(np.zeros((17,)))


# ---------------------------------------------------------------- widget and HTML export
def test_widget_sliders_drive_update():
    import ipywidgets
    viewer = KeypointViewer(_export())
    box = viewer.widget()
    sliders = box.children[0].children
    assert [s.description for s in sliders] == ["frame", "view"]
    # the frame slider reads the export's frame numbers (what the title shows); its value is the row
    assert [label for label, _ in sliders[0].options] == ["0", "10", "20", "30", "40"] and sliders[1].max == 2
    assert not sliders[0].continuous_update
    sliders[0].value = 3
    sliders[1].value = 1
    assert (viewer.frame, viewer.view) == (3, 1)
    assert isinstance(box, ipywidgets.VBox)
    # the Output widget holds exactly the current figure (set through its state, not by capture)
    out = box.children[1]
    assert len(out.outputs) == 1
    assert "application/vnd.plotly.v1+json" in out.outputs[0]["data"]
    assert "frame 30" in out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]


def test_html_export_is_self_contained(tmp_path):
    viewer = KeypointViewer(_export(), probe=lambda kp: np.zeros((len(kp), 17, 3)))
    path = viewer.to_html(tmp_path / "viewer.html", frames=[0, 2, 4], view=1)
    html = path.read_text()
    assert path.stat().st_size > 1_000_000  # plotly.js (~4 MB) is inlined
    assert "plotly.js v" in html or "Plotly" in html
    assert not re.search(r"<script[^>]+src=[\"']?https?:", html)  # no external scripts
    assert html.count('"name":"0"') + html.count('"name": "0"') >= 1  # animation frames by name
    for f in ("20", "40"):  # slider steps read the export's frame numbers of rows 2 and 4
        assert f'"label":"{f}"' in html or f'"label": "{f}"' in html
    with pytest.raises(FileExistsError, match="overwrite=True"):
        viewer.to_html(path)
    viewer.to_html(path, frames=[1], overwrite=True)
    fig = viewer.animation_figure(frames=[0, 1, 2], view=0)
    assert len(fig.frames) == 3 and all(len(fr.data) == 7 for fr in fig.frames)
    png = viewer.multiview_png(tmp_path / "views.png", frame=2)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_to_data_uri_roundtrip():
    import base64
    import io

    from PIL import Image

    img = np.zeros((4, 5, 3), np.float32)
    img[1, 2] = [1.0, 0.5, 0.0]
    uri = image_to_data_uri(img)
    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert back.shape == (4, 5, 3) and tuple(back[1, 2]) == (255, 128, 0)


def test_images_from_the_data_sets_the_export_came_from(tmp_path):
    """Export rows are matched to data set samples by (subject, frame), views by the config's selection."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from fakes import FakeMultiView

    tr, te = FakeMultiView(n=3, size=32, seed=0), FakeMultiView(n=4, size=32, seed=1)
    ex = _export(T=4, V=2)
    ex.update(split=np.array(["train", "test", "test", "train"]), subject=np.array(["S1"] * 4),
              frame=np.array([2, 3, 0, 1]), config_json=np.asarray(json.dumps({"views": [1, 3], "image_size": 32})))
    viewer = KeypointViewer(ex, images={"train": tr, "test": te})
    assert viewer.image_size == (32, 32)
    np.testing.assert_allclose(viewer._image(1, 1), te[3]["images"][3].permute(1, 2, 0).numpy())
    np.testing.assert_allclose(viewer._image(0, 0), tr[2]["images"][1].permute(1, 2, 0).numpy())
    viewer.update(3, 1)
    bad = dict(ex, frame=np.array([9, 3, 0, 1]))
    with pytest.raises(KeyError, match="not in the 'train' data set"):
        KeypointViewer(bad, images={"train": tr, "test": te}).update(0, 0)
    with pytest.raises(KeyError, match="no data set for split 'test'"):
        KeypointViewer(ex, images={"train": tr}).update(1, 0)


def test_slider_labels_and_fixed_3d_ranges():
    """The HTML slider's labels are frame numbers (subject too when there are several); the 3D axes
    follow the person with one extent for every frame, so they never rescale."""
    ex = _export(T=4)
    ex["subject"] = np.array(["S9", "S9", "S11", "S11"])
    for k in ("kp3d", "gt_joints_3d"):
        ex[k][2] += 2000.0  # the person walked away in one frame: it is framed like the others
    viewer = KeypointViewer(ex)
    assert [viewer.frame_label(t) for t in range(4)] == ["S9 0", "S9 10", "S11 20", "S11 30"]
    fig = viewer.animation_figure(frames=[0, 1, 2, 3], view=0)
    assert [st.label for st in fig.layout.sliders[0].steps] == ["S9 0", "S9 10", "S11 20", "S11 30"]
    assert [fr.name for fr in fig.frames] == ["0", "1", "2", "3"]
    scene = fig.layout.scene
    assert scene.xaxis.autorange is False and scene.aspectmode == "manual"
    extents = set()
    for f, fr in enumerate(fig.frames):
        ranges = [list(fr.layout.scene.xaxis.range), list(fr.layout.scene.yaxis.range), list(fr.layout.scene.zaxis.range)]
        assert ranges == [list(viewer.update(f, 0).layout.scene[a].range) for a in ("xaxis", "yaxis", "zaxis")]
        pts = np.concatenate([ex["kp3d"][f], ex["gt_joints_3d"][f]])
        for d, (lo, hi) in enumerate(ranges):
            assert lo < pts[:, d].min() and hi > pts[:, d].max()
        extents.add(tuple(round(hi - lo, 6) for lo, hi in ranges))
    assert len(extents) == 1  # the same extent in every frame
    # play/pause sit left of the slider, and the legend above the panels: nothing overlaps
    buttons, slider = fig.layout.updatemenus[0], fig.layout.sliders[0]
    assert buttons.x + 0.1 <= slider.x and fig.layout.legend.y >= 1.0


def test_the_body_fills_the_3d_panel_as_the_person_walks_around_a_room():
    """A person walking a 3 m circle: each frame's axes hold the body with a margin, not the room."""
    T = 12
    ex = _export(T=T)
    a = 2 * np.pi * np.arange(T) / T
    walk = np.stack([1500 * np.cos(a), 1500 * np.sin(a), np.zeros(T)], axis=1)[:, None]
    rng = np.random.default_rng(1)
    body = np.c_[rng.uniform(-250, 250, (17, 2)), np.linspace(0, 1750, 17)]  # 1.75 m tall, 0.5 m wide
    ex["gt_joints_3d"] = body + walk
    ex["kp3d"] = body[rng.choice(17, 6)] + rng.normal(0, 30, (T, 6, 3)) + walk
    viewer = KeypointViewer(ex)
    for f in range(T):
        (xr, yr, zr) = viewer.scene_ranges(f)
        pts = np.concatenate([ex["kp3d"][f], ex["gt_joints_3d"][f]])
        body = pts.max(axis=0) - pts.min(axis=0)
        assert xr[0] < pts[:, 0].min() and xr[1] > pts[:, 0].max()
        assert body[2] / (zr[1] - zr[0]) > 0.6  # the body is most of the panel's height
        assert max(body[0], body[1]) / (xr[1] - xr[0]) > 0.5  # and of its width, not a tenth of the room
