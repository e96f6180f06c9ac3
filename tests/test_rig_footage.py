"""A user's own footage as it arrives: a copy cut short, a lost index, a failed decode, one camera.

Each test names the fix an error message offers and then follows it.
"""
from __future__ import annotations

import os

import av
import numpy as np
import pytest

pytest.importorskip("cv2")

from data_utils.frame_cache import decode_cached, remove_stale_partials  # noqa: E402
from data_utils.rig import make_rig_dataset  # noqa: E402
from data_utils.rig_spec import parse_rig_spec  # noqa: E402
from test_rig import T, build_rig  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::data_utils.rig.ContaminatedBackgroundWarning")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KP3D_CACHE_DIR", str(tmp_path / "cache"))


def _rewrite_with_index_first(path):
    """Re-mux ``path`` with its index (moov) at the start, as cameras that stream to disk do."""
    tmp = path.with_name("tmp_" + path.name)
    with av.open(str(path)) as src, av.open(str(tmp), "w", options={"movflags": "faststart"}) as dst:
        s_in = src.streams.video[0]
        add = getattr(dst, "add_stream_from_template", None)  # PyAV >= 14; add_stream(template=) before
        s_out = add(s_in) if add is not None else dst.add_stream(template=s_in)
        for packet in src.demux(s_in):
            if packet.dts is None:
                continue
            packet.stream = s_out
            dst.mux(packet)
    tmp.replace(path)


def _cut(path, share: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * share)])


@pytest.fixture()
def cut_rig(tmp_path):
    """A rig whose camA video was cut short after about half its bytes (the header still says T)."""
    root = tmp_path / "cut"
    build_rig(root)
    _rewrite_with_index_first(root / "camA.mp4")
    _cut(root / "camA.mp4")
    return root


def _readable(message: str) -> int:
    import re

    m = re.search(r"max_frames=(\d+)", message)
    assert m, message
    return int(m.group(1))


def test_max_frames_is_a_rig_option():
    assert parse_rig_spec("rig:/data/r?max_frames=30") == ("rig:/data/r", {"max_frames": 30})
    with pytest.raises(ValueError, match="max_frames='x'"):
        parse_rig_spec("rig:/data/r?max_frames=x")


def test_a_video_cut_short_names_a_fix_that_works(cut_rig):
    from kp3d.profiles import cache_dir

    with pytest.raises(ValueError, match=r"camA.*decoded \d+ of the 24 frames") as err:
        make_rig_dataset(f"rig:{cut_rig}", image_size=32, progress=False)
    k = _readable(str(err.value))
    assert 0 < k < T
    assert "kp3d-train --max-frames" in str(err.value)
    assert not list(cache_dir().rglob("*.partial*")), "a failed decode left its partial file"
    ds = make_rig_dataset(f"rig:{cut_rig}?max_frames={k}", image_size=32, progress=False)
    assert len(ds) == k
    assert ds[k - 1]["images"].shape == (3, 3, 32, 32)


def test_a_lost_index_names_a_fix(tmp_path):
    root = tmp_path / "noindex"
    build_rig(root)
    _cut(root / "camB.mp4")  # written with the index at the end: cut, it cannot be opened at all
    with pytest.raises(ValueError, match=r"camB.mp4: FFmpeg cannot read this video.*Fix: copy the complete file"):
        make_rig_dataset(f"rig:{root}", image_size=32, progress=False)


def test_partial_files_of_stopped_processes_are_removed(tmp_path):
    folder = tmp_path / "rig"
    folder.mkdir()
    dead = folder / "a-1.999999999.partial.npy"   # no process has this id
    old = folder / "b-2.partial.npy"              # older name, without a process id
    live = folder / f"c-3.{os.getpid()}.partial.npy"
    for p in (dead, old, live):
        p.write_bytes(b"x")
    assert sorted(remove_stale_partials(folder)) == sorted([dead, old])
    assert live.exists()

    def fail(out):
        out[0] = 1
        raise ValueError("decode failed")

    with pytest.raises(ValueError, match="decode failed"):
        decode_cached(folder / "d-4.npy", (3, 2), fail)
    assert sorted(p.name for p in folder.iterdir()) == [live.name]


def test_one_camera_is_said_in_the_rig_s_words(tmp_path):
    from data_utils.datasets import data_views

    root = tmp_path / "one"
    build_rig(root, n_cameras=1)
    with pytest.raises(ValueError, match=r"rig .*one: 1 camera\(s\) \['camA'\]; triangulation needs at least 2 "
                                         r"calibrated cameras with videos"):
        data_views(f"rig:{root}")


