"""Profiles: every preset of a profile in one place, and the run locations shared by the notebooks,
the trainer and the data sets.

A *profile* picks sizes (resolution, frames, network width, iterations) for one purpose:

- ``smoke``: tests and CI, seconds per notebook;
- ``cpu-demo``: a student's laptop, the default of ``make replicate`` (about 20 min on 2 cores);
- ``paper-h36m`` / ``paper-3dhp``: the paper's settings (Sec. 3.3, S.1), for a GPU and the real data.

Every notebook has ``PROFILE = "cpu-demo"`` in its ``parameters`` cell and then calls
:func:`resolve_profile`, so the environment variable ``KP3D_PROFILE`` (set by the tests) wins over
the literal, and papermill's ``-p PROFILE ...`` wins over the literal when the variable is unset.

The notebooks also take ``DATA`` ("synthetic", "h36m:/root", "3dhp:/root" or "rig:/folder", a
user's own calibrated cameras, docs/own_rig.md) and ``CALIBRATION`` (rig only; "" = the file inside
the rig folder); :func:`data_config` turns profile + data into the training configuration.

What a profile sets, in this module: the model and training :class:`~kp3d.config.Config`
(:data:`PROFILE_OVERRIDES`, :func:`get_config`), the synthetic render (:data:`SYNTHETIC_PRESETS`,
:func:`synthetic_config`), the probes (:data:`PROBE_PRESETS`, read by ``kp3d.probes.probe_config``)
and the single-view lifter (:data:`LIFTER_PRESETS`, read by ``kp3d.lifter.lifter_config``).
:func:`make_dataset` opens a data set at a profile's sizes.

Example:
    >>> from kp3d.profiles import resolve_profile
    >>> resolve_profile("smoke")
    'smoke'
"""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from data_utils.cache import ENV_CACHE_DIR, cache_dir  # noqa: F401 (kp3d.profiles.cache_dir is this)
from data_utils.datasets import check_calibration, data_views, open_dataset, synthetic_options
from data_utils.synthetic import SyntheticConfig, SyntheticDataset
from kp3d.config import ENV_PROFILE, PROFILES, Config, check_profile

ENV_OUTPUT_DIR = "KP3D_OUTPUT_DIR"


def resolve_profile(profile: str) -> str:
    """The profile a notebook should use: ``$KP3D_PROFILE`` when set, else ``profile``."""
    env = os.environ.get(ENV_PROFILE, "").strip()
    if env:
        if env not in PROFILES:
            raise ValueError(
                f"{ENV_PROFILE}={env!r} is not a profile: expected one of {', '.join(PROFILES)}; "
                f"unset it or fix its value"
            )
        return env
    return check_profile(profile)


def output_dir(*parts: str, create: bool = True) -> Path:
    """A folder under the run output root (``$KP3D_OUTPUT_DIR`` or ``./outputs``).

    Example:
        >>> output_dir("03_triangulation", create=False).name
        '03_triangulation'
    """
    root = Path(os.environ.get(ENV_OUTPUT_DIR) or "outputs").expanduser()
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def data_config(profile: str, data: str = "synthetic", calibration: str = "", **overrides):
    """The :class:`kp3d.config.Config` of ``profile`` trained on ``data`` (what the notebooks use).

    ``get_config(profile, data=data, calibration=calibration, **overrides)``, except that a rig
    (``data="rig:PATH"``) trains on all its cameras: ``views`` becomes ``(0, ..., V-1)`` for its V
    calibrated cameras unless ``overrides`` sets ``views`` (as ``kp3d-train --data rig:PATH`` does).
    The profile's default of 4 views fits the synthetic set, Human3.6M and 3DHP.

    Args:
        profile: a profile name (:data:`PROFILES`).
        data: "synthetic", "h36m:/root", "3dhp:/root" or "rig:/folder".
        calibration: rig only: the calibration file; "" = the one inside the rig folder. With
            another data set a non-empty calibration raises (it would be ignored).
        overrides: any Config field.

    Example:
        >>> data_config("smoke").views
        (0, 1, 2, 3)
    """
    check_profile(profile)
    calibration = check_calibration(data, calibration) or ""
    if "views" not in overrides:
        views = data_views(data, calibration or None)
        if views is not None:
            overrides["views"] = views
    return get_config(profile, data=data, calibration=calibration, **overrides)


