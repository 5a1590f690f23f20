"""``sam3spec info``: parameters per component and GMACs of a student preset."""

from __future__ import annotations

import argparse
import json

from sam3spec.cli.common import fail, note, positive_int
from sam3spec.config import SEED_PRESET


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="parameters per component and GMACs of a student preset",
        description="Parameters per component and multiply-accumulates of one text-prompted forward "
        "per resolution. Registered presets are read from the stored facts (sam3spec/preset_facts.json, "
        "kept equal to the code by a test); --recount (or another resolution) counts live on the meta "
        "device: no weights are built, about ten seconds.",
    )
    parser.add_argument("--preset", default=SEED_PRESET, help=f"student preset (default {SEED_PRESET})")
    parser.add_argument(
        "--resolution", type=positive_int, nargs="*", default=[504, 1008], help="GMACs at these sizes"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--recount", action="store_true", help="count live instead of reading the stored facts"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from sam3spec.config import get_preset
    from sam3spec.facts import stored_info

    try:
        get_preset(args.preset)
    except KeyError as error:
        return fail(error.args[0])
    resolutions = tuple(args.resolution)
    info = None if args.recount else stored_info(args.preset, resolutions)
    if info is None:  # no stored figures for these resolutions (or --recount): tens of seconds
        from sam3spec.heartbeat import heartbeat
        from sam3spec.info import preset_info

        with heartbeat(note, f"counting {args.preset} live on the meta device", every=10):
            info = preset_info(args.preset, resolutions)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    rows = [[name, f"{count:,}", f"{count / 1e6:.2f}M"] for name, count in info["params"].items()]
    print(f"preset {info['preset']}")
    print(tabulate(rows, headers=["component", "parameters", ""], tablefmt="github", disable_numparse=True))
    for resolution, gmacs in info["gmacs"].items():
        print(f"{resolution} px: {gmacs:.2f} GMACs (text prompt, batch 1)")
    return 0
