"""Tests of kp3d.networks and kp3d.model: shapes, bad input, geometric accuracy, gradients."""
from __future__ import annotations

import pytest
import torch

from fakes import FakeMultiView
from kp3d import geometry
from kp3d.profiles import get_config
from kp3d.losses import compute_losses
from kp3d.model import OUTPUT_KEYS, KeypointModel, projection_matrices
from kp3d.networks import Backbone, Decoder, Detector, Encoder, MaskDecoder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return FakeMultiView(n=2, size=64)


@pytest.fixture(scope="module")
def batch(data):
    return torch.utils.data.default_collate([data[0], data[1]])


@pytest.fixture()
def cfg():
    return get_config("smoke", amp="none")


# --- shape -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,dim", [("tiny", 128), ("resnet18", 512)])
def test_backbone_shape(name, dim):
    assert Backbone(name)(torch.rand(2, 3, 32, 32)).shape == (2, dim)


@pytest.mark.parametrize("name,side,dim", [("tiny", 64, 128 * 4 * 4), ("tiny", 40, 128 * 3 * 3), ("resnet18", 64, 512 * 2 * 2)])
def test_backbone_flatten_keeps_the_layout(name, side, dim):
    b = Backbone(name, pool="flatten", input_size=side)
    assert b.out_dim == dim and b(torch.rand(2, 3, side, side)).shape == (2, dim)
    # the same content at another place gives other features (a global average barely changes)
    x = torch.zeros(1, 3, side, side)
    x[..., 4:12, 4:12] = 1.0
    moved = torch.roll(x, shifts=(side // 2, side // 2), dims=(-2, -1))
    flat = (b(x) - b(moved)).norm() / b(x).norm()
    avg = Backbone(name)
    avg.load_state_dict(b.state_dict())
    pooled = (avg(x) - avg(moved)).norm() / avg(x).norm()
    assert flat > 2 * pooled
    with pytest.raises(ValueError, match="input size"):
        b(torch.rand(1, 3, side + 32, side + 32))
    with pytest.raises(ValueError, match="input_size"):
        Backbone(name, pool="flatten")
    with pytest.raises(ValueError, match="pool"):
        Backbone(name, pool="max")


def test_detector_shape_range_and_init():
    det = Detector("tiny", downsample=4, init_scale=0.75, min_scale=0.1)
    box = det(torch.rand(3, 3, 64, 64))
    assert box.shape == (3, 4)
    assert torch.allclose(box[:, :2], torch.full((3, 2), 0.75), atol=0.01)  # centred 0.75 box at init
    assert box[:, 2:].abs().max() < 0.01
    with torch.no_grad():
        det.head.bias.fill_(50.0)
    box = det(torch.rand(1, 3, 64, 64))
    assert box[:, :2].max() <= 1.0 and box[:, 2:].abs().max() <= 1.0


def test_encoder_decoder_mask_decoder_shapes():
    assert Encoder("tiny", 20)(torch.rand(2, 3, 32, 32)).shape == (2, 20)
    dec = Decoder(20, 4, patch_size=32, channels=(16, 8, 8, 4), convs_per_block=2)
    assert dec(torch.rand(2, 20)).shape == (2, 4, 32, 32)
    paper = Decoder(729, 4)  # Table S1 widths at 128 px
    assert paper.fc[0].out_features == 256 * 16 * 16
    assert MaskDecoder(8)(torch.rand(2, 8, 32, 32)).shape == (2, 1, 32, 32)
    wide = MaskDecoder(8, hidden=4)
    assert wide(torch.rand(2, 8, 32, 32)).shape == (2, 1, 32, 32)
    assert (wide.conv1.out_channels, wide.conv2.in_channels, wide.conv3.in_channels) == (4, 4, 4)


def test_paper_profile_modules():
    cfg = get_config("paper-h36m")
    m = KeypointModel(cfg)
    assert m.encoder.backbone.name == "resnet50" and m.detector.backbone.name == "resnet18"
    assert m.keypoint_head.out.out_channels == 32 and m.image_decoder.out.out_channels == 4
    assert [c.kernel_size for c in (m.mask_decoder.conv1, m.mask_decoder.conv2, m.mask_decoder.conv3)] == [(5, 5)] * 3
    assert m.mask_decoder.conv1.in_channels == 32 and m.mask_decoder.conv1.out_channels == 1


def test_model_output_shapes(cfg, batch):
    model = KeypointModel(cfg)
    out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"])
    B, V, H, P, N = 2, 4, 64, cfg.patch_size, cfg.n_keypoints
    expected = {
        "box": (B, V, 4), "patch": (B, V, 3, P, P), "patch_recon": (B, V, 3, P, P), "patch_mask": (B, V, 1, P, P),
        "recon": (B, V, 3, H, H), "mask": (B, V, 1, H, H), "latent": (B, V, cfg.latent_dim),
        "kp2d_patch": (B, V, N, 2), "kp_map_spread": (B, V, N), "kp2d": (B, V, N, 2), "K_patch": (B, V, 3, 3), "kp3d": (B, N, 3),
        "kp2d_reproj_patch": (B, V, N, 2), "kp2d_reproj": (B, V, N, 2), "mask_from_kp": (B, V, 1, P, P),
    }
    assert set(out) == set(OUTPUT_KEYS) == set(expected)
    for k, shape in expected.items():
        assert tuple(out[k].shape) == shape, k
        assert torch.isfinite(out[k]).all(), k
    short = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"], keypoints=False)
    assert "kp3d" not in short and "recon" in short


def test_model_bf16_autocast(cfg, batch):
    model = KeypointModel(cfg.replace(amp="bf16"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"])
    assert out["kp3d"].dtype == torch.float32 and torch.isfinite(out["kp3d"]).all()


# --- bad input ---------------------------------------------------------------------------------
def test_bad_inputs(cfg, batch):
    model = KeypointModel(cfg)
    with pytest.raises(ValueError, match="images"):
        model(batch["images"][0], batch["backgrounds"], batch["K"], batch["R"], batch["t"])
    with pytest.raises(ValueError, match="K"):
        model(batch["images"], batch["backgrounds"], batch["K"][:, :2], batch["R"], batch["t"])
    with pytest.raises(ValueError, match="V >= 2"):
        model(batch["images"][:, :1], batch["backgrounds"][:, :1], batch["K"][:, :1], batch["R"][:, :1], batch["t"][:, :1])
    with pytest.raises(ValueError, match="heatmaps"):
        MaskDecoder(8)(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="hidden=0"):
        MaskDecoder(8, hidden=0)
    with pytest.raises(ValueError, match="backbone"):
        Backbone("vgg")
    with pytest.raises(ValueError, match="patch_size"):
        get_config("smoke", patch_size=30)


# --- accuracy ----------------------------------------------------------------------------------
def test_reprojection_matches_full_camera(cfg, batch):
    """x^ in full-image pixels equals projecting X with the uncropped camera (Eq. 6 consistency)."""
    model = KeypointModel(cfg)
    with torch.no_grad():
        out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"])
    P_full = projection_matrices(batch["K"], batch["R"], batch["t"])
    ref = geometry.project(P_full, out["kp3d"])
    assert torch.allclose(out["kp2d_reproj"], ref, atol=1e-2)
    # and the patch keypoints map to the image ones through the box
    back = geometry.image_to_patch(out["kp2d"].flatten(0, 1), out["box"].flatten(0, 1), cfg.patch_size, (64, 64))
    assert torch.allclose(back, out["kp2d_patch"].flatten(0, 1), atol=1e-3)


def test_blend_is_background_outside_box(cfg, batch):
    """Eq. 2: where the un-cropped mask is 0 (outside the box) the reconstruction is the background."""
    model = KeypointModel(cfg.replace(box_init_scale=0.5))
    with torch.no_grad():
        out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"], keypoints=False)
    corner = (slice(None), slice(None), slice(None), slice(0, 4), slice(0, 4))
    assert out["mask"][corner].abs().max() < 1e-6
    assert torch.allclose(out["recon"][corner], batch["backgrounds"][corner], atol=1e-6)


def test_triangulation_of_consistent_keypoints(cfg, batch, monkeypatch):
    """If the keypoint head produced the true projections, kp3d would be the true 3D points."""
    model = KeypointModel(cfg)
    X = batch["gt"]["joints_3d"][:, : cfg.n_keypoints]  # (B, N, 3)

    def fake_soft_argmax(C, temperature=1.0, return_spread=False):
        box = model._last_box
        P = projection_matrices(batch["K"], batch["R"], batch["t"])
        x = geometry.project(P, X).flatten(0, 1)  # (BV, N, 2) full px
        x = geometry.image_to_patch(x, box, cfg.patch_size, (64, 64))
        return (x, torch.zeros(x.shape[:-1])) if return_spread else x

    orig = model.detector.forward
    monkeypatch.setattr(model.detector, "forward", lambda img: setattr(model, "_last_box", orig(img)) or model._last_box)
    monkeypatch.setattr(geometry, "soft_argmax", fake_soft_argmax)
    with torch.no_grad():
        out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"])
    assert torch.allclose(out["kp3d"], X, atol=1.0)  # mm


# --- gradients ---------------------------------------------------------------------------------
def _keypoint_run(cfg, batch, **overrides):
    """A seeded model without dropout, its outputs and its losses with the keypoint terms on."""
    torch.manual_seed(0)
    c = cfg.replace(decoder_dropout=0.0, **overrides)
    model = KeypointModel(c)
    out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"])
    return model, out, compute_losses(c, out, batch, None, step=10**6)


def test_gradients_reach_every_trainable_module(cfg, batch):
    model, _, losses = _keypoint_run(cfg, batch)
    losses["total"].backward()
    for name in ("detector", "encoder", "image_decoder", "keypoint_head", "mask_decoder"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def test_keypoint_box_grad_switch(cfg, batch):
    """keypoint_box_grad=False: the mask and coverage losses reach the detector only through the
    crop's pixels (the encoder), not through the crop intrinsics: orders of magnitude less."""
    grads = {}
    for flag in (True, False):
        model, out, l = _keypoint_run(cfg, batch, keypoint_box_grad=flag)
        (l["mask"] + l["coverage"]).backward()
        grads[flag] = sum(float(p.grad.abs().sum()) for p in model.detector.parameters() if p.grad is not None)
    assert grads[True] > 0 and grads[False] < 1e-3 * grads[True]


def test_keypoint_encoder_grad_switch(cfg, batch):
    """keypoint_encoder_grad=False: the keypoint losses train the keypoint head but not the encoder."""
    for flag in (True, False):
        model, out, l = _keypoint_run(cfg, batch, keypoint_encoder_grad=flag)
        (l["mask"] + l["coverage"] + l["centering"]).backward()
        enc = sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)
        head = sum(float(p.grad.abs().sum()) for p in model.keypoint_head.parameters() if p.grad is not None)
        assert head > 0
        assert (enc > 0) if flag else (enc == 0)


def test_removed_fields_load_only_at_their_neutral_value(cfg):
    """Checkpoints written before a no-op field was removed still load; a run that used it refuses."""
    from kp3d.config import REMOVED_FIELDS, Config

    old = {**cfg.to_dict(), **REMOVED_FIELDS}
    assert Config.from_dict(old) == cfg
    with pytest.raises(ValueError, match="w_concentration=0.1: this field was removed"):
        Config.from_dict({**old, "w_concentration": 0.1})




def test_detector_reading_the_soft_foreground(cfg, batch):
    """detector_input="img-bg-soft": the box depends on |I - B| only (a frame and a background shifted
    by the same colour give the same box), and the losses still train the detector."""
    model, out, losses = _keypoint_run(cfg, batch, detector_input="img-bg-soft")
    img, bg = batch["images"][:, 0], batch["backgrounds"][:, 0]
    shift = 0.05 * torch.rand(1, 3, 1, 1)  # a colour cast on frame and background together
    with torch.no_grad():
        a = model.detect(img, bg)
        b = model.detect(img + shift, bg + shift)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(out["box"][:, 0], a, atol=1e-5, rtol=0)
    assert not torch.allclose(model.detect(img, torch.zeros_like(bg)), a)  # it reads the background too
    losses["total"].backward()
    assert sum(float(p.grad.abs().sum()) for p in model.detector.parameters() if p.grad is not None) > 0
    with pytest.raises(ValueError, match="detector_input='depth'"):
        cfg.replace(detector_input="depth")
