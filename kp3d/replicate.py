"""Run the course notebooks headless, in order, with papermill: the main job (``make replicate``).

Each notebook is executed with ``-p PROFILE <profile>`` into ``outputs/<run>/`` (executed notebooks,
the files each notebook saves under its own sub-folder, ``stages.json`` with status and wall time
per stage, and ``REPORT.md``). Re-running the same run skips the stages that already finished with
the same profile, unless ``--redo`` is given; a failing notebook stops the pipeline with the name of
the notebook and the cell. A run folder made with another profile is never overwritten.

Usage:
    python -m kp3d.replicate --profile cpu-demo [--run NAME] [--redo] [--only 03 04] [-p KEY VALUE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from kp3d.profiles import ENV_OUTPUT_DIR, ENV_PROFILE, PROFILES, check_profile

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"


class StageFailed(RuntimeError):
    """A notebook failed; the message names the notebook and the cell."""


def discover_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered course notebooks (``NN_name.ipynb``) in order."""
    if not notebook_dir.is_dir():
        raise FileNotFoundError(f"no notebooks folder at {notebook_dir}: run from a kp3d checkout (pip install -e .)")
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def _load_stages(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _write_report(run_dir: Path, stages: dict, profile: str) -> Path:
    lines = [f"# kp3d replication report: run `{run_dir.name}`", "", f"Profile: `{profile}`", "",
             "| stage | status | wall time (s) |", "|---|---|---|"]
    for name, st in stages["stages"].items():
        lines.append(f"| {name} | {st['status']} | {st.get('seconds', float('nan')):.1f} |")
    total = sum(st.get("seconds", 0.0) for st in stages["stages"].values())
    lines += ["", f"Total notebook time: {total:.1f} s", ""]
    for name in stages["stages"]:
        stage_dir = run_dir / Path(name).stem
        results = stage_dir / "results.json"
        tables = sorted(stage_dir.glob("*.md")) if stage_dir.is_dir() else []
        figures = sorted(stage_dir.glob("*.png")) if stage_dir.is_dir() else []
        if not (results.exists() or tables or figures):
            continue
        lines += [f"## {name}", ""]
        for table in tables:  # e.g. notebook 05's results beside the paper's (SPEC section 4)
            lines += [table.read_text().strip(), ""]
        lines += [f"![{fig.stem}]({fig.relative_to(run_dir).as_posix()})" for fig in figures]
        if figures:
            lines.append("")
        if results.exists():
            lines += ["```json", results.read_text().strip(), "```", ""]
    path = run_dir / "REPORT.md"
    path.write_text("\n".join(lines))
    return path


def run_pipeline(profile: str, run: str | None = None, outputs: Path | None = None, redo: bool = False,
                 only: list[str] | None = None, parameters: dict | None = None,
                 notebook_dir: Path = NOTEBOOK_DIR, log=print) -> Path:
    """Execute the notebooks; returns the run folder. Raises :class:`StageFailed` on a failing cell."""
    import papermill as pm

    check_profile(profile)
    run = run or profile
    outputs = Path(outputs or os.environ.get(ENV_OUTPUT_DIR) or REPO / "outputs")
    run_dir = outputs / run
    run_dir.mkdir(parents=True, exist_ok=True)
    stages_path = run_dir / "stages.json"
    stages = _load_stages(stages_path)
    if stages and stages.get("profile") != profile:
        raise ValueError(
            f"{run_dir} holds a run with profile {stages.get('profile')!r}, not {profile!r}: choose another "
            f"run name (make replicate RUN=<name>) instead of overwriting it"
        )
    stages = {"profile": profile, "stages": stages.get("stages", {})}
    notebooks = discover_notebooks(notebook_dir)
    if only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(o) for o in only)]
        if not notebooks:
            raise ValueError(f"--only {only} matches no notebook in {notebook_dir}")
    env_before = {k: os.environ.get(k) for k in (ENV_PROFILE, ENV_OUTPUT_DIR)}
    # the notebooks read these: outputs land in the run folder, and the profile is the one asked for
    os.environ[ENV_PROFILE] = profile
    os.environ[ENV_OUTPUT_DIR] = str(run_dir)
    try:
        for i, nb in enumerate(notebooks, 1):
            done = stages["stages"].get(nb.name, {})
            if done.get("status") == "done" and not redo:
                log(f"[{i}/{len(notebooks)}] {nb.name}: done earlier in {done['seconds']:.0f} s, skipped (--redo to rerun)")
                continue
            log(f"[{i}/{len(notebooks)}] {nb.name}: running ({profile}) ...")
            t0 = time.time()
            try:
                pm.execute_notebook(str(nb), str(run_dir / nb.name), parameters={"PROFILE": profile, **(parameters or {})},
                                    cwd=str(nb.parent), progress_bar=False, kernel_name="python3")
            except pm.PapermillExecutionError as err:
                stages["stages"][nb.name] = {"status": "failed", "seconds": time.time() - t0, "cell": err.exec_count,
                                             "error": f"{err.ename}: {err.evalue}"}
                stages_path.write_text(json.dumps(stages, indent=2))
                raise StageFailed(
                    f"{nb.name} failed in cell [{err.exec_count}] with {err.ename}: {err.evalue}\n"
                    f"see the executed notebook {run_dir / nb.name}"
                ) from None
            secs = time.time() - t0
            stages["stages"][nb.name] = {"status": "done", "seconds": secs}
            stages_path.write_text(json.dumps(stages, indent=2))
            log(f"[{i}/{len(notebooks)}] {nb.name}: done in {secs:.0f} s")
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    report = _write_report(run_dir, stages, profile)
    log(f"all stages done; report: {report}")
    return run_dir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kp3d.replicate", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu-demo", choices=PROFILES)
    ap.add_argument("--run", default=None, help="run name: outputs/<run>/ (default: the profile)")
    ap.add_argument("--outputs", default=None, help="outputs root (default: $KP3D_OUTPUT_DIR or ./outputs)")
    ap.add_argument("--redo", action="store_true", help="rerun stages that finished earlier")
    ap.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. --only 03 04")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                    help="extra notebook parameter (a JSON literal or a string), as papermill's -p")
    args = ap.parse_args(argv)
    params = {}
    for k, v in args.parameter:
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    try:
        run_pipeline(args.profile, args.run, Path(args.outputs) if args.outputs else None, args.redo, args.only, params)
    except (StageFailed, ValueError, FileNotFoundError) as err:
        print(f"replicate: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
