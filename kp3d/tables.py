"""The paper's ablation tables (4, 5, 6 and S3) on a profile, in one command: ``make tables``.

Each row is the profile with one change (the row says which); every distinct configuration trains
once per training seed (the profile's own row is shared by all four tables), is exported on the
data it trained on, and is probed with the project's protocol (:data:`PROTOCOL`). A run is reused
only while its configuration and the training code (:func:`training_code_version`) are the ones it
was trained with: its folder name carries that key, so a changed row trains anew beside the old
run, which is kept. A killed command resumes at the step its runs had checkpointed.

Usage:
    python -m kp3d.tables --profile cpu-demo --seeds 1,2 --jobs 2          # train, measure, write
    python -m kp3d.tables --plan                                           # what is done, what is left
    python -m kp3d.tables --docs docs/replication.md                       # also refresh the committed tables

Outputs (``--out``, default ``outputs/tables/<profile>``): ``runs/<row>-s<seed>-<key>/`` (the runs,
each with ``measure.json``), ``logs/``, ``tables.json`` and ``tables.md``.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kp3d import checkpoint as ckpt_io
from kp3d.cli_errors import add_debug_flag, run_entry_point
from kp3d.config import Config, parse_overrides
from kp3d.ladder import measure
from kp3d.profiles import get_config, output_dir
from kp3d.results import PAPER_RESULTS
from kp3d.train import train

# ------------------------------------------------------------------------------------------------
# the tables: rows as changes from the profile, the paper's MLP MPJPE beside each
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of a table: the profile with ``change`` applied."""

    table: str  # "4", "5", "6", "S3"
    slug: str  # the run folder's name when the row is not the profile itself
    setting: str  # the row as the paper names it
    change: dict = field(default_factory=dict)  # Config overrides from the profile ({}: the profile itself)
    features: str = "keypoints"  # what the probe reads: "keypoints" (3D keypoints) or "latent" (Table 4 row 1)
    paper: str | None = None  # its key in kp3d.results.PAPER_RESULTS (None: a row the paper has not)
    note: str = ""  # how the row differs from the paper's, when it does

    @property
    def paper_text(self) -> str:
        """The paper's MLP MPJPE with its unit (H36M mm, 3DHP cm), or why there is none."""
        p = PAPER_RESULTS.get(self.paper or "")
        return f"{p['mpjpe']:g} {p['unit']}" if p else "not in the paper"


NO_KEYPOINT_LOSSES = dict(use_mask_loss=False, use_coverage_loss=False, use_centering_loss=False)
TABLES: dict[str, dict[str, Any]] = {
    "4": dict(title="Table 4: the loss terms (H36M, mm)", claim="each loss term lowers the error: reconstruction only > + mask > + coverage > + centering",
              rows=[Row("4", "t4-recon-only", "reconstruction only (latent)", dict(reconstruction_only=True, **NO_KEYPOINT_LOSSES), "latent", "t4_reconst"),
                    Row("4", "t4-mask", "+ mask", dict(use_coverage_loss=False, use_centering_loss=False), paper="t4_mask"),
                    Row("4", "t4-coverage", "+ coverage", dict(use_centering_loss=False), paper="t4_coverage"),
                    Row("4", "t4-centering", "+ centering (full)", dict(use_centering_loss=True), paper="t4_full")]),
    "5": dict(title="Table 5: the number of views (H36M, mm)", claim="more views, lower error; 3 views close to 4, 2 views clearly worse",
              rows=[Row("5", "t5-2views", "2 views", dict(views=(0, 1)), paper="t5_2views"),
                    Row("5", "t5-3views", "3 views", dict(views=(0, 1, 2)), paper="t5_3views"),
                    Row("5", "t5-4views", "4 views", dict(views=(0, 1, 2, 3)), paper="t5_4views")]),
    "6": dict(title="Table 6: the mask the keypoints rebuild (3DHP, cm)",
              claim="background reduction > GT mask > predicted mask (the model's own M_p is the best target)",
              rows=[Row("6", "t6-img-bg", "IMG - BG (background reduction)", dict(mask_target="img-bg"), paper="t6_img-bg"),
                    Row("6", "t6-gt", "ground-truth mask", dict(mask_target="gt"), paper="t6_gt",
                        note="the paper's GT row also drops the image reconstruction; ours keeps it, so that the row changes one thing"),
                    Row("6", "t6-predicted", "predicted mask M_p", dict(mask_target="predicted"), paper="t6_predicted"),
                    Row("6", "t6-img-bg-mask", "IMG - BG > threshold, cleaned", dict(mask_target="img-bg-mask"),
                        note="not in the paper: the cpu-demo profile's target (docs/recipe.md, 'The paper's own mask M_p')")]),
    "S3": dict(title="Table S3: the number of keypoints (3DHP, cm)", claim="more keypoints, lower error: 16 > 32 > 48 > 96",
               rows=[Row("S3", f"s3-{n}kp", f"{n} keypoints", dict(n_keypoints=n), paper=f"ts3_{n}") for n in (16, 32, 48)]),
}
# the claims checked, in each table's row order: each row should be worse than the next
PROTOCOL = ("ridge and 2-hidden-layer MLP probes (kp3d.discovery_check.probe_figures) fitted on every training frame "
            "of the export and measured on every test frame (cpu-demo: 2,400 / 960 frames, S1, S5-S8 -> S9, S11)")
