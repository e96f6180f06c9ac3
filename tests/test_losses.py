"""Tests of kp3d.losses (Eq. 10-15), kp3d.perceptual and kp3d.diagnostics."""
from __future__ import annotations

import logging

import pytest
import torch
import torchvision

from fakes import FakeMultiView
from kp3d.profiles import get_config
from kp3d.diagnostics import compute_diagnostics, fraction_inside, mask_iou, mean_pairwise_distance
from kp3d.losses import (box_prior_loss, centering_loss, compute_losses, concentration_loss, coverage_loss, foreground_box,
                         foreground_mask, foreground_soft, keypoint_weight, mask_loss, mask_target, perceptual_loss, pixel_loss, shadow_mask,
                         sigma_at)
from kp3d.model import KeypointModel
from kp3d.perceptual import PerceptualFeatures, build_perceptual

torch.set_num_threads(1)
P = 32


def _square_mask(lo=8, hi=24):
    m = torch.zeros(1, 1, P, P)
    m[..., lo:hi, lo:hi] = 1.0
    return m


# --- each loss is minimal where it should be ---------------------------------------------------
def test_pixel_and_mask_losses_zero_at_target():
    x = torch.rand(2, 3, 16, 16)
    assert pixel_loss(x, x) == 0 and pixel_loss(x, 1 - x) > 0
    m = torch.rand(2, 1, 16, 16)
    assert mask_loss(m, m) == 0
    assert torch.isclose(mask_loss(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4), "sum"), torch.tensor(16.0))
    assert torch.isclose(mask_loss(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4), "mean"), torch.tensor(1.0))


def test_coverage_minimal_when_keypoints_inside_mask():
    inside = torch.tensor([[[15.5, 15.5], [13.0, 18.0], [18.0, 13.0]]])
    outside = torch.tensor([[[2.0, 2.0], [29.0, 3.0], [3.0, 28.0]]])
    m = _square_mask()
    l_in, l_out = coverage_loss(inside, m, 1.6), coverage_loss(outside, m, 1.6)
    assert l_in < 1e-3 and l_out > 0.99
    assert coverage_loss(inside, torch.zeros_like(m), 1.6) == pytest.approx(1.0)
    # the gradient pulls an outside keypoint towards the mask
    x = torch.tensor([[[5.0, 15.5]]], requires_grad=True)
    coverage_loss(x, m, 3.0).backward()
    assert x.grad[0, 0, 0] < 0  # moving right (towards u = 8) lowers the loss


def test_centering_minimal_when_box_centred_on_keypoints():
    box = torch.tensor([[0.5, 0.5, 0.2, -0.1]])
    # image pixels whose mean, (2 x + 1) / 64 - 1, is (0.2, -0.1)
    mean = torch.tensor([(0.2 + 1) * 32 - 0.5, (-0.1 + 1) * 32 - 0.5])
    x = torch.stack([mean + torch.tensor([-7.0, 3.0]), mean + torch.tensor([7.0, -3.0])])[None]
    assert centering_loss(box, x, (64, 64)) < 1e-5
    shifted = box.clone()
    shifted[0, 2] += 0.3
    assert centering_loss(shifted, x, (64, 64)).item() == pytest.approx(0.3, abs=1e-5)
    # box-only: the keypoints get no gradient and the box centre is pulled back
    xr = x.clone().requires_grad_(True)
    br = shifted.clone().requires_grad_(True)
    centering_loss(br, xr, (64, 64), box_only=True).backward()
    assert xr.grad is None and br.grad[0, 2] > 0 and br.grad[0, :2].abs().sum() == 0
    xr = x.clone().requires_grad_(True)
    centering_loss(shifted, xr, (64, 64)).backward()
    assert xr.grad.abs().sum() > 0


