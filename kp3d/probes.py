"""Pose probes: how much 3D pose the discovered keypoints carry (paper Sec. 3.5, S.1.2, Eq. 17).

A probe ``theta`` maps the N discovered 3D keypoints of a frame (3N numbers) to the M = 17 labelled
joints (3M numbers). Labels are used only here, never to train the keypoint model.

Two probes, as in the paper:

- :class:`LinearProbe`: an affine map solved in closed form (ridge regression; ``alpha = 0`` is
  ordinary least squares). It recovers a known linear map exactly, which the tests check. By
  default (``ProbeConfig.alpha = None``) the ridge penalty is picked from ``alpha_grid`` on held-out
  labelled frames, then the probe is refitted on all of them: the paper's plain linear regression
  is the ``alpha -> 0`` end of that grid, and the penalty keeps near-collinear features (the latent
  baseline, a barely trained model's keypoints) from extrapolating wildly.
- :class:`MLPProbe`: 2 hidden layers of 2048, ReLU, 50 % dropout, Adam lr 1e-4, batch 256
  (S.1.2). The paper trains it for 200K iterations; here the number of epochs and early stopping
  on a held-out part of the labelled frames are :class:`ProbeConfig` fields so that small profiles
  finish in seconds.

Coordinate conventions (stated once, used by every function here):

- inputs: the discovered 3D keypoints in the **world frame** (mm), **centred per frame** by
  subtracting their mean over the N keypoints (:func:`keypoint_features`), so the probe sees the
  posture, not where the person stands in the room;
- targets: the 17 ground-truth joints in the **world frame** (mm), **pelvis-relative** (joint 0
  subtracted per frame, :func:`pose_targets`). Errors are therefore pelvis-relative world-frame
  MPJPE / N-MPJPE / P-MPJPE from :mod:`kp3d.metrics`.
- any other feature (the latent baseline, the single-view lifter's output) is just a ``(T, F)``
  matrix for the probes; :func:`fit_probe` standardises inputs and targets with training
  statistics (z-score), which does not change what a linear probe can express and lets the MLP
  work with Adam at lr 1e-4 whatever the units.

Label-fraction sweep (Fig. 5/6): :func:`label_fraction_sweep` trains each probe on a random,
seeded subset of the labelled training frames (1 %, 5 %, ... 100 %) and evaluates on all test frames.

The 2D evaluation of Table 3 (:func:`probe_2d`) regresses a linear map from the N 2D keypoints of
an image to its 17 2D joints and reports the mean Euclidean error in percent of the image size.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 12)); w = rng.normal(size=(12, 6))
    >>> probe = LinearProbe(alpha=0.0).fit(x, x @ w + 3.0)
    >>> bool(np.allclose(probe.predict(x), x @ w + 3.0, atol=1e-6))
    True
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from kp3d.probe_fit import (  # noqa: F401 (part of this API)
    N_JOINTS,
    ROOT_JOINT,
    LinearProbe,
    MLPProbe,
    ProbeConfig,
    _as_np,
    _check_xy,
    evaluate_probe,
    fit_probe,
    keypoint_features,
    pose_errors,
    pose_targets,
    probe_config,
    select_ridge,
    torch_threads,
)

__all__ = [
    "ProbeConfig",
    "LinearProbe",
    "MLPProbe",
    "keypoint_features",
    "pose_targets",
    "fit_probe",
    "pose_errors",
    "evaluate_probe",
    "subset_indices",
    "label_fraction_sweep",
    "probe_2d",
    "DEFAULT_FRACTIONS",
    "probe_config",
    "select_ridge",
    "torch_threads",
]

DEFAULT_FRACTIONS = (0.01, 0.05, 0.1, 0.5, 1.0)  # Fig. 5/6 use percentages of the labelled frames


# ----------------------------------------------------------------------------------------------
# label-fraction sweep


def subset_indices(n: int, fraction: float, seed: int = 0, min_frames: int = 2) -> np.ndarray:
    """A seeded random subset of ``round(fraction * n)`` frame indices (at least ``min_frames``), sorted.

    Example:
        >>> subset_indices(100, 0.05).shape
        (5,)
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    k = min(n, max(min_frames, int(round(fraction * n))))
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


