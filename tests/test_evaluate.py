"""Tests of kp3d.evaluate: probes on an export, baselines, results writer, ablation runner, CLI."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kp3d import evaluate as E

from kp3d import evaluate_notebook as NB
from kp3d.probes import ProbeConfig
from kp3d.lifter import LifterConfig

torch.set_num_threads(1)


def _rig(V):
    Ks, Rs, ts = [], [], []
    for v in range(V):
        a = 2 * np.pi * v / V + 0.3
        c = np.array([4500 * np.cos(a), 4500 * np.sin(a), 1500.0])
        z = (np.array([0, 0, 900.0]) - c); z /= np.linalg.norm(z)
        x = np.cross(z, [0, 0, 1.0]); x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        Ks.append(np.array([[90.0, 0, 31.5], [0, 90.0, 31.5], [0, 0, 1]]))
        Rs.append(R)
        ts.append(-R @ c)
    return np.stack(Ks), np.stack(Rs), np.stack(ts)


def _project(X, K, R, t):
    cam = np.einsum("vij,tnj->tvni", R, X) + t[None, :, None]
    pix = np.einsum("vij,tvnj->tvni", K, cam)
    return pix[..., :2] / pix[..., 2:3]


def fake_export(T=150, n_test=40, V=3, N=20, seed=0, profile="smoke", reconstruction_only=False):
    """An export dict with the documented keys and shapes: keypoints = a fixed linear mix of the
    GT joints (+1 mm noise), latent = a weak random nonlinear code of the joints (+ noise)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(17, 3)) * [150, 150, 400]
    joints = base + rng.normal(size=(T, 17, 3)) * 120
    joints += rng.uniform(-500, 500, size=(T, 1, 3)) * [1, 1, 0] + [0, 0, 900]
    mix = np.abs(rng.normal(size=(17, N)))
    mix /= mix.sum(0)
    kp3d = np.einsum("tjc,jn->tnc", joints, mix) + rng.normal(size=(T, N, 3))
    K, R, t = _rig(V)
    kp2d = _project(kp3d, K, R, t)
    lat = np.tanh((joints - joints[:, :1]).reshape(T, -1) @ rng.normal(size=(51, V * 6)) / 3000)
    lat = lat + rng.normal(size=lat.shape) * 0.5
    cfg = {"profile": profile, "image_size": 64, "n_keypoints": N, "reconstruction_only": reconstruction_only}
    return {
        "boxes": np.tile([0.5, 0.5, 0.0, 0.0], (T, V, 1)).astype(np.float32),
        "kp2d": kp2d.astype(np.float32),
        "kp2d_reproj": (kp2d + rng.normal(size=kp2d.shape) * 0.5).astype(np.float32),
        "kp3d": kp3d.astype(np.float32),
        "masks": (rng.uniform(size=(T, V, 1, 16, 16)) > 0.5).astype(np.uint8) * 255,
        "latent": lat.reshape(T, V, 6).astype(np.float32),
        "subject": np.array(["S1"] * (T - n_test) + ["S9"] * n_test),
        "split": np.array(["train"] * (T - n_test) + ["test"] * n_test),
        "frame": np.arange(T, dtype=np.int64),
        "gt_joints_3d": joints.astype(np.float32),
        "gt_joints_2d": _project(joints, K, R, t).astype(np.float32),
        "K": np.broadcast_to(K, (T, V, 3, 3)).astype(np.float32),
        "R": np.broadcast_to(R, (T, V, 3, 3)).astype(np.float32),
        "t": np.broadcast_to(t, (T, V, 3)).astype(np.float32),
        "config_json": np.asarray(json.dumps(cfg)),
    }


FAST_PROBE = ProbeConfig(hidden=32, lr=1e-3, epochs=30, patience=0)
FAST_LIFTER = LifterConfig(hidden=32, epochs=20, patience=0, progress=False)


