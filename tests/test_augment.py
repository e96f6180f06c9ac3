"""Tests of kp3d.augment (random frame zooms for the box prior) and Config.box_prior_augment in the
model and the losses: shape, bad input, accuracy, gradcheck."""
from __future__ import annotations

import pytest
import torch

from fakes import FakeMultiView
from kp3d.augment import random_frame_boxes, zoom_frames
from kp3d.config import get_config
from kp3d.losses import box_prior_loss, compute_losses, foreground_box
from kp3d.model import KeypointModel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def batch():
    data = FakeMultiView(n=2, size=64)
    return torch.utils.data.default_collate([data[0], data[1]])


# --- shape -------------------------------------------------------------------------------------
def test_shapes():
    g = torch.Generator().manual_seed(0)
    assert random_frame_boxes(7, 0.3, generator=g).shape == (7, 4)
    assert zoom_frames(torch.rand(3, 2, 24, 40), random_frame_boxes(3, 0.3, generator=g)).shape == (3, 2, 24, 40)


# --- bad input ---------------------------------------------------------------------------------
def test_bad_input():
    with pytest.raises(ValueError, match="strength > 0"):
        random_frame_boxes(4, 0.0)
    with pytest.raises(ValueError, match="n >= 1"):
        random_frame_boxes(0, 0.2)
    with pytest.raises(ValueError, match=r"images: expected \(B, C, H, W\)"):
        zoom_frames(torch.rand(3, 24, 40), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"box: expected \(3, 4\)"):
        zoom_frames(torch.rand(3, 1, 24, 40), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="box_prior_augment=0.2: expected 0 .* w_box_prior > 0"):
        get_config("smoke", box_prior_augment=0.2, w_box_prior=0.0)
    with pytest.raises(ValueError, match="box_prior_augment=-0.1"):
        get_config("smoke", box_prior_augment=-0.1, w_box_prior=1.0)


# --- accuracy ----------------------------------------------------------------------------------
def test_boxes_stay_in_their_range():
    b = random_frame_boxes(4000, 0.25, generator=torch.Generator().manual_seed(1))
    assert torch.equal(b[:, 0], b[:, 1])  # the aspect is kept
    assert b[:, 0].min() >= 1 / 1.25 - 1e-6 and b[:, 0].max() <= 1.25 + 1e-6
    assert b[:, 0].min() < 0.82 and b[:, 0].max() > 1.22  # the whole range is drawn
    assert b[:, 2:].abs().max() <= 0.25 and b[:, 2:].abs().max() > 0.24
    assert abs(float(b[:, 0].log().mean())) < 0.02  # zoom in as often as out


def test_zoom_moves_a_dot_where_the_box_says():
    """A dot at normalised x = 0.5: a frame box centred there with scale 0.5 puts it in the middle."""
    img = torch.zeros(1, 1, 33, 33)
    img[0, 0, 16, 24] = 1.0  # pixel 24 of 33: normalised (2 * 24 + 1) / 33 - 1 = 0.515
    u = (2 * 24 + 1) / 33 - 1
    out = zoom_frames(img, torch.tensor([[0.5, 0.5, u, 0.0]]))
    r, c = divmod(int(out.flatten().argmax()), 33)
    assert (r, c) == (16, 16)
    # identity box: the frame itself; scale 2: the frame in the middle half, black around it
    assert torch.allclose(zoom_frames(img, torch.tensor([[1.0, 1.0, 0.0, 0.0]])), img, atol=1e-4)
    half = zoom_frames(torch.ones(1, 1, 32, 32), torch.tensor([[2.0, 2.0, 0.0, 0.0]]))
    assert half[0, 0, 16, 16] == 1 and half[0, 0, 2, 2] == 0 and abs(float(half.mean()) - 0.25) < 0.02


def test_the_box_prior_trains_on_zoomed_frames(batch):
    """With box_prior_augment the box prior compares the detector's box on a zoomed frame with the box
    around |I - B| of the same zoomed frame; in eval mode (the export) nothing is zoomed."""
    cfg = get_config("smoke", amp="none", w_box_prior=1.0, box_prior_augment=0.3)
    torch.manual_seed(0)
    model = KeypointModel(cfg).train()
    torch.manual_seed(5)
    out = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"], keypoints=False)
    B, V = batch["images"].shape[:2]
    assert out["box_prior_frame"].shape == (B, V, 4) and out["box_prior_box"].shape == (B, V, 4)
    fb = out["box_prior_frame"].reshape(-1, 4)
    assert not torch.allclose(fb, torch.tensor([1.0, 1.0, 0.0, 0.0]).expand_as(fb))
    terms = compute_losses(cfg, out, batch, None, step=0)
    I = batch["images"].flatten(0, 1).float()
    bg = batch["backgrounds"].flatten(0, 1).float()
    target = foreground_box(zoom_frames(I, fb), zoom_frames(bg, fb), cfg.box_prior_threshold, cfg.box_prior_margin)
    expected = box_prior_loss(out["box_prior_box"].reshape(-1, 4), target)
    assert torch.isclose(terms["box_prior"], expected)
    assert not torch.isclose(terms["box_prior"], box_prior_loss(
        out["box"].reshape(-1, 4), foreground_box(I, bg, cfg.box_prior_threshold, cfg.box_prior_margin)))
    terms["box_prior"].backward()
    assert model.detector.head.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        ev = model(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"], keypoints=False)
    assert "box_prior_frame" not in ev and "box_prior_box" not in ev
    off = KeypointModel(cfg.replace(box_prior_augment=0.0)).train()
    assert "box_prior_frame" not in off(batch["images"], batch["backgrounds"], batch["K"], batch["R"], batch["t"], keypoints=False)


# --- gradcheck ---------------------------------------------------------------------------------
def test_gradcheck():
    """In the frames (the box prior's boxes are random draws, never learnt)."""
    img = torch.rand(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    box = torch.tensor([[0.8, 0.8, 0.1, -0.1]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: zoom_frames(x, box), (img,))
