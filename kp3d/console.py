"""The console of a command line run: each distinct message once, and the warnings again at the end.

A data set may be built more than once in a run (training, then the export) and a library may both
log a warning and raise it as a Python warning (so that a notebook and a log file each see it).
:func:`once_per_run` makes the console show each distinct log message once, shows a Python warning
as one log line (not with the source line that raised it) unless the same text was already logged,
and prints every warning of the run once more at its end, where a user looks.

Example:
    >>> import logging, sys
    >>> logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s", force=True)
    >>> with once_per_run(out=sys.stdout):
    ...     for _ in range(3):
    ...         logging.getLogger("demo").warning("camera c1: contaminated. Fix: record the empty scene")
    WARNING camera c1: contaminated. Fix: record the empty scene
    <BLANKLINE>
    1 warning in this run:
      - camera c1: contaminated. Fix: record the empty scene
"""
from __future__ import annotations

import logging
import sys
import warnings
from contextlib import contextmanager


class _Once(logging.Filter):
    def __init__(self):
        super().__init__()
        self.shown: set = set()
        self.warnings: dict[str, None] = {}  # message -> None, in first-seen order

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        key = (record.name, record.levelno, msg)
        if key in self.shown:
            return False
        self.shown.add(key)
        if record.levelno >= logging.WARNING:
            if msg in self.warnings:  # the same text from another logger (a Python warning)
                return False
            self.warnings[msg] = None
        return True


@contextmanager
def once_per_run(out=None):
    """Within the block, the root logger's handlers show each distinct message once and Python
    warnings become log records (logger ``py.warnings``); at its end (an error included) the warnings
    are listed once more on ``out`` (default: stderr)."""
    once = _Once()
    handlers = list(logging.getLogger().handlers)
    for h in handlers:
        h.addFilter(once)
    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        logging.getLogger("py.warnings").warning("%s", message)

    warnings.showwarning = showwarning
    try:
        yield once.warnings
    finally:
        warnings.showwarning = show
        for h in handlers:
            h.removeFilter(once)
        if once.warnings:
            out = out or sys.stderr
            n = len(once.warnings)
            print(f"\n{n} warning{'s' if n > 1 else ''} in this run:", file=out)
            for msg in once.warnings:
                print(f"  - {msg}", file=out)
