"""One error policy for every command, applied once by :func:`sam3spec.cli.main`.

* Bad input (an argument, or a file the command was pointed at: missing, malformed, unwritable)
  -> ``error: <one line naming it and what was expected>`` on stderr, exit 2.
* Anything else that stops a run -> ``error: <type>: <one line>``, exit 1.
* Ctrl-C -> ``sam3spec: interrupted``, exit 130; SIGTERM (``kill``, ``timeout``, a job scheduler)
  -> ``sam3spec: terminated``, exit 143. Both unwind the run the same way (outputs are written
  atomically, so what was there before the run is still there, and no staging folder is left).
* ``sam3spec --debug COMMAND ...`` or ``SAM3SPEC_DEBUG=1`` prints the traceback as well.

Commands raise :class:`UsageError` for what they check themselves; the library's own bad-input
exceptions (``ValueError``, ``KeyError``, missing or existing paths, ...) are read the same way.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

USAGE = 2
RUNTIME = 1
INTERRUPTED = 130
TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process killed by it
DEBUG_ENV = "SAM3SPEC_DEBUG"
LONGEST = 800  # characters of a message kept on its one line (--debug shows everything)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that every ``finally`` and atomic writer unwinds as
    for Ctrl-C (Python's default for SIGTERM is to die at once, leaving staging folders behind)."""


def raise_terminated(signum: int, frame: object) -> None:
    """A SIGTERM handler (see :class:`Terminated`)."""
    raise Terminated()


class UsageError(Exception):
    """Bad input the user fixes on the command line (an argument or a file): exit 2."""


# What the library raises for bad input. A ValueError deep inside torch is rare (torch raises
# RuntimeError); a bad value of ours is the usual cause.
INPUT_ERRORS = (UsageError, ValueError, LookupError, FileNotFoundError, FileExistsError)
# Path problems of the user's own paths (OSError subclasses are matched by errno: EROFS has none).
INPUT_ERRNOS = {
    errno.ENOENT,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENAMETOOLONG,
}


def debug_requested(flag: bool = False) -> bool:
    """``--debug`` given, or ``SAM3SPEC_DEBUG`` set to anything but empty / ``0``."""
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def is_input_error(error: BaseException) -> bool:
    if isinstance(error, INPUT_ERRORS):
        return True
    return isinstance(error, OSError) and error.errno in INPUT_ERRNOS


def one_line(error: BaseException) -> str:
    """The error's message on one line (a KeyError's message without its quotes; an OSError with
    its file name)."""
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        text = error.args[0]
    else:
        text = str(error)
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in text:
        text = f"{error.filename}: {text}"
    text = " ".join(text.split()) or type(error).__name__
    return text if len(text) <= LONGEST else text[: LONGEST - 3] + "..."


def report(error: BaseException, debug: bool) -> int:
    """Print ``error`` per the policy above; returns the exit status."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, Terminated):
        print("\nsam3spec: terminated", file=sys.stderr)
        return TERMINATED
    if isinstance(error, KeyboardInterrupt):
        print("\nsam3spec: interrupted", file=sys.stderr)
        return INTERRUPTED
    if is_input_error(error):
        print(f"error: {one_line(error)}", file=sys.stderr)
        return USAGE
    hint = "" if debug else f" (run `sam3spec --debug ...` or set {DEBUG_ENV}=1 for the traceback)"
    print(f"error: {type(error).__name__}: {one_line(error)}{hint}", file=sys.stderr)
    return RUNTIME
