"""``sam3spec bench``: per-method latency, peak RSS, bytes per method and delegated share of a ``.pte``.

Latency and memory are measured in fresh processes (see :mod:`sam3spec.bench.pte`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sam3spec.cli.common import fail


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench", help="latency, peak RSS, size per method and delegated share of a .pte"
    )
    bench.add_argument("--pte", type=Path, required=True)
    bench.add_argument("--warmup", type=int, default=2)
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument(
        "--eager", help="also time the eager float image path: preset name or checkpoint directory"
    )
    bench.add_argument(
        "--threads", type=int, help="threads for libtorch and ExecuTorch's XNNPACK pool (default: libtorch's)"
    )
    bench.add_argument("--json", type=Path, help="write the results as JSON here")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sam3spec.bench.pte import benchmark, format_report

    if not args.pte.is_file():
        return fail(f"{args.pte}: no such file")
    result = benchmark(args.pte, args.warmup, args.repeats, eager=args.eager, threads=args.threads)
    print(format_report(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 0
