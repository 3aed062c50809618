"""The CLI's one error handler and its one set of exit codes.

Every command raises `PortalError`s and returns an exit code for its own outcome; this module
turns a refusal into one line on stderr (the message already says what was wrong and how to
fix it) and an exit code that says whose move it is, so scripts can branch on it:

    0  done
    1  the work ran and failed: a build, a test, the warehouse or dbt refused it
    2  the work could not start: bad input, unknown name, wrong state, no access, a part missing
    3  busy: another build holds the project; the same command later will do
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from portal.errors import Kind, PortalError

OK, FAILED, CANNOT_START, BUSY = 0, 1, 2, 3

EXIT_CODE_OF_KIND: dict[Kind, int] = {
    Kind.NOT_FOUND: CANNOT_START,
    Kind.INVALID: CANNOT_START,
    Kind.CONFLICT: CANNOT_START,
    Kind.FORBIDDEN: CANNOT_START,
    Kind.UNAUTHENTICATED: CANNOT_START,
    Kind.UNAVAILABLE: CANNOT_START,
    Kind.BUSY: BUSY,
    Kind.TIMEOUT: FAILED,
    Kind.UPSTREAM: FAILED,
}


def run_command(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one subcommand; a refusal becomes `error: ...` on stderr and its kind's exit code."""
    try:
        return int(command(args))
    except PortalError as exc:
        lead = f"{exc.headline} " if exc.headline else ""
        print(f"error: {lead}{exc}", file=sys.stderr)
        return EXIT_CODE_OF_KIND[exc.kind]
