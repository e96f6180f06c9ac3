"""Tests of the paper's tables runner (kp3d.tables): the plan, run identity, verdicts, the docs
block, and one table trained, measured, reused and resumed at smoke size."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import kp3d.tables as T
from kp3d.profiles import get_config


# --- the plan ----------------------------------------------------------------------------------------
def test_rows_are_config_changes_with_the_papers_figures():
    for t, spec in T.TABLES.items():
        for row in spec["rows"]:
            get_config("smoke", **row.change).validate()
            assert row.table == t and row.paper_text.endswith(("mm", "cm", "not in the paper"))
    assert [r.paper_text for r in T.TABLES["4"]["rows"]] == ["111.8 mm", "79.9 mm", "78.3 mm", "73.8 mm"]
    assert [r.paper_text for r in T.TABLES["S3"]["rows"]] == ["16.16 cm", "15.53 cm", "14.57 cm"]


def test_plan_shares_the_profile_run_and_keys_on_config_and_code(tmp_path):
    runs = T.plan("cpu-demo", (0, 1), list(T.TABLES), tmp_path, "code-a")
    names = [r.name for r in runs]
    assert len(names) == len(set(names)) == 22  # 11 distinct configurations x 2 seeds
    profile = [r for r in runs if r.name.startswith("profile-s0-")]
    assert len(profile) == 1 and {x.table for x in profile[0].rows} == {"4", "5", "6", "S3"}
    assert all(r.run_dir.parent == tmp_path / "runs" and not r.trained and r.step == 0 for r in runs)
    other = T.plan("cpu-demo", (0, 1), list(T.TABLES), tmp_path, "code-b")
    assert not {r.name for r in other} & set(names)  # new training code: no run is reused
    longer = T.plan("cpu-demo", (0,), ["5"], tmp_path, "code-a", max_iters=10)
    assert not {r.name for r in longer} & set(names)  # another configuration: no run is reused


def test_plan_refuses_unknown_tables(tmp_path):
    with pytest.raises(ValueError, match=r"unknown tables \['7'\].*choose from 4, 5, 6, S3"):
        T.plan("smoke", (0,), ["7"], tmp_path, "c")


def test_code_version_ignores_comments_and_docstrings_but_not_code(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""Doc."""\ndef f(x):\n    """Old words."""\n    return x + 1  # why\n')
    b.write_text('"""Other doc."""\n# a new comment\ndef f(x):\n    """New words."""\n    return x + 1\n')
    c.write_text('"""Doc."""\ndef f(x):\n    """Old words."""\n    return x + 2\n')
    assert T._code_text(a) == T._code_text(b) != T._code_text(c)
    v = T.training_code_version()
    assert len(v) == 16 and v == T.training_code_version()


# --- verdicts and the docs block ------------------------------------------------------------------
@pytest.mark.parametrize("a, b, expect", [
    ([120.0, 118.0], [90.0, 95.0], "reproduced in direction"),
    ([90.0, 92.0], [120.0, 118.0], "contradicted"),
    ([100.0], [95.0], "within noise"),  # under NOISE_MM
    ([80.0, 130.0], [100.0, 101.0], "within noise"),  # the seeds overlap
])
def test_verdict(a, b, expect):
    assert T.verdict(a, b) == expect


def test_update_docs_keeps_the_hand_written_text(tmp_path):
    doc = tmp_path / "replication.md"
    doc.write_text(f"# Title\nbefore\n{T.BEGIN}\nold table\n{T.END}\nafter: why row 2 disagrees\n")
    T.update_docs(doc, "new table")
    text = doc.read_text()
    assert "new table" in text and "old table" not in text and text.startswith("# Title\nbefore\n")
    assert text.endswith("after: why row 2 disagrees\n")
    bare = tmp_path / "bare.md"
    bare.write_text("hand-written only\n")
    with pytest.raises(ValueError, match="no '<!-- tables: begin"):
        T.update_docs(bare, "x")
    assert bare.read_text() == "hand-written only\n"


