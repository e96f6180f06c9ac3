"""Tests of kp3d.checkpoint's compact (shipping) format."""
from __future__ import annotations

import pytest
import torch

from kp3d import checkpoint as ckpt_io
from kp3d.cameras import h36m_rig, to_tensors
from kp3d.profiles import get_config
from kp3d.model import KeypointModel

torch.set_num_threads(1)


@pytest.fixture()
def run_dir(tmp_path):
    cfg = get_config("smoke", encoder="resnet18", latent_dim=64)  # a ResNet: conv weights to quantise
    torch.manual_seed(0)
    model = KeypointModel(cfg)
    ckpt_io.save_checkpoint(tmp_path / "run", {"model": model.state_dict(), "optimizer": {}, "step": 7, "rng": [],
                                                "config": cfg.to_dict(), "wall_s": 1.5})
    return tmp_path / "run"


def _forward(model):
    cams = to_tensors([c.without_distortion() for c in h36m_rig("S1", 64, 64)])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 4, 3, 64, 64, generator=g)
    with torch.no_grad():
        return model(x, 0.9 * x, cams["K"].expand(2, -1, -1, -1), cams["R"].expand(2, -1, -1, -1), cams["t"].expand(2, -1, -1))


def test_compact_is_small_and_close(run_dir, tmp_path):
    out = ckpt_io.save_compact(run_dir, tmp_path / "small.pt", meta={"data_version": "1.1"})
    full_size = (run_dir / "checkpoints" / "last.pt").stat().st_size
    assert out.stat().st_size < 0.35 * full_size
    ref, cfg = ckpt_io.load_model(run_dir)
    small, cfg2 = ckpt_io.load_model(out)
    assert cfg2 == cfg
    raw = ckpt_io.load_checkpoint(out)
    assert raw["meta"] == {"data_version": "1.1"} and raw["step"] == 7 and "optimizer" not in raw
    assert any(isinstance(v, dict) and v["q"].dtype == torch.int8 for v in raw["tensors"].values())
    a, b = _forward(ref), _forward(small)
    scale = a["latent"].abs().max()
    assert (a["latent"] - b["latent"]).abs().max() < 0.02 * scale
    assert (a["kp2d_patch"] - b["kp2d_patch"]).abs().max() < 0.5  # patch pixels


def test_quantisation_error_bound():
    w = torch.randn(8, 3, 5, 5)
    q = ckpt_io._quantize(w)
    err = (ckpt_io._dequantize(q) - w).abs().reshape(8, -1).amax(1)
    assert torch.all(err <= w.abs().reshape(8, -1).amax(1) / 254 + 1e-7)


def test_compact_never_overwrites(run_dir, tmp_path):
    target = tmp_path / "small.pt"
    target.write_text("a user's file")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ckpt_io.save_compact(run_dir, target)
    assert target.read_text() == "a user's file"
    ckpt_io.save_compact(run_dir, target, overwrite=True)
    assert ckpt_io.is_compact(ckpt_io.load_checkpoint(target))
