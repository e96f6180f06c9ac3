"""Results: the paper's figures, Markdown tables and JSON files of result rows, label-fraction curves.

A result row is a dict with ``key`` (the features: ``mv_keypoints``, ``latent``, ``mean_pose``, ...),
``setting``, ``probe``, ``fraction`` (of labelled training frames), ``mpjpe`` / ``n_mpjpe`` /
``p_mpjpe`` (mm on our data) and optionally ``paper``, a key of :data:`PAPER_RESULTS`.

Example:
    >>> rows = [{"key": "mv_keypoints", "setting": "ours MV", "probe": "mlp", "fraction": 1.0,
    ...          "mpjpe": 80.0, "n_mpjpe": 78.0, "p_mpjpe": 60.0, "paper": "t1_mv_mlp"}]
    >>> print(results_markdown(rows).splitlines()[2][:40])
    | ours MV | mlp | 100% | 80.0 | 78.0 | 6
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PAPER_RESULTS", "results_markdown", "summary", "write_results", "plot_fraction_curves"]

# The paper's figures (Honari et al.), Tables 1 and 3-6, S3. mm on Human3.6M; cm on MPI-INF-3DHP.
PAPER_RESULTS: dict[str, dict[str, Any]] = {
    "t1_sv_mlp": dict(table="1", setting="ours SV, 2-hid MLP, 32 kpts", mpjpe=125.73, n_mpjpe=121.04, p_mpjpe=89.05, unit="mm"),
    "t1_mv_linear": dict(table="1", setting="ours MV, linear, 32 kpts", mpjpe=120.9, n_mpjpe=117.9, p_mpjpe=93.5, unit="mm"),
    "t1_mv_mlp": dict(table="1", setting="ours MV, 2-hid MLP, 32 kpts", mpjpe=73.8, n_mpjpe=72.6, p_mpjpe=63.0, unit="mm"),
    "t3_2d": dict(table="3", setting="ours, linear 2D, 32 kpts (%-MSE)", pct_mse=2.38, unit="% of image size"),
    "t4_reconst": dict(table="4", setting="reconst only (latent probe)", mpjpe=111.8, n_mpjpe=107.6, p_mpjpe=79.7, unit="mm"),
    "t4_mask": dict(table="4", setting="+ mask", mpjpe=79.9, n_mpjpe=78.6, p_mpjpe=67.0, unit="mm"),
    "t4_coverage": dict(table="4", setting="+ coverage", mpjpe=78.3, n_mpjpe=77.0, p_mpjpe=65.6, unit="mm"),
    "t4_full": dict(table="4", setting="+ centering (full)", mpjpe=73.8, n_mpjpe=72.6, p_mpjpe=63.0, unit="mm"),
    "t5_2views": dict(table="5", setting="2 views", mpjpe=103.21, n_mpjpe=100.7, p_mpjpe=81.6, unit="mm"),
    "t5_3views": dict(table="5", setting="3 views", mpjpe=77.7, n_mpjpe=75.7, p_mpjpe=64.0, unit="mm"),
    "t5_4views": dict(table="5", setting="4 views", mpjpe=73.8, n_mpjpe=72.6, p_mpjpe=63.0, unit="mm"),
    "t6_img-bg": dict(table="6 (3DHP)", setting="IMG-BG mask", mpjpe=17.48, n_mpjpe=16.93, p_mpjpe=12.64, unit="cm"),
    "t6_gt": dict(table="6 (3DHP)", setting="GT mask", mpjpe=14.57, n_mpjpe=14.21, p_mpjpe=11.52, unit="cm"),
    "t6_predicted": dict(table="6 (3DHP)", setting="predicted mask", mpjpe=14.37, n_mpjpe=13.98, p_mpjpe=10.99, unit="cm"),
    "ts3_16": dict(table="S3 (3DHP)", setting="16 kpts", mpjpe=16.16, unit="cm"),
    "ts3_32": dict(table="S3 (3DHP)", setting="32 kpts", mpjpe=15.53, unit="cm"),
    "ts3_48": dict(table="S3 (3DHP)", setting="48 kpts", mpjpe=14.57, unit="cm"),
    "ts3_96": dict(table="S3 (3DHP)", setting="96 kpts", mpjpe=14.16, unit="cm"),
}


def _fmt(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else str(v)


def results_markdown(rows: list[dict], title: str | None = None) -> str:
    """A Markdown table of result rows, each beside the paper's figures when it has a ``paper`` key.

    Ours: the synthetic data set (mm) unless stated; the paper: Human3.6M in mm, 3DHP in cm.
    """
    head = ("| setting | probe | labels | MPJPE | N-MPJPE | P-MPJPE | paper table | paper setting "
            "| paper MPJPE | paper N-MPJPE | paper P-MPJPE |")
    lines = ([f"### {title}", ""] if title else []) + [head, "|" + "---|" * 11]
    for r in rows:
        p = PAPER_RESULTS.get(r.get("paper") or "", {})
        if "pct_mse" in r:  # the 2D row: %-MSE in the MPJPE column
            ours = [f"{_fmt(r['pct_mse'], 2)} %", "-", "-"]
            paper = [f"{_fmt(p.get('pct_mse'), 2)} %" if p else "-", "-", "-"]
        else:
            ours = [_fmt(r.get(k)) for k in ("mpjpe", "n_mpjpe", "p_mpjpe")]
            unit = f" {p['unit']}" if p.get("unit") == "cm" else ""
            paper = [(_fmt(p.get(k), 2) + unit) if p.get(k) is not None else "-" for k in ("mpjpe", "n_mpjpe", "p_mpjpe")]
        frac = r.get("fraction", 1.0)
        lines.append("| " + " | ".join([str(r.get("setting", r.get("key"))), str(r.get("probe", "-")),
                                          f"{100 * frac:g}%", *ours, p.get("table", "-"),
                                          p.get("setting", "-"), *paper]) + " |")
    lines += ["", "Ours: pelvis-relative world-frame errors in mm on the data set of the run (synthetic "
              "by default); the paper: Human3.6M (mm) or MPI-INF-3DHP (cm). The 2D row is %-MSE "
              "(mean error in % of the image size)."]
    return "\n".join(lines) + "\n"


TABLE6_ORDER = ("img-bg", "gt", "predicted", "img-bg-mask")  # the paper's rows, then the profile's own
TABLE6_PAPER = {"img-bg": "t6_img-bg", "gt": "t6_gt", "predicted": "t6_predicted"}


def table6_markdown(rows: list[dict]) -> str:
    """Table 6 on the embedded data beside the paper's (3DHP, MLP MPJPE in cm): per mask target, the
    mean over the seeds measured of the MLP and ridge probes (x the mean pose), the seeds' spread,
    the share of keypoints on the GT mask and the target's IoU with the GT mask.

    Args:
        rows: :func:`kp3d.ladder.table6_row` dicts (``target``, ``seed``, ``mlp``, ``mlp_ratio``,
            ``ridge_ratio``, ``on_gt_mask``, ``target_iou``, ``mean_pose``).
    """
    lines = ["| mask target | seeds | MLP mm (x mean pose) | seeds' MLP (x) | ridge (x) | keypoints on GT mask | target IoU with GT | paper MLP (3DHP) |",
             "|---|---|---|---|---|---|---|---|"]
    for target in TABLE6_ORDER:
        rs = sorted((r for r in rows if r["target"] == target), key=lambda r: r["seed"])
        if not rs:
            continue
        mean = lambda k: float(np.mean([r[k] for r in rs]))  # noqa: E731
        paper = PAPER_RESULTS.get(TABLE6_PAPER.get(target, ""), {})
        seeds = ", ".join(str(r["seed"]) for r in rs)
        per_seed = " / ".join(f"{r['mlp_ratio']:.2f}" for r in rs)
        lines.append(f"| {target} | {seeds} | {mean('mlp'):.1f} ({mean('mlp_ratio'):.2f}x) | {per_seed} | {mean('ridge_ratio'):.2f}x | "
                     f"{100 * mean('on_gt_mask'):.1f}% | {mean('target_iou'):.3f} | "
                     f"{_fmt(paper.get('mpjpe'), 2) + ' cm' if paper else 'not in the paper'} |")
    return "\n".join(lines) + "\n"


TABLE6_FILE = Path(__file__).parent / "data" / "table6_cpu_demo.json"  # written by python -m kp3d.ladder table6


def table6_report(path: str | Path = TABLE6_FILE) -> str:
    """The project's Table 6 on the embedded data (:func:`table6_markdown` of the rows in ``path``),
    with the render it was measured on and the command that made it; a line saying so when the
    file is missing (an installation without the package data)."""
    path = Path(path)
    if not path.is_file():
        return f"Table 6 has not been measured in this installation ({path} is missing): python -m kp3d.ladder table6 --help\n"
    doc = json.loads(path.read_text())
    return (f"Table 6 on the embedded data, the cpu-demo profile with each mask target (MLP and ridge probes on "
            f"`{doc.get('data') or 'synthetic'}`, fitted on its training split, measured on its test split; "
            f"{doc.get('note', '')})\n\n" + table6_markdown(doc["rows"]))


def summary(rows: list[dict], probe: str = "mlp") -> dict[str, Any]:
    """The headline numbers at 100 % labels: each feature set's errors and ours/latent, ours/untrained.

    The paper's ours/latent ratio (Table 1 MV MLP over Table 4 row 1) is 73.8 / 111.8 = 0.66.
    """
    full = {r["key"]: r for r in rows if r.get("fraction", 1.0) == 1.0 and r.get("probe") in (probe, "-", "supervised")}
    out: dict[str, Any] = {k: {m: round(full[k][m], 2) for m in ("mpjpe", "n_mpjpe", "p_mpjpe") if m in full[k]} for k in full}
    ours = full.get("mv_keypoints")
    for base in ("latent", "untrained", "mean_pose"):
        if ours is not None and base in full:
            out[f"ratio_ours_{base}"] = round(ours["mpjpe"] / full[base]["mpjpe"], 3)
    out["paper_ratio_ours_latent"] = round(73.8 / 111.8, 3)
    return out


def write_results(rows: list[dict], out_dir, name: str = "results", title: str | None = None,
                  overwrite: bool = False, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``<name>.json`` (rows + summary + the paper's figures) and ``<name>.md`` under out_dir.

    Existing files are kept unless ``overwrite=True`` (results are a user's work).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jp, mp = out_dir / f"{name}.json", out_dir / f"{name}.md"
    for p in (jp, mp):
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists: pass overwrite=True or choose another name/out_dir")
    used = {r.get("paper") for r in rows if r.get("paper")}
    doc = {"rows": rows, "summary": summary(rows), "paper": {k: PAPER_RESULTS[k] for k in sorted(used)}, **(extra or {})}
    jp.write_text(json.dumps(doc, indent=2, default=_json_default))
    mp.write_text(results_markdown(rows, title))
    return jp, mp


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (tuple, Path)):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_SERIES_ORDER = ["mv_keypoints", "sv_keypoints", "latent", "untrained"]  # the paper's series first


def plot_fraction_curves(rows: list[dict], path=None, title: str | None = None):
    """Fig. 5/6-style curves: error against the % of labelled frames, one line per (features, probe),
    solid for the MLP probe and dashed for the linear one; horizontal lines for single-number
    baselines (mean pose, supervised upper bound). Saved as PNG when ``path`` is given.

    Returns:
        the matplotlib figure.
    """
    import matplotlib.pyplot as plt  # the caller's backend: in a notebook the figure shows (and closes) inline

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    series: dict[tuple, list] = {}
    flat = []
    for r in rows:
        if "mpjpe" not in r:
            continue
        if r.get("probe") in ("-", "supervised"):
            flat.append(r)
        else:
            series.setdefault((r["key"], r["probe"]), []).append(r)
    # one colour per feature set, whatever the set (keypoints, lifter, latent, untrained, each silhouette)
    keys = sorted({key for key, _ in series}, key=lambda k: (k not in _SERIES_ORDER, _SERIES_ORDER.index(k) if k in _SERIES_ORDER else 0, k))
    colors = {k: plt.get_cmap("tab10").colors[i % 10] for i, k in enumerate(keys)}
    for ax, m, name in zip(axes, ("mpjpe", "n_mpjpe", "p_mpjpe"), ("MPJPE", "N-MPJPE", "P-MPJPE")):
        for (key, probe), rs in sorted(series.items()):
            rs = sorted(rs, key=lambda r: r["fraction"])
            ax.plot([100 * r["fraction"] for r in rs], [r[m] for r in rs], "-" if probe == "mlp" else "--",
                    marker="o" if probe == "mlp" else "s", color=colors[key], label=f"{key} ({probe})")
            if len(rs) == 1:  # a baseline measured with every label only: named beside its point
                ax.annotate(f"{key} ({probe})", (100 * rs[0]["fraction"], rs[0][m]), xytext=(-6, 0),
                            textcoords="offset points", ha="right", va="center", fontsize=6, color=colors[key])
        for r in flat:
            ax.axhline(r[m], color="gray" if r["key"] == "mean_pose" else "black", lw=1,
                       ls=":" if r["key"] == "mean_pose" else "-.", label=r["key"])
            ax.annotate(r["key"], (0.01, r[m]), xycoords=("axes fraction", "data"), xytext=(0, 2),
                        textcoords="offset points", fontsize=6, color="gray" if r["key"] == "mean_pose" else "black")
        ax.set_xscale("log")
        ticks = sorted({100 * r["fraction"] for rs in series.values() for r in rs})
        if ticks:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel("% of labelled training frames")
        ax.set_ylabel(f"{name} (mm)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "Probe error against the amount of 3D labels (solid: MLP, dashed: linear)")
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig
