"""``sam3spec export`` as a library call: lower, check parity, write the ``.pte`` and its companions.

Files written next to ``out`` (``model.pte``):

* ``model.pte``: the program (methods ``encode_image``, ``encode_text``, ``decode``, ``track`` +
  metadata constant methods);
* ``model.json``: the manifest: preset, weights, recipe, what was quantized, delegation per
  method, bytes per method, parity figures, timings;
* ``model.text_table.safetensors``: ``encode_text`` precomputed for a fixed vocabulary (the
  concept world's phrases unless told otherwise), computed with the ``.pte`` itself.

A program whose parity check fails is not written unless ``force`` (the manifest still is, with
the failing figures). A Core ML program cannot run on Linux: it is written without a parity check
and the manifest says so.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from sam3spec.export.lowering import export_model
from sam3spec.export.recipes import ExportRecipe
from sam3spec.export.wrappers import METHODS, export_modules
from sam3spec.models.student import Student

CALIBRATION_IMAGES = 16
PARITY_SAMPLES = 6


class ParityError(RuntimeError):
    """The exported program does not match the eager model; nothing was written."""


def companion_paths(out: str | Path) -> dict[str, Path]:
    """``{"pte", "manifest", "text_table"}`` paths for an output ``.pte`` path."""
    out = Path(out)
    stem = out.with_suffix("")
    return {
        "pte": out,
        "manifest": stem.with_suffix(".json"),
        "text_table": Path(f"{stem}.text_table.safetensors"),
    }


def world_images(world_dir: str | Path, split: str, image_size: int, count: int) -> list[torch.Tensor]:
    """``count`` normalised letterboxed images of a concept world's SA-1B ``split`` (train / eval)."""
    from sam3spec.data.files import read_image
    from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig
    from sam3spec.predictor import image_to_tensor

    folder = Path(world_dir) / "sa1b" / split
    files = sorted(folder.glob("*.jpg"))[:count]
    if not files:
        raise FileNotFoundError(f"no images in {folder}: generate a concept world (sam3spec world generate)")
    transform = ResizeNormalize(TransformConfig(image_size, "letterbox", Normalization.IMAGENET))
    return [transform({"image": image_to_tensor(read_image(path))})["image"] for path in files]


def ensure_world(world_dir: str | Path | None, scratch: Path) -> Path:
    """``world_dir``, or a small concept world generated in ``scratch`` (24 images, seed 0)."""
    if world_dir is not None:
        return Path(world_dir)
    from sam3spec.data.world import generate_world

    generate_world(scratch / "world", 24, 0, 0, progress=False)
    return scratch / "world"


def export_student(
    student: Student,
    out: str | Path,
    recipe: ExportRecipe,
    world_dir: str | Path | None = None,
    force: bool = False,
    weights: str = "trained",
    methods: Sequence[str] = METHODS,
    vocabulary: Sequence[str] | None = None,
    text_table: bool = True,
    command: str = "",
    log: Callable[[str], None] = print,
    **shape_overrides: int,
) -> dict[str, Any]:
    """Export ``student`` to ``out`` and return the manifest (also written as JSON).

    Args:
        student: the student.
        out: the ``.pte`` path.
        recipe: backend + quantization.
        world_dir: a generated concept world for calibration and parity images (default: a small
            one generated in a temporary folder).
        force: write the program even when parity fails.
        weights: ``trained`` or ``random`` (recorded in the manifest).
        methods: methods to export.
        vocabulary: phrases of the text table (default: the concept world's).
        text_table: write the text table.
        command: the command line, recorded in the manifest.
        log: progress lines.
        **shape_overrides: ``max_points``, ``max_boxes``, ``memory_frames``.

    Raises:
        ParityError: parity failed and not ``force``.
        BackendUnavailable: the backend cannot lower here (QNN without its SDK).
    """
    from sam3spec.export.parity import check_parity, parity_samples
    from sam3spec.export.profile import delegation_to_json, pte_breakdown
    from sam3spec.export.runtime import PteProgram
    from sam3spec.export.text_table import build_text_table, concept_world_phrases
    from sam3spec.models.text_encoder import Tokenizer

    paths = companion_paths(out)
    paths["pte"].parent.mkdir(parents=True, exist_ok=True)
    size = student.config.image_size
    with tempfile.TemporaryDirectory(prefix="sam3spec-export-") as scratch:
        world = ensure_world(world_dir, Path(scratch))
        images = world_images(world, "train", size, CALIBRATION_IMAGES)
        phrases = concept_world_phrases()
        lowered = export_model(student, recipe, images, phrases, methods, log, **shape_overrides)
        manifest: dict[str, Any] = {
            "command": command,
            "preset": student.config.name,
            "weights": weights,
            "backend": recipe.backend,
            "recipe": recipe.name,
            "recipe_what": recipe.what,
            "methods": list(lowered.methods),
            "quantization": lowered.quantization,
            "delegation": delegation_to_json(lowered.delegation),
            "metadata": {k: v for k, v in lowered.metadata.items() if k != "metadata_json"},
            "seconds": lowered.seconds,
            "pte_bytes": len(lowered.buffer),
        }
        staged = Path(scratch) / "model.pte"
        staged.write_bytes(lowered.buffer)
        manifest["breakdown"] = pte_breakdown(staged).to_json()
        tokenizer = Tokenizer(student.config.text)
        if recipe.backend != "xnnpack":
            manifest["parity"] = {
                "passed": None,
                "reason": f"a {recipe.backend} program cannot run on this Linux host",
            }
        else:
            program = PteProgram(staged)
            samples = parity_samples(world, size, PARITY_SAMPLES)
            parity = check_parity(lowered.modules, program, samples, tokenizer)
            log(parity.describe())
            manifest["parity"] = parity.to_json()
            if lowered.quantization:
                reference = export_modules(student, rewrite=False, **shape_overrides)
                float_parity = check_parity(
                    reference, program, samples, tokenizer, reference_name="float eager student"
                )
                log(float_parity.describe())
                manifest["parity_float"] = float_parity.to_json()
            if not parity.passed and not force:
                _write_json(paths["manifest"], {**manifest, "written": False})
                raise ParityError(
                    f"parity failed ({parity.describe()}); {paths['pte']} not written (use --force to write it anyway)"
                )
            if text_table and "encode_text" in lowered.methods:
                table = build_text_table(
                    vocabulary or phrases,
                    tokenizer,
                    lambda ids: tuple(program.run("encode_text", ids)),
                    student.config.name,
                )
                table.save(paths["text_table"])
                manifest["text_table"] = {"path": paths["text_table"].name, "phrases": len(table.phrases)}
                log(f"text table: {len(table.phrases)} phrases -> {paths['text_table']}")
        shutil.move(str(staged), paths["pte"])
    manifest["written"] = True
    _write_json(paths["manifest"], manifest)
    log(f"wrote {paths['pte']} ({len(lowered.buffer) / 1e6:.2f} MB) and {paths['manifest'].name}")
    return manifest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
