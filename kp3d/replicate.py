"""Run the course notebooks headless, in order, with papermill: the main job (``make replicate``).

Each notebook is executed with ``-p PROFILE <profile>`` into ``outputs/<run>/`` (executed notebooks,
the files each notebook saves under its own sub-folder, ``stages.json`` with status, wall time,
fingerprint and warnings per stage, and ``REPORT.md``). A failing notebook stops the pipeline with
the name of the notebook and the cell. A run folder made with another profile is never overwritten.

Re-running the same run skips a stage only when it is *done* and nothing that produced it changed:
its ``fingerprint`` (stored beside its status) covers the profile, the parameters it takes, DATA
(and a rig folder's file list), the contents of the calibration file, the notebook's contents, the
package version and the fingerprint of the stage before it. A stage is done only when papermill ran
its notebook to the end: it is marked ``running`` while it runs, and an executed notebook with a cell
that did not complete is run again. ``--redo`` reruns everything.

The warnings the notebooks raise (Python warnings and log records at WARNING, e.g. a contaminated
background or a converted calibration) are printed on the console once each, again together at the
end of the run, and listed in REPORT.md. REPORT.md (:mod:`kp3d.replicate_report`) is written after a
failed stage too: it names the stage, its error and the command to run again, and marks the stages
after it as an earlier run's. The executed notebook of a stage's last complete run is kept in
``previous/`` while the stage runs again, until that run completes.
Paths in ``-p`` values (DATA's folder, CALIBRATION, ``*_PATH``) are taken relative to the caller's
working directory, not to notebooks/ where the notebooks run.

Usage:
    python -m kp3d.replicate --profile cpu-demo [--run NAME] [--redo] [--only 03 04] [-p KEY VALUE ...] [--debug]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import kp3d
from data_utils.datasets import absolute_data
from data_utils.rig import find_calibration, rig_root
from kp3d.cli_errors import report_errors
from kp3d.profiles import ENV_OUTPUT_DIR, ENV_PROFILE, PROFILES, check_profile
from kp3d.replicate_report import rerun_command, write_report

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
ENV_WARNINGS_FILE = "KP3D_WARNINGS_FILE"
DATA_PARAMETERS = ("DATA", "CALIBRATION")  # what names the data set a notebook runs on

# Runs at the start of every notebook kernel (an IPython startup file): appends each Python warning
# and each log record at WARNING or above to $KP3D_WARNINGS_FILE as a JSON line. A log record
# factory, not a handler, so that the notebooks' own logging set-up and display stay as they are.
# The kernel process's own records (logger IPKernelApp, ipykernel.*) are left out: they speak of the
# kernel, not the notebook, e.g. "KeyboardInterrupt caught in kernel." when jupyter_client interrupts
# an idle kernel before shutting it down, which on a slow machine lands after the last cell.
_KERNEL_HOOK = """\
def _kp3d_install_warning_hook():
    # a closure: the kernel's user namespace may be cleared, the hook must not depend on it
    import json, logging, os, warnings

    def record(kind, message):
        path = os.environ.get("KP3D_WARNINGS_FILE")
        if path:
            with open(path, "a") as f:
                f.write(json.dumps({"kind": kind, "message": str(message)}) + "\\n")

    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        record(category.__name__, message)
        show(message, category, filename, lineno, file, line)

    factory = logging.getLogRecordFactory()

    def make_record(*args, **kwargs):
        rec = factory(*args, **kwargs)
        if rec.levelno >= logging.WARNING and rec.name != "IPKernelApp" and not rec.name.startswith("ipykernel"):
            try:
                record(rec.levelname, rec.getMessage())
            except Exception:
                pass
        return rec

    warnings.showwarning = showwarning
    logging.setLogRecordFactory(make_record)


_kp3d_install_warning_hook()
del _kp3d_install_warning_hook
"""


# The kernels' IPython config (the same IPython directory): papermill starts each kernel on this
# machine and talks to it over the loopback interface, so ipykernel's warning that its TCP transport
# is unencrypted, printed before every stage, says nothing a user can act on; that one message is
# dropped, the kernel's other messages stay.
_KERNEL_CONFIG = """\
import logging