def test_perceptual_zero_at_target_and_fallback_is_announced(caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    with caplog.at_level(logging.WARNING):
        feats = build_perceptual("", "random")
    assert feats.source == "random-seed0"
    assert "FALLBACK" in caplog.text
    x = torch.rand(1, 3, 32, 32)
    assert perceptual_loss(feats, x, x) == 0 and perceptual_loss(feats, x, x.flip(-1)) > 0
    assert [f.shape[1] for f in feats(x)] == [64, 128, 256]
    assert not any(p.requires_grad for p in feats.parameters())
    with caplog.at_level(logging.WARNING):
        assert build_perceptual("", "off") is None
    assert "PERCEPTUAL LOSS OFF" in caplog.text


def test_perceptual_loads_weights_file(tmp_path):
    path = tmp_path / "r18.pth"
    torch.manual_seed(3)
    net = torchvision.models.resnet18(weights=None)
    torch.save(net.state_dict(), path)
    feats = PerceptualFeatures(str(path))
    assert feats.source == f"imagenet:{path}"
    assert torch.equal(feats.stem[0].weight, net.conv1.weight)
    with pytest.raises(FileNotFoundError, match="perceptual_weights"):
        PerceptualFeatures(str(tmp_path / "missing.pth"))


# --- switches, warm-up, mask targets -------------------------------------------------------------
@pytest.fixture(scope="module")
def batch():
    ds = FakeMultiView(n=2, size=64)
    return torch.utils.data.default_collate([ds[0], ds[1]])


def _run(cfg, batch, step=100):
    torch.manual_seed(0)
    model = KeypointModel(cfg)
    out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"])
    return out, compute_losses(cfg, out, batch, None, step)


def test_switches_and_warmup(batch):
    base = get_config("smoke", amp="none", warmup_iters=10, keypoint_ramp_iters=10)
    assert keypoint_weight(base, 5) == 0 and keypoint_weight(base, 14) == 0.5 and keypoint_weight(base, 30) == 1
    assert keypoint_weight(base.replace(reconstruction_only=True), 10**6) == 0
    _, l = _run(base, batch, step=0)
    assert l["mask"] == 0 and l["coverage"] == 0 and torch.isclose(l["total"], l["pixel"])
    _, l = _run(base, batch, step=100)
    assert l["mask"] > 0 and l["coverage"] > 0 and l["centering"] > 0
    expected = l["pixel"] + base.w_mask * l["mask"] + base.w_coverage * l["coverage"] + base.w_centering * l["centering"]
    assert torch.isclose(l["total"], expected)
    off = base.replace(use_mask_loss=False, use_coverage_loss=False, use_centering_loss=False)
    _, l = _run(off, batch, step=100)
    assert torch.isclose(l["total"], l["pixel"])


def test_mask_targets(batch):
    cfg = get_config("smoke", amp="none")
    out, _ = _run(cfg, batch)
    t_pred = mask_target(cfg, out, batch)
    assert t_pred.shape == (8, 1, cfg.patch_size, cfg.patch_size) and not t_pred.requires_grad
    assert mask_target(cfg.replace(detach_mask_target=False), out, batch).requires_grad
    t_gt = mask_target(cfg.replace(mask_target="gt"), out, batch)
    assert set(t_gt.unique().round(decimals=3).tolist()) <= set(torch.linspace(0, 1, 1001).round(decimals=3).tolist())
    assert t_gt.max() > 0.5  # the person is inside the initial box
    t_ib = mask_target(cfg.replace(mask_target="img-bg"), out, batch)
    assert 0 <= t_ib.min() and t_ib.max() <= 1
    # the image-minus-background target agrees with the GT mask where it is confident
    assert ((t_ib > 0.5).float() * (1 - t_gt)).sum() < 0.05 * (t_ib > 0.5).sum()
    no_gt = {k: v for k, v in batch.items() if k != "gt"}
    with pytest.raises(ValueError, match="GT masks"):
        mask_target(cfg.replace(mask_target="gt"), out, no_gt)


def test_bad_loss_inputs():
    with pytest.raises(ValueError, match="differ"):
        pixel_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
    with pytest.raises(ValueError, match="x_hat"):
        coverage_loss(torch.rand(2, 3), torch.rand(2, 1, 4, 4), 1.0)
    with pytest.raises(ValueError, match="reduction"):
        mask_loss(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), "median")
    with pytest.raises(ValueError, match="mask_target"):
        get_config("smoke", mask_target="nope")


# --- box prior (Config.w_box_prior) --------------------------------------------------------------
def test_foreground_box_fits_the_changed_pixels():
    bg = torch.rand(3, 3, 64, 64) * 0.5
    img = bg.clone()
    img[0, :, 10:50, 20:30] += 0.4  # a tall person left of centre: side from the height
    img[1, :, 40:48, 8:40] += 0.4  # a wide one, low: side from the width
    img[2] += 0.01 * torch.randn(3, 64, 64)  # noise only: below the threshold, the fallback box
    box = foreground_box(img, bg, margin=1.0)
    assert box.shape == (3, 4) and not box.requires_grad
    # pixel i spans normalised [2i/64 - 1, 2(i+1)/64 - 1]: rows 10..49 -> side 40/64, centre (10+50)/64 - 1
    torch.testing.assert_close(box[0], torch.tensor([40 / 64, 40 / 64, 50 / 64 - 1, 60 / 64 - 1]))
    torch.testing.assert_close(box[1], torch.tensor([32 / 64, 32 / 64, 48 / 64 - 1, 88 / 64 - 1]))
    torch.testing.assert_close(box[2], torch.tensor([0.75, 0.75, 0.0, 0.0]))
    # margin scales the side; a few noisy pixels far away do not move the box (1% quantiles)
    img[0, :, 2, 60] += 0.5
    wide = foreground_box(img, bg, margin=1.2)
    torch.testing.assert_close(wide[0], torch.tensor([48 / 64, 48 / 64, 50 / 64 - 1, 60 / 64 - 1]))


