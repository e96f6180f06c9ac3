"""Test-session settings shared by tests/ and the notebooks run under nbval.

Notebooks run in the ``smoke`` profile and write to a temporary output folder; rendered data sets
go to a session cache folder, so the tests never touch a user's ``outputs/`` or ``~/.cache/kp3d``.
A value already set in the environment wins (e.g. ``KP3D_CACHE_DIR`` to reuse a warm cache).
"""
from __future__ import annotations

import os
import tempfile

_session_tmp = tempfile.mkdtemp(prefix="kp3d-tests-")
os.environ.setdefault("KP3D_PROFILE", "smoke")
os.environ.setdefault("KP3D_OUTPUT_DIR", os.path.join(_session_tmp, "outputs"))
os.environ.setdefault("KP3D_CACHE_DIR", os.path.join(_session_tmp, "cache"))
# keep the 2-core CI machine responsive when several torch processes run (notebook kernels, DDP)
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
