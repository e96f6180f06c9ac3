"""Multi-view data sets with one interface: synthetic (default), Human3.6M and MPI-INF-3DHP.

Every ``__getitem__`` returns the sample dict of docs/architecture.md::

    images       (V, 3, H, W) float32 in [0, 1]
    backgrounds  (V, 3, H, W) float32, the ESTIMATED (per-pixel median) background per view
    K            (V, 3, 3) float32 pixel intrinsics at this resolution (OpenCV pixel centres)
    R            (V, 3, 3) float32 world-to-camera rotation
    t            (V, 3) float32 world-to-camera translation, mm
    index        int64 scalar
    gt           dict, ONLY for evaluation and ablations:
        joints_3d (17, 3) world mm; joints_2d (V, 17, 2) pixels; masks (V, 1, H, W) {0, 1}
        (synthetic only); backgrounds (V, 3, H, W) the true background (synthetic only)

The model may read only the first six; ``gt`` holds labels. ``frame_info(i)`` returns
``dict(subject, frame, split, action)``.

The data sets live one per module: :mod:`data_utils.synthetic` (the embedded default),
:mod:`data_utils.h36m`, :mod:`data_utils.mpi3dhp` and :mod:`data_utils.rig` (a user's own calibrated
cameras); they are re-exported here. This module reads the data names the notebooks and the trainer
take (``DATA``: "synthetic[?seed=N]", "h36m:/root", "3dhp:/root", "rig:/folder?options") and opens
a captured set at explicit sizes with :func:`open_dataset`; ``kp3d.profiles.make_dataset`` opens any
of them at the sizes of a profile. :func:`data_views` and :func:`view_sequence` are the notebooks'
other helpers.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .background import median_background
from .h36m import Human36MDataset
from .mpi3dhp import MPI3DHPDataset, parse_3dhp_calibration  # noqa: F401 (part of this API)
from .rig import RigDataset, make_rig_dataset, rig_camera_names, rig_root, too_few_cameras
from .synthetic import SyntheticDataset, load_subject


def check_calibration(data: str, calibration: str | Path | None) -> str | None:
    """The rig calibration file to use with ``data`` (None: the one inside the rig folder).

    A calibration file belongs to ``data="rig:PATH"`` only; with any other data set it is an error
    (the synthetic set and Human3.6M / 3DHP bring their own cameras).
    """
    if calibration is None or str(calibration).strip() == "":
        return None
    if not str(data).startswith("rig:"):
        raise ValueError(f"calibration={str(calibration)!r} is only used with data='rig:/path/to/folder', but "
                         f"data={data!r}. Fix: leave CALIBRATION empty (--calibration unset), or set DATA to "
                         f"'rig:<your rig folder>'")
    return str(calibration)


def synthetic_options(data: str) -> dict | None:
    """The :class:`SyntheticConfig` fields a ``"synthetic[?seed=N]"`` data name sets; None for other data.

    ``seed`` renders the embedded set anew (bodies, clothing, rooms, motions): ``synthetic?seed=3``
    is the validation render settings are chosen on, while ``synthetic`` (seed 0) holds the test
    subjects that results are reported on (docs/recipe.md, "Validation protocol"). Each seed has its
    own cache folder (the seed is part of the cache key).

    Example:
        >>> synthetic_options("synthetic?seed=3"), synthetic_options("synthetic"), synthetic_options("h36m:/x")
        ({'seed': 3}, {}, None)
    """
    name, sep, query = str(data).partition("?")
    if name != "synthetic":
        return None
    out: dict = {}
    for item in (query.split("&") if sep else []):
        key, eq, value = (s.strip() for s in item.partition("="))
        if key != "seed" or not eq or not re.fullmatch(r"\d+", value):
            raise ValueError(f"data={data!r}: {item!r} is not a synthetic option; the one option is the render's "
                             f"data seed, e.g. 'synthetic?seed=3' (an integer >= 0)")
        out["seed"] = int(value)
    return out


def open_dataset(data: str, split: str = "train", calibration: str | Path | None = None, **overrides) -> Dataset:
    """The captured data set named by ``data`` at explicit sizes (the synthetic set: :class:`SyntheticDataset`).

    Args:
        data: "h36m:/path/to/root", "3dhp:/path/to/root" or "rig:/path/to/folder" (``data_utils.rig``).
        split: "train", "test" or "all".
        calibration: rig only: the calibration file; None = the one inside the rig folder.
        overrides: ``image_size``, ``frame_step``, ``background_frames``, ``subjects`` (and
            ``cameras`` for 3DHP); rig: any :class:`data_utils.rig.RigDataset` argument.
    """
    kind, sep, path = data.partition(":")
    if not sep or not path:
        raise ValueError(f"data={data!r}: expected 'synthetic', 'h36m:/path/to/root', '3dhp:/path/to/root' "
                         f"or 'rig:/path/to/folder'")
    if kind == "rig":  # a user's own calibrated rig (data_utils.rig)
        return make_rig_dataset(data, calibration=calibration, split=split, **overrides)
    if kind == "h36m":
        return Human36MDataset(path, split, **overrides)
    if kind == "3dhp":
        return MPI3DHPDataset(path, split, **overrides)
    raise ValueError(f"data={data!r}: unknown kind {kind!r}; expected 'synthetic', 'h36m:<root>', '3dhp:<root>' "
                     f"or 'rig:<folder>'")


def absolute_data(data: str, base: str | Path) -> str:
    """``data`` with a relative folder (and a rig's ``backgrounds=`` folder) made absolute against
    ``base``, so that it means the same from any working directory (the notebooks run in notebooks/).

    Example:
        >>> absolute_data("rig:my_rig?trim=true", "/home/me")
        'rig:/home/me/my_rig?trim=true'
        >>> absolute_data("synthetic", "/home/me")
        'synthetic'
    """
    kind, sep, rest = str(data).partition(":")
    if not sep or kind not in ("h36m", "3dhp", "rig") or not rest:
        return str(data)
    path, qsep, query = rest.partition("?")

    def absolute(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else Path(base) / q)

    out = f"{kind}:{absolute(path)}"
    if qsep:
        items = []
        for item in query.split("&"):
            key, eq, value = item.partition("=")
            items.append(f"{key}={absolute(value)}" if key.strip() == "backgrounds" and eq and value else item)
        out += "?" + "&".join(items)
    return out


def data_views(data: str, calibration: str | Path | None = None) -> tuple[int, ...] | None:
    """The view indices a model trained on ``data`` should use: every camera of a rig (read from its
    calibration, no video decoded), None for the other data sets (the profile's ``views``).

    Example:
        >>> data_views("synthetic") is None
        True
    """
    calibration = check_calibration(data, calibration)
    if not str(data).startswith("rig:"):
        return None

    names = rig_camera_names(data, calibration)
    if len(names) < 2:  # said here, before a model is configured with too few views
        raise ValueError(too_few_cameras(rig_root(data), names))
    return tuple(range(len(names)))


def _even_indices(n: int, max_frames: int | None) -> np.ndarray:
    """range(n), or at most ``max_frames`` evenly spaced indices of it."""
    if max_frames is None or n <= max_frames:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(int))


def view_sequence(dataset: Dataset, view: int, subject: str | None = None, max_frames: int | None = 1000) -> dict:
    """One camera's frames over one sequence and the background to compare a median with (notebook 01).

    Where the frames and the reference come from, by data set:

    - synthetic: the rendered frames of ``subject`` and the TRUE background (``"true background"``);
    - a rig (:class:`data_utils.rig.RigDataset`): its frames (one sequence; ``subject`` is ignored);
      the empty-scene image or clip when the rig folder has one (``"empty-scene background"``), else
      the median over the frames (``"median of all frames"``: no truth exists, so smaller medians are
      compared with the best one and the full median's own score is infinite);
    - any other data set: the samples of ``subject`` (all samples when None); the true background
      when they carry ``gt.backgrounds``, else the median over the frames.

    Args:
        dataset: a data set of the sample contract (``kp3d.profiles.make_dataset``).
        view: the camera index.
        subject: the subject (synthetic, Human3.6M, 3DHP); ignored for a rig.
        max_frames: at most this many frames, evenly spaced (a long recording in float64 would not fit
            in memory: 1000 frames of 128 px take 0.4 GB); None = all. The synthetic presets have
            at most 1000 frames per subject.

    Returns:
        dict(frames (T, H, W, 3) float64 in [0, 1], reference (H, W, 3) float64 in [0, 1],
        reference_kind str, name str: a label such as "S9, view 0" or "rig camera cam1").
    """
    n_views = int(dataset[0]["images"].shape[0])
    if not 0 <= view < n_views:
        raise IndexError(f"view {view} out of range: the data set has {n_views} views (VIEW = 0..{n_views - 1})")
    if isinstance(dataset, SyntheticDataset):
        if subject not in dataset.subjects:
            raise ValueError(f"subject {subject!r} is not in the {dataset.split!r} split (subjects: "
                             f"{list(dataset.subjects)}). Fix: set SUBJECT to one of them")
        data = load_subject(dataset.root, subject)
        images = data["images"]
        frames = np.asarray(images[_even_indices(len(images), max_frames), view]) / 255.0
        return {"frames": frames, "reference": data["bg_true"][view] / 255.0,
                "reference_kind": "true background", "name": f"{subject}, view {view}"}
    if isinstance(dataset, RigDataset):
        images = dataset.view_frames(view)
        frames = np.asarray(images[_even_indices(len(images), max_frames)]) / 255.0
        ref = dataset.empty_scene_background(view)
        kind = "empty-scene background"
        if ref is None:
            ref, kind = median_background(frames), "median of all frames"
        return {"frames": frames, "reference": np.asarray(ref, dtype=np.float64), "reference_kind": kind,
                "name": f"rig camera {dataset.camera_names[view]}"}
    idx = [i for i in range(len(dataset)) if subject is None or not hasattr(dataset, "frame_info")
           or dataset.frame_info(i).get("subject") == subject]
    if not idx:
        raise ValueError(f"no sample of subject {subject!r} in the data set. Fix: set SUBJECT to a subject of the split")
    frames = np.stack([dataset[idx[k]]["images"][view].permute(1, 2, 0).numpy()
                       for k in _even_indices(len(idx), max_frames)]).astype(np.float64)
    gt = dataset[idx[0]].get("gt", {})
    if "backgrounds" in gt:
        ref, kind = gt["backgrounds"][view].permute(1, 2, 0).numpy(), "true background"
    else:
        ref, kind = median_background(frames), "median of all frames"
    return {"frames": frames, "reference": np.asarray(ref, dtype=np.float64), "reference_kind": kind,
            "name": f"{subject or 'all subjects'}, view {view}"}