# ---------------------------------------------------------------- shapes / rows
def test_evaluate_export_rows_and_accuracy():
    ex = fake_export()
    rows = E.evaluate_export(ex, fractions=(0.5, 1.0), kinds=("linear", "mlp"), probe_cfg=FAST_PROBE,
                             lifter_cfg=FAST_LIFTER, progress=False)
    keys = [r["key"] for r in rows]
    assert keys.count("mean_pose") == 1 and keys.count("2d") == 1
    assert keys.count("mv_keypoints") == keys.count("latent") == keys.count("sv_keypoints") == 4
    by = {(r["key"], r["probe"], r["fraction"]): r for r in rows}
    mean = by[("mean_pose", "-", 1.0)]["mpjpe"]
    ours = by[("mv_keypoints", "linear", 1.0)]
    # keypoints are a linear mix of the joints: the linear probe is near exact, far below the mean pose
    assert ours["mpjpe"] < 0.2 * mean
    assert ours["p_mpjpe"] <= ours["n_mpjpe"] + 1e-6
    assert by[("latent", "linear", 1.0)]["mpjpe"] > ours["mpjpe"]
    assert by[("sv_keypoints", "mlp", 1.0)]["n_train"] == 110 * 3  # one sample per (frame, view)
    assert 0 <= by[("2d", "linear", 1.0)]["pct_mse"] < 5
    assert all(np.isfinite(r.get("mpjpe", r.get("pct_mse"))) for r in rows)
    # 20 keypoints: no paper row claimed for Table 1 (it is for 32)
    assert by[("mv_keypoints", "mlp", 1.0)]["paper"] is None


def test_paper_keys_for_32_keypoints_and_reconstruction_only_latent():
    ex = fake_export(N=32, T=40, n_test=10)
    lat_ex = fake_export(N=32, T=40, n_test=10, seed=1, reconstruction_only=True)
    rows = E.evaluate_export(ex, kinds=("mlp",), probe_cfg=FAST_PROBE, features=("mv_keypoints", "latent"),
                             latent_export=lat_ex, progress=False)
    assert [r["paper"] for r in rows] == ["t1_mv_mlp", "t4_reconst"]
    assert rows[1]["setting"] == "latent, reconstruction-only model"


def test_bad_exports():
    ex = fake_export(T=20, n_test=5)
    with pytest.raises(ValueError, match="unknown features"):
        E.evaluate_export(ex, features=("pixels",))
    no_split = {k: v for k, v in ex.items() if k != "split"}
    with pytest.raises(KeyError, match="split"):
        E.evaluate_export(no_split, features=("mean_pose",))
    no_gt = {k: v for k, v in ex.items() if k != "gt_joints_3d"}
    with pytest.raises(KeyError, match="gt_joints_3d"):
        E.evaluate_export(no_gt, features=("mean_pose",))
    only_train = dict(ex, split=np.array(["train"] * 20))
    with pytest.raises(ValueError, match="test frames"):
        E.split_indices(only_train)
    with pytest.raises(ValueError, match="frames"):
        E.evaluate_export(ex, features=("latent",), latent_export=fake_export(T=10, n_test=5), probe_cfg=FAST_PROBE)


