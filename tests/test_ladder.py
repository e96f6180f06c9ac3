"""Tests of the ladder's rungs (kp3d.ladder, the patch keypoint head, fixed crops) and of the
silhouette baseline (kp3d.silhouettes)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fakes import FakeMultiView
from kp3d.profiles import get_config
from kp3d.export import load_export
from kp3d.ladder import RUNGS, box_figures, format_measure, measure, rung_config
from kp3d.losses import compute_losses, foreground_mask, foreground_soft
from kp3d.model import KeypointModel, gt_masks
from kp3d.networks import PatchKeypointHead
from kp3d.probes import torch_threads
from kp3d.silhouettes import silhouette_baseline, silhouette_features, silhouette_patches
from kp3d.profiles import dataset_for
from kp3d.train import train


@pytest.fixture(scope="module")
def data():
    return FakeMultiView(n=8, size=64)


def _batch(ds, n=2):
    return torch.utils.data.default_collate([ds[i] for i in range(n)])


def _smoke(rung, **kw):
    return rung_config(rung, "smoke", amp="none", batch_size=2, **kw)


# --- shapes ----------------------------------------------------------------------------------------
def test_patch_head_shapes():
    maps, feats = PatchKeypointHead(3, 5)(torch.zeros(2, 3, 32, 32))
    assert maps.shape == (2, 5, 32, 32) and feats.shape == (2, 256)


@pytest.mark.parametrize("rung", ["R0", "R1", "R2"])
def test_rung_forward_shapes(rung, data):
    cfg = _smoke(rung)
    b = _batch(data)
    out = KeypointModel(cfg)(b["images"], b["backgrounds"], b["K"], b["R"], b["t"], masks=gt_masks(b))
    N, P = cfg.n_keypoints, cfg.patch_size
    assert out["kp3d"].shape == (2, N, 3) and out["mask_from_kp"].shape == (2, 4, 1, P, P)
    assert torch.isfinite(out["kp3d"]).all()
    if not cfg.image_reconstruction:
        assert out["latent"].shape == (2, 4, PatchKeypointHead(1, N).feature_dim)


# --- bad input -------------------------------------------------------------------------------------
def test_oracle_rung_without_masks_is_refused(data):
    b = _batch(data)
    with pytest.raises(ValueError, match="ground-truth masks"):
        KeypointModel(_smoke("R0"))(b["images"], b["backgrounds"], b["K"], b["R"], b["t"])


def test_bottleneck_config_checks():
    with pytest.raises(ValueError, match="image_reconstruction=False"):
        get_config("smoke", image_reconstruction=False)  # the detector crop needs the image path
    with pytest.raises(ValueError, match="keypoint_input"):
        get_config("smoke", keypoint_input="depth")
    with pytest.raises(ValueError, match="crop_source"):
        get_config("smoke", crop_source="oracle")
    with pytest.raises(ValueError, match="unknown rung"):
        rung_config("R9")


# --- accuracy --------------------------------------------------------------------------------------
def test_fixed_crop_holds_the_whole_mask(data):
    """The R0 box is a square around the GT mask with a margin: no mask pixel falls outside."""
    cfg = _smoke("R0")
    b = _batch(data, 4)
    out = KeypointModel(cfg)(b["images"], b["backgrounds"], b["K"], b["R"], b["t"], masks=gt_masks(b))
    P = cfg.patch_size
    inside = out["patch_mask"].sum((-1, -2, -3)) * (2 * out["box"][..., 0] / P) ** 2 * (64 / 2) ** 2
    total = b["gt"]["masks"].sum((-1, -2, -3))
    assert torch.allclose(inside, total, rtol=0.1)  # the resampled crop keeps the mask's area
    assert (out["box"][..., 0] > 0.1).all() and (out["box"][..., 0] <= 1).all()


def test_bottleneck_losses_skip_reconstruction(data):
    cfg = _smoke("R0")
    b = _batch(data)
    out = KeypointModel(cfg)(b["images"], b["backgrounds"], b["K"], b["R"], b["t"], masks=gt_masks(b))
    L = compute_losses(cfg, out, b, step=0)
    assert float(L["pixel"]) == 0.0 and float(L["mask"].detach()) > 0
    L["total"].backward()


def test_silhouette_patch_of_a_rectangle():
    m = torch.zeros(1, 1, 40, 40)
    m[..., 10:30, 15:25] = 1  # 20 tall, 10 wide: square crop of side 20 (margin 1)
    s = silhouette_patches(m, size=20, margin=1.0).reshape(20, 20)
    assert s[:, 5:15].mean() > 0.95 and s[:, :4].max() < 0.05 and s[:, 16:].max() < 0.05


def test_img_bg_mask_target_is_binary(data):
    cfg = _smoke("R1")
    b = _batch(data)
    fg = foreground_mask(b["images"].flatten(0, 1), b["backgrounds"].flatten(0, 1), cfg.box_prior_threshold)
    assert set(fg.unique().tolist()) <= {0.0, 1.0}
    iou = ((fg > 0) & (b["gt"]["masks"].flatten(0, 1) > 0)).sum() / ((fg > 0) | (b["gt"]["masks"].flatten(0, 1) > 0)).sum()
    assert iou > 0.9  # the fake set's estimated background differs from the true one by 1% noise


def test_foreground_cleanup_reaches_crop_input_and_target(data, monkeypatch):
    """Config.foreground_cleanup reaches every use of |I - B| on the R1 rung: the fixed crop and the
    keypoint input in the model, and the img-bg-mask target."""
    import kp3d.losses as losses
    import kp3d.model as model_mod

    seen = []
    real = losses.foreground_mask

    def spy(*a, **k):
        seen.append(a[3] if len(a) > 3 else k.get("cleanup", 0))
        return real(*a, **k)

    monkeypatch.setattr(model_mod, "foreground_mask", spy)
    monkeypatch.setattr(losses, "foreground_mask", spy)
    cfg = _smoke("R1", foreground_cleanup=3)
    b = _batch(data)
    out = KeypointModel(cfg)(b["images"], b["backgrounds"], b["K"], b["R"], b["t"])
    compute_losses(cfg, out, b, step=0)
    assert seen == [3, 3]


def test_shadow_chroma_reaches_every_use_of_img_bg(data, monkeypatch):
    """Config.shadow_chroma reaches every use of |I - B| in the cpu-demo arrangement: the detector's
    soft input, the keypoint head's soft input, the img-bg-mask target and the box prior."""
    import kp3d.losses as losses
    import kp3d.model as model_mod

    seen: dict[str, list] = {"mask": [], "soft": [], "box": []}

    def spy(kind, real, pos):
        def f(*a, **k):
            seen[kind].append(a[pos] if len(a) > pos else k.get("shadow_chroma", 0.0))
            return real(*a, **k)
        return f

    for mod in (losses, model_mod):
        for kind, name, pos in (("mask", "foreground_mask", 4), ("soft", "foreground_soft", 4), ("box", "foreground_box", 9)):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, spy(kind, getattr(losses, name), pos))
    cfg = rung_config("R3", "smoke", amp="none", batch_size=2, detector_input="img-bg-soft", keypoint_input="img-bg-soft",
                      mask_target="img-bg-mask", w_box_prior=1.0, shadow_chroma=0.08)
    b = _batch(data)
    out = KeypointModel(cfg)(b["images"], b["backgrounds"], b["K"], b["R"], b["t"])
    compute_losses(cfg, out, b, step=0)
    assert len(seen["soft"]) >= 2 and seen["mask"] and seen["box"]  # detector and keypoint input; target; prior
    assert all(c == 0.08 for v in seen.values() for c in v), seen


