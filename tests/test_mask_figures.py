"""Tests of kp3d.mask_figures (M_p and |I - B| against the GT mask), the synthetic data seed of a data
name ("synthetic?seed=N") and the ladder's mask and validation-render measurements."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data_utils.datasets import synthetic_options
from kp3d.profiles import make_dataset
from fakes import FakeMultiView
from kp3d.config import is_synthetic
from kp3d.profiles import get_config
from kp3d.export import load_export
from kp3d.ladder import data_tag, mask_run, rung_config
from kp3d.losses import compute_losses
from kp3d.mask_figures import (BLEND_OPTIMAL, CROP_CEILING, DEPTH_RINGS, MASKS, MaskCounts, RecallCounts, background_reduction, blend_optimal_from_patch, blend_optimal_mask, depth_rings,
                               format_mask_figures, frame_masks, mask_figures, threshold_figures)
from kp3d.model import KeypointModel
from kp3d.train import train

torch.set_num_threads(1)


def _square(lo, hi, size=16):
    m = torch.zeros(1, 1, size, size)
    m[..., lo:hi, lo:hi] = 1
    return m


# --- shape -----------------------------------------------------------------------------------------
def test_frame_masks_shapes_and_names():
    ds = FakeMultiView(n=2, size=32)
    b = torch.utils.data.default_collate([ds[0], ds[1]])
    imgs, bgs = b["images"].flatten(0, 1), b["backgrounds"].flatten(0, 1)
    masks = frame_masks(get_config("smoke"), imgs, bgs, pred=torch.rand(8, 1, 32, 32))
    assert tuple(masks) == MASKS
    assert all(m.shape == (8, 1, 32, 32) and set(m.unique().tolist()) <= {0.0, 1.0} for m in masks.values())
    assert "pred" not in frame_masks(get_config("smoke"), imgs, bgs)


# --- bad input -------------------------------------------------------------------------------------
def test_mask_counts_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        MaskCounts.of(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="every=0"):
        mask_figures(None, FakeMultiView(n=2, size=32), get_config("smoke"), every=0)
    with pytest.raises(ValueError, match="difference"):
        RecallCounts.of(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("data", ["synthetic?seed=x", "synthetic?frames=3", "synthetic?seed", "synthetic?seed=-1"])
def test_bad_synthetic_options_are_refused_in_one_line(data):
    with pytest.raises(ValueError, match=r"synthetic\?seed=3") as e:
        synthetic_options(data)
    assert "\n" not in str(e.value)


def test_a_seed_given_twice_must_agree():
    with pytest.raises(ValueError, match="name it once"):
        make_dataset("synthetic?seed=3", "smoke", "test", seed=4)


# --- accuracy --------------------------------------------------------------------------------------
def test_mask_counts_by_hand():
    g = _square(4, 12)  # 64 pixels
    a = _square(4, 12)
    a[..., 4:12, 10:12] = 0  # 16 of the person missed
    a[..., 0, 15] = 1  # one pixel far off the person
    a[..., 3, 5] = 1  # one pixel at the edge (1 px off): not "off the person"
    f = MaskCounts.of(a, g).figures()
    assert f["precision"] == pytest.approx(48 / 50) and f["recall"] == pytest.approx(48 / 64)
    assert f["iou"] == pytest.approx(48 / 66) and f["off_person"] == pytest.approx(1 / 50)
    both = (MaskCounts.of(a, g) + MaskCounts.of(g, g)).figures()  # pooled pixels, not a mean of ratios
    assert both["recall"] == pytest.approx((48 + 64) / 128)
    assert MaskCounts.of(torch.zeros_like(g), g).figures()["precision"] == 0.0


def test_depth_rings_split_the_person_by_depth():
    g = _square(4, 12)  # 8 x 8: a 1-px outline of 28, 32 pixels 2-3 px in, the 2 x 2 core
    rings = depth_rings(g)
    assert [int(r.sum()) for r in rings] == [28, 32, 4]
    assert torch.equal(rings[0] | rings[1] | rings[2], g > 0.5) and not (rings[0] & rings[1]).any()
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., :, :3] = 1  # a person cut by the frame's border: the border is not its outline
    assert int(depth_rings(edge)[0].sum()) == 8


def test_recall_counts_say_where_a_mask_misses_the_person():
    g = _square(4, 12)
    a = _square(5, 11)  # everything but the outline
    diff = torch.full_like(g, 0.3)
    diff[..., 4:12, 4] = 0.01  # the left column of the person is close to the background
    w = RecallCounts.of(a, g, diff).figures()
    assert [r["where"] for r in w["depth"]] == list(DEPTH_RINGS)
    assert [r["recall"] for r in w["depth"]] == [0.0, 1.0, 1.0]
    assert w["depth"][0]["share"] == pytest.approx(28 / 64)
    low, top = w["contrast"][0], w["contrast"][-1]
    assert low["where"] == "0-0.05" and low["share"] == pytest.approx(8 / 64) and low["recall"] == 0.0
    assert top["where"] == ">= 0.2" and top["share"] == pytest.approx(56 / 64) and top["recall"] == pytest.approx(36 / 56)
    pooled = (RecallCounts.of(a, g, diff) + RecallCounts.of(g, g, diff)).figures()
    assert pooled["depth"][0]["recall"] == pytest.approx(0.5)


def test_background_reduction_is_the_scaled_difference():
    bg = torch.zeros(1, 3, 4, 4)
    img = bg.clone()
    img[..., 0, 0] = 0.4
    img[..., 1, 1] = 0.2
    r = background_reduction(img, bg)
    assert r[0, 0, 0, 0] == pytest.approx(1.0) and r[0, 0, 1, 1] == pytest.approx(0.5) and r[0, 0, 2, 2] == 0


def test_mask_figures_of_the_fake_rig():
    # |I - B| of the fake rig is the person (textured background, small noise): high IoU; a model
    # whose decoder mask is still about 0.5 everywhere covers the whole box: low precision
    ds = FakeMultiView(n=4, size=64)
    cfg = get_config("smoke", amp="none")
    torch.manual_seed(0)
    res = mask_figures(KeypointModel(cfg), ds, cfg, every=2)
    assert res["views"] == 8
    assert res["img-bg-raw"]["iou"] > 0.8 and res["img-bg-raw"]["off_person"] < 0.05
    assert set(res["pred"]) == {"iou", "precision", "recall", "off_person"}
    text = format_mask_figures(res)
    assert "M_p > 0.5" in text and "8 views" in text and "through the crop" in text
    assert set(res["recall_where"]) == set(MASKS) | {CROP_CEILING, BLEND_OPTIMAL}
    assert "the blend asks for" in text and "recall of the blend's mask by depth" in text
    assert sum(r["share"] for r in res["recall_where"]["pred"]["depth"]) == pytest.approx(1.0)
    assert "recall of M_p by depth in the person" in text and "recall of cleaned |I - B| by |I - B|" in text


def test_the_crop_ceiling_falls_with_the_patch_size():
    # the GT mask through the model's crop and back: nearly itself at the profile's patch, coarser
    # (lower IoU, but still the person) through a patch a quarter of the side
    ds = FakeMultiView(n=4, size=64)
    torch.manual_seed(0)
    ious = {}
    for P in (32, 8):
        cfg = get_config("smoke", amp="none", patch_size=P)
        ious[P] = mask_figures(KeypointModel(cfg), ds, cfg, every=2)[CROP_CEILING]["iou"]
    assert ious[32] > 0.9 and 0.3 < ious[8] < ious[32] - 0.05, ious


# --- the data seed end to end ----------------------------------------------------------------------
def test_data_seed_renders_another_set_with_its_own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KP3D_CACHE_DIR", str(tmp_path / "cache"))
    a = make_dataset("synthetic", "smoke", "test", progress=False)
    b = make_dataset("synthetic?seed=3", "smoke", "test", progress=False)
    assert synthetic_options("synthetic") == {} and is_synthetic("synthetic?seed=3") and not is_synthetic("rig:/x")
    assert len(list((tmp_path / "cache" / "synthetic").iterdir())) == 2
    assert not torch.equal(a[0]["images"], b[0]["images"])
    assert torch.equal(make_dataset("synthetic?seed=0", "smoke", "test", progress=False)[0]["images"], a[0]["images"])
    assert data_tag("synthetic?seed=3", "synthetic") == "_data-synthetic-seed3" and data_tag("synthetic", "synthetic") == ""


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeded")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KP3D_CACHE_DIR", str(root / "cache"))
        run = root / "run"
        train(get_config("smoke", amp="none", max_iters=4, warmup_iters=2, ckpt_every=4), run_dir=run, progress=False)
        yield run


def test_ladder_masks_on_a_validation_render(smoke_run):
    res = mask_run(smoke_run, data="synthetic?seed=3", every=10)
    assert res["data"] == "synthetic?seed=3" and res["split"] == "test" and res["step"] == 4
    assert res["views"] == 4 * len(range(0, 80, 10)) and set(MASKS) <= set(res)


def test_ladder_masks_at_a_saved_step(smoke_run, capsys):
    from kp3d import ladder
    from kp3d.cli_errors import run_entry_point

    assert mask_run(smoke_run, every=40, step=4)["step"] == 4
    with pytest.raises(FileNotFoundError, match="no checkpoint at step 2: its saved steps are 4 "):
        mask_run(smoke_run, every=40, step=2)
    assert run_entry_point(ladder.main, ["masks", str(smoke_run), "--every", "40", "--step", "3"]) == 2
    err = capsys.readouterr().err
    assert "its saved steps are 4" in err and "Traceback" not in err


def test_discovery_check_exports_a_run_on_the_data_asked(smoke_run, capsys):
    from kp3d import discovery_check

    discovery_check.main([str(smoke_run), "--data", "synthetic?seed=3", "--no-probes"])
    path = smoke_run / "discovery_export_synthetic-seed-3.npz"
    assert json.loads(str(load_export(path)["config_json"]))["data"] == "synthetic?seed=3"
    assert "'synthetic?seed=3'" in capsys.readouterr().out
    mtime = path.stat().st_mtime_ns
    discovery_check.main([str(smoke_run), "--data", "synthetic?seed=3", "--no-probes"])
    assert path.stat().st_mtime_ns == mtime  # the same export is reused, not written again
    assert discovery_check.main([str(path), "--data", "synthetic?seed=4", "--no-probes"]) == 2
    assert "is an export already" in capsys.readouterr().err


def test_threshold_figures_order_the_settings_as_the_masks_say():
    ds = FakeMultiView(n=4, size=64)
    rows = threshold_figures(ds, [(0.05, 0, 0.0), (0.9, 0, 0.0), (0.05, 3, 0.0)], every=2)
    assert [r["threshold"] for r in rows] == [0.05, 0.9, 0.05]
    assert rows[0]["iou"] > 0.99 and rows[1]["recall"] == 0  # nothing of the person is that far from the background
    assert 0.9 < rows[2]["iou"] < 1  # the fake person is drawn sharp: the opening trims its thin parts


# --- the oracle rung M0 ----------------------------------------------------------------------------
def test_mask_oracle_trains_m_p_against_the_gt_mask():
    ds = FakeMultiView(n=2, size=64)
    b = torch.utils.data.default_collate([ds[0], ds[1]])
    cfg = rung_config("M0", "smoke", amp="none")
    torch.manual_seed(0)
    out = KeypointModel(cfg)(b["images"], b["backgrounds"], b["K"], b["R"], b["t"], keypoints=False)
    terms = compute_losses(cfg, out, b, None, step=0)
    assert terms["mask_oracle"] > 0 and torch.isclose(terms["total"], terms["pixel"] + cfg.w_patch * terms["patch"] + terms["mask_oracle"])
    assert compute_losses(rung_config("Ma", "smoke", amp="none"), out, b, None, step=0)["mask_oracle"] == 0
    with pytest.raises(ValueError, match="ground-truth masks"):
        compute_losses(cfg, out, {k: v for k, v in b.items() if k != "gt"}, None, step=0)
    with pytest.raises(ValueError, match="mask_oracle=True"):
        get_config("smoke", mask_oracle=True, image_reconstruction=False, crop_source="img-bg", keypoint_input="img-bg",
                   mask_target="img-bg-mask")


# --- Table 6 -----------------------------------------------------------------------------------------
def test_table6_rows_name_the_target_and_score_it(smoke_run, tmp_path, capsys):
    from kp3d.ladder import main as ladder_main

    out = tmp_path / "t6.json"
    assert ladder_main(["table6", str(smoke_run), "--data", "synthetic?seed=3", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    (row,) = doc["rows"]
    assert doc["data"] == "synthetic?seed=3" and row["target"] == "predicted" and row["seed"] == 0
    assert row["target_iou"] == row["pred_mask_iou"] and 0 <= row["on_gt_mask"] <= 1 and row["mlp_ratio"] > 0
    text = capsys.readouterr().out
    assert "| predicted | 0 |" in text and "14.37 cm" in text
    with pytest.raises(FileExistsError):
        ladder_main(["table6", str(smoke_run), "--json", str(out)])


def test_silhouettes_of_m_p_from_an_export(smoke_run, tmp_path):
    from kp3d.export import export
    from kp3d.silhouettes import export_silhouette_baseline

    path = export(smoke_run, tmp_path / "ex.npz", max_frames=12, progress=False)
    rows = export_silhouette_baseline(load_export(path), size=8, pca=8)
    assert {r["probe"] for r in rows} == {"linear", "mlp"} and all(r["mpjpe"] > 0 and r["key"] == "silhouette_pred" for r in rows)
    with pytest.raises(ValueError, match="masks and gt_joints_3d"):
        export_silhouette_baseline({"split": np.array(["train"])})


def test_mask_comparison_panel():
    import matplotlib

    matplotlib.use("Agg")
    from kp3d.viz.training import MaskComparison, predict

    ds = FakeMultiView(n=2, size=64)
    torch.manual_seed(0)
    panel = MaskComparison(KeypointModel(get_config("smoke", amp="none")), ds)
    fig = panel.update(frame=1, view=2)
    assert len(fig.axes) == 7 and set(panel.ious) == {*MASKS, BLEND_OPTIMAL}
    assert panel.ious["img-bg-raw"] > 0.8  # the fake rig's |I - B| is the person
    assert all("IoU" in ax.get_title() for ax in fig.axes[1:6])
    # the blend's panel is the mask of mask_figures for the same view
    r = predict(panel.model, ds[1], keypoints=False)
    img, bg = (torch.from_numpy(r[k][2])[None] for k in ("images", "backgrounds"))
    direct = blend_optimal_from_patch(img, bg, torch.from_numpy(r["patch_recon"][2])[None], torch.from_numpy(r["box"][2])[None]) > 0.5
    assert panel.ious[BLEND_OPTIMAL] == pytest.approx(MaskCounts.of(direct.float(), torch.from_numpy(r["gt_masks"][2])[None].float()).figures()["iou"])
    # without an image decoder there is no M_p and no D_p: the two panels say so, the rest are drawn
    bottleneck = MaskComparison(KeypointModel(rung_config("R1", "smoke", amp="none")), ds)
    fig = bottleneck.update(frame=0, view=0)
    assert set(bottleneck.ious) == set(MASKS[1:]) and "no image decoder" in fig.axes[2].get_title()
    with pytest.raises(IndexError, match="view"):
        panel.update(frame=0, view=9)
    no_gt = FakeMultiView(n=2, size=64, with_gt=False)
    with pytest.raises(ValueError, match="ground-truth masks"):
        MaskComparison(panel.model, no_gt).update(0, 0)


def test_the_committed_table6_holds_every_target(tmp_path):
    from kp3d.results import TABLE6_FILE, TABLE6_ORDER, table6_report

    doc = json.loads(TABLE6_FILE.read_text())
    assert {r["target"] for r in doc["rows"]} == set(TABLE6_ORDER) and doc["data"] == "synthetic?seed=3"
    text = table6_report()
    assert all(f"| {t} |" in text for t in TABLE6_ORDER) and "synthetic?seed=3" in text
    assert "has not been measured" in table6_report(tmp_path / "missing.json")


# --- the mask the blend asks for ----------------------------------------------------------------
def test_blend_optimal_mask_shape_and_bad_input():
    x = torch.rand(2, 3, 8, 8)
    assert blend_optimal_mask(x, x, x, torch.ones(2, 1, 8, 8)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"inside: expected \(2, 1, H, W\) matching images"):
        blend_optimal_mask(x, x, x, torch.ones(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"decoded_patch: expected \(2, 3, P, P\)"):
        blend_optimal_from_patch(x, x, torch.rand(2, 1, 4, 4), torch.tensor([[0.5, 0.5, 0.0, 0.0]] * 2))


def test_blend_optimal_from_patch_is_zero_outside_the_box():
    """The patch's decoded person is pasted through the box: the mask is the person inside the box's
    footprint (the right half of the frame here) and 0 outside it, whatever the frame holds there."""
    I, B = torch.ones(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)   # the whole frame differs from the background
    box = torch.tensor([[0.5, 1.0, 0.5, 0.0]])               # (s_x, s_y, u_x, u_y): the right half
    m = blend_optimal_from_patch(I, B, torch.ones(1, 3, 4, 4), box)
    assert float(m[..., 5:7].min()) == 1.0 and float(m[..., :3].max()) == 0.0


def test_blend_optimal_mask_solves_the_blend_per_pixel():
    """At each pixel the returned M gives the least squared error of M D + (1 - M) B against I among
    a grid of masks; outside the box it is 0."""
    torch.manual_seed(0)
    I, B, D = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    inside = torch.ones(1, 1, 6, 6); inside[..., :, 0] = 0
    m = blend_optimal_mask(I, B, D, inside)
    grid = torch.linspace(0, 1, 1001).view(-1, 1, 1, 1, 1)
    err = ((grid * D + (1 - grid) * B - I) ** 2).sum(2, keepdim=True)  # (1001, 1, 1, 6, 6)
    best = grid.view(-1)[err.argmin(0)].view(1, 1, 6, 6)
    torch.testing.assert_close(m[..., 1:], best[..., 1:], atol=1e-3, rtol=0)
    assert float(m[..., 0].abs().max()) == 0.0
