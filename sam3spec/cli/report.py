"""``sam3spec report``: a markdown performance report from results JSON files (later ones win)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="render a markdown report from results JSON files",
        description="Merge results JSON files (a gate run's, a phone run's, ...) and render every spec "
        "entry as pass / fail / not measured.",
    )
    parser.add_argument("results", nargs="+", type=Path, help="results JSON files (later ones win)")
    parser.add_argument("--out", type=Path, required=True, help="report .md (a .json is written beside it)")
    parser.add_argument("--title", default="sam3spec performance report")
    parser.add_argument("--specs", type=Path, help="spec folder (default: the repository's specs/)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sam3spec.report import SPECS_DIR, ResultStore, load_specs, write_report

    store = ResultStore()
    for path in args.results:
        store.ingest(path)
    path = write_report(load_specs(args.specs or SPECS_DIR), store, args.out, title=args.title)
    print(f"report written to {path}")
    return 0
