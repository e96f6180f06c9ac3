"""The decoded frames of a rig on disk: one memory-mapped ``.npy`` per rig and options, written so
that a failed or killed decode leaves nothing behind.

A decode writes ``<name>.<pid>.partial.npy`` and renames it to ``<name>.npy`` only when every frame
is in it. A decode that fails removes its partial file; one that was killed (the process ``<pid>``
is gone) leaves it, and the next decode in the same folder removes it. A partial file of a process
that still runs (another training decoding the same rig) is left alone.

Example:
    >>> import numpy as np, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "rig-0123.npy"
    >>> arr = decode_cached(path, (2, 4), lambda out: out.fill(7))
    >>> int(arr.sum()), sorted(p.name for p in path.parent.iterdir())
    (56, ['rig-0123.npy'])
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

PARTIAL = ".partial.npy"
_PID = re.compile(r"\.(\d+)\.partial\.npy$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_partials(folder: str | Path) -> list[Path]:
    """Remove the partial files in ``folder`` whose decoding process is gone; return them."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.glob("*" + PARTIAL):
        m = _PID.search(p.name)
        if m is not None and _alive(int(m.group(1))):
            continue
        # no pid in the name: written by an older version, which no running decode uses
        p.unlink(missing_ok=True)
        removed.append(p)
    if removed:
        log.info("removed %d partial decode(s) left by a stopped process in %s", len(removed), folder)
    return removed


def decode_cached(path: str | Path, shape: tuple, fill: Callable[[np.ndarray], None],
                  dtype=np.uint8) -> np.ndarray:
    """The array at ``path`` (read-only memory map), made by ``fill(out)`` into a partial file first.

    ``fill`` writes every element of ``out`` (a writable memory map of ``shape``) or raises; on any
    exception the partial file is removed and the exception propagates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}{PARTIAL}")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
        fill(out)
        out.flush()
        del out
        tmp.replace(path)  # only a complete file gets the final name
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return np.load(path, mmap_mode="r")
