"""Exported programs cached by what produced them, so gate suites lower each program once.

:func:`cached_export` returns ``(pte path, manifest)`` for a student source (a preset with random
weights, or a checkpoint directory) and an export recipe; the cache key hashes the source (config
or the checkpoint's files), the recipe, the shapes and the source code of :mod:`sam3spec.export`
and :mod:`sam3spec.quant`, so a code change re-exports. A run directory can hold programs made
elsewhere: ``<run_dir>/export/<name>/model.pte`` is used as is when present.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sam3spec.export.recipes import ExportRecipe

if TYPE_CHECKING:
    from sam3spec.export.pipeline import ExportInputs


class InputSource(Protocol):
    """Export inputs made on demand (only when the program is not cached yet).

    Attributes:
        key: identifies the inputs (part of the cache key).
    """

    key: str

    def __call__(self, image_size: int) -> ExportInputs: ...


CACHE_DIR = Path(__file__).resolve().parents[2] / ".sam3spec-cache" / "export"


def _source_hash() -> str:
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for package in ("export", "quant", "models"):
        for path in sorted((root / package).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _student_identity(source: str | Path, random_weights: bool) -> dict[str, Any]:
    if random_weights:
        return {"preset": str(source), "weights": "random", "seed": 0}
    directory = Path(source)
    files = {
        path.name: [path.stat().st_size, int(path.stat().st_mtime)]
        for path in sorted(directory.glob("*"))
        if path.is_file()
    }
    return {"checkpoint": str(directory.resolve()), "files": files}


def export_name(label: str, recipe: ExportRecipe) -> str:
    """Folder name of an export: ``<label>-<backend>-<recipe>``."""
    return f"{label}-{recipe.backend}-{recipe.name}"


def cached_export(
    source: str | Path,
    recipe: ExportRecipe,
    label: str,
    inputs: InputSource,
    random_weights: bool = False,
    run_dir: str | Path | None = None,
    cache_dir: Path = CACHE_DIR,
    force: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """The ``.pte`` (and manifest) of ``source`` exported with ``recipe``, exporting it if needed.

    Args:
        source: a preset name (with ``random_weights``) or a student checkpoint directory.
        recipe: the export recipe.
        label: short name for the folder (``seed``, ``tiny-trained``).
        random_weights: build ``source`` as a preset with random weights (randomised BN).
        inputs: calibration / parity images and phrases, built only when exporting.
        run_dir: look for ``<run_dir>/export/<label>-<backend>-<recipe>/model.pte`` first.
        cache_dir: where exports are cached.
        force: write the program even if parity fails (the manifest records the figures).
    """
    from sam3spec.export.pipeline import companion_paths, export_student

    name = export_name(label, recipe)
    if run_dir is not None:
        candidate = Path(run_dir) / "export" / name / "model.pte"
        if candidate.is_file():
            manifest = companion_paths(candidate)["manifest"]
            return candidate, json.loads(manifest.read_text()) if manifest.is_file() else {}
    key = hashlib.sha256(
        json.dumps(
            {
                "student": _student_identity(source, random_weights),
                "recipe": recipe.key,
                "code": _source_hash(),
                "inputs": inputs.key,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    out = cache_dir / f"{name}-{key}" / "model.pte"
    paths = companion_paths(out)
    if out.is_file() and paths["manifest"].is_file():
        return out, json.loads(paths["manifest"].read_text())
    if random_weights:
        import torch

        from sam3spec.models.build import build_student
        from sam3spec.models.image_encoder import randomise_batch_norms

        torch.manual_seed(0)
        student = randomise_batch_norms(build_student(str(source)).eval(), seed=0)
        weights = "random (randomised BN statistics)"
    else:
        from sam3spec.checkpoint import load_student

        student, weights = load_student(source), "trained"
    manifest = export_student(
        student,
        out,
        recipe,
        inputs(student.config.image_size),
        force=force,
        weights=weights,
        command=f"cached_export({source!r}, {recipe.key})",
    )
    return out, manifest
