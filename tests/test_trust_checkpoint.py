"""Damaged files are never used silently: checkpoints and the synthetic data cache carry checksums."""
from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pytest
import torch

from kp3d import checkpoint as ckpt_io
from kp3d.profiles import get_config
from kp3d.model import KeypointModel

torch.set_num_threads(1)


def flip_tensor_bytes(path, n: int = 16) -> None:
    """Invert ``n`` bytes in the middle of the largest tensor record of a torch.save file (stored
    uncompressed, so the file still unpickles)."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        with open(path, "rb") as f:
            f.seek(info.header_offset + 26)
            name_len, extra_len = np.frombuffer(f.read(4), "<u2")
        start = info.header_offset + 30 + int(name_len) + int(extra_len) + info.file_size // 2
    with open(path, "r+b") as f:
        f.seek(start)
        chunk = f.read(n)
        f.seek(start)
        f.write(bytes(b ^ 0xFF for b in chunk))


@pytest.fixture()
def run_dir(tmp_path):
    cfg = get_config("smoke")
    torch.manual_seed(0)
    model = KeypointModel(cfg)
    for step in (4, 8):
        ckpt_io.save_checkpoint(tmp_path / "run", {"model": model.state_dict(), "optimizer": {}, "step": step,
                                                    "rng": [ckpt_io.rng_state()], "config": cfg.to_dict()})
    return tmp_path / "run"


def test_flipped_bytes_in_a_checkpoint_are_refused_with_the_last_intact_one(run_dir):
    last = run_dir / "checkpoints" / "last.pt"
    assert len(ckpt_io.load_checkpoint(last)["sha256"]) == 64
    flip_tensor_bytes(last)
    with pytest.raises(ckpt_io.CheckpointError, match="last.pt is damaged") as err:
        ckpt_io.load_checkpoint(run_dir)
    assert "step_0000008.pt" in str(err.value) and "copy" in str(err.value)
    step8 = run_dir / "checkpoints" / "step_0000008.pt"
    flip_tensor_bytes(step8)
    with pytest.raises(ckpt_io.CheckpointError, match="step_0000004.pt"):
        ckpt_io.load_model(step8)
    assert ckpt_io.load_checkpoint(run_dir / "checkpoints" / "step_0000004.pt")["step"] == 4


def test_a_run_killed_before_its_last_pt_loads_its_newest_step_file(run_dir):
    """A kill between the two writes of a save, or a deleted last.pt: the newest step file stands in."""
    (run_dir / "checkpoints" / "last.pt").unlink()
    assert ckpt_io.latest_checkpoint(run_dir).name == "step_0000008.pt"
    assert ckpt_io.load_checkpoint(run_dir)["step"] == 8


def test_last_pt_is_written_before_the_step_file(tmp_path, monkeypatch):
    """Whatever a kill mid-save leaves, last.pt is never older than the newest step file."""
    order = []
    monkeypatch.setattr(ckpt_io, "_atomic_save", lambda obj, path: order.append(path.name))
    ckpt_io.save_checkpoint(tmp_path / "run", {"model": {}, "optimizer": {}, "step": 3})
    assert order == ["last.pt", "step_0000003.pt"]


def test_compact_and_shipped_checkpoints_carry_a_checksum(run_dir, tmp_path):
    from kp3d.shipped import shipped_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "carries no checksum" warning
        shipped = ckpt_io.load_checkpoint(shipped_checkpoint())
    assert ckpt_io.verify(shipped) is True and shipped_checkpoint().stat().st_size <= 15_000_000
    small = ckpt_io.save_compact(run_dir, tmp_path / "small.pt")
    flip_tensor_bytes(small)
    with pytest.raises(ckpt_io.CheckpointError, match="small.pt is damaged"):
        ckpt_io.load_model(small)


def test_a_checkpoint_from_before_checksums_loads_with_one_warning(run_dir, tmp_path):
    old = tmp_path / "old.pt"
    state = ckpt_io.load_checkpoint(run_dir)
    state.pop("sha256")
    torch.save(state, old)
    with pytest.warns(UserWarning, match="carries no checksum"):
        ckpt_io.load_checkpoint(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ckpt_io.load_checkpoint(old)  # once per file
    ckpt_io.add_checksum(old)
    assert ckpt_io.verify(ckpt_io.load_checkpoint(old)) is True


def test_a_damaged_synthetic_cache_is_rendered_again(tmp_path, monkeypatch):
    from data_utils import synthetic as syn

    monkeypatch.setenv("KP3D_CACHE_DIR", str(tmp_path / "cache"))
    cfg = syn.SyntheticConfig(image_size=32, frames_per_subject=3, subjects=("S9",), supersample=1, workers=1)
    path = syn.ensure_rendered(cfg, progress=False)
    manifest = (path / "manifest.json").read_text()
    assert "sha256" in manifest
    images = path / "S9_images.npy"
    good = images.read_bytes()
    data = bytearray(good)
    data[-50:] = bytes(b ^ 0xFF for b in data[-50:])  # pixels, past the .npy header
    images.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="S9_images.npy is damaged.*rendering the data set again"):
        again = syn.ensure_rendered(cfg, progress=False)
    assert again == path and images.read_bytes() == good
