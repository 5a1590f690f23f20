"""``sam3spec prune``: free disk space in a training run directory, dry run by default.

What can go (by category, all four when none is chosen):

* ``checkpoints``: ``checkpoints/step_*`` folders beyond the newest ``keep_last_n`` of each
  ``checkpoints/`` folder (:mod:`sam3spec.distill.state` layout), and stale ``.step_*.tmp`` folders;
* ``vis``: ``vis/`` / ``visualizations/`` folders;
* ``tensorboard``: ``tensorboard/`` folders (event files);
* ``cache``: ``teacher_targets/`` and ``cache/`` folders (recomputable teacher outputs).

Never deleted, whatever is chosen: the newest checkpoint of each ``checkpoints/`` folder and the
one ``latest.json`` names, anything under a ``final/`` folder (a checkpoint marked final), export
artefacts (``.pte``) and reports (``.md``, ``report*.json``, ``summary.json``, ``metrics.json``).
Symbolic links are never followed: a linked folder is skipped and a linked file is not listed, so
nothing outside the run directory can be reached; every listed path is checked to resolve inside it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

CATEGORIES = ("checkpoints", "vis", "tensorboard", "cache")
FOLDERS = {
    "vis": ("vis", "visualizations"),
    "tensorboard": ("tensorboard",),
    "cache": ("teacher_targets", "cache"),
}
STEP = re.compile(r"^step_(\d+)$")
STALE = re.compile(r"^\.step_.*\.tmp$")
PROTECTED_SUFFIXES = (".pte", ".md")
PROTECTED_NAMES = ("summary.json", "metrics.json", "latest.json")


@dataclass
class PruneItem:
    path: Path
    bytes: int
    category: str


@dataclass
class PrunePlan:
    """Files to delete (``items``), and what was kept on purpose (``kept``, with the reason)."""

    root: Path
    items: list[PruneItem] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(item.bytes for item in self.items)

    def format(self) -> str:
        lines = [
            f"{item.bytes:>12,d}  {item.category:<11}  {item.path.relative_to(self.root)}"
            for item in self.items
        ]
        lines += [f"{'kept':>12}  {reason:<11}  {path.relative_to(self.root)}" for path, reason in self.kept]
        lines.append(
            f"{len(self.items)} file(s), {self.total_bytes:,d} bytes ({self.total_bytes / 2**20:.1f} MiB)"
        )
        return "\n".join(lines)


def protected(path: Path, root: Path) -> str | None:
    """Why ``path`` must never be deleted, or None."""
    parts = path.relative_to(root).parts
    if "final" in parts[:-1]:
        return "final"
    if path.suffix in PROTECTED_SUFFIXES or path.name in PROTECTED_NAMES or path.name.startswith("report"):
        return "artefact"
    return None


def _inside(path: Path, root_real: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(root_real)


def _files_under(folder: Path, root: Path, root_real: Path, category: str, plan: PrunePlan) -> None:
    """Add every regular file under ``folder`` (not following links) to the plan, minus protected ones."""
    if folder.is_symlink() or not _inside(folder, root_real):
        plan.kept.append((folder, "symlink"))
        return
    for directory, subdirs, files in os.walk(folder, followlinks=False):
        base = Path(directory)
        for name in sorted(files):
            path = base / name
            if path.is_symlink() or not path.is_file() or not _inside(path, root_real):
                plan.kept.append((path, "symlink"))
                continue
            reason = protected(path, root)
            if reason:
                plan.kept.append((path, reason))
                continue
            plan.items.append(PruneItem(path, path.stat().st_size, category))
        subdirs[:] = sorted(d for d in subdirs if not (base / d).is_symlink())


def _checkpoint_folders(checkpoints: Path, keep_last_n: int) -> tuple[list[Path], list[Path], list[Path]]:
    """``(deletable, kept, stale)`` step folders of one ``checkpoints/`` folder."""
    steps = sorted(
        (int(m.group(1)), p)
        for p in checkpoints.iterdir()
        if p.is_dir() and not p.is_symlink() and (m := STEP.match(p.name))
    )
    keep = {p for _, p in steps[-max(keep_last_n, 1) :]}  # the newest is always kept
    latest = checkpoints / "latest.json"
    if latest.is_file():
        try:
            keep.add(checkpoints / json.loads(latest.read_text())["path"])
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable latest.json protects nothing extra; the newest folder is kept anyway
    stale = [p for p in checkpoints.iterdir() if p.is_dir() and STALE.match(p.name)]
    return [p for _, p in steps if p not in keep], sorted(keep), stale


def plan_prune(
    run_dir: str | Path, categories: tuple[str, ...] = CATEGORIES, keep_last_n: int = 1
) -> PrunePlan:
    """What ``sam3spec prune`` would delete in ``run_dir`` (nothing is touched).

    Raises:
        FileNotFoundError: ``run_dir`` is not a folder.
        ValueError: unknown category.
    """
    root = Path(run_dir).absolute()
    if not root.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} is not a folder")
    unknown = set(categories) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}; choose from {CATEGORIES}")
    root_real = Path(os.path.realpath(root))
    plan = PrunePlan(root)
    for directory, subdirs, _ in os.walk(root, followlinks=False):
        base = Path(directory)
        if base.name == "final":
            subdirs[:] = []
            continue
        for name in sorted(subdirs):
            folder = base / name
            if folder.is_symlink():
                plan.kept.append((folder, "symlink"))
                continue
            if name == "checkpoints" and "checkpoints" in categories:
                deletable, kept, stale = _checkpoint_folders(folder, keep_last_n)
                for step in deletable + stale:
                    _files_under(step, root, root_real, "checkpoints", plan)
                plan.kept.extend((step, "newest") for step in kept)
            for category, names in FOLDERS.items():
                if name in names and category in categories:
                    _files_under(folder, root, root_real, category, plan)
        handled = {"checkpoints"} | {n for c, names in FOLDERS.items() if c in categories for n in names}
        subdirs[:] = sorted(d for d in subdirs if not (base / d).is_symlink() and d not in handled)
    return plan


def apply_prune(plan: PrunePlan) -> int:
    """Delete exactly the plan's files, then folders left empty by it; returns bytes freed."""
    root_real = Path(os.path.realpath(plan.root))
    freed, parents = 0, set()
    for item in plan.items:
        if item.path.is_symlink() or not _inside(item.path, root_real):
            raise RuntimeError(f"refusing to delete {item.path}: it resolves outside {plan.root}")
        item.path.unlink()
        freed += item.bytes
        parents.add(item.path.parent)
    for folder in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        current = folder
        while current != plan.root and current.is_dir() and not any(current.iterdir()):
            current.rmdir()
            current = current.parent
    return freed