def test_one_camera_on_the_command_line(tmp_path, capsys):
    from kp3d import cli

    root = tmp_path / "one"
    build_rig(root, n_cameras=1)
    assert cli.main(["--profile", "smoke", "--data", f"rig:{root}", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "1 camera(s) ['camA']; triangulation needs at least 2 calibrated cameras" in err
    assert "views=" not in err
    assert not (tmp_path / "run").exists()


def test_a_failed_kp3d_train_leaves_no_run_folder_nor_partial(cut_rig, tmp_path, capsys):
    from kp3d import cli
    from kp3d.profiles import cache_dir

    run = tmp_path / "run"
    assert cli.main(["--profile", "smoke", "--data", f"rig:{cut_rig}", "--run-dir", str(run), "--no-progress"]) == 2
    assert "--max-frames" in capsys.readouterr().err
    assert not run.exists()
    assert not list(cache_dir().rglob("*.partial*"))


def test_kp3d_train_on_a_rig_says_each_warning_once(tmp_path):
    """Training and its export build the rig once: one calibration log, each contamination warning once
    (no Python warning echoing its source line), no bars with --no-progress, a summary at the end; and
    the export holds each frame once."""
    import subprocess
    import sys

    from kp3d.export import load_export

    root = tmp_path / "still"
    build_rig(root, walking=False)  # a still person: every camera's median is contaminated
    env = dict(os.environ, KP3D_CACHE_DIR=str(tmp_path / "cache"), KP3D_OUTPUT_DIR=str(tmp_path / "out"),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "kp3d.cli", "--profile", "smoke", "--data", f"rig:{root}", "--no-progress",
           "--device", "cpu", "--set", "max_iters=2", "--set", "log_every=1", "--set", "ckpt_every=2",
           "--export", str(tmp_path / "rig.npz")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    log, _, summary = r.stderr.partition("warnings in this run:")
    for cam in ("camA", "camB", "Cam_C"):
        line = f"camera {cam}: the median background looks contaminated"
        assert log.count(line) == 1 and summary.count(line) == 1, r.stderr[-3000:]
    assert "warnings.warn(" not in r.stderr and "decoding" not in r.stderr and "export train" not in r.stderr
    assert log.count("distortion:") == log.count("distortion: opencv")  # the calibration, said once
    assert log.count("distortion: opencv") == 1, log
    ex = load_export(tmp_path / "rig.npz")
    assert len(ex["kp3d"]) == T and sorted(ex["frame"].tolist()) == list(range(T))
    assert (ex["split"] == "test").sum() == round(0.2 * T)


def test_crop_edge_of_a_video_smaller_than_its_calibration():
    from data_utils.rig import recorded_camera
    from kp3d.cameras import Camera

    K = np.array([[1000.0, 0, 959.5], [0, 1000.0, 543.5], [0, 0, 1]])
    cam = Camera("c", K, np.eye(3), np.zeros(3), 1920, 1088)
    cy = {e: recorded_camera(cam, 1920, 1080, e)[0].K[1, 2] for e in ("centre", "start", "end")}
    assert cy == {"centre": 539.5, "start": 535.5, "end": 543.5}
    assert "8 rows cropped at the bottom edge" in recorded_camera(cam, 1920, 1080, "end")[1]
    assert "4 rows cropped on each side" in recorded_camera(cam, 1920, 1080)[1]  # the default: centre
    assert parse_rig_spec("rig:/r?crop_edge=end")[1] == {"crop_edge": "end"}
    with pytest.raises(ValueError, match="crop_edge='middle'"):
        parse_rig_spec("rig:/r?crop_edge=middle")


def test_describe_lists_the_resize_and_the_contamination(tmp_path):
    from data_utils.video import read_frames, write_video

    root = tmp_path / "still"
    build_rig(root, walking=False)
    cropped = [f[1:-1] for f in read_frames(root / "camA.mp4")]  # 192x128 calibrated, 192x126 recorded
    write_video(root / "camA.mp4", cropped, overwrite=True)
    centre = make_rig_dataset(f"rig:{root}", image_size=32, progress=False)
    text = centre.describe()
    assert "calibrated at 192x128, video is 192x126 -> intrinsics rescaled" in text
    assert "resized to 32x21 at column 0, row 5 of 32x32" in text  # camA, landscape, padded
    assert text.count("CONTAMINATED") == 3  # a still person: every camera's median
    # the same rig, the 2 rows cut at the bottom: the principal point is 1 native row lower
    end = make_rig_dataset(f"rig:{root}?crop_edge=end", image_size=32, progress=False)
    shift = end.cameras[0].K[1, 2] - centre.cameras[0].K[1, 2]
    assert shift == pytest.approx(1 * 32 / 192) and "crop_edge='end'" in end.describe()