class _KernelTransportNotice(logging.Filter):
    def filter(self, record):
        return not str(record.msg).startswith("Kernel is running over TCP without encryption")


logging.getLogger("IPKernelApp").addFilter(_KernelTransportNotice())
"""


class StageFailed(RuntimeError):
    """A notebook failed; the message names the notebook and the cell."""


def discover_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered course notebooks (``NN_name.ipynb``) in order."""
    if not notebook_dir.is_dir():
        raise FileNotFoundError(f"no notebooks folder at {notebook_dir}: run from a kp3d checkout (pip install -e .)")
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def _load_stages(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _save_stages(path: Path, stages: dict) -> None:
    """Write stages.json atomically: a kill mid-write must not leave a half file (or a stale "done")."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stages, indent=2))
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# parameters: names, paths
# --------------------------------------------------------------------------------------------
def notebook_parameters(nb: Path) -> list[str]:
    """The names in a notebook's ``parameters`` cell."""
    import papermill as pm  # optional: papermill is in the notebooks/test extras only

    return list(pm.inspect_notebook(str(nb)))


def check_parameters(parameters: dict, notebooks: list[Path]) -> None:
    """Refuse ``-p`` names that no notebook to run takes (a typo would be ignored) and PROFILE."""
    if "PROFILE" in parameters:
        raise ValueError(f"-p PROFILE {parameters['PROFILE']!r}: the profile is chosen with --profile "
                         f"({', '.join(PROFILES)}), e.g. python -m kp3d.replicate --profile smoke")
    known = sorted({name for nb in notebooks for name in notebook_parameters(nb)})
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"-p {' '.join(unknown)}: no notebook to run takes it; the notebooks' parameters are "
                         f"{', '.join(k for k in known if k != 'PROFILE')}")


def resolve_paths(parameters: dict, base: Path | None = None) -> dict:
    """``parameters`` with relative paths made absolute against ``base`` (default: the working
    directory): the folder in DATA, CALIBRATION and every ``*_PATH`` value (the notebooks run in
    notebooks/, where a relative path would mean something else)."""
    base = Path(base or os.getcwd())
    out = dict(parameters)
    for key, value in parameters.items():
        if not isinstance(value, str) or not value:
            continue
        if key == "DATA":
            out[key] = absolute_data(value, base)
        elif key == "CALIBRATION" or key.endswith("_PATH"):
            path = Path(value).expanduser()
            out[key] = str(path if path.is_absolute() else base / path)
    return out


# --------------------------------------------------------------------------------------------
# fingerprints: what produced a stage
# --------------------------------------------------------------------------------------------
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_listing(folder: Path, depth: int = 2) -> list:
    """(relative name, size, mtime ns) of the files of a folder, ``depth`` levels deep: cheap, and
    changes when a video or label file is replaced."""
    rows = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir() and depth > 1:
            rows += [[f"{p.name}/{r[0]}", *r[1:]] for r in _file_listing(p, depth - 1)]
        elif p.is_file():
            st = p.stat()
            rows.append([p.name, st.st_size, st.st_mtime_ns])
    return rows


def _calibration_file(data: str, calibration: str) -> Path | None:
    if calibration:
        return Path(calibration)
    if str(data).startswith("rig:"):
        try:
            return find_calibration(rig_root(data))
        except (FileNotFoundError, ValueError):  # the notebook will say what is wrong
            return None
    return None


