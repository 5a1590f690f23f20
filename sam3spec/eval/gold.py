"""SA-Co/Gold as SAM 3 runs it: every subset found in a folder, predictions written where SAM 3
writes them, and SAM 3's table (cgF1 / IL_MCC / pmF1 per subset and their mean).

A Gold folder holds the annotation files as released (``gold_<subset>_merged_{a,b,c}_release_test.json``,
:func:`~sam3spec.data.saco.gold_triples`; any subset present is evaluated, the seven released ones
or others). Images are not in it: SAM 3's eval configs read six subsets' images from a MetaCLIP
folder and ``sa1b`` from an SA-1B folder (``metaclip_img_path`` / ``sa1b_img_path`` of its
``eval_base.yaml``). Here each subset gets a folder from ``images`` by subset name (file name or
SAM 3's eval name), else the default folder.

Predictions go to ``<out>/gold_<name>/dumps/gold_<name>/coco_predictions_segm.json`` where
``name`` is SAM 3's eval name of the subset (``metaclip_nps``, ``sa1b_nps``, the others as in the
file names), the tree SAM 3's ``scripts/eval/gold/eval_sam3.py --pred-folder <out>`` reads; the
model's presence probabilities beside it in ``<out>/gold_<name>/presence.json``. Each subset is
scored by :func:`~sam3spec.eval.saco_files.evaluate_saco` (what ``sam3spec eval saco`` runs)
on its three annotator files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam3spec.atomic import atomic_write_json
from sam3spec.data.saco import GoldImage, gold_images, gold_triples
from sam3spec.eval.diagnosis import MaskGeometry, diagnose_files
from sam3spec.eval.predictions import predict_pairs
from sam3spec.eval.saco_files import evaluate_saco, load_ground_truth

# SAM 3's eval names where they differ from the subset in the file name (eval_sam3.py's keys).
SAM3_NAMES = {"metaclip": "metaclip_nps", "sa1b": "sa1b_nps"}
TABLE_KEYS = ("cgF1", "IL_MCC", "pmF1")
MEAN_KEYS = (*TABLE_KEYS, "mIoU", "presence_f1")
SUMMARY_KEYS = (*MEAN_KEYS, "num_pairs")


@dataclass(frozen=True)
class GoldSubset:
    """One Gold subset: its three annotator files and its image folder.

    Attributes:
        subset: the name in the file names (``crowded``, ``metaclip``, ...).
        files: ``[a, b, c]`` annotation files (a missing one is where it should be).
        images: the folder the files' ``file_name`` entries are relative to.
    """

    subset: str
    files: tuple[Path, Path, Path]
    images: Path

    @property
    def name(self) -> str:
        """SAM 3's eval name (``metaclip_nps`` for ``metaclip``, ``sa1b_nps`` for ``sa1b``)."""
        return SAM3_NAMES.get(self.subset, self.subset)

    def predictions(self, out: Path) -> Path:
        return Path(out) / f"gold_{self.name}" / "dumps" / f"gold_{self.name}" / "coco_predictions_segm.json"

    def presence(self, out: Path) -> Path:
        return Path(out) / f"gold_{self.name}" / "presence.json"


def find_subsets(
    directory: str | Path,
    default_images: str | Path | None = None,
    images: Mapping[str, str | Path] | None = None,
) -> list[GoldSubset]:
    """The Gold subsets under ``directory`` with their image folders.

    Args:
        directory: a folder holding ``gold_<subset>_merged_{a,b,c}_*.json`` files (searched recursively).
        default_images: image folder of subsets not named in ``images`` (default: ``directory``).
        images: ``{subset: folder}``; a key may be the file name's subset or SAM 3's eval name.

    Raises:
        FileNotFoundError: no Gold file, an annotator file of a subset missing, or an image folder
            that does not exist.
        ValueError: ``images`` names a subset that is not in ``directory``.
    """
    directory, images = Path(directory), dict(images or {})
    if not directory.is_dir():
        raise FileNotFoundError(f"--saco-gold {directory}: no such folder")
    triples = gold_triples(directory)
    if not triples:
        raise FileNotFoundError(
            f"--saco-gold {directory}: no gold_<subset>_merged_{{a,b,c}}_*.json files in it "
            "(SA-Co/Gold's annotation files, as released)"
        )
    found = {subset: SAM3_NAMES.get(subset, subset) for subset in triples}
    unknown = sorted(key for key in images if key not in found and key not in found.values())
    if unknown:
        raise ValueError(
            f"--images {unknown[0]}=...: no Gold subset {unknown[0]!r} in {directory} "
            f"(found: {', '.join(sorted(found))})"
        )
    subsets = []
    for subset, files in sorted(triples.items()):
        for path in files:
            if not path.is_file():
                raise FileNotFoundError(
                    f"Gold subset {subset!r}: annotator file {path} missing (the oracle needs a, b and c)"
                )
        folder = images.get(subset, images.get(found[subset], default_images or directory))
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"--images {folder}: no such folder (images of Gold subset {subset!r})")
        subsets.append(GoldSubset(subset, (files[0], files[1], files[2]), Path(folder)))
    return subsets