def test_soft_img_bg_input_reaches_the_keypoint_head(data, monkeypatch):
    """keypoint_input="img-bg-soft": the head reads the soft |I - B| through the fixed crop (grey
    levels, not only 0 / 1), while the crop still comes from the binary mask."""
    cfg = _smoke("R1", keypoint_input="img-bg-soft")
    b = _batch(data)
    model = KeypointModel(cfg)
    seen = []
    real = model.keypoint_head.forward
    monkeypatch.setattr(model.keypoint_head, "forward", lambda x: seen.append(x) or real(x))
    out = model(b["images"], b["backgrounds"], b["K"], b["R"], b["t"])
    hard = KeypointModel(cfg.replace(keypoint_input="img-bg"))(b["images"], b["backgrounds"], b["K"], b["R"], b["t"])
    torch.testing.assert_close(out["box"], hard["box"])
    (x,) = seen
    assert x.shape == (b["images"].shape[0] * b["images"].shape[1], 1, cfg.patch_size, cfg.patch_size)
    full = foreground_soft(b["images"].flatten(0, 1), b["backgrounds"].flatten(0, 1), cfg.box_prior_threshold)
    from kp3d import geometry
    torch.testing.assert_close(x, geometry.crop_patches(full, out["box"].flatten(0, 1).float(), cfg.patch_size))
    assert ((x > 0.05) & (x < 0.95)).any()  # grey levels reach the head
    assert torch.isfinite(compute_losses(cfg, out, b, step=0)["total"])


# --- learning ----------------------------------------------------------------------------------------
def test_r0_learns_to_rebuild_the_mask(tmp_path, data):
    """60 steps of R0 cut the mask loss (last log row / first: 0.40-0.53 measured over seeds 0-3)."""
    cfg = _smoke("R0", max_iters=60, log_every=5, ckpt_every=60, seed=0)
    with torch_threads(1):
        run = train(cfg, run_dir=tmp_path / "r0", dataset=data, progress=False)
    from kp3d.train import read_metrics

    m = read_metrics(run)
    assert m["mask"][-1] < 0.7 * m["mask"][0]