def run_inputs(profile: str, parameters: dict) -> dict:
    """What every stage depends on besides its notebook: profile, parameters, data, calibration
    contents (sha256) and package version. JSON-able; values are short so that a change can be named."""
    data = str(parameters.get("DATA", ""))
    inputs = {"profile": profile, "parameters": json.dumps(parameters, sort_keys=True, default=str),
              "DATA": data, "package version": kp3d.__version__}
    calib = _calibration_file(data, str(parameters.get("CALIBRATION", "") or ""))
    inputs["calibration file"] = (_digest(calib.read_bytes()) if calib is not None and calib.is_file()
                                  else str(calib or ""))
    if data.startswith("rig:"):
        root = rig_root(data)
        inputs["data files"] = _digest(json.dumps(_file_listing(root)).encode()) if root.is_dir() else "missing"
    return inputs


def stage_inputs(common: dict, nb: Path, parameters: dict, upstream: str) -> dict:
    """The inputs of one stage: the run's, restricted to the parameters this notebook takes, plus the
    notebook's contents and the fingerprint of the stage before it (whose files it may read)."""
    taken = set(notebook_parameters(nb))
    inputs = dict(common, parameters=json.dumps({k: v for k, v in parameters.items() if k in taken},
                                                sort_keys=True, default=str))
    inputs["notebook"] = _digest(nb.read_bytes())
    inputs["previous stage"] = upstream
    return inputs


def fingerprint(inputs: dict) -> str:
    return _digest(json.dumps(inputs, sort_keys=True).encode())


def _changed(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


# --------------------------------------------------------------------------------------------
# completeness and warnings of an executed notebook
# --------------------------------------------------------------------------------------------
def notebook_incomplete(path: Path) -> str | None:
    """Why the executed notebook at ``path`` did not run to the end (None when it did)."""
    import nbformat  # optional: nbformat comes with the notebooks/test extras only

    if not path.is_file():
        return f"the executed notebook {path.name} is missing"
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:  # truncated JSON after a kill
        return f"the executed notebook {path.name} cannot be read ({type(e).__name__})"
    meta = nb.metadata.get("papermill", {})
    if meta.get("exception"):
        return f"the executed notebook {path.name} ended with an exception"
    for i, cell in enumerate(nb.cells):
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if cell.cell_type == "code" and status != "completed":
            return f"cell {i} of the executed notebook {path.name} did not complete (status {status!r})"
    return None


def _install_kernel_hook(folder: Path) -> Path:
    """An IPython directory whose startup file records the kernel's warnings (:data:`_KERNEL_HOOK`) and
    whose kernel config drops the kernel's transport notice (:data:`_KERNEL_CONFIG`)."""
    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-kp3d-warnings.py").write_text(_KERNEL_HOOK)
    (startup.parent / "ipython_kernel_config.py").write_text(_KERNEL_CONFIG)
    return folder


def read_warnings(path: Path) -> list[str]:
    """The distinct warning messages recorded in ``path`` (first occurrence order)."""
    seen: dict[str, None] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                msg = " ".join(str(json.loads(line)["message"]).split())
            except (ValueError, KeyError, TypeError):
                continue
            seen.setdefault(msg, None)
    return list(seen)


def run_pipeline(profile: str, run: str | None = None, outputs: Path | None = None, redo: bool = False,
                 only: list[str] | None = None, parameters: dict | None = None,
                 notebook_dir: Path = NOTEBOOK_DIR, log=print) -> Path:
    """Execute the notebooks; returns the run folder. Raises :class:`StageFailed` on a failing cell."""
    import papermill as pm  # optional: papermill is in the notebooks/test extras only

    check_profile(profile)
    run = run or profile
    # absolute: the notebooks run in notebooks/, and they read the folder from the environment
    outputs = Path(outputs or os.environ.get(ENV_OUTPUT_DIR) or REPO / "outputs").expanduser().resolve()
    run_dir = outputs / run
    notebooks = discover_notebooks(notebook_dir)
    if only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(o) for o in only)]
        if not notebooks:
            raise ValueError(f"--only {only} matches no notebook in {notebook_dir}")
    parameters = resolve_paths(parameters or {})
    check_parameters(parameters, notebooks)
    run_dir.mkdir(parents=True, exist_ok=True)
    stages_path = run_dir / "stages.json"
    stages = _load_stages(stages_path)
    if stages and stages.get("profile") != profile:
        raise ValueError(
            f"{run_dir} holds a run with profile {stages.get('profile')!r}, not {profile!r}: choose another "
            f"run name (make replicate RUN=<name>) instead of overwriting it"
        )
    stages = {"profile": profile, "stages": stages.get("stages", {})}
    common = run_inputs(profile, parameters)
    shown: dict[str, str] = {}  # warning -> the stage that printed it first: each printed once
    env_keys = (ENV_PROFILE, ENV_OUTPUT_DIR, ENV_WARNINGS_FILE, "IPYTHONDIR")
    env_before = {k: os.environ.get(k) for k in env_keys}
    hook_dir = tempfile.TemporaryDirectory(prefix="kp3d-ipython-")
    # the notebooks read these: outputs land in the run folder, and the profile is the one asked for
    os.environ[ENV_PROFILE] = profile
    os.environ[ENV_OUTPUT_DIR] = str(run_dir)
    os.environ["IPYTHONDIR"] = str(_install_kernel_hook(Path(hook_dir.name)))
    upstream = ""
    order = [nb.name for nb in notebooks]
    try:
        for i, nb in enumerate(notebooks, 1):
            tag = f"[{i}/{len(notebooks)}] {nb.name}"
            inputs = stage_inputs(common, nb, parameters, upstream)
            fp = upstream = fingerprint(inputs)
            # a data set given to the run that this notebook does not take: say so, it is not silently ignored
            ignored = [k for k in DATA_PARAMETERS if parameters.get(k) and k not in notebook_parameters(nb)]
            if ignored:
                log(f"{tag}: takes no {' or '.join(ignored)}: it runs on its own data (see the notebook), not on "
                    f"{parameters[ignored[0]]}")
            done = stages["stages"].get(nb.name, {})
            why = None if redo else _rerun_reason(done, inputs, fp, run_dir / nb.name)
            if not redo and why is None:
                log(f"{tag}: done earlier in {done['seconds']:.0f} s with the same inputs, skipped (--redo to rerun)")
                continue
            if why and done:
                log(f"{tag}: {why}: running it again")
            log(f"{tag}: running ({profile}) ...")
            try:
                _run_stage(pm, nb, run_dir, stages, stages_path, profile, parameters, inputs, fp, log, tag, shown,
                           ignored)
            except BaseException:
                report = write_report(run_dir, stages, profile, failed=nb.name, order=order,
                                       rerun=rerun_command(profile, run, parameters, only))
                _log_warning_summary(shown, log)
                log(f"{tag}: {stages['stages'][nb.name]['status']}; report: {report}")
                raise
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        hook_dir.cleanup()
    report = write_report(run_dir, stages, profile)
    _log_warning_summary(shown, log)
    log(f"all stages done; report: {report}")
    return run_dir