# the training seeds of the committed record; seed 0 of the profile is the shipped checkpoint, trained
# at an earlier code, so the record starts at 1
DEFAULT_SEEDS = (1, 2)
NOISE_MM = 10.0  # two runs of one setting differ by up to about this much (docs/recipe.md, "Validation protocol")


def row_config(profile: str, row: Row, seed: int, **overrides: Any) -> Config:
    """The configuration a row trains: the profile, the row's change, the seed (and ``overrides``, e.g. max_iters)."""
    return get_config(profile, **{**row.change, **overrides, "seed": seed})


def run_name(profile_cfg: Config, cfg: Config, row: Row) -> str:
    """The run folder's stem: "profile" when ``cfg`` is the profile itself (seed apart), else the row's slug.

    Example:
        >>> from kp3d.profiles import get_config
        >>> row = TABLES["5"]["rows"][0]
        >>> run_name(get_config("smoke"), row_config("smoke", row, 0), row), run_name(get_config("smoke"), get_config("smoke"), row)
        ('t5-2views', 'profile')
    """
    a, b = profile_cfg.to_dict(), cfg.to_dict()
    return "profile" if all(a.get(k) == v for k, v in b.items() if k != "seed") else row.slug


# ------------------------------------------------------------------------------------------------
# run identity: configuration + training code
# ------------------------------------------------------------------------------------------------
_TRAINING_IMPORTS = "import kp3d.train, kp3d.export, data_utils.datasets"


