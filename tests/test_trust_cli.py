"""The command lines say what went wrong in one line, check their outputs before working, and never
write into a folder that is not theirs."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from fakes import FakeMultiView
from kp3d import cli
from kp3d.profiles import get_config
from kp3d.train import train

torch.set_num_threads(1)


def test_bad_value_prints_one_line_without_traceback():
    cmd = [sys.executable, "-m", "kp3d.cli", "--profile", "smoke", "--set", "views=0,0", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: views=(0, 0): expected distinct camera indices"), r.stderr
    r = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" in r.stderr
    # the other entry points report the same way
    r = subprocess.run([sys.executable, "-m", "kp3d.evaluate", "probe", "--export", "missing.npz"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "python -m kp3d.export" in r.stderr


def test_resume_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    foreign = tmp_path / "my_analysis"
    foreign.mkdir()
    (foreign / "metrics.csv").write_text("a user's numbers\n1,2,3\n")
    assert cli.main(["--profile", "smoke", "--resume", "--run-dir", str(foreign), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is not a kp3d run" in err and "Traceback" not in err
    assert (foreign / "metrics.csv").read_text() == "a user's numbers\n1,2,3\n"
    assert sorted(p.name for p in foreign.iterdir()) == ["metrics.csv"]
    typo = tmp_path / "my_rnu"
    assert cli.main(["--profile", "smoke", "--resume", "--run-dir", str(typo), "--no-progress"]) == 2
    assert "no run to resume" in capsys.readouterr().err and not typo.exists()


def test_export_target_is_checked_before_training(tmp_path, capsys):
    target = tmp_path / "mine.npz"
    target.write_bytes(b"a user's file")
    run = tmp_path / "run"
    assert cli.main(["--profile", "smoke", "--run-dir", str(run), "--export", str(target), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and not run.exists() and target.read_bytes() == b"a user's file"
    assert cli.build_parser().parse_args(["--export", "x.npz", "--overwrite"]).overwrite


def test_python_m_kp3d_export(tmp_path, monkeypatch, capsys):
    from kp3d import export as export_mod

    data = FakeMultiView(n=4, size=64)
    cfg = get_config("smoke", amp="none", max_iters=2, warmup_iters=1, log_every=1, ckpt_every=2)
    run = train(cfg, run_dir=tmp_path / "run", dataset=data, progress=False)
    monkeypatch.setattr(export_mod, "dataset_for", lambda cfg, split, **kw: data)
    out = tmp_path / "e.npz"
    assert export_mod.main([str(run), str(out), "--splits", "train", "--no-progress"]) == 0
    assert export_mod.load_export(out, require=export_mod.REQUIRED_KEYS)["kp3d"].shape == (4, 8, 3)
    assert export_mod.main([str(run), str(out), "--splits", "train", "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert export_mod.main([str(run), str(out), "--splits", "train", "--no-progress", "--overwrite"]) == 0


def test_rig_options_reach_the_data_spec():
    args = cli.build_parser().parse_args(["--data", "rig:/data/r", "--trim", "--cameras", "c1,c3", "--units", "m",
                                          "--up-axis=-y", "--backgrounds", "/data/empty"])
    from data_utils.rig import parse_rig_spec, with_rig_options

    spec = with_rig_options(args.data, **cli._rig_options(args))
    assert spec == "rig:/data/r?trim=true&cameras=c1,c3&backgrounds=/data/empty&units=m&up_axis=-y"
    assert parse_rig_spec(spec)[1] == {"trim": True, "cameras": ["c1", "c3"], "backgrounds": "/data/empty",
                                       "units": "m", "up_axis": "-y"}
    with pytest.raises(ValueError, match="need data='rig:"):
        with_rig_options("synthetic", trim=True)
    with pytest.raises(ValueError, match="not a rig option"):
        parse_rig_spec("rig:/data/r?trimm=1")


def test_a_missing_dependency_is_one_line(capsys):
    """An entry point run by a Python without the project's packages names the package and the fix;
    a missing kp3d module is a bug and keeps its traceback."""
    def needs(name):
        def main(argv):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return main

    assert cli.run_entry_point(needs("torch"), []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch is not installed" in err and "make setup" in err
    with pytest.raises(ModuleNotFoundError):
        cli.run_entry_point(needs("torch"), ["--debug"])
    with pytest.raises(ModuleNotFoundError):
        cli.run_entry_point(needs("kp3d.nothing"), [])


class _Broken(torch.utils.data.Dataset):
    """A data set whose samples cannot be read (a disk that went away, a bad file)."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        raise OSError("the frames cannot be read")


def test_a_failed_training_leaves_no_stub_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KP3D_OUTPUT_DIR", str(tmp_path / "outputs"))
    cfg = get_config("smoke", amp="none", max_iters=2, warmup_iters=1, log_every=1, ckpt_every=2)
    with pytest.raises(OSError, match="cannot be read"):
        train(cfg, dataset=_Broken(), progress=False, device="cpu")  # a new folder under outputs/runs
    runs = tmp_path / "outputs" / "runs"
    assert not runs.exists() or not list(runs.iterdir())
    named = tmp_path / "named"
    with pytest.raises(OSError):
        train(cfg, run_dir=named, dataset=_Broken(), progress=False, device="cpu")
    assert not named.exists()
    # a run that logged steps before it failed keeps them: the curve helps to find the cause
    class _FailsLater(FakeMultiView):
        calls = 0

        def __getitem__(self, i):
            type(self).calls += 1
            if self.calls > 2 * cfg.batch_size:
                raise OSError("the frames cannot be read")
            return super().__getitem__(i)

    logged = tmp_path / "logged"
    with pytest.raises(OSError):
        train(cfg.replace(max_iters=4, ckpt_every=4), run_dir=logged, dataset=_FailsLater(n=4, size=64),
              progress=False, device="cpu")
    assert len((logged / "metrics.csv").read_text().splitlines()) > 1
    # a folder that holds a checkpoint keeps everything when a resumed run fails
    good = tmp_path / "good"
    train(cfg, run_dir=good, dataset=FakeMultiView(n=4, size=64), progress=False, device="cpu")
    kept = ("config.json", "run_info.json", "metrics.csv", "checkpoints")

    def files():
        return sorted(str(p.relative_to(good)) for p in good.rglob("*") if p.relative_to(good).parts[0] in kept)

    before = files()
    with pytest.raises(OSError):
        train(cfg.replace(max_iters=4), run_dir=good, resume=True, dataset=_Broken(), progress=False, device="cpu")
    assert files() == before and any(f.endswith(".pt") for f in before)