# Each profile lists only what differs from the paper defaults (the Config defaults).
PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "paper-h36m": {},
    "paper-3dhp": dict(n_keypoints=48, latent_dim=1029, w_mask=5.0),
    # The paper's method made to learn on 2 CPU cores in ~20-30 min: smaller sizes plus the deviations
    # of docs/recipe.md ("Why did the image decoder's mask collapse?", "The box prior", "The ladder"),
    # each named on its Config field and in kp3d.deviations (notebook 04's table).
    "cpu-demo": dict(
        image_size=128, patch_size=64, n_keypoints=16, batch_size=4,
        encoder="resnet18", detector="tiny", latent_dim=256, decoder_channels=(64, 32, 16, 16),
        decoder_convs_per_block=2, max_iters=3000, warmup_iters=1000,
        lr=1e-3, lr_detector=3e-4, lr_image_decoder=5e-4,
        w_mask=1.0, sigma=0.1, softmax_temperature=1.5,
        mask_decoder_last_init_std=1e-3, use_perceptual_loss=False,
        w_patch=0.5, patch_loss_warmup_only=True, keypoint_box_grad=False, keypoint_ramp_iters=500,
        keypoint_encoder_grad=False, w_box_prior=1.0,
        keypoint_input="img-bg-soft", detector_input="img-bg-soft", mask_target="img-bg-mask",
        use_centering_loss=False, box_prior_threshold=0.05, foreground_cleanup=3, shadow_chroma=0.08,
        sigma_start=0.3, sigma_anneal_iters=2000, detector_pool="flatten", detector_downsample=2,
        num_workers=0, log_every=50, ckpt_every=500,
    ),
    # Tests and CI: a few iterations in seconds.
    "smoke": dict(
        image_size=64, patch_size=32, n_keypoints=8, batch_size=2,
        encoder="tiny", detector="tiny", latent_dim=32, decoder_channels=(32, 16, 8, 8),
        decoder_convs_per_block=1, max_iters=12, warmup_iters=4,
        lr=1e-3, lr_detector=3e-4, lr_image_decoder=5e-4,
        w_mask=1.0, centering_box_only=True, sigma=0.1, softmax_temperature=1.5,
        mask_decoder_last_init_std=1e-3, use_perceptual_loss=False,
        num_workers=0, log_every=4, ckpt_every=6,
    ),
}


def get_config(profile: str, **overrides: Any) -> Config:
    """The :class:`Config` of a profile, with ``overrides`` applied (unknown names raise).

    Example:
        >>> get_config("paper-3dhp").n_keypoints
        48
    """
    check_profile(profile)
    values = dict(PROFILE_OVERRIDES[profile], profile=profile)
    known = {f.name for f in fields(Config)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown Config fields {sorted(unknown)}; known fields: {sorted(known)}")
    values.update(overrides)
    return Config(**values)


# The synthetic render of each profile (data_utils.synthetic.SyntheticConfig fields).
SYNTHETIC_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(image_size=64, frames_per_subject=40, supersample=1),
    "cpu-demo": dict(image_size=128, frames_per_subject=480),
    # larger sets for a GPU (the paper profiles are meant for the real data): 256 px,
    # 1000 frames per subject, one ray per pixel: about 5.5 GB; image_size=500 (the paper's
    # input) quadruples that
    "paper-h36m": dict(image_size=256, frames_per_subject=1000, fps=25.0, supersample=1),
    "paper-3dhp": dict(image_size=256, frames_per_subject=1000, fps=25.0, supersample=1),
}

