"""``sam3spec data verify DIR``: find every SA-1B / SA-Co / SA-V tree under DIR, decode all of
it with the loaders' own readers, count what is there and list every problem."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sam3spec.data.faults import MISSING_FILE, DataFault, FaultLog, Problem
from sam3spec.data.layout import DataLayout
from sam3spec.data.sa1b import find_pairs, read_sa1b
from sam3spec.data.saco import SACoDataset, saco_file_groups
from sam3spec.data.sav import SAVVideo, check_video, find_videos

_FRAME_DIRS = ("JPEGImages_24fps", "Annotations_6fps")
TOTAL_KEYS = (
    "images",
    "phrases",
    "positives",
    "negatives",
    "annotations",
    "videos",
    "masklets",
    "annotated_frames",
)


@dataclass
class LayoutReport:
    """One tree found: its kind (``sa1b``, ``saco``, ``saco-gold``, ``sav-mp4``, ``sav-frames``),
    where it is, and what it holds."""

    kind: str
    path: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class VerifyReport:
    """Everything ``verify`` found."""

    root: str
    layouts: list[LayoutReport]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return bool(self.layouts) and not self.problems

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(TOTAL_KEYS, 0)
        for layout in self.layouts:
            for key in TOTAL_KEYS:
                totals[key] += layout.counts.get(key, 0)
        return totals

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "ok": self.ok,
            "totals": self.totals(),
            "layouts": [{"kind": x.kind, "path": x.path, "counts": x.counts} for x in self.layouts],
            "problems": [problem.to_dict() for problem in self.problems],
        }

    def format(self) -> str:
        lines = [f"verify {self.root}"]
        for layout in self.layouts:
            counts = ", ".join(f"{k} {v}" for k, v in layout.counts.items())
            lines.append(f"  {layout.kind:<10} {layout.path}: {counts}")
        lines.append("  totals: " + ", ".join(f"{k} {v}" for k, v in self.totals().items()))
        lines.append(f"  {len(self.problems)} problem(s)")
        lines.extend(f"    {problem}" for problem in self.problems)
        return "\n".join(lines)


def _frame_layout_roots(root: Path) -> list[Path]:
    return sorted({p.parent for name in _FRAME_DIRS for p in root.rglob(name) if p.is_dir()})


def _verify_sa1b(root: Path, log: FaultLog, progress: bool) -> list[LayoutReport]:
    by_folder: dict[Path, dict[str, int]] = defaultdict(lambda: {"images": 0, "annotations": 0})
    for image_path, json_path in tqdm(find_pairs(root), desc="sa1b", disable=not progress):
        counts = by_folder[json_path.parent]
        counts["images"] += 1
        try:
            counts["annotations"] += len(read_sa1b(image_path, json_path)["masks"])
        except DataFault as fault:
            log.extend(fault.problems)
    return [LayoutReport("sa1b", str(folder), counts) for folder, counts in sorted(by_folder.items())]


def _saco_groups(root: Path, log: FaultLog) -> list[tuple[str, list[Path]]]:
    """SA-Co files under root: Gold triples grouped, any other COCO-like file with phrases alone."""
    return saco_file_groups(root.rglob("*.json"), log)


def _verify_saco(root: Path, image_root: Path | None, log: FaultLog, progress: bool) -> list[LayoutReport]:
    layout = DataLayout.of(root)
    reports = []
    for kind, files in _saco_groups(root, log):
        images = image_root or layout.image_folder(files[0]) or files[0].parent
        counts = {"referenced_images": 0, "phrases": 0, "positives": 0, "negatives": 0, "annotations": 0}
        for annotator in range(len(files)):
            dataset = SACoDataset(files, images, annotator=annotator, fault_log=log)
            if dataset.source_file != files[annotator]:
                continue  # this annotator's file is missing or unreadable (already reported)
            for index in tqdm(range(len(dataset)), desc=files[annotator].name, disable=not progress):
                try:
                    dataset.raw(index)
                except DataFault as fault:
                    log.extend(fault.problems)
            grouped = dataset.annotations[dataset.source_file]
            counts["annotations"] += sum(len(grouped.get(e["id"], [])) for e in dataset.entries)
            if annotator == 0 or not counts["phrases"]:  # pairs are counted once per group
                positives = sum(bool(grouped.get(e["id"])) for e in dataset.entries)
                counts.update(
                    referenced_images=len({e["file_name"] for e in dataset.entries}),
                    phrases=len(dataset.entries),
                    positives=positives,
                    negatives=len(dataset.entries) - positives,
                )
        reports.append(LayoutReport(kind, str(files[0].parent / files[0].name), counts))
    return reports


def _verify_sav(root: Path, log: FaultLog, progress: bool) -> list[LayoutReport]:
    frame_roots = _frame_layout_roots(root)
    groups: dict[tuple[str, Path], list[SAVVideo]] = defaultdict(list)
    for video in [] if root in frame_roots else find_videos(root):
        if not any(parent in frame_roots for parent in video.mp4.parents):
            groups[("sav-mp4", video.mp4.parent)].append(video)
    for frame_root in frame_roots:
        groups[("sav-frames", frame_root)] = find_videos(frame_root)
        for listing in frame_root.glob("sav_*.txt"):
            for name in listing.read_text(encoding="utf-8").split():
                if not (frame_root / "Annotations_6fps" / name).is_dir():
                    log.record(
                        Problem(str(listing), MISSING_FILE, name, "listed video has no annotation folder")
                    )
    reports = []
    for (kind, folder), videos in sorted(groups.items()):
        counts = {"videos": 0, "masklets": 0, "annotated_frames": 0, "frames": 0}
        for video in tqdm(videos, desc=kind, disable=not progress):
            counts["videos"] += 1
            try:
                found = check_video(video)
            except DataFault as fault:
                log.extend(fault.problems)
                continue
            counts["masklets"] += found["masklets"]
            counts["annotated_frames"] += found["annotated_frames"]
            counts["frames"] += found["frames"]
        reports.append(LayoutReport(kind, str(folder), counts))
    return reports


def verify(root: str | Path, image_root: str | Path | None = None, progress: bool = False) -> VerifyReport:
    """Detect, decode and count every dataset tree under ``root``.

    Args:
        root: folder to search (recursively).
        image_root: image folder of the SA-Co files (default: ``sa1b/<split>/`` for a file in a
            data root's ``saco/<split>/`` (:mod:`sam3spec.data.layout`), else each file's own folder).
        progress: show tqdm bars.

    Returns:
        The report; ``report.problems`` lists each problem once.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    log = FaultLog(warn=False)
    layouts = _verify_sa1b(root, log, progress)
    layouts += _verify_saco(root, Path(image_root) if image_root else None, log, progress)
    layouts += _verify_sav(root, log, progress)
    return VerifyReport(root=str(root), layouts=layouts, problems=list(log.problems))