# ---------------------------------------------------------------- results writer
def test_results_json_and_markdown(tmp_path):
    rows = [
        dict(key="mean_pose", setting="mean pose", probe="-", fraction=1.0, mpjpe=200.0, n_mpjpe=190.0, p_mpjpe=150.0, paper=None),
        dict(key="mv_keypoints", setting="ours MV, 32 kpts", probe="mlp", fraction=1.0, mpjpe=80.0, n_mpjpe=78.0, p_mpjpe=60.0, paper="t1_mv_mlp"),
        dict(key="latent", setting="latent", probe="mlp", fraction=1.0, mpjpe=100.0, n_mpjpe=98.0, p_mpjpe=70.0, paper="t4_reconst"),
        dict(key="mv_keypoints", setting="ours MV, 32 kpts", probe="mlp", fraction=0.1, mpjpe=120.0, n_mpjpe=110.0, p_mpjpe=90.0, paper=None),
        dict(key="2d", setting="2D", probe="linear", fraction=1.0, pct_mse=3.14159, paper="t3_2d"),
        dict(key="t6", setting="GT mask", probe="mlp", fraction=1.0, mpjpe=90.0, n_mpjpe=80.0, p_mpjpe=70.0, paper="t6_gt"),
    ]
    jp, mp = E.write_results(rows, tmp_path, name="res", title="Test")
    doc = json.loads(jp.read_text())
    assert len(doc["rows"]) == 6
    assert doc["summary"]["ratio_ours_latent"] == pytest.approx(0.8)
    assert doc["summary"]["paper_ratio_ours_latent"] == pytest.approx(0.66, abs=0.001)
    assert doc["paper"]["t1_mv_mlp"]["mpjpe"] == 73.8 and set(doc["paper"]) == {"t1_mv_mlp", "t4_reconst", "t3_2d", "t6_gt"}
    md = mp.read_text()
    lines = md.splitlines()
    assert lines[0] == "### Test"
    assert "| ours MV, 32 kpts | mlp | 100% | 80.0 | 78.0 | 60.0 | 1 | ours MV, 2-hid MLP, 32 kpts | 73.80 | 72.60 | 63.00 |" in lines
    assert "| ours MV, 32 kpts | mlp | 10% | 120.0 | 110.0 | 90.0 | - | - | - | - | - |" in lines
    assert any("3.14 %" in l and "2.38 %" in l for l in lines)
    assert any("14.57 cm" in l for l in lines)  # 3DHP figures carry their unit
    with pytest.raises(FileExistsError, match="overwrite=True"):
        E.write_results(rows, tmp_path, name="res")
    E.write_results(rows[:1], tmp_path, name="res", overwrite=True)
    assert len(json.loads(jp.read_text())["rows"]) == 1


def test_paper_table_matches_the_paper():
    assert E.PAPER_RESULTS["t1_mv_mlp"]["mpjpe"] / E.PAPER_RESULTS["t4_reconst"]["mpjpe"] == pytest.approx(0.66, abs=0.001)
    assert E.PAPER_RESULTS["t5_2views"]["n_mpjpe"] == 100.7 and E.PAPER_RESULTS["ts3_96"]["mpjpe"] == 14.16


def test_ablations_command_is_the_tables_runner(tmp_path, capsys):
    assert E.main(["ablations", "--profile", "cpu-demo", "--which", "5", "--seeds", "0", "--plan",
                   "--out", str(tmp_path / "tables")]) == 0
    out = capsys.readouterr().out
    assert "[tables] 3 runs for tables 5 (seeds 0)" in out and "t5-2views-s0-" in out


def test_cli_probe_writes_tables(tmp_path, capsys):
    ex = fake_export(T=40, n_test=10)
    path = tmp_path / "export.npz"
    np.savez(path, **ex)
    out = tmp_path / "out"
    assert E.main(["probe", "--export", str(path), "--out", str(out), "--kinds", "linear", "--no-lifter", "--quiet"]) == 0
    assert (out / "probe_results.json").exists() and (out / "probe_results.md").exists()
    assert "ratio_ours_latent" in capsys.readouterr().out
    with pytest.raises(FileExistsError):
        E.main(["probe", "--export", str(path), "--out", str(out), "--kinds", "linear", "--no-lifter", "--quiet"])
    with pytest.raises(SystemExit):
        E.main(["probe", "--export", str(path), "--fractions", "0,2"])


# ---------------------------------------------------------------- end to end with the real model
def _fakes():
    sys.path.insert(0, str(Path(__file__).parent))
    from fakes import FakeMultiView

    return FakeMultiView(n=16, size=64, seed=0), FakeMultiView(n=8, size=64, seed=1)


