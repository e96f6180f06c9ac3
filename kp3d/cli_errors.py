"""How the command lines of kp3d report errors: a wrong input (bad value, missing or damaged file,
failed notebook) prints one line and exits with status 2; ``--debug`` shows the traceback instead.

Example:
    >>> from kp3d.cli_errors import report_errors
    >>> report_errors(lambda: 0)
    0
"""
from __future__ import annotations

import argparse
import sys

# What a wrong input raises in this package (a bad value, a missing or damaged file, a failed
# notebook): reported as one line. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, RuntimeError, FloatingPointError)


def report_errors(run, debug: bool = False) -> int:
    """Call ``run()`` and return its exit status; a :data:`USER_ERRORS` prints ``error: <message>``
    on stderr and returns 2 (``debug=True``: raise it with its traceback)."""
    try:
        return run()
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"error: {e}\n(--debug shows where it came from)", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # a dependency missing from this interpreter, not a bug of kp3d
        if debug or not e.name or e.name.split(".")[0] == "kp3d":
            raise
        print(f"error: {e.name} is not installed for {sys.executable}: run `make setup`, then "
              f"`source .venv/bin/activate` (or call .venv/bin/python)", file=sys.stderr)
        return 2


def run_entry_point(main, argv: list[str] | None = None) -> int:
    """Run ``main(argv)`` (an entry point whose errors propagate to Python callers) the way a command
    line should: one-line errors, the traceback only with ``--debug``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    return report_errors(lambda: main(argv), debug)


def add_debug_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback")
    return parser