def score_subset(subset: GoldSubset, out: Path, limit: int | None = None) -> dict[str, Any]:
    """Score the predictions written for ``subset`` (the same call as ``sam3spec eval saco --gt a b c
    --pred ... --presence ...``); ``limit``: only the pairs that were predicted."""
    import json

    presence = {int(k): v for k, v in json.loads(subset.presence(out).read_text()).items()}
    truths = [load_ground_truth(path) for path in subset.files]
    if limit:
        for truth in truths:
            truth.pairs = {k: v for k, v in truth.pairs.items() if k in presence}
    pred = subset.predictions(out)
    segm = evaluate_saco(truths, pred, "segm", presence=presence).summary()
    bbox = evaluate_saco(truths, pred, "bbox", presence=presence).summary()
    row = {key: segm[key] for key in SUMMARY_KEYS}
    row.update(
        {
            "subset": subset.subset,
            "name": subset.name,
            "images": str(subset.images),
            "predictions": str(pred),
            "segm": segm,
            "bbox": bbox,
        }
    )
    return row


def mean_row(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The mean of each metric over the subsets (for cgF1 / IL_MCC / pmF1: SAM 3's "Average" column)."""
    return {key: sum(row[key] for row in rows) / len(rows) if rows else math.nan for key in MEAN_KEYS}


def subset_images(subsets: list[GoldSubset], limit: int | None = None) -> list[GoldImage]:
    """The images of every subset with their phrases and annotator a's instances (the first
    ``limit`` per subset): what :mod:`sam3spec.eval.quant_compare` scores."""
    return [image for subset in subsets for image in gold_images(subset.files[0], subset.images, limit)]


def evaluate_gold(
    model: Any,
    subsets: list[GoldSubset],
    out: str | Path,
    min_score: float = 0.05,
    limit: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Predict and score every subset.

    Args:
        model: a loaded model (:func:`~sam3spec.eval.model_eval.load_model`).
        subsets: from :func:`find_subsets`.
        out: output folder (SAM 3's dump tree, see the module docstring).
        min_score: results below this score are not written (SA-Co counts scores >= 0.5 only).
        limit: only the first ``limit`` images of each subset (smoke tests).

    Returns:
        ``{"subsets": {name: row}, "mean": {cgF1, IL_MCC, pmF1, mIoU, presence_f1}}``; a row holds the table
        metrics, ``mIoU``, ``presence_f1``, ``num_pairs`` and the full ``segm`` / ``bbox`` summaries.
    """
    out = Path(out)
    rows = []
    for subset in subsets:
        results, presence = predict_pairs(model, subset.files[0], subset.images, min_score, limit, progress)
        atomic_write_json(results, subset.predictions(out), indent=None, sort_keys=False)
        atomic_write_json(presence, subset.presence(out), indent=None, sort_keys=False)
        rows.append(score_subset(subset, out, limit))
    return {"subsets": {row["name"]: row for row in rows}, "mean": mean_row(rows)}


def diagnose_gold(
    subsets: list[GoldSubset], out: str | Path, geometry: MaskGeometry, limit: int | None = None
) -> dict[str, dict[str, Any]]:
    """The diagnosis (:mod:`sam3spec.eval.diagnosis`) of the predictions :func:`evaluate_gold` wrote
    under ``out``, per subset (``{name: diagnosis}``); SA-Co marks no hard negatives."""
    return {
        subset.name: diagnose_files(
            subset.files, subset.predictions(Path(out)), subset.presence(Path(out)), geometry, None, limit
        )
        for subset in subsets
    }


def format_table(result: dict[str, Any]) -> str:
    """SAM 3's table: subset | cgF1 | IL_MCC | pmF1, then the mean (cgF1 and pmF1 x100, as SAM 3
    prints them; IL_MCC in [-1, 1])."""
    lines = [f"{'subset':<24} {'pairs':>7} {'cgF1':>7} {'IL_MCC':>7} {'pmF1':>7}"]
    for name, row in result["subsets"].items():
        lines.append(
            f"{name:<24} {int(row['num_pairs']):>7d} {row['cgF1']:>7.2f} {row['IL_MCC']:>7.2f} {100 * row['pmF1']:>7.2f}"
        )
    mean = result["mean"]
    pairs = int(sum(row["num_pairs"] for row in result["subsets"].values()))
    lines.append(
        f"{'mean':<24} {pairs:>7d} {mean['cgF1']:>7.2f} {mean['IL_MCC']:>7.2f} {100 * mean['pmF1']:>7.2f}"
    )
    return "\n".join(lines)
