"""``sam3spec bench``: per-method latency, peak RSS, bytes per method and delegated share of a ``.pte``.

Latency and memory are measured in fresh processes (see :mod:`sam3spec.bench.pte`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sam3spec.cli.common import non_negative_int, positive_int, write_json
from sam3spec.cli.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench", help="latency, peak RSS, size per method and delegated share of a .pte"
    )
    bench.add_argument("--pte", type=Path, required=True)
    bench.add_argument("--warmup", type=non_negative_int, default=2, help="untimed runs per method")
    bench.add_argument("--repeats", type=positive_int, default=5, help="timed runs per method")
    bench.add_argument(
        "--eager", help="also time the eager float image path: preset name or checkpoint directory"
    )
    bench.add_argument(
        "--threads",
        type=positive_int,
        help="threads for libtorch and ExecuTorch's XNNPACK pool (default: libtorch's)",
    )
    bench.add_argument("--json", type=Path, help="write the results as JSON here")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sam3spec.export.pte_file import check_pte_file

    try:  # before torch and the runtime load: the runtime aborts the process on some garbage
        check_pte_file(args.pte)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(f"--pte {error}") from None
    from sam3spec.bench.pte import benchmark, format_report

    result = benchmark(args.pte, args.warmup, args.repeats, eager=args.eager, threads=args.threads)
    print(format_report(result))
    if args.json is not None:
        write_json(result, args.json)
        print(f"JSON written to {args.json}")
    return 0
