"""Where rendered data sets and other regenerable files live: ``$KP3D_CACHE_DIR`` or ``~/.cache/kp3d``.

Example:
    >>> cache_dir().is_dir()
    True
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE_DIR = "KP3D_CACHE_DIR"


def cache_dir() -> Path:
    """Where rendered data sets and other regenerable files live (``$KP3D_CACHE_DIR`` or ``~/.cache/kp3d``).

    Nothing here is precious: it is rebuilt when missing.
    """
    path = Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "kp3d").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