def test_end_to_end_train_export_probe_and_baselines(tmp_path):
    """A few smoke iterations on the tiny fake data set, then every evaluation path runs on it."""
    from kp3d.profiles import get_config
    from kp3d.export import export, load_export
    from kp3d.train import train

    tr, te = _fakes()
    cfg = get_config("smoke", max_iters=4)
    run = train(cfg, run_dir=tmp_path / "run", dataset=tr, progress=False, device="cpu")
    path = export(run, tmp_path / "export.npz", datasets={"train": tr, "test": te}, progress=False, device="cpu")
    ex = load_export(path)
    rows = E.evaluate_export(ex, kinds=("linear", "mlp"), probe_cfg=FAST_PROBE, lifter_cfg=FAST_LIFTER, progress=False)
    rows += E.untrained_baseline(cfg, tr, te, kinds=("linear",), probe_cfg=FAST_PROBE, progress=False)
    rows.append(E.supervised_upper_bound(cfg, tr, te, iters=3, hidden=16, progress=False))
    keys = {r["key"] for r in rows}
    assert keys == {"mean_pose", "mv_keypoints", "latent", "sv_keypoints", "2d", "untrained", "supervised"}
    assert all(np.isfinite(r.get("mpjpe", r.get("pct_mse", np.nan))) for r in rows)
    feats, joints = E.encoder_features(__import__("kp3d.model", fromlist=["KeypointModel"]).KeypointModel(cfg), te,
                                       views=(0, 2), progress=False)
    assert feats.shape == (8, 2 * cfg.latent_dim) and joints.shape == (8, 17, 3)


def test_supervised_upper_bound_crops(monkeypatch):
    """crop="foreground" encodes the box around |I - B| and leaves the detector untrained; "detector"
    trains it; anything else is refused."""
    from kp3d import losses
    from kp3d.profiles import get_config

    tr, te = _fakes()
    cfg = get_config("smoke")
    calls = []
    real = losses.foreground_box
    monkeypatch.setattr(losses, "foreground_box", lambda *a, **k: calls.append(1) or real(*a, **k))
    row = E.supervised_upper_bound(cfg, tr, te, iters=2, hidden=8, progress=False)
    assert row["crop"] == "foreground" and len(calls) >= 3  # 2 training steps + the test pass
    calls.clear()
    row = E.supervised_upper_bound(cfg, tr, te, iters=2, hidden=8, progress=False, crop="detector")
    assert row["crop"] == "detector" and not calls and np.isfinite(row["mpjpe"])
    with pytest.raises(ValueError, match="crop='gt'"):
        E.supervised_upper_bound(cfg, tr, te, iters=1, crop="gt")


def test_supervised_upper_bound_history():
    """eval_every records the test error along the way; the last entry is the returned figure."""
    from kp3d.profiles import get_config

    tr, te = _fakes()
    cfg = get_config("smoke")
    row = E.supervised_upper_bound(cfg, tr, te, iters=5, hidden=8, progress=False, eval_every=2)
    assert [h["step"] for h in row["history"]] == [2, 4, 5]
    assert row["history"][-1]["mpjpe"] == row["mpjpe"] and all(np.isfinite(h["train_loss"]) for h in row["history"])
    assert E.supervised_upper_bound(cfg, tr, te, iters=1, hidden=8, progress=False)["history"] == []
    with pytest.raises(ValueError, match="eval_every=-1"):
        E.supervised_upper_bound(cfg, tr, te, iters=1, eval_every=-1)