def test_foreground_cleanup_fills_holes_and_drops_specks():
    """Config.foreground_cleanup: a closing fills a hole the size of the kernel inside the person, an
    opening then drops an isolated speck; the raw mask keeps both."""
    bg = torch.zeros(1, 3, 32, 32)
    img = bg.clone()
    img[..., 8:24, 12:20] = 0.5  # the person
    img[..., 15, 15] = 0.0  # clothing that matches the background: a one-pixel hole
    img[..., 2, 28] = 0.5  # sensor noise: a one-pixel speck
    raw = foreground_mask(img, bg)
    clean = foreground_mask(img, bg, cleanup=3)
    assert raw[0, 0, 15, 15] == 0 and raw[0, 0, 2, 28] == 1
    assert clean[0, 0, 15, 15] == 1 and clean[0, 0, 2, 28] == 0
    person = torch.zeros(32, 32)
    person[8:24, 12:20] = 1
    torch.testing.assert_close(clean[0, 0], person)  # the person's outline is kept exactly
    # the box around the cleaned mask is the box around the person alone
    no_speck = img.clone()
    no_speck[..., 2, 28] = 0.0
    assert torch.equal(foreground_box(img, bg, quantile=1e-6, cleanup=3), foreground_box(no_speck, bg, quantile=1e-6))
    assert not torch.equal(foreground_box(img, bg, quantile=1e-6), foreground_box(no_speck, bg, quantile=1e-6))
    for bad in (1, 2, -3):
        with pytest.raises(ValueError, match="foreground_cleanup"):
            get_config("smoke", foreground_cleanup=bad)
    with pytest.raises(ValueError, match="cleanup=4"):
        foreground_mask(img, bg, cleanup=4)


def test_box_prior_in_compute_losses(batch):
    cfg = get_config("smoke", amp="none", w_box_prior=2.0)
    out, l = _run(cfg, batch, step=0)
    assert l["box_prior"] > 0 and torch.isclose(l["total"], l["pixel"] + 2.0 * l["box_prior"])
    # the prior reaches the detector only
    cfg0 = cfg.replace(w_box_prior=0.0)
    assert _run(cfg0, batch, step=0)[1]["box_prior"] == 0
    torch.manual_seed(0)
    model = KeypointModel(cfg)
    out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"], keypoints=False)
    box_prior_loss(out["box"].reshape(-1, 4), torch.zeros(out["box"].shape[0] * out["box"].shape[1], 4)).backward()
    assert model.detector.head.weight.grad.abs().sum() > 0 and model.encoder.proj.weight.grad is None


def test_concentration_term(batch):
    """Logged whenever keypoints run, never added to the total, and its gradient would sharpen
    the keypoint maps (it measures their spread)."""
    assert torch.isclose(concentration_loss(torch.full((2, 4, 8), 8.0), 32), torch.tensor(0.25))
    cfg = get_config("smoke", amp="none", warmup_iters=0, keypoint_ramp_iters=0)
    out, l = _run(cfg, batch, step=5)
    assert torch.isclose(l["concentration"], out["kp_map_spread"].mean() / cfg.patch_size)
    assert torch.isclose(l["total"], l["pixel"] + cfg.w_mask * l["mask"] + cfg.w_coverage * l["coverage"]
                         + cfg.w_centering * l["centering"], rtol=1e-5)
    torch.manual_seed(0)
    model = KeypointModel(cfg.replace(decoder_dropout=0.0))
    opt = torch.optim.SGD(model.keypoint_head.parameters(), lr=5.0)
    spreads = []
    for _ in range(3):
        out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"])
        loss = concentration_loss(out["kp_map_spread"], cfg.patch_size)
        spreads.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert spreads[-1] < spreads[0]
    with pytest.raises(ValueError, match="patch_size must be positive"):
        concentration_loss(torch.ones(2, 3), 0)