def test_make_tables_trains_the_seeds_of_the_committed_record():
    """``make tables`` (the runner's defaults) must reproduce the seeds that docs/replication.md reports."""
    doc = Path(__file__).resolve().parents[1] / "docs" / "replication.md"
    found = re.search(r"^Profile `cpu-demo`, training seeds ([\d, ]+?), \d+ steps per run", doc.read_text(), re.M)
    assert found, "docs/replication.md has lost the line that names its training seeds"
    committed = tuple(int(s) for s in found.group(1).split(", "))
    assert committed == T.DEFAULT_SEEDS
    make = (doc.parents[1] / "Makefile").read_text()
    assert f"SEEDS ?= {','.join(map(str, T.DEFAULT_SEEDS))}" in make


def test_bad_command_lines_say_what_to_fix(capsys):
    with pytest.raises(SystemExit):
        T.main(["--seeds", "a,b", "--plan"])
    assert "--seeds 'a,b': expected comma-separated integers" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--jobs 0: expected 1 or more"):
        T.main(["--jobs", "0", "--plan"])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda: this machine has no CUDA device; leave --device out"):
            T.main(["--device", "cuda", "--plan"])


# --- one table end to end at smoke size ---------------------------------------------------------------
def test_table5_trains_measures_reuses_and_resumes(tmp_path, capsys):
    """Table 5 (three runs) at smoke size: written, then reused without training; a run cut short
    resumes from its checkpoint; a changed configuration trains beside the old runs, which stay."""
    from kp3d.probes import torch_threads
    from kp3d.train import train

    out, docs = tmp_path / "tables", tmp_path / "replication.md"
    docs.write_text(f"# Replication\n{T.BEGIN}\n{T.END}\nnotes\n")
    args = ["--profile", "smoke", "--seeds", "0", "--which", "5", "--out", str(out), "--jobs", "1", "--threads", "1",
            "--device", "cpu", "--set", "max_iters=2", "--set", "ckpt_every=1", "--docs", str(docs)]
    runs = T.plan("smoke", (0,), ["5"], out, T.training_code_version(), max_iters=2, ckpt_every=1)
    with torch_threads(1):  # one run cut short after its first step: the command resumes it
        train(runs[0].cfg.replace(max_iters=1), run_dir=runs[0].run_dir, progress=False, device="cpu")
    assert runs[0].step == 1 and not runs[0].trained
    assert T.main(args + ["--no-train"]) == 0  # the tables as they stand: nothing trained, nothing measured
    assert runs[0].step == 1 and "| 2 views | views=(0, 1) | none yet | not measured |" in docs.read_text()
    assert T.main(args) == 0
    text = docs.read_text()
    assert "### Table 5" in text and "| 2 views | views=(0, 1) | 0 |" in text and text.endswith("notes\n")
    assert all(r.trained for r in runs)
    info = json.loads((runs[0].run_dir / "run_info.json").read_text())
    assert info["resumed_from_step"] == 1
    stamps = {r.name: (r.run_dir / "measure.json").stat().st_mtime_ns for r in runs}
    capsys.readouterr()
    assert T.main(args) == 0  # everything reused: no training, no measuring
    printed = capsys.readouterr().out
    assert "to train and" not in printed
    assert stamps == {r.name: (r.run_dir / "measure.json").stat().st_mtime_ns for r in runs}
    (runs[1].run_dir / "measure.json").unlink()  # a measurement lost: --no-train measures it again, alone
    assert T.main(args + ["--no-train"]) == 0
    assert "0 run(s) to train and 1 to measure" in capsys.readouterr().out
    assert {r.name: (r.run_dir / "measure.json").stat().st_mtime_ns for r in runs if r is not runs[1]} == \
        {k: v for k, v in stamps.items() if k != runs[1].name}
    assert "[tables] measuring " + runs[1].name in (out / "logs" / f"{runs[1].name}.log").read_text()
    doc = json.loads((out / "tables.json").read_text())
    assert [x["setting"] for x in doc["tables"]["5"]] == ["2 views", "3 views", "4 views"]
    assert T.main(args[:-4] + ["--set", "max_iters=3", "--plan"]) == 0  # another configuration
    assert "3 run folder(s) of another configuration or code are kept" in capsys.readouterr().out
    assert all(Path(r.run_dir).is_dir() for r in runs)
