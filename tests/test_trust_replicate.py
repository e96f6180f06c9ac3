"""kp3d.replicate never reuses a stale stage, never calls a half-run notebook done, shows the
notebooks' warnings, resolves relative paths where the caller stands and refuses unknown -p names."""
from __future__ import annotations

import json

import nbformat
import pytest

from kp3d.replicate import StageFailed, main, run_pipeline


def write_nb(path, body: str, params: str = 'PROFILE = "cpu-demo"\nVALUE = 1'):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


DATA_PARAMS = 'PROFILE = "cpu-demo"\nDATA = "synthetic"\nCALIBRATION = ""\nVALUE = 1'
RECORD = ("import json\nfrom kp3d.profiles import output_dir\n"
          "(output_dir('01_first') / 'results.json').write_text(json.dumps({'DATA': DATA, 'CALIBRATION': CALIBRATION}))")


@pytest.fixture
def notebooks(tmp_path):
    d = tmp_path / "nbs"
    d.mkdir()
    write_nb(d / "01_first.ipynb", RECORD, DATA_PARAMS)
    write_nb(d / "02_second.ipynb", "x = VALUE * 2")
    return d


def _run(tmp_path, notebooks, **kw):
    logs = []
    run_pipeline("smoke", run="r", outputs=tmp_path / "out", notebook_dir=notebooks, log=logs.append, **kw)
    return logs


def _ran(logs, name):
    return any(name in line and "running (" in line for line in logs)


def test_stage_reruns_when_what_produced_it_changes(tmp_path, notebooks):
    rig = tmp_path / "rig1"
    rig.mkdir()
    (rig / "calibration.toml").write_text("[cam_0]\nname = 'a'\n")
    _run(tmp_path, notebooks, parameters={"DATA": "synthetic"})
    logs = _run(tmp_path, notebooks, parameters={"DATA": "synthetic"})
    assert sum("skipped" in line for line in logs) == 2  # same inputs: reused
    # another DATA: both stages run again (02 comes after 01, whose files it may read), and say why
    logs = _run(tmp_path, notebooks, parameters={"DATA": f"rig:{rig}"})
    assert _ran(logs, "01_first") and _ran(logs, "02_second")
    assert any("inputs changed" in line and "DATA" in line for line in logs)
    # the same calibration path with other contents
    (rig / "calibration.toml").write_text("[cam_0]\nname = 'b'\n")
    logs = _run(tmp_path, notebooks, parameters={"DATA": f"rig:{rig}"})
    assert _ran(logs, "01_first") and any("calibration file" in line for line in logs)
    # an edited notebook reruns that stage; the one before it is reused
    write_nb(notebooks / "02_second.ipynb", "x = VALUE * 3")
    logs = _run(tmp_path, notebooks, parameters={"DATA": f"rig:{rig}"})
    assert not _ran(logs, "01_first") and _ran(logs, "02_second")
    assert any("notebook" in line and "inputs changed" in line for line in logs)
    stages = json.loads((tmp_path / "out" / "r" / "stages.json").read_text())
    assert all(len(st["fingerprint"]) == 64 and st["status"] == "done" for st in stages["stages"].values())


def test_a_notebook_that_did_not_finish_is_not_done(tmp_path, notebooks):
    _run(tmp_path, notebooks)
    # an executed notebook whose last cell never completed (e.g. the stage was killed mid-way)
    executed = tmp_path / "out" / "r" / "02_second.ipynb"
    nb = nbformat.read(str(executed), as_version=4)
    nb.cells[-1].metadata["papermill"]["status"] = "running"
    nbformat.write(nb, str(executed))
    logs = _run(tmp_path, notebooks)
    assert not _ran(logs, "01_first") and _ran(logs, "02_second")
    assert any("did not complete" in line for line in logs)
    # a kernel that dies mid-stage leaves the stage failed, never "done"
    write_nb(notebooks / "02_second.ipynb", "import os\nos._exit(1)")
    with pytest.raises(StageFailed, match="did not run to the end"):
        _run(tmp_path, notebooks, redo=True)
    stages = json.loads((tmp_path / "out" / "r" / "stages.json").read_text())
    assert stages["stages"]["02_second.ipynb"]["status"] == "failed"


def test_notebook_warnings_reach_the_console_once_and_the_report(tmp_path, notebooks):
    write_nb(notebooks / "02_second.ipynb", (
        "import logging, warnings\n"
        "for _ in range(20):\n"
        "    warnings.warn('camera c1: the median background looks contaminated')\n"
        "logging.getLogger('data_utils.rig').warning('camera c1: the median background looks contaminated')\n"
        "logging.getLogger('data_utils.rig').warning('rig r: calibration converted from metres')\n"
        "logging.getLogger('data_utils.rig').info('not a warning')\n"
        "logging.getLogger('IPKernelApp').error('KeyboardInterrupt caught in kernel.')  # the kernel's own"))
    logs = _run(tmp_path, notebooks)
    shown = [line for line in logs if "warning:" in line]
    assert len(shown) == 2, shown
    assert sum("looks contaminated" in line for line in shown) == 1 and "not a warning" not in " ".join(logs)
    assert "KeyboardInterrupt" not in " ".join(shown)
    report = (tmp_path / "out" / "r" / "REPORT.md").read_text()
    assert "## Warnings" in report
    assert "- camera c1: the median background looks contaminated (02_second.ipynb)" in report
    assert "calibration converted from metres" in report


