"""Profiles and run locations shared by the notebooks, the trainer and the data sets.

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

Example:
    >>> from kp3d.profiles import resolve_profile
    >>> resolve_profile("smoke")
    'smoke'
"""
from __future__ import annotations

import os
from pathlib import Path

PROFILES = ("smoke", "cpu-demo", "paper-h36m", "paper-3dhp")

ENV_PROFILE = "KP3D_PROFILE"
ENV_CACHE_DIR = "KP3D_CACHE_DIR"
ENV_OUTPUT_DIR = "KP3D_OUTPUT_DIR"


def check_profile(profile: str) -> str:
    """Return ``profile`` if it names a known profile, else raise a ValueError listing them."""
    if profile not in PROFILES:
        raise ValueError(
            f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)} "
            f"(set it with -p PROFILE <name> in papermill or {ENV_PROFILE}=<name>)"
        )
    return profile


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


def cache_dir() -> Path:
    """Where rendered data sets and other regenerable files live (``$KP3D_CACHE_DIR`` or ``~/.cache/kp3d``).

    Nothing here is precious: it is rebuilt when missing.
    """
    path = Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "kp3d").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    from data_utils.datasets import check_calibration, data_views
    from kp3d.config import get_config

    check_profile(profile)
    calibration = check_calibration(data, calibration) or ""
    if "views" not in overrides:
        views = data_views(data, calibration or None)
        if views is not None:
            overrides["views"] = views
    return get_config(profile, data=data, calibration=calibration, **overrides)