def test_measure_reports_baselines(tmp_path):
    """measure() on a smoke-sized R0 run: trained and untrained figures side by side."""
    cfg = _smoke("R0", max_iters=6, log_every=3, ckpt_every=6)
    with torch_threads(1):
        run = train(cfg, run_dir=tmp_path / "r0", progress=False)
        res = measure(run)
    assert res["step"] == 6 and {"ridge", "mlp"} <= set(res["untrained"])
    assert np.isfinite(res["probes"]["latent_mlp"]["mpjpe"])
    text = format_measure(res)
    assert "untrained" in text and "mean pose" in text
    again = measure(run)  # the exports are reused: same figures
    assert again["probes"]["ridge"]["mpjpe"] == pytest.approx(res["probes"]["ridge"]["mpjpe"])


def test_measure_through_another_crop(tmp_path):
    """measure(crop_source="img-bg") on a detector run: the same weights exported through the box
    prior's box, in a file of its own, beside the export through the detector's box."""
    cfg = _smoke("R3", keypoint_input="img-bg", mask_target="img-bg-mask", max_iters=6, log_every=3, ckpt_every=6)
    with torch_threads(1):
        run = train(cfg, run_dir=tmp_path / "r3", progress=False)
        own = measure(run, with_untrained=False)
        fixed = measure(run, crop_source="img-bg")
    assert own["crop_source"] == "detector" and fixed["crop_source"] == "img-bg"
    assert "untrained" not in own and "boxes" not in fixed
    for split in ("train", "test"):  # the detector's boxes against the box prior's
        b = own["boxes"][split]
        assert 0 < b["size_ratio"]["p10"] <= b["size_ratio"]["median"] <= b["size_ratio"]["p90"]
        assert 0 <= b["centre_offset"]["median"] <= b["centre_offset"]["p90"]
    assert "detector box / box prior's on test" in format_measure(own)
    assert "crop img-bg" in format_measure(fixed) and {"ridge", "mlp"} <= set(fixed["untrained"])
    a, b = load_export(run / "export_step0000006.npz"), load_export(run / "export_step0000006_crop-img-bg.npz")
    assert json.loads(str(b["config_json"]))["crop_source"] == "img-bg"
    assert not np.allclose(a["boxes"], b["boxes"])  # the detector's boxes are not the box prior's
    assert (run / "untrained" / "export_crop-img-bg.npz").exists()
    with pytest.raises(ValueError, match="crop_source='nowhere'"):
        measure(run, crop_source="nowhere")


def test_box_figures_of_the_box_prior_itself(tmp_path):
    """An export through the box prior's own box: size ratio 1, centres on each other."""
    cfg = _smoke("R3", keypoint_input="img-bg", mask_target="img-bg-mask", max_iters=2, log_every=1, ckpt_every=2)
    with torch_threads(1):
        run = train(cfg, run_dir=tmp_path / "r3", progress=False)
        fixed = measure(run, with_untrained=False, crop_source="img-bg")
    ex = load_export(run / "export_step0000002_crop-img-bg.npz")
    b = box_figures(ex, cfg.replace(crop_source="img-bg"), "test")
    assert b["size_ratio"]["p10"] == pytest.approx(1.0, abs=1e-4) and b["size_ratio"]["p90"] == pytest.approx(1.0, abs=1e-4)
    assert b["centre_offset"]["p90"] < 1e-4
    with pytest.raises(ValueError, match="export all frames"):
        box_figures({**ex, "split": ex["split"][:3], "boxes": ex["boxes"][:3]}, cfg, "test")
    assert fixed["crop_source"] == "img-bg"


def test_silhouette_baseline_rows():
    cfg = get_config("smoke")
    tr, te = dataset_for(cfg, "train"), dataset_for(cfg, "test")
    x, j = silhouette_features(tr, "gt", cfg.views, size=8, progress=False)
    assert x.shape == (len(tr), 4 * 64) and j.shape == (len(tr), 17, 3)
    rows = silhouette_baseline(cfg, tr, te, kinds=("linear",), size=8, pca=16, progress=False)
    assert {r["key"] for r in rows} == {"silhouette_img-bg", "silhouette_gt"}
    assert all(np.isfinite(r["mpjpe"]) for r in rows)


def test_silhouettes_see_the_models_mask(monkeypatch):
    """silhouette_baseline builds the img-bg silhouettes from the mask the model sees: its threshold,
    foreground_cleanup and shadow_chroma."""
    import kp3d.silhouettes as S

    seen = []
    real = S.foreground_mask
    monkeypatch.setattr(S, "foreground_mask", lambda *a, **k: seen.append(a[2:5]) or real(*a, **k))
    cfg = get_config("smoke", box_prior_threshold=0.05, foreground_cleanup=3, shadow_chroma=0.08)
    tr = dataset_for(cfg, "train")
    S.silhouette_baseline(cfg, tr, tr, sources=("img-bg",), kinds=("linear",), size=8, pca=8, max_frames=4, progress=False)
    assert seen and set(seen) == {(0.05, 3, 0.08)}


def test_rungs_are_runnable_configs():
    for rung in RUNGS:
        rung_config(rung).validate()


def test_cli_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "kp3d.ladder", "measure", str(tmp_path / "nothing")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "has no checkpoint" in r.stderr and "Traceback" not in r.stderr
