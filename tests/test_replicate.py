"""The papermill pipeline: parameters reach the notebooks, failures stop it by name, finished stages are reused."""
from __future__ import annotations

import json

import nbformat
import pytest

from kp3d.replicate import StageFailed, run_pipeline


def write_nb(path, body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('PROFILE = "cpu-demo"\nVALUE = 1')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture
def notebooks(tmp_path):
    d = tmp_path / "nbs"
    d.mkdir()
    write_nb(d / "01_first.ipynb", (
        "import json\nfrom kp3d.profiles import output_dir, resolve_profile\n"
        "PROFILE = resolve_profile(PROFILE)\n"
        "(output_dir('01_first') / 'results.json').write_text(json.dumps({'profile': PROFILE, 'value': VALUE}))\n"
        "(output_dir('01_first') / 'metrics.md').write_text('| setting | ours | paper |\\n|---|---|---|\\n| MV MLP | 99.0 | 73.8 |')\n"
        "(output_dir('01_first') / 'keypoints.png').write_bytes(b'png')\n"
        "(output_dir('01_first') / 'keypoint_viewer.html').write_text('<html></html>')"
    ))
    write_nb(d / "02_second.ipynb", "x = VALUE * 2")
    return d


def test_parameters_reach_notebooks_and_stages_are_reused(tmp_path, notebooks):
    logs = []
    run_dir = run_pipeline("smoke", run="r1", outputs=tmp_path / "out", notebook_dir=notebooks,
                           parameters={"VALUE": 7}, log=logs.append)
    res = json.loads((run_dir / "01_first" / "results.json").read_text())
    assert res == {"profile": "smoke", "value": 7}
    assert (run_dir / "01_first.ipynb").exists() and (run_dir / "REPORT.md").exists()
    report = (run_dir / "REPORT.md").read_text()
    assert "| MV MLP | 99.0 | 73.8 |" in report and "![keypoints](01_first/keypoints.png)" in report
    assert '"value": 7' in report and "| 02_second.ipynb | done |" in report
    assert "[keypoint_viewer.html](01_first/keypoint_viewer.html)" in report  # the viewer, linked
    stages = json.loads((run_dir / "stages.json").read_text())
    assert [s["status"] for s in stages["stages"].values()] == ["done", "done"]
    logs.clear()
    run_pipeline("smoke", run="r1", outputs=tmp_path / "out", notebook_dir=notebooks, parameters={"VALUE": 7},
                 log=logs.append)
    assert sum("skipped" in line for line in logs) == 2


def test_failure_names_notebook_and_cell(tmp_path, notebooks):
    write_nb(notebooks / "02_second.ipynb", "raise RuntimeError('boom')")
    with pytest.raises(StageFailed, match=r"02_second.ipynb failed in cell \[\d+\] with RuntimeError: boom"):
        run_pipeline("smoke", run="r2", outputs=tmp_path / "out", notebook_dir=notebooks, log=lambda s: None)
    stages = json.loads((tmp_path / "out" / "r2" / "stages.json").read_text())
    assert stages["stages"]["01_first.ipynb"]["status"] == "done"
    assert stages["stages"]["02_second.ipynb"]["status"] == "failed"


def test_refuses_to_mix_profiles(tmp_path, notebooks):
    run_pipeline("smoke", run="r3", outputs=tmp_path / "out", notebook_dir=notebooks, only=["01"], log=lambda s: None)
    with pytest.raises(ValueError, match="holds a run with profile 'smoke'"):
        run_pipeline("cpu-demo", run="r3", outputs=tmp_path / "out", notebook_dir=notebooks, log=lambda s: None)


def test_report_names_the_probe_protocol_and_links_the_tables(tmp_path):
    """A probe figure in REPORT.md says which frames it comes from, and where the full-protocol tables are."""
    from kp3d.replicate_report import REPLICATION, _paper_beside_ours

    rows = [dict(key="mv_keypoints", probe="mlp", fraction=1.0, mpjpe=100.0, setting="ours MV, 16 kpts")]
    (tmp_path / "metrics.json").write_text(json.dumps({"rows": rows, "probing": "done",
                                                       "protocol": "probes fitted on 400 training frames, measured on 400 test frames of synthetic"}))
    text = "\n".join(_paper_beside_ours(tmp_path, "cpu-demo"))
    assert "Ours: probes fitted on 400 training frames, measured on 400 test frames of synthetic." in text
    assert REPLICATION.as_uri() in text and REPLICATION.name == "replication.md"