def test_relative_paths_are_the_callers(tmp_path, notebooks, monkeypatch):
    (tmp_path / "my_rig").mkdir()
    monkeypatch.chdir(tmp_path)
    _run(tmp_path, notebooks, parameters={"DATA": "rig:my_rig?trim=true", "CALIBRATION": "my_rig/c.toml"})
    res = json.loads((tmp_path / "out" / "r" / "01_first" / "results.json").read_text())
    assert res == {"DATA": f"rig:{tmp_path / 'my_rig'}?trim=true", "CALIBRATION": str(tmp_path / "my_rig" / "c.toml")}


def test_unknown_or_profile_parameters_are_refused(tmp_path, capsys):
    assert main(["--profile", "smoke", "--outputs", str(tmp_path), "-p", "PROFILE", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: -p PROFILE 'bogus'") and "--profile" in err and "Traceback" not in err
    assert main(["--profile", "smoke", "--outputs", str(tmp_path), "-p", "MAX_ITER", "5"]) == 2
    err = capsys.readouterr().err
    assert "no notebook to run takes it" in err and "MAX_ITERS" in err
    assert not (tmp_path / "smoke").exists()  # refused before anything was written


def test_a_failed_rerun_is_reported_as_failed(tmp_path, notebooks):
    write_nb(notebooks / "01_first.ipynb", RECORD + "\nif DATA == 'rig:/nowhere':\n    raise ValueError('rig /nowhere: not found')",
             DATA_PARAMS)
    write_nb(notebooks / "02_second.ipynb", "import warnings\nwarnings.warn('camera c1: the old rig is contaminated')")
    logs = _run(tmp_path, notebooks)
    assert logs[-3:-1] == ["1 warning(s) in this run (also in REPORT.md):",
                           "  - camera c1: the old rig is contaminated (02_second.ipynb)"]
    run = tmp_path / "out" / "r"
    good = (run / "01_first.ipynb").read_text()
    logs = []
    with pytest.raises(StageFailed, match="01_first.ipynb failed"):
        run_pipeline("smoke", run="r", outputs=tmp_path / "out", notebook_dir=notebooks, log=logs.append,
                     parameters={"DATA": "rig:/nowhere"})
    report = (run / "REPORT.md").read_text()
    assert "| 01_first.ipynb | done |" not in report and "| 01_first.ipynb | failed |" in report
    assert "Stopped: stage 01_first.ipynb failed" in report
    assert "ValueError: rig /nowhere: not found" in report
    assert "python -m kp3d.replicate --profile smoke --run r -p DATA rig:/nowhere" in report
    assert "| 02_second.ipynb | done |" not in report and "02_second.ipynb | earlier run's result" in report
    assert "old rig is contaminated" not in report  # an earlier run's warning is not this run's
    # the last complete executed notebook is kept, and named in the report
    assert (run / "previous" / "01_first.ipynb").read_text() == good
    assert "previous/01_first.ipynb" in report
    assert any("report:" in line and "failed" in line for line in logs)
    # once it runs again, the kept copy goes
    _run(tmp_path, notebooks)
    assert not (run / "previous" / "01_first.ipynb").exists()
    assert "| 01_first.ipynb | done |" in (run / "REPORT.md").read_text()



def test_a_fresh_run_prints_no_setup_or_kernel_notices(tmp_path, notebooks, capfd):
    from pathlib import Path

    # setuptools >= 77 deprecates project.license as a table, with a screen of text at every install
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'license = "MIT"' in pyproject and "license = {" not in pyproject
    # the kernels' transport notice, printed by each kernel on the console before every stage
    _run(tmp_path, notebooks)
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err


def test_a_notebook_without_data_says_so(tmp_path, notebooks):
    (tmp_path / "my_rig").mkdir()
    logs = _run(tmp_path, notebooks, parameters={"DATA": f"rig:{tmp_path / 'my_rig'}"})
    said = [line for line in logs if "takes no DATA" in line]
    assert len(said) == 1 and "02_second.ipynb" in said[0] and "my_rig" in said[0]
    report = (tmp_path / "out" / "r" / "REPORT.md").read_text()
    assert "- 02_second.ipynb takes no DATA: it ran on its own data" in report
    assert "01_first.ipynb takes no" not in report