def _log_warning_summary(shown: dict, log) -> None:
    """Every warning of the run once more, at its end, where a user looks (also in REPORT.md)."""
    if shown:
        log(f"{len(shown)} warning(s) in this run (also in REPORT.md):")
        for msg, tag in shown.items():
            log(f"  - {msg} ({tag.split('] ', 1)[-1]})")


def _rerun_reason(done: dict, inputs: dict, fp: str, executed: Path) -> str | None:
    """Why a stage must run (None: its earlier result can be reused)."""
    if not done:
        return "not run yet"
    if done.get("status") != "done":
        return f"it ended {done.get('status', 'unfinished')!r} last time"
    if done.get("fingerprint") is None:
        return "no record of what produced its result"
    if done["fingerprint"] != fp:
        changed = _changed(done.get("inputs", {}), inputs)
        return f"its inputs changed since it ran ({', '.join(changed) or 'fingerprint'})"
    return notebook_incomplete(executed)


def _run_stage(pm, nb: Path, run_dir: Path, stages: dict, stages_path: Path, profile: str, parameters: dict,
               inputs: dict, fp: str, log, tag: str, shown: dict, ignored: list | None = None) -> None:
    """Execute one notebook; record it as done only when papermill ran it to the end."""
    warnings_file = run_dir / ".warnings" / f"{nb.stem}.jsonl"
    warnings_file.parent.mkdir(exist_ok=True)
    warnings_file.unlink(missing_ok=True)
    os.environ[ENV_WARNINGS_FILE] = str(warnings_file)
    executed, previous = run_dir / nb.name, run_dir / "previous" / nb.name
    earlier = stages["stages"].get(nb.name, {})
    if earlier.get("status") == "done" and executed.is_file() and notebook_incomplete(executed) is None:
        # the last complete run's notebook is kept until this one completes: a failed rerun must not destroy it
        previous.parent.mkdir(exist_ok=True)
        os.replace(executed, previous)
    kept = {"previous": previous.relative_to(run_dir).as_posix()} if previous.is_file() else {}
    # until papermill returns, the stage is not done: a killed kernel or process leaves "running"
    stages["stages"][nb.name] = {"status": "running", "seconds": 0.0, "fingerprint": fp, "inputs": inputs, **kept,
                                 **({"ignores": ignored} if ignored else {})}
    _save_stages(stages_path, stages)
    t0 = time.time()

    def finish(entry: dict) -> None:
        entry["warnings"] = read_warnings(warnings_file)
        for msg in entry["warnings"]:
            if msg not in shown:
                shown[msg] = tag
                log(f"{tag}: warning: {msg}")
        stages["stages"][nb.name] = {**stages["stages"][nb.name], **entry, "seconds": time.time() - t0}
        _save_stages(stages_path, stages)

    try:
        pm.execute_notebook(str(nb), str(run_dir / nb.name), parameters={"PROFILE": profile, **parameters},
                            cwd=str(nb.parent), progress_bar=False, kernel_name="python3")
    except pm.PapermillExecutionError as err:
        finish({"status": "failed", "cell": err.exec_count, "error": f"{err.ename}: {err.evalue}"})
        raise StageFailed(
            f"{nb.name} failed in cell [{err.exec_count}] with {err.ename}: {err.evalue}\n"
            f"see the executed notebook {run_dir / nb.name}"
        ) from None
    except Exception as err:  # the kernel died (e.g. killed for memory) or could not start
        finish({"status": "failed", "error": f"{type(err).__name__}: {err}"})
        raise StageFailed(f"{nb.name} did not run to the end: {type(err).__name__}: {err}\n"
                          f"see the executed notebook {run_dir / nb.name}; rerun to run it again") from None
    except BaseException:
        finish({"status": "interrupted"})
        raise
    incomplete = notebook_incomplete(run_dir / nb.name)
    if incomplete:
        finish({"status": "failed", "error": incomplete})
        raise StageFailed(f"{nb.name}: {incomplete}; rerun to run it again")
    stages["stages"][nb.name].pop("previous", None)
    finish({"status": "done"})
    previous.unlink(missing_ok=True)  # superseded by the run that just completed
    log(f"{tag}: done in {stages['stages'][nb.name]['seconds']:.0f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kp3d.replicate", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu-demo", choices=PROFILES)
    ap.add_argument("--run", default=None, help="run name: outputs/<run>/ (default: the profile)")
    ap.add_argument("--outputs", default=None, help="outputs root (default: $KP3D_OUTPUT_DIR or ./outputs)")
    ap.add_argument("--redo", action="store_true", help="rerun stages that finished earlier")
    ap.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. --only 03 04")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                    help="extra notebook parameter (a JSON literal or a string), as papermill's -p; "
                         "relative paths are taken from the current folder")
    ap.add_argument("--debug", action="store_true", help="on an error, show the traceback")
    args = ap.parse_args(argv)
    params = {}
    for k, v in args.parameter:
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v

    def run() -> int:
        run_pipeline(args.profile, args.run, Path(args.outputs) if args.outputs else None, args.redo, args.only, params)
        return 0

    return report_errors(run, args.debug)


if __name__ == "__main__":
    sys.exit(main())
