"""REPORT.md of a replication run (:mod:`kp3d.replicate`): the stages' status and time, the failed
stage with its error and the command to run again, the warnings once each, and per stage its tables,
figures, interactive pages and results, with the paper's numbers beside ours.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from kp3d.evaluate import PAPER_RESULTS

# our (features, probe) -> the paper's row of the same setting, whatever our keypoint count
_PAPER_MATCH = (("mv_keypoints", "linear", "t1_mv_linear"), ("mv_keypoints", "mlp", "t1_mv_mlp"),
                ("sv_keypoints", "mlp", "t1_sv_mlp"), ("latent", "mlp", "t4_reconst"), ("2d", "linear", "t3_2d"))
_PLUMBING = ("**Smoke profile: a plumbing check.** A few training steps on a tiny data set: the numbers below "
             "show that every stage runs and say nothing about the method.")

REPLICATION = Path(__file__).resolve().parent.parent / "docs" / "replication.md"  # the paper's tables on this profile


def _paper_beside_ours(stage_dir: Path, profile: str) -> list[str]:
    """Report lines for a probing stage (its ``metrics.json``): whether probing ran, and the paper's
    rows beside ours matched by setting, in every profile (the stage's own table fills its paper
    columns only for the paper's 32 keypoints)."""

    path = stage_dir / "metrics.json"
    if not path.is_file():
        return []
    doc = json.loads(path.read_text())
    out = []  # the smoke profile's plumbing note heads the report
    probing = doc.get("probing", "done")
    if probing != "done":
        reason = probing.split(": ", 1)[1] if probing.startswith("probing skipped: ") else probing
        out += [f"**Probing skipped**: {reason} The probing table below has no rows for that reason.", ""]
    rows = [r for r in doc.get("rows", []) if r.get("fraction", 1.0) == 1.0]
    ours = {(r.get("key"), r.get("probe")): r for r in rows}
    n_kp = next((int(m.group(1)) for r in rows if (m := re.search(r"(\d+) kpts", str(r.get("setting", ""))))), None)

    def fmt(v, digits=1):
        return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "-"

    out += ["### The paper beside ours, matched by setting", "",
            "| our setting | probe | our MPJPE | paper table | paper setting | paper MPJPE |", "|---|---|---|---|---|---|"]
    matches = list(_PAPER_MATCH)
    if n_kp is not None:  # Table S3 (3DHP): the keypoint count nearest ours
        nearest = min((16, 32, 48, 96), key=lambda n: (abs(n - n_kp), n))
        matches.append(("mv_keypoints", "mlp", f"ts3_{nearest}"))
    for key, probe, paper_key in matches:
        r, p = ours.get((key, probe), {}), PAPER_RESULTS[paper_key]
        unit, theirs_unit = (" %", " %") if key == "2d" else (" mm", " " + p["unit"])
        metric, digits = ("pct_mse", 2) if key == "2d" else ("mpjpe", 1)
        mine = fmt(r.get(metric), digits) + (unit if isinstance(r.get(metric), (int, float)) else "")
        theirs = fmt(p.get(metric), digits) + theirs_unit
        out.append(f"| {r.get('setting', key + (' (not run)' if probing == 'done' else ' (skipped)'))} | {probe} "
                   f"| {mine} | {p['table']} | {p['setting']} | {theirs} |")
    if doc.get("protocol"):  # figures of one model compare only under one protocol
        out += ["", f"Ours: {doc['protocol']}. The tables of the paper's ablations on this profile "
                f"({REPLICATION.as_uri()}) and README.md probe every frame of the export, so their mm differ from these."]
    out += ["", "Matched by setting (features and probe), whatever the keypoint count: Tables 1, 3 and 4 are the "
            "paper's 32 keypoints on Human3.6M (mm); the Table S3 row (MPI-INF-3DHP, cm) is the keypoint count "
            f"nearest ours ({n_kp if n_kp is not None else 'unknown'}). Ours are on our data set (synthetic unless "
            "DATA says otherwise), so only the ordering compares.", ""]
    return out


def rerun_command(profile: str, run: str, parameters: dict, only: list[str] | None = None) -> str:
    """The command line that runs this pipeline again (for the report of a failed stage)."""
    cmd = ["python", "-m", "kp3d.replicate", "--profile", profile, "--run", run]
    if only:
        cmd += ["--only", *only]
    for key, value in parameters.items():
        cmd += ["-p", key, value if isinstance(value, str) else json.dumps(value)]
    return " ".join(shlex.quote(str(c)) for c in cmd)


def _failure_lines(run_dir: Path, name: str, st: dict, later: list[str], rerun: str) -> list[str]:
    cell = f" in cell [{st['cell']}]" if st.get("cell") is not None else ""
    lines = [f"## Stage {name} {st['status']}", "",
             f"**{name} {st['status']}{cell}**: {st.get('error', 'no error recorded')}", "",
             f"The executed notebook [{name}]({name}) shows where."]
    if st.get("previous"):
        lines.append(f"The executed notebook of its last complete run is kept at [{st['previous']}]({st['previous']}).")
    if later:
        lines.append(f"The stages after it ({', '.join(later)}) were not run again: their rows in the table "
                     f"above are from an earlier run, not from these inputs.")
    return lines + ["", "Fix the cause, then run the same command again (the stages done before it are reused):",
                    "", f"    {rerun}", ""]


def write_report(run_dir: Path, stages: dict, profile: str, failed: str | None = None,
                  order: list[str] | None = None, rerun: str = "") -> Path:
    """REPORT.md of the run. ``failed``: the stage that stopped this run (``order``: the stages this
    run was to execute, in order); the stages after it are marked as earlier results and their
    warnings and results are left out, so the report never shows them as this run's."""
    order = order or list(stages["stages"])
    later = order[order.index(failed) + 1:] if failed in order else []
    later = [n for n in later if n in stages["stages"]]
    lines = [f"# kp3d replication report: run `{run_dir.name}`", "", f"Profile: `{profile}`", "",
             *([f"**Stopped: stage {failed} {stages['stages'][failed]['status']}** (details below).", ""]
               if failed in stages["stages"] else []),
             *([_PLUMBING, ""] if profile == "smoke" else []),
             "| stage | status | wall time (s) |", "|---|---|---|"]
    for name, st in stages["stages"].items():
        status = st["status"] if name not in later else f"earlier run's result (not rerun after {failed} {stages['stages'][failed]['status']})"
        lines.append(f"| {name} | {status} | {st.get('seconds', float('nan')):.1f} |")
    total = sum(st.get("seconds", 0.0) for st in stages["stages"].values())
    lines += ["", f"Total notebook time: {total:.1f} s", ""]
    own = [(n, st["ignores"]) for n, st in stages["stages"].items() if st.get("ignores")]
    lines += [f"- {n} takes no {' or '.join(keys)}: it ran on its own data (see the notebook), not on this run's."
              for n, keys in own] + ([""] if own else [])
    if failed in stages["stages"]:
        lines += _failure_lines(run_dir, failed, stages["stages"][failed], later, rerun)
    current = {n: st for n, st in stages["stages"].items() if n not in later}
    warned: dict[str, list[str]] = {}  # message -> stages that raised it (each message once)
    for name, st in current.items():
        for msg in st.get("warnings", []):
            warned.setdefault(msg, []).append(name)
    if warned:
        lines += ["## Warnings", ""] + [f"- {msg} ({', '.join(names)})" for msg, names in warned.items()] + [""]
    for name, st in current.items():
        if st.get("status") != "done":  # its folder holds a partial or an earlier run's files
            continue
        stage_dir = run_dir / Path(name).stem
        results = stage_dir / "results.json"
        tables = sorted(stage_dir.glob("*.md")) if stage_dir.is_dir() else []
        figures = sorted(stage_dir.glob("*.png")) if stage_dir.is_dir() else []
        pages = sorted(stage_dir.glob("*.html")) if stage_dir.is_dir() else []
        if not (results.exists() or tables or figures or pages):
            continue
        lines += [f"## {name}", ""]
        lines += _paper_beside_ours(stage_dir, profile)
        for table in tables:  # e.g. notebook 05's results beside the paper's tables
            lines += [table.read_text().strip(), ""]
        lines += [f"![{fig.stem}]({fig.relative_to(run_dir).as_posix()})" for fig in figures]
        if figures:
            lines.append("")
        # interactive pages (notebook 05's keypoint viewer, notebook 03's scene): open them in a browser
        lines += [f"- interactive, open in a browser: [{page.name}]({page.relative_to(run_dir).as_posix()})" for page in pages]
        if pages:
            lines.append("")
        if results.exists():
            lines += ["```json", results.read_text().strip(), "```", ""]
    path = run_dir / "REPORT.md"
    path.write_text("\n".join(lines))
    return path
