"""SA-Co ground-truth files: reading one annotator's file, and what SAM 3's evaluator keeps of it.

SAM 3's evaluator (``sam3/eval/cgf1_eval.py``) runs pycocotools' ``COCOeval`` with
``useCats=False``, which still goes through the category index: for a pair it takes the ground
truths and the predictions of each category id of the file's ``categories`` list, in sorted
order. So an annotation or a prediction whose ``category_id`` the file does not list takes no
part (it is neither a match nor a false positive), and the order in which the rest enter the
Hungarian matching (which decides exact ties) is category by category, file order within one.
:meth:`GroundTruth.in_categories` reproduces that. pycocotools also indexes annotations by
``id``: when ids repeat, the last annotation with an id stands for every use of it; that is
reproduced too (with a note), so the numbers stay SAM 3's on every file its evaluator accepts.

Gold ships up to three annotator files per subset; they must describe the same pairs (same pair
ids; same ``text_input``, ``file_name``, ``height`` and ``width`` per pair), which
:func:`check_same_pairs` enforces with an error naming the pair ids that differ.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAIR_FIELDS = ("text_input", "file_name", "height", "width")
"""What must agree between the annotator files of one Gold subset for a pair id."""
_NO_CATEGORY = object()


class SacoFormatError(ValueError):
    """A ground-truth or prediction file does not have the SA-Co / COCO-results shape."""


@dataclass
class GroundTruth:
    """One annotator's SA-Co file.

    Attributes:
        path: where it was read from.
        pairs: ``images[]`` by id.
        annotations: ``annotations[]`` grouped by pair id (after pycocotools' id indexing).
        normalized_boxes: GT boxes are in [0, 1] units (scaled by the pair's width / height for
            the box variant).
        category_ids: the sorted ids of ``categories`` (repeats kept, as pycocotools keeps them);
            None when the file has no ``categories`` list (then nothing is filtered).
        notes: what was odd about the file (repeated annotation ids), for the user.
    """

    path: Path
    pairs: dict[Hashable, dict[str, Any]]
    annotations: dict[Hashable, list[dict[str, Any]]]
    normalized_boxes: bool
    category_ids: list[Any] | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._categories = frozenset(self.category_ids or ())

    def exhaustive(self, pair_id: Hashable) -> bool:
        return bool(self.pairs[pair_id].get("is_instance_exhaustive", False))

    def listed(self, item: dict[str, Any]) -> bool:
        """Whether SAM 3's evaluator sees ``item`` (its category is listed, or it has none)."""
        if self.category_ids is None or "category_id" not in item:
            return True
        return item["category_id"] in self._categories

    def scored_annotations(self, pair_id: Hashable) -> list[dict[str, Any]]:
        """The GTs of ``pair_id`` that enter matching, in the IoU matrix's order: listed
        categories, crowd regions left out."""
        return [a for a in self.in_categories(self.annotations.get(pair_id, [])) if not is_crowd(a)]

    def in_categories(self, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """``items`` as SAM 3's evaluator sees them: grouped by the sorted category list, file
        order within a category, unlisted categories left out. Items without ``category_id``
        (which SAM 3's evaluator cannot read) come last, in file order."""
        items = list(items)
        if self.category_ids is None:
            return items
        grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            grouped[item.get("category_id", _NO_CATEGORY)].append(item)
        ordered = [item for category in self.category_ids for item in grouped.get(category, [])]
        return ordered + grouped.get(_NO_CATEGORY, [])


def read_json(path: str | Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SacoFormatError(f"{what} file {path} is not valid JSON: {error}") from error


def _pair_id(entry: dict[str, Any], path: str | Path) -> Hashable:
    pair_id = entry["id"]
    if isinstance(pair_id, (list, dict)) or pair_id is None:
        raise SacoFormatError(
            f"ground-truth file {path}: images entry id {pair_id!r} is not a number or string"
        )
    return pair_id


def _resolve_repeated_ids(
    annotations: dict[Hashable, list[dict[str, Any]]], path: str | Path
) -> tuple[dict[Hashable, list[dict[str, Any]]], list[str]]:
    """pycocotools' ``COCO.anns`` keeps the last annotation of each id, and ``loadAnns`` returns it
    for every use of the id; ``COCOeval`` then files it under its own pair."""
    every = [ann for items in annotations.values() for ann in items if "id" in ann]
    counts = Counter(ann["id"] for ann in every)
    repeated = sorted((key for key, count in counts.items() if count > 1), key=repr)
    if not repeated:
        return annotations, []
    last = {ann["id"]: ann for ann in every}
    resolved: dict[Hashable, list[dict[str, Any]]] = {}
    for pair_id, items in annotations.items():
        chosen = [last[ann["id"]] if "id" in ann else ann for ann in items]
        resolved[pair_id] = [ann for ann in chosen if ann.get("image_id") == pair_id]
    note = (
        f"{path}: annotation id(s) {repeated[:5]}{' ...' if len(repeated) > 5 else ''} are used more than "
        "once; as in SAM 3's evaluator (pycocotools indexes annotations by id), the last annotation "
        "with an id stands for every use of it"
    )
    return resolved, [note]


def load_ground_truth(path: str | Path, box_units: str = "auto") -> GroundTruth:
    """Read an SA-Co ground-truth file.

    Args:
        path: the JSON file.
        box_units: ``normalized`` (SA-Co's README), ``pixels``, or ``auto`` (normalised when
            every coordinate is within [0, 1]; a file without annotations counts as normalised).
    """
    if box_units not in ("auto", "normalized", "pixels"):
        raise ValueError(f"box_units must be auto, normalized or pixels, not {box_units!r}")
    data = read_json(path, "ground-truth")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise SacoFormatError(f"ground-truth file {path} has no 'images' list (is it an SA-Co file?)")
    pairs = {}
    for entry in data["images"]:
        missing = [key for key in ("id", "height", "width") if key not in entry]
        if missing:
            raise SacoFormatError(f"ground-truth file {path}: images entry {entry.get('id')} lacks {missing}")
        pairs[_pair_id(entry, path)] = entry
    annotations: dict[Hashable, list[dict[str, Any]]] = defaultdict(list)
    coords = []
    for ann in data.get("annotations", []):
        if (
            not isinstance(ann, dict)
            or "image_id" not in ann
            or ("segmentation" not in ann and "bbox" not in ann)
        ):
            raise SacoFormatError(
                f"ground-truth file {path}: annotation {ann.get('id') if isinstance(ann, dict) else ann!r} "
                "lacks image_id and segmentation or bbox"
            )
        annotations[ann["image_id"]].append(ann)
        coords.extend(ann.get("bbox", []))
    resolved, notes = _resolve_repeated_ids(dict(annotations), path)
    categories = data.get("categories")
    category_ids = None
    if isinstance(categories, list):
        category_ids = sorted((c["id"] for c in categories if isinstance(c, dict) and "id" in c), key=_order)
    normalized = box_units == "normalized" or (box_units == "auto" and all(0.0 <= c <= 1.0 for c in coords))
    return GroundTruth(Path(path), pairs, resolved, normalized, category_ids, notes)


def _order(value: Any) -> tuple[int, Any]:
    # pycocotools sorts the ids; numbers before strings keeps a mixed list sortable.
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def _sample(ids: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return f"[{shown}]" if len(ids) <= limit else f"[{shown}, ...] ({len(ids)} in all)"


def check_same_pairs(truths: Sequence[GroundTruth]) -> None:
    """Annotator files of one subset must describe the same pairs.

    Raises:
        SacoFormatError: naming the file and the pair ids it lacks, adds, or describes differently
            (``text_input``, ``file_name``, ``height``, ``width``).
    """
    first = truths[0]
    for other in truths[1:]:
        missing = [pid for pid in first.pairs if pid not in other.pairs]
        extra = [pid for pid in other.pairs if pid not in first.pairs]
        fields: set[str] = set()
        different = []
        for pid, entry in first.pairs.items():
            changed = [
                k for k in PAIR_FIELDS if pid in other.pairs and entry.get(k) != other.pairs[pid].get(k)
            ]
            if changed:
                different.append(pid)
                fields.update(changed)
        problems = []
        if missing:
            problems.append(f"lacks pair ids {_sample(missing)}")
        if extra:
            problems.append(f"has extra pair ids {_sample(extra)}")
        if different:
            named = ", ".join(k for k in PAIR_FIELDS if k in fields)
            problems.append(f"describes pair ids {_sample(different)} differently ({named})")
        if problems:
            raise SacoFormatError(
                f"annotator files do not describe the same pairs: {other.path} (vs {first.path}) "
                + "; ".join(problems)
            )


def is_crowd(annotation: dict[str, Any]) -> bool:
    return bool(annotation.get("iscrowd", annotation.get("is_crowd", 0)))


def evaluation_pair_ids(truths: Sequence[GroundTruth]) -> list[Hashable]:
    """Pairs SAM 3 evaluates: exhaustive in the first file, not non-exhaustive in any other."""
    excluded = {pid for truth in truths[1:] for pid in truth.pairs if not truth.exhaustive(pid)}
    return [pid for pid in truths[0].pairs if truths[0].exhaustive(pid) and pid not in excluded]