def _code_text(path: Path) -> bytes:
    """A module's code without its comments and docstrings, so that a reworded comment keeps the runs."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def training_code_version() -> str:
    """sha256 (16 hex) of the code that trains and exports: every kp3d / data_utils module that
    ``import kp3d.train, kp3d.export, data_utils.datasets`` loads in a fresh interpreter, comments and
    docstrings left out. Any change to what a run computes changes it."""
    probe = (f"{_TRAINING_IMPORTS}, sys, json; print(json.dumps(sorted(m.__file__ for n, m in list(sys.modules.items()) "
             "if n.split('.')[0] in ('kp3d', 'data_utils') and getattr(m, '__file__', None))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    h = hashlib.sha256()
    for f in json.loads(out.stdout.strip().splitlines()[-1]):
        p = Path(f)
        h.update(f"{p.parent.name}/{p.name}".encode())
        h.update(_code_text(p))
    return h.hexdigest()[:16]


def run_key(cfg: Config, code_version: str) -> str:
    """8 hex digits naming (configuration, training code): a run is reused only under the same key."""
    return hashlib.sha256((cfg.to_json() + code_version).encode()).hexdigest()[:8]


@dataclass
class Run:
    name: str  # run_name + seed + key: the folder under runs/
    cfg: Config
    rows: list  # the Rows this run stands for
    run_dir: Path

    @property
    def step(self) -> int:
        """The step of its newest checkpoint (0: not started)."""
        last = ckpt_io.latest_checkpoint(self.run_dir)
        return int(ckpt_io.load_checkpoint(last)["step"]) if last is not None else 0

    @property
    def trained(self) -> bool:
        return self.step >= self.cfg.max_iters


def plan(profile: str, seeds, tables, out_dir: Path, code_version: str, **overrides: Any) -> list[Run]:
    """The distinct runs the ``tables`` need, once per seed, rows that share a configuration sharing a run."""
    bad = [t for t in tables if t not in TABLES]
    if bad:
        raise ValueError(f"unknown tables {bad}: choose from {', '.join(TABLES)} (or all)")
    runs: dict[str, Run] = {}
    for seed in seeds:
        base = get_config(profile, **overrides, seed=seed)
        for t in tables:
            for row in TABLES[t]["rows"]:
                cfg = row_config(profile, row, seed, **overrides)
                key = run_key(cfg, code_version)
                name = f"{run_name(base, cfg, row)}-s{seed}-{key}"
                if name not in runs:
                    runs[name] = Run(name, cfg, [], out_dir / "runs" / name)
                runs[name].rows.append(row)
    return list(runs.values())


def stale_runs(out_dir: Path, runs: list[Run]) -> list[Path]:
    """Run folders under ``out_dir/runs`` that no run of the plan uses (another configuration or code): kept, listed."""
    names = {r.name for r in runs}
    root = out_dir / "runs"
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name not in names) if root.is_dir() else []


# ------------------------------------------------------------------------------------------------
# training, N runs at once
# ------------------------------------------------------------------------------------------------


def _run_one(run: Run, log_path: str, threads: int, device: str | None) -> str:
    """Train (or resume) one run in this process, then measure it (:func:`measure_run`), the output
    of both to ``log_path``: a pool of N jobs trains and measures N runs at once."""

    torch.set_num_threads(threads)
    with open(log_path, "a") as log:
        sys.stdout = sys.stderr = log
        if not run.trained:
            train(run.cfg, run_dir=run.run_dir, resume=run.run_dir.exists(), progress=True, device=device)
        print(f"[tables] measuring {run.name}", flush=True)
        measure_run(run)
    return str(run.run_dir)


def run_all(runs: list[Run], out_dir: Path, jobs: int = 1, threads: int | None = None, device: str | None = None,
            train_new: bool = True, poll_s: float = 30.0) -> None:
    """Train the runs not yet trained (with ``train_new``) and measure every trained run not yet
    measured, ``jobs`` at a time (``threads`` torch threads each; default the cores shared out),
    saying which run is at which step and the time left.

    Each job measures its own run as soon as it is trained, so measuring (an export of every frame
    and the probes, 3-15 minutes on one core) runs beside the other jobs instead of one run after
    another at the end."""

    # a run's step reads its newest checkpoint from disk: read once per poll, not once per use
    steps = {r.name: r.step for r in runs}
    todo = [r for r in runs if (steps[r.name] < r.cfg.max_iters and train_new)
            or (steps[r.name] >= r.cfg.max_iters and cached_measure(r, steps[r.name]) is None)]
    if not todo:
        return
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    total = sum(r.cfg.max_iters for r in todo)
    done0 = sum(steps[r.name] for r in todo)
    n_train = sum(steps[r.name] < r.cfg.max_iters for r in todo)
    print(f"[tables] {n_train} run(s) to train and {len(todo)} to measure, {jobs} at a time, {threads} thread(s) "
          f"each; logs in {out_dir / 'logs'}")
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_run_one, r, str(out_dir / "logs" / f"{r.name}.log"), threads, device): r for r in todo}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
            for f in finished:
                r = futures[f]
                try:
                    f.result()
                except Exception as e:  # one failed run stops the command; the others keep their checkpoints
                    for g in pending:
                        g.cancel()
                    raise RuntimeError(f"run {r.name} failed ({type(e).__name__}: {e}); its log: "
                                       f"{out_dir / 'logs' / (r.name + '.log')}; fix it and run the same command again") from e
                print(f"[tables] {r.name}: trained and measured")
            steps = {r.name: r.step for r in todo}
            now = sum(steps.values())
            rate = (now - done0) / max(time.time() - t0, 1e-9)
            active = ", ".join(f"{r.name} {steps[r.name]}/{r.cfg.max_iters}" for r in todo if 0 < steps[r.name] < r.cfg.max_iters)
            measuring = [futures[f].name for f in pending if steps[futures[f].name] >= futures[f].cfg.max_iters]
            left = f"about {(total - now) / rate / 60:.0f} min of training left" if rate > 0 else "time left unknown yet"
            print(f"[tables] {len(todo) - len(pending)}/{len(todo)} runs done; {active or 'no run training'}"
                  + (f"; measuring {', '.join(measuring)}" if measuring else "") + f"; {left}", flush=True)


# ------------------------------------------------------------------------------------------------
# measuring: one protocol for every row
# ------------------------------------------------------------------------------------------------


def measure_run(run: Run) -> dict:
    """The probe figures of a trained run (:data:`PROTOCOL`; the mask figures too when it is in Table 6),
    kept in ``measure.json`` beside it and reused while its checkpoint and key are the same."""
    step = run.step
    old = cached_measure(run, step)
    if old is not None:
        return old
    res = measure(run.run_dir, with_untrained=False, with_masks=_with_masks(run))
    res.update(name=run.name, step=step)
    path = run.run_dir / "measure.json"
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(res, indent=1, default=float))
    tmp.replace(path)  # a measurement cut short leaves no measure.json
    return res


def _with_masks(run: Run) -> bool:
    return any(r.table == "6" for r in run.rows)


def cached_measure(run: Run, step: int | None = None) -> dict | None:
    """The run's ``measure.json`` if it measured this run's newest checkpoint (and the masks, for Table 6), else None.
    ``step``: that checkpoint's step when the caller has read it already."""
    path = run.run_dir / "measure.json"
    if not path.is_file():
        return None
    old = json.loads(path.read_text())
    step = run.step if step is None else step
    if old.get("name") == run.name and old.get("step") == step and ("masks" in old or not _with_masks(run)):
        return old
    return None


