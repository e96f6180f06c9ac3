"""Median background estimation, PSNR/error maps, convergence, and the notebook-01 browser widget."""
import numpy as np
import pytest

from data_utils.background import convergence, error_map, median_background, psnr


def _sequence(T=60, H=12, W=16, seed=0):
    """A static background with a 'person' (a bright block) moving across it, plus noise."""
    rng = np.random.default_rng(seed)
    bg = rng.uniform(0.2, 0.8, (H, W, 3))
    frames = np.repeat(bg[None], T, axis=0)
    for t in range(T):
        x = (t * W) // T
        frames[t, 3:9, x:x + 3] = 1.0
    return np.clip(frames + rng.normal(0, 0.01, frames.shape), 0, 1), bg


def test_median_recovers_background():
    frames, bg = _sequence()
    est = median_background(frames)
    assert est.shape == bg.shape and est.dtype == np.float32
    assert psnr(est, bg) > 40
    assert psnr(frames.mean(0), bg) < psnr(est, bg) - 10  # the mean is polluted by the person


def test_chunking_subsampling_and_memmap_agree(tmp_path):
    frames, _ = _sequence()
    full = median_background(frames)
    np.testing.assert_array_equal(median_background(frames, chunk_pixels=7), full)
    sub = median_background(frames, max_frames=15)
    np.testing.assert_array_equal(sub, np.median(frames[np.round(np.linspace(0, 59, 15)).astype(int)], 0).astype(np.float32))
    u8 = np.round(frames * 255).astype(np.uint8)
    np.save(tmp_path / "f.npy", u8)
    mm = np.load(tmp_path / "f.npy", mmap_mode="r")
    np.testing.assert_array_equal(median_background(mm, chunk_pixels=100), median_background(u8))
    # channels-first layout works the same
    np.testing.assert_array_equal(median_background(frames.transpose(0, 3, 1, 2)), full.transpose(2, 0, 1))


def test_still_person_is_burned_in():
    """A person who stays on one spot for most frames ends up in the median."""
    frames, bg = _sequence()
    frames[:40, 3:9, 0:3] = 1.0
    err = error_map(median_background(frames), bg)
    assert err[3:9, 0:3].mean() > 0.1 and np.delete(err, np.s_[0:3], axis=1).mean() < 0.02


def test_psnr_and_error_map_values():
    a = np.zeros((4, 4, 3))
    b = np.full((4, 4, 3), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)
    assert psnr(a, a) == float("inf")
    assert psnr(a * 255, b * 255, max_val=255) == pytest.approx(20.0)
    np.testing.assert_allclose(error_map(a, b), 0.1)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, b[:2])


def test_convergence_improves_with_frames():
    frames, bg = _sequence(T=101)
    c = convergence(frames, bg, counts=(1, 5, 25, 101))
    assert list(c["counts"]) == [1, 5, 25, 101]
    assert c["psnr"][-1] > c["psnr"][0] + 5
    first = convergence(frames, bg, counts=(5, 101), sampling="first")
    assert first["psnr"][0] < c["psnr"][1]  # 5 consecutive frames see the person in one place
    with pytest.raises(ValueError, match="sampling"):
        convergence(frames, bg, sampling="random")
    with pytest.raises(ValueError, match="fits"):
        convergence(frames[:3], bg, counts=(5, 10))


def test_bad_input():
    with pytest.raises(ValueError, match="at least one frame"):
        median_background(np.zeros((0, 4, 4, 3)))
    with pytest.raises(ValueError, match="max_frames"):
        median_background(np.zeros((3, 4, 4, 3)), max_frames=0)
    with pytest.raises(ValueError, match=r"\(T, \.\.\.\)"):
        median_background([1, 2, 3])


# ---------------------------------------------------------------- the notebook widget
class _TinyDataset:
    """A 3-frame, 2-view fake with the sample contract (no renderer needed)."""

    def __len__(self):
        return 3

    def frame_info(self, i):
        return {"subject": "S9", "frame": i, "split": "test"}

    def __getitem__(self, i):
        import torch

        g = torch.Generator().manual_seed(i)
        bg = torch.rand(2, 3, 16, 16, generator=g)
        img = bg.clone()
        img[:, :, 4:10, 6:9] = 1.0
        return {"images": img, "backgrounds": bg, "K": torch.eye(3).repeat(2, 1, 1), "R": torch.eye(3).repeat(2, 1, 1),
                "t": torch.zeros(2, 3), "index": torch.tensor(i),
                "gt": {"joints_2d": torch.rand(2, 17, 2, generator=g) * 16, "backgrounds": bg + 0.1}}


def test_frame_browser_update():
    import matplotlib

    matplotlib.use("Agg")
    from kp3d.viz.frames import MultiViewFrameBrowser, plot_background_convergence, plot_error_maps

    browser = MultiViewFrameBrowser(_TinyDataset())
    fig = browser.update(frame=2, view=1)
    assert browser.frame == 2 and browser.view == 1
    titles = [ax.get_title() for ax in fig.axes]
    assert "view 1 (selected)" in titles and "true background" in titles
    assert "subject=S9" in fig._suptitle.get_text()
    err_title = [t for t in titles if t.startswith("|median - true|")][0]
    assert "0.10" in err_title  # the fake's true background is off by 0.1 everywhere
    with pytest.raises(IndexError, match="view 5"):
        browser.update(0, 5)
    with pytest.raises(IndexError, match="frame 3"):
        browser.update(3, 0)
    fig2 = plot_background_convergence({"a": {"counts": np.array([1, 10]), "psnr": np.array([20.0, 30.0])}})
    assert fig2.axes[0].get_xscale() == "log"
    fig3 = plot_error_maps({"x": np.zeros((4, 4, 3)), "y": np.ones((4, 4, 3))}, np.zeros((4, 4, 3)))
    assert "mean 1.000" in fig3.axes[1].get_title()
