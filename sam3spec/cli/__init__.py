"""The ``sam3spec`` command line: one noun per command, each a module of this package.

=========== ==========================================================================
command     what
=========== ==========================================================================
info        parameters per component and GMACs of a student preset
segment     segment every instance of a noun phrase (or a box / point) in an image
track       segment and track a prompted concept through a video
data        ``generate`` the concept world, ``verify`` SA-1B / SA-Co / SA-V trees
teacher     ``run`` / ``cache`` a teacher; ``train`` / ``eval`` / ``calibrate`` the world teacher
train       ``stage``, ``pipeline`` (the concept world's main job), ``video`` memory, ``qat``
eval        ``saco``, ``vos``, ``model``, ``compare``, ``video``, ``quant``, ``visual-qa``
quantize    post-training quantization of a student (torchao)
export      one multi-method ExecuTorch program (.pte) per backend
bench       latency, peak memory, size per method and delegated share of a .pte
prune       free disk space in a run directory (dry run unless --apply)
report      render a markdown performance report from results JSON files
=========== ==========================================================================

Every module has ``register(subparsers)``; its leaf parsers set ``func(args) -> int`` (the exit
status). Modules import the library inside their functions, so ``sam3spec --help`` and building
the parser import neither torch nor the models. Earlier spellings (``distill``, ``pipeline``,
``compare``, ``visual-qa``, ``world generate``, ``video distill|eval``) are accepted as hidden aliases.

Errors follow one policy (:mod:`sam3spec.cli.errors`): one line on stderr naming the argument or
file, exit 2 for bad input, 1 for a failed run, 130 for Ctrl-C; ``sam3spec --debug COMMAND`` (or
``SAM3SPEC_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sam3spec.cli import errors

NOUNS = (
    "info",
    "segment",
    "track",
    "data",
    "teacher",
    "train",
    "eval",
    "quantize",
    "export",
    "bench",
    "prune",
    "report",
    "aliases",
)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (its sub-parsers are of the same class)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser (every command registered); imports no heavy library."""
    parser = Parser(
        prog="sam3spec",
        description="Distil SAM 3 into a phone-sized promptable concept segmenter, proven against specs.",
        epilog="Run `sam3spec COMMAND --help` for a command's options. Manual: README.md and docs/.",
    )
    parser.add_argument(
        "--debug",
        dest="show_traceback",
        action="store_true",
        help=f"print the traceback of an error (also: {errors.DEBUG_ENV}=1)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for noun in NOUNS:
        importlib.import_module(f"sam3spec.cli.{noun}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    previous = _on_sigterm(errors.raise_terminated)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed: not an error of the command
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (Exception, KeyboardInterrupt) as error:
        return errors.report(error, errors.debug_requested(args.show_traceback))
    finally:
        _on_sigterm(previous)


def _on_sigterm(handler):
    """Install ``handler`` for SIGTERM; returns the one it replaces (None off the main thread,
    where Python cannot install handlers, and then nothing changes)."""
    import signal
    import threading

    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    sys.exit(main())