def label_fraction_sweep(
    x_train,
    y_train,
    x_test,
    y_test,
    fractions=DEFAULT_FRACTIONS,
    kinds=("linear", "mlp"),
    cfg: ProbeConfig | None = None,
    name: str = "keypoints",
    progress: bool = True,
) -> list[dict]:
    """Train each probe kind on each fraction of the labelled training frames; evaluate on test.

    Args:
        x_train: (T_train, F) features; y_train: (T_train, 51) pelvis-relative joints.
        x_test: (T_test, F); y_test: (T_test, 51).
        fractions: fractions in (0, 1] of the labelled training frames (seeded random subsets).
        kinds: probe kinds, "linear" and/or "mlp".
        name: the feature set's name, copied into each row.

    Returns:
        one row per (kind, fraction): dict(features, probe, fraction, n_train, mpjpe, n_mpjpe, p_mpjpe).
    """
    cfg = cfg or ProbeConfig()
    x_train, y_train = _check_xy(x_train, y_train, "x_train", "y_train")
    x_test, y_test = _check_xy(x_test, y_test, "x_test", "y_test")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"x_train has {x_train.shape[1]} features but x_test {x_test.shape[1]}")
    rows = []
    jobs = [(k, f) for k in kinds for f in fractions]
    for kind, frac in tqdm(jobs, desc=f"probes[{name}]", disable=not progress, leave=False):
        idx = subset_indices(len(x_train), frac, seed=cfg.seed)
        probe = fit_probe(x_train[idx], y_train[idx], cfg, kind=kind)
        rows.append(
            {"features": name, "probe": kind, "fraction": float(frac), "n_train": int(len(idx)),
             **evaluate_probe(probe, x_test, y_test)}
        )
    return rows


# ----------------------------------------------------------------------------------------------
# 2D evaluation (Table 3)


def probe_2d(
    kp2d_train,
    joints2d_train,
    kp2d_test,
    joints2d_test,
    image_size: tuple[int, int],
    alpha: float = 0.0,
) -> dict[str, float]:
    """Table 3: linear regression from an image's N 2D keypoints to its 17 2D joints.

    Every (frame, view) image is one sample; one linear map is shared by all views, as the paper
    regresses "a linear model from 2D keypoints to the 2D pose labels".

    Error (``pct_mse``): the mean over joints and images of the Euclidean distance between
    predicted and true joint, with u divided by the image width and v by the image height, in
    percent -- "% of image size". The paper does not spell the normalisation out; this follows the
    common practice of the compared 2D methods (error normalised by image size). ``pct_mse_sq`` is
    the mean squared normalised error in percent, for readers who take "MSE" literally.

    Args:
        kp2d_train: (T, V, N, 2) pixels, full-image keypoints (export key ``kp2d``).
        joints2d_train: (T, V, 17, 2) pixels (export key ``gt_joints_2d``).
        kp2d_test, joints2d_test: same for the test frames.
        image_size: (H, W) pixels.
        alpha: ridge penalty of the linear map.

    Returns:
        dict(pct_mse, pct_mse_sq, n_train, n_test).
    """
    arrays = {}
    for nm, a, j in (("kp2d_train", kp2d_train, None), ("joints2d_train", joints2d_train, 17),
                     ("kp2d_test", kp2d_test, None), ("joints2d_test", joints2d_test, 17)):
        a = _as_np(a, nm).astype(np.float64)
        if a.ndim != 4 or a.shape[-1] != 2 or (j is not None and a.shape[2] != j):
            want = f"(T, V, {j}, 2)" if j else "(T, V, N, 2)"
            raise ValueError(f"{nm}: expected shape {want}, got {tuple(a.shape)}")
        arrays[nm] = a.reshape(-1, a.shape[2] * 2)
    h, w = image_size
    probe = LinearProbe(alpha).fit(arrays["kp2d_train"], arrays["joints2d_train"])
    pred = probe.predict(arrays["kp2d_test"]).reshape(-1, 17, 2)
    gt = arrays["joints2d_test"].reshape(-1, 17, 2)
    d = (pred - gt) / np.array([w, h], dtype=np.float64)
    dist = np.linalg.norm(d, axis=-1)
    return {
        "pct_mse": float(100.0 * dist.mean()),
        "pct_mse_sq": float(100.0 * (dist ** 2).mean()),
        "n_train": int(len(arrays["kp2d_train"])),
        "n_test": int(len(gt)),
    }