def row_figures(row: Row, res: dict) -> dict:
    """The figures of one row from its run's :func:`measure_run`: MLP / ridge MPJPE (mm), x the mean pose, N- and P-MPJPE."""
    p = res["probes"]
    mlp = p["latent_mlp"] if row.features == "latent" else p["mlp"]
    mp = p["mean_pose"]["mpjpe"]
    out = {"seed": Config.from_dict(res["config"]).seed, "step": res["step"], "mean_pose": mp, "mlp": mlp["mpjpe"],
           "mlp_ratio": mlp["mpjpe"] / mp, "n_mpjpe": mlp["n_mpjpe"], "p_mpjpe": mlp["p_mpjpe"],
           "ridge": None if row.features == "latent" else p["ridge"]["mpjpe"],
           "on_gt_mask": res["geometry"].get("in_gt_mask") if row.features != "latent" else None}
    if "masks" in res:
        out["pred_mask_iou"] = res["masks"]["pred"]["iou"]
    return out


def verdict(a: list[float], b: list[float], noise: float = NOISE_MM) -> str:
    """The paper's claim "row a is worse than row b" against our MLP MPJPEs (mm, one per seed).

    Within noise when the means differ by less than ``noise`` or the seeds' ranges overlap; else
    reproduced in direction or contradicted.

    Example:
        >>> verdict([120.0, 118.0], [90.0, 95.0]), verdict([90.0], [95.0]), verdict([80.0, 100.0], [99.0, 60.0])
        ('reproduced in direction', 'within noise', 'within noise')
    """
    d = float(np.mean(a) - np.mean(b))
    overlap = len(a) > 1 and len(b) > 1 and min(a) <= max(b) and min(b) <= max(a)
    if abs(d) < noise or overlap:
        return "within noise"
    return "reproduced in direction" if d > 0 else "contradicted"