# The probes of each profile (kp3d.probes.ProbeConfig fields). paper-*: S.1.2 (the paper trains
# 200K iterations; early stopping on held-out labelled frames ends it sooner). cpu-demo: a 512-unit
# MLP (measured on 2 cores; 2048 units cost ~16x the time for a few mm). smoke: seconds.
PROBE_PRESETS: dict[str, dict[str, Any]] = {
    "paper-h36m": dict(epochs=2000, max_iters=200_000, patience=20),
    "paper-3dhp": dict(epochs=2000, max_iters=200_000, patience=20),
    "cpu-demo": dict(hidden=512, lr=1e-3, epochs=300, patience=15),
    "smoke": dict(hidden=64, lr=1e-3, epochs=40, patience=0),
}

# The single-view lifter of each profile (kp3d.lifter.LifterConfig fields): paper-* keep Table S2;
# smaller profiles shrink the width for CPU time.
LIFTER_PRESETS: dict[str, dict[str, Any]] = {
    "paper-h36m": dict(epochs=1000),
    "paper-3dhp": dict(epochs=1000),
    "cpu-demo": dict(hidden=512, epochs=150, patience=15),
    "smoke": dict(hidden=64, epochs=30, patience=0, progress=False),
}


def synthetic_config(profile: str, **overrides) -> SyntheticConfig:
    """The synthetic render of a profile (:data:`SYNTHETIC_PRESETS`), with ``overrides`` applied.

    Example:
        >>> synthetic_config("smoke").image_size
        64
    """
    check_profile(profile)
    return SyntheticConfig(**{**SYNTHETIC_PRESETS[profile], **overrides}).validate()


def make_dataset(data: str = "synthetic", profile: str = "cpu-demo", split: str = "train",
                 calibration: str | Path | None = None, **overrides) -> Dataset:
    """The data set named by ``data`` at the sizes of ``profile``.

    Args:
        data: "synthetic" (or "synthetic?seed=N", the embedded set rendered with data seed N,
            :func:`synthetic_options`), "h36m:/path/to/root", "3dhp:/path/to/root" or
            "rig:/path/to/folder" (a user's own rig, ``data_utils.rig``).
        profile: a kp3d profile (sets the synthetic preset; the image size of real data defaults to
            ``get_config(profile).image_size``).
        split: "train", "test" or "all".
        calibration: rig only: the calibration file; None or "" = the one inside the rig folder
            (the notebooks' ``CALIBRATION`` parameter). Any other data set with a calibration raises.
        overrides: synthetic: any :class:`SyntheticConfig` field plus ``frame_step``/``progress``;
            real: ``image_size``, ``frame_step``, ``background_frames``, ``subjects`` (and
            ``cameras`` for 3DHP); rig: any :class:`data_utils.rig.RigDataset` argument.
    """
    check_profile(profile)
    calibration = check_calibration(data, calibration)
    options = synthetic_options(data)
    if options is not None:
        for key, value in options.items():
            if key in overrides and overrides[key] != value:
                raise ValueError(f"data={data!r} sets {key}={value} but {key}={overrides[key]} was also given: name it once")
            overrides[key] = value
        ds_kw = {k: overrides.pop(k) for k in ("frame_step", "progress") if k in overrides}
        return SyntheticDataset(synthetic_config(profile, **overrides), split, **ds_kw)
    if "image_size" not in overrides:
        overrides["image_size"] = get_config(profile).image_size
    return open_dataset(data, split, calibration=calibration, **overrides)


def dataset_for(cfg: Config, split: str = "train", **overrides):
    """The data set a run trains on: :func:`make_dataset` with the data, profile and sizes of ``cfg``
    (``cfg.data`` at ``cfg.image_size``; ``overrides`` go to it, e.g. ``frame_step``)."""
    overrides.setdefault("image_size", cfg.image_size)
    if cfg.synthetic_frames:
        overrides.setdefault("frames_per_subject", cfg.synthetic_frames)
    if cfg.data.startswith("rig:") and cfg.calibration:
        overrides.setdefault("calibration", cfg.calibration)
    if cfg.data.startswith(("h36m:", "3dhp:")):
        overrides.pop("progress", None)  # extracted frames: nothing is decoded or rendered, no bar
    return make_dataset(data=cfg.data, profile=cfg.profile, split=split, **overrides)
