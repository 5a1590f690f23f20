"""``--saco-gold DIR`` and ``--images [SUBSET=]DIR``: SA-Co/Gold as released, for ``eval model``,
``eval compare`` and ``eval quant``.

SAM 3's eval configs read six Gold subsets' images from a MetaCLIP folder and ``sa1b`` from an
SA-1B folder; ``--images DIR`` is the folder of every subset not named otherwise,
``--images SUBSET=DIR`` one subset's (by the name in its file names or SAM 3's eval name, e.g.
``sa1b`` or ``sa1b_nps``). See :mod:`sam3spec.eval.gold`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_gold_arguments(parser: argparse.ArgumentParser) -> None:
    """``--saco-gold DIR`` and ``--images [SUBSET=]DIR`` (``model``, ``compare``, ``quant``)."""
    parser.add_argument(
        "--saco-gold",
        type=Path,
        metavar="DIR",
        help="folder of SA-Co/Gold annotation files as released (gold_<subset>_merged_{a,b,c}_*.json): "
        "every subset found is run",
    )
    parser.add_argument(
        "--images",
        action="append",
        default=[],
        metavar="[SUBSET=]DIR",
        help="image folder of the Gold subsets (repeatable; SUBSET=DIR for one subset, e.g. "
        "sa1b=/data/sa1b_images; default: the --saco-gold folder)",
    )


def image_folders(values: list[str]) -> tuple[Path | None, dict[str, Path]]:
    """``--images`` values -> ``(default folder, {subset: folder})``."""
    default, named = None, {}
    for value in values:
        subset, separator, folder = value.partition("=")
        if separator and subset and "/" not in subset:
            named[subset] = Path(folder)
        elif default is not None:
            raise ValueError(f"--images {value}: a second default folder (name the subset: SUBSET=DIR)")
        else:
            default = Path(value)
    return default, named


def gold_subsets(args: argparse.Namespace):
    """The Gold subsets of ``--saco-gold`` with their ``--images`` folders."""
    from sam3spec.eval.gold import find_subsets

    default, named = image_folders(args.images)
    return find_subsets(args.saco_gold, default, named)