def table_rows(runs: list[Run], results: dict[str, dict], table: str) -> list[dict]:
    """Per row of ``table``: the row, its figures per measured seed."""
    out = []
    for row in TABLES[table]["rows"]:
        figs = [row_figures(row, results[r.name]) for r in runs if row in r.rows and r.name in results]
        out.append({"row": row, "seeds": sorted(figs, key=lambda f: f["seed"]),
                    "runs": [r.name for r in runs if row in r.rows]})
    return out


def _fmt_seeds(vals: list[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in vals)


def table_markdown(runs: list[Run], results: dict[str, dict], table: str, profile: str) -> str:
    """One table beside the paper's: per row, what it changes, our MLP (mean over seeds; each seed),
    x the mean pose, ridge, N-/P-MPJPE, keypoints on the GT mask, and the paper's figure; then the
    verdict on each step of the claim."""
    spec = TABLES[table]
    lines = [f"### {spec['title']}", "",
             f"The paper's claim: {spec['claim']}.", "",
             f"| row | change from {profile} | seeds | MLP mm (x mean pose) | MLP per seed | ridge mm | N-MPJPE | P-MPJPE | on GT mask | paper MLP |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rows = table_rows(runs, results, table)
    for r in rows:
        row, s = r["row"], r["seeds"]
        change = ", ".join(f"{k}={v}" for k, v in row.change.items()) or "none"
        paper = row.paper_text
        if not s:
            lines.append(f"| {row.setting} | {change} | none yet | not measured | | | | | | {paper} |")
            continue
        m = lambda k: float(np.mean([f[k] for f in s]))  # noqa: E731
        ridge = "latent: MLP only" if row.features == "latent" else f"{m('ridge'):.1f}"
        gt = "" if s[0]["on_gt_mask"] is None else f"{100 * m('on_gt_mask'):.0f}%"
        lines.append(f"| {row.setting} | {change} | {', '.join(str(f['seed']) for f in s)} | {m('mlp'):.1f} ({m('mlp_ratio'):.2f}x) | "
                     f"{_fmt_seeds([f['mlp'] for f in s])} | {ridge} | {m('n_mpjpe'):.1f} | {m('p_mpjpe'):.1f} | {gt} | {paper} |")
    notes = [f"- {r['row'].setting}: {r['row'].note}" for r in rows if r["row"].note]
    if notes:
        lines += [""] + notes
    measured = [r for r in rows if r["seeds"] and r["row"].paper is not None]
    if len(measured) > 1:
        lines += ["", "| claim (paper: worse > better) | ours (MLP mm) | verdict |", "|---|---|---|"]
        for a, b in zip(measured, measured[1:]):
            va, vb = [f["mlp"] for f in a["seeds"]], [f["mlp"] for f in b["seeds"]]
            lines.append(f"| {a['row'].setting} > {b['row'].setting} | {np.mean(va):.1f} vs {np.mean(vb):.1f} | {verdict(va, vb)} |")
    return "\n".join(lines) + "\n"


def tables_markdown(runs: list[Run], results: dict[str, dict], tables, profile: str, code_version: str,
                    device: str, minutes: float | None) -> str:
    """Every table, with the protocol, the code version, the device and the time they took."""
    seeds = sorted({r.cfg.seed for r in runs})
    head = [f"Profile `{profile}`, training seeds {', '.join(map(str, seeds))}, {runs[0].cfg.max_iters} steps per run; "
            f"probes: {PROTOCOL}. Mean pose and every figure on the test subjects of `{runs[0].cfg.data}`. "
            f"Training code version `{code_version}`; trained on {device}"
            + (f" in {minutes:.0f} min of wall time" if minutes else "") + ".",
            f"A verdict is 'within noise' when the two rows differ by less than {NOISE_MM:g} mm or their seeds overlap.", ""]
    return "\n".join(head) + "\n".join(table_markdown(runs, results, t, profile) + "\n" for t in tables)


BEGIN, END = "<!-- tables: begin (written by python -m kp3d.tables --docs) -->", "<!-- tables: end -->"


def update_docs(path: Path, body: str) -> None:
    """Replace the generated block of ``path`` (between :data:`BEGIN` and :data:`END`) with ``body``;
    the hand-written text around it stays. A file without the markers is refused, not overwritten."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has no '{BEGIN}' ... '{END}' block: add the two lines where the tables go")
    pre, rest = text.split(BEGIN, 1)
    path.write_text(pre + BEGIN + "\n" + body + "\n" + END + rest.split(END, 1)[1])


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------


def _seeds(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        vals = ()
    if not vals:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1")
    return vals


def main(argv: list[str] | None = None) -> int:

    ap = argparse.ArgumentParser(prog="python -m kp3d.tables", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="cpu-demo")
    ap.add_argument("--seeds", type=_seeds, default=DEFAULT_SEEDS,
                    help=f"training seeds (default {','.join(map(str, DEFAULT_SEEDS))}: those of docs/replication.md)")
    ap.add_argument("--which", nargs="+", default=["all"], help=f"tables: any of {', '.join(TABLES)} or all")
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at once (2 on two cores; more on a GPU)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run (default: the cores shared out)")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: CUDA when available)")
    ap.add_argument("--out", default=None, help="default outputs/tables/<profile>")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a Config change for every row (e.g. max_iters=200 for a quick look)")
    ap.add_argument("--plan", action="store_true", help="list the runs, trained or not, and stop")
    ap.add_argument("--no-train", action="store_true",
                    help="measure and write the runs trained so far; rows whose runs are not trained say so")
    ap.add_argument("--docs", default=None, help="also write the tables into this file's generated block (docs/replication.md)")
    add_debug_flag(ap)
    args = ap.parse_args(argv)

    tables = list(TABLES) if "all" in args.which else args.which
    if args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs}: expected 1 or more")
    if (args.device or "").startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: this machine has no CUDA device; leave --device out (or give cpu)")
    out_dir = Path(args.out) if args.out else output_dir("tables", args.profile)
    code = training_code_version()
    runs = plan(args.profile, args.seeds, tables, out_dir, code, **parse_overrides(args.overrides))
    stale = stale_runs(out_dir, runs)
    print(f"[tables] {len(runs)} runs for tables {', '.join(tables)} (seeds {', '.join(map(str, args.seeds))}) in {out_dir}; "
          f"training code {code}")
    for r in runs:
        step = r.step
        state = (("measured" if cached_measure(r, step) else "trained") if step >= r.cfg.max_iters
                 else (f"at step {step}" if step else "to train"))
        print(f"  {r.name:48s} {state:12s} rows: {'; '.join(f'{x.table}/{x.setting}' for x in r.rows)}")
    if stale:
        print(f"[tables] {len(stale)} run folder(s) of another configuration or code are kept, not used: "
              + ", ".join(p.name for p in stale))
    if args.plan:
        return 0
    t0 = time.time()
    run_all(runs, out_dir, args.jobs, args.threads, args.device, train_new=not args.no_train)
    results = {}
    trained = [r for r in runs if r.trained]
    for r in trained:  # measured by run_all: read back
        results[r.name] = measure_run(r)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    md = tables_markdown(runs, results, tables, args.profile, code, name, None if args.no_train else (time.time() - t0) / 60)
    (out_dir / "tables.md").write_text(md)
    (out_dir / "tables.json").write_text(json.dumps(
        {"profile": args.profile, "code_version": code, "device": name, "protocol": PROTOCOL,
         "tables": {t: [{"table": t, "setting": x["row"].setting, "change": x["row"].change, "paper": PAPER_RESULTS.get(x["row"].paper or ""), "runs": x["runs"], "seeds": x["seeds"]} for x in table_rows(runs, results, t)]
                    for t in tables}}, indent=1, default=str))
    if args.docs:
        update_docs(Path(args.docs), md)
    print(md)
    print(f"[tables] wrote {out_dir / 'tables.md'} and tables.json" + (f"; updated {args.docs}" if args.docs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(run_entry_point(main))