def test_sigma_anneal(batch):
    cfg = get_config("smoke", amp="none", warmup_iters=10, sigma=0.1, sigma_start=0.4, sigma_anneal_iters=20)
    assert sigma_at(cfg, 0) == pytest.approx(0.4) and sigma_at(cfg, 10) == pytest.approx(0.4)
    assert sigma_at(cfg, 20) == pytest.approx(0.2)  # geometric: halfway in log
    assert sigma_at(cfg, 30) == pytest.approx(0.1) and sigma_at(cfg, 10**6) == pytest.approx(0.1)
    assert sigma_at(cfg.replace(sigma_start=0.0), 15) == 0.1
    # the model's Gaussians follow the sigma it is given; wider ones cover more of the patch
    torch.manual_seed(0)
    model = KeypointModel(cfg)
    x = torch.full((1, 1, 2), 15.5)
    assert model.heatmaps(x, 0.4).sum() > 10 * model.heatmaps(x).sum()
    with pytest.raises(ValueError, match="sigma_anneal_iters"):
        get_config("smoke", sigma_start=0.3, sigma_anneal_iters=0)
    with pytest.raises(ValueError, match="box prior"):
        get_config("smoke", box_prior_threshold=1.5)


def test_box_prior_bad_input():
    with pytest.raises(ValueError, match="backgrounds"):
        foreground_box(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="box_prior_loss"):
        box_prior_loss(torch.rand(2, 4), torch.rand(2, 3))


# --- diagnostics ---------------------------------------------------------------------------------
def test_diagnostics_primitives():
    assert mean_pairwise_distance(torch.zeros(2, 5, 2)).abs().max() == 0  # collapsed
    assert mean_pairwise_distance(torch.tensor([[[0.0, 0.0], [6.0, 8.0]]])).item() == pytest.approx(10.0)
    m = _square_mask()
    assert fraction_inside(torch.tensor([[[10.0, 10.0], [2.0, 2.0], [40.0, 10.0]]]), m).item() == pytest.approx(1 / 3)
    assert mask_iou(m, m).item() == 1.0 and mask_iou(m, 1 - m).item() == 0.0


def test_compute_diagnostics_keys(batch):
    cfg = get_config("smoke", amp="none")
    out, _ = _run(cfg, batch)
    d = compute_diagnostics(out, batch)
    for k in ("kp_spread_px", "kp_in_pred_mask", "kp_in_gt_mask", "reproj_err_px", "mask_iou_gt", "box_scale", "pred_mask_frac"):
        assert k in d and d[k] == d[k], k


def test_centering_keypoints_only_moves_keypoints_not_box():
    box = torch.tensor([[0.5, 0.5, 0.2, 0.0]], requires_grad=True)
    x = torch.tensor([[[30.0, 31.0], [34.0, 33.0]]], requires_grad=True)
    centering_loss(box, x, (64, 64), keypoints_only=True).backward()
    assert box.grad is None or float(box.grad.abs().sum()) == 0
    assert float(x.grad.abs().sum()) > 0
    from kp3d.profiles import get_config

    with pytest.raises(ValueError, match="both True"):
        get_config("smoke", centering_box_only=True, centering_keypoints_only=True)


def _person_and_shadow():
    """A grey floor; a red person (rows 4-20); its shadow on the floor (rows 20-28, the floor dimmed
    to 55%, the synthetic set's shadow strength); a charcoal shoe as dark as 20% of the floor."""
    bg = torch.full((1, 3, 32, 32), 0.6)
    bg[:, 2] = 0.5  # a slightly blue-less floor: its chromaticity is not neutral
    img = bg.clone()
    img[:, :, 4:20, 12:20] = torch.tensor([0.8, 0.3, 0.2])[:, None, None]
    img[:, :, 20:28, 8:24] = 0.55 * bg[:, :, 20:28, 8:24]
    img[:, :, 19:21, 14:18] = 0.2 * bg[:, :, 19:21, 14:18]  # dark, with the floor's hue
    return img, bg