def test_baselines_cli_upper_bound_curve(tmp_path, monkeypatch):
    """`baselines` passes --upper-batch / --upper-eval-every / --device / --num-workers through and
    writes the upper bound's learning curve into the JSON."""
    monkeypatch.setenv("KP3D_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert E.main(["baselines", "--profile", "smoke", "--kinds", "linear", "--max-frames", "8", "--upper-iters", "3",
                   "--upper-batch", "2", "--upper-eval-every", "2", "--device", "cpu", "--num-workers", "0",
                   "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "baselines.json").read_text())["rows"]
    upper = [r for r in rows if r["key"] == "supervised"]
    assert len(upper) == 1 and [h["step"] for h in upper[0]["history"]] == [2, 3]
    assert upper[0]["history"][-1]["mpjpe"] == pytest.approx(upper[0]["mpjpe"])


def test_helpers_for_the_notebook(tmp_path):
    ex = fake_export(T=60, n_test=20)
    test = NB.select_rows(ex, split="test", max_frames=7)
    assert len(test["kp3d"]) == 7 and set(test["split"]) == {"test"} and test["config_json"].shape == ()
    assert test["K"].shape == (7, 3, 3, 3)
    with pytest.raises(ValueError, match="no 'val' frames"):
        NB.select_rows(ex, split="val")
    probe = NB.fit_keypoint_probe(ex, kind="linear")
    from kp3d.probes import keypoint_features

    assert probe.predict(keypoint_features(ex["kp3d"][:3])).shape == (3, 51)
    rows = [dict(key="mv_keypoints", probe=k, fraction=f, mpjpe=100 / f ** 0.2, n_mpjpe=90.0, p_mpjpe=80.0)
            for k in ("linear", "mlp") for f in (0.1, 1.0)] + [dict(key="mean_pose", probe="-", fraction=1.0,
                                                                    mpjpe=200.0, n_mpjpe=190.0, p_mpjpe=150.0)]
    fig = E.plot_fraction_curves(rows, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert len(fig.axes[0].lines) == 3
    assert NB.find_export([tmp_path / "nothing"]) is None
    np.savez(tmp_path / "a.npz", x=np.zeros(1))
    assert NB.find_export([tmp_path]) == tmp_path / "a.npz"
    # notebook 04 names its export (inside its run dir) in summary.json
    (tmp_path / "run").mkdir()
    np.savez(tmp_path / "run" / "export.npz", x=np.zeros(2))
    (tmp_path / "nb04").mkdir()
    (tmp_path / "nb04" / "summary.json").write_text(json.dumps({"export": str(tmp_path / "run" / "export.npz")}))
    assert NB.find_export([tmp_path / "nb04"]) == tmp_path / "run" / "export.npz"
    loaded, path = NB.prepare_export(tmp_path / "a.npz", tmp_path)
    assert path == tmp_path / "a.npz" and "x" in loaded
    with pytest.raises(FileNotFoundError, match="notebook 04"):
        NB.prepare_export(tmp_path / "missing.npz", tmp_path)


def test_fraction_curves_give_every_series_its_own_colour_and_name_the_100pct_baselines():
    import matplotlib.pyplot as plt

    keys = ["mv_keypoints", "sv_keypoints", "latent", "untrained", "silhouette_img-bg", "silhouette_gt"]
    rows = [dict(key=k, probe="mlp", fraction=f, mpjpe=100.0 + i, n_mpjpe=90.0, p_mpjpe=80.0)
            for i, k in enumerate(keys[:3]) for f in (0.1, 1.0)]
    rows += [dict(key=k, probe="mlp", fraction=1.0, mpjpe=120.0 + i, n_mpjpe=90.0, p_mpjpe=80.0) for i, k in enumerate(keys[3:])]
    rows.append(dict(key="supervised", probe="supervised", fraction=1.0, mpjpe=60.0, n_mpjpe=58.0, p_mpjpe=50.0))
    fig = E.plot_fraction_curves(rows)
    ax = fig.axes[0]
    colours = {line.get_label(): line.get_color() for line in ax.lines if "(mlp)" in line.get_label()}
    assert len(colours) == 6 and len(set(map(str, colours.values()))) == 6
    names = {t.get_text() for t in ax.texts}
    assert {"untrained (mlp)", "silhouette_img-bg (mlp)", "silhouette_gt (mlp)", "supervised"} <= names
    assert "mv_keypoints (mlp)" not in names  # a curve is named in the legend only
    plt.close(fig)