def test_shadow_mask_finds_the_floor_in_shadow_only():
    """Config.shadow_chroma: the dimmed floor (same hue, darker) is shadow; the person (another hue)
    and a very dark pixel (under SHADOW_MIN_BRIGHTNESS) are not; foreground_mask, foreground_soft
    and foreground_box drop the shadow and keep the person."""
    img, bg = _person_and_shadow()
    sh = shadow_mask(img, bg, 0.08)
    assert sh.shape == (1, 1, 32, 32) and sh.dtype == torch.bool
    assert sh[0, 0, 22:28, 8:24].all() and not sh[0, 0, 4:20, 12:20].any()
    assert not sh[0, 0, 19:21, 14:18].any()  # darker than any cast shadow: the person
    assert not sh[0, 0, :4].any()  # the floor in light
    raw = foreground_mask(img, bg, 0.05)
    drop = foreground_mask(img, bg, 0.05, shadow_chroma=0.08)
    assert raw[0, 0, 22:28, 8:24].all()  # |I - B| alone takes the shadow for the person
    person = torch.zeros(32, 32)
    person[4:20, 12:20] = 1
    person[19:21, 14:18] = 1
    torch.testing.assert_close(drop[0, 0], person)
    torch.testing.assert_close(foreground_mask(img, bg, 0.05, cleanup=3, shadow_chroma=0.08)[0, 0], person)
    soft = foreground_soft(img, bg, 0.05, shadow_chroma=0.08)
    assert soft[0, 0, 22:28, 8:24].eq(0).all() and soft[0, 0, 4:20, 12:20].eq(1).all()
    assert foreground_soft(img, bg, 0.05, cleanup=3, shadow_chroma=0.08)[0, 0, 22:28, 8:24].eq(0).all()
    # the box prior's box: the person alone (rows 4-20), not person and shadow (rows 4-28)
    box = foreground_box(img, bg, 0.05, margin=1.0, quantile=1e-6, shadow_chroma=0.08)
    torch.testing.assert_close(box[0, :2], torch.tensor([17 / 32, 17 / 32]))
    assert foreground_box(img, bg, 0.05, margin=1.0, quantile=1e-6)[0, 0] == pytest.approx(24 / 32)
    # off (0) is the mask as before
    assert torch.equal(foreground_mask(img, bg, 0.05, shadow_chroma=0.0), raw)


def test_shadow_chroma_bad_input_is_refused():
    img, bg = _person_and_shadow()
    for bad in (-0.1, 2.0):
        with pytest.raises(ValueError, match="shadow_chroma"):
            get_config("smoke", shadow_chroma=bad)
        with pytest.raises(ValueError, match="shadow_chroma"):
            foreground_mask(img, bg, shadow_chroma=bad)
    with pytest.raises(ValueError, match="chroma must be > 0"):
        shadow_mask(img, bg, 0.0)
    with pytest.raises(ValueError, match="shadow_mask: expected images"):
        shadow_mask(img[:, :1], bg[:, :1], 0.08)
    with pytest.raises(ValueError, match="shadow_mask: expected images"):
        shadow_mask(img, bg[..., :16], 0.08)


def test_foreground_soft_keeps_what_the_threshold_drops():
    """foreground_soft: 1 wherever foreground_mask is, grey (|I - B| / threshold) under the threshold;
    with a cleanup the closed holes are 1; bad shapes and a zero threshold are refused."""
    bg = torch.zeros(1, 3, 32, 32)
    img = bg.clone()
    img[..., 8:24, 12:20] = 0.5  # the person
    img[..., 15, 15] = 0.04  # clothing close to the background: under the threshold of 0.1
    soft = foreground_soft(img, bg)
    hard = foreground_mask(img, bg)
    assert soft.shape == (1, 1, 32, 32) and not soft.requires_grad
    assert torch.equal(soft[hard > 0], torch.ones(int(hard.sum())))  # the hard mask is where soft is 1
    assert hard[0, 0, 15, 15] == 0 and soft[0, 0, 15, 15].item() == pytest.approx(0.4)
    assert soft[0, 0, 0, 0] == 0
    assert foreground_soft(img, bg, cleanup=3)[0, 0, 15, 15] == 1  # the closing fills the hole
    with pytest.raises(ValueError, match="foreground_soft: expected images"):
        foreground_soft(img[:, :1], bg[:, :1])
    with pytest.raises(ValueError, match="threshold must be > 0"):
        foreground_soft(img, bg, threshold=0.0)


def test_patch_loss_warmup_only_ends_with_the_warmup_in_a_reconstruction_only_run(batch):
    # the keypoint losses never start in a reconstruction-only run; the auxiliary patch term still
    # stops at warmup_iters, as in a full run (it would otherwise keep M_p from forming)
    cfg = get_config("smoke", amp="none", warmup_iters=10, w_patch=0.5, patch_loss_warmup_only=True, reconstruction_only=True)
    _, early = _run(cfg, batch, step=5)
    _, late = _run(cfg, batch, step=50)
    assert early["patch"] > 0 and torch.isclose(early["total"], early["pixel"] + 0.5 * early["patch"])
    assert late["patch"] == 0 and torch.isclose(late["total"], late["pixel"])
    _, kept = _run(cfg.replace(patch_loss_warmup_only=False), batch, step=50)
    assert kept["patch"] > 0
