"""``sam3spec export`` as a library call: lower, check parity, write the ``.pte`` and its companions.

Files written next to ``out`` (``model.pte``):

* ``model.pte``: the program (methods ``encode_image``, ``encode_text``, ``decode``, ``track`` +
  metadata constant methods);
* ``model.json``: the manifest: preset, weights, recipe, what was quantized, delegation per
  method, bytes per method, parity figures, timings;
* ``model.text_table.safetensors``: ``encode_text`` precomputed for a fixed vocabulary (the
  inputs' phrases unless told otherwise), computed with the ``.pte`` itself.

What export reads besides the model is one :class:`ExportInputs`: calibration images (static
int8 quantization), parity samples and phrases. The caller chooses them (the command line takes
them from a folder of the user's images and a vocabulary, :mod:`sam3spec.export.folder_inputs`,
or from the concept world, :mod:`sam3spec.world.inputs`).

A program whose parity check fails is not written unless ``force``; its manifest, with the failing
figures, is written as ``model.parity-failed.json`` (an earlier ``model.pte`` / ``model.json`` pair
stays as it was). Everything is staged in a temporary sibling folder and renamed into place at the
end, so an interrupted export leaves no partial file. A Core ML program cannot run on Linux: it
is written without a parity check and the manifest says so.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sam3spec.atomic import atomic_write_json
from sam3spec.export.lowering import export_model
from sam3spec.export.recipes import ExportRecipe
from sam3spec.export.wrappers import METHODS, export_modules
from sam3spec.heartbeat import heartbeat
from sam3spec.models.student import Student

CALIBRATION_IMAGES = 16  # what callers are expected to give (measured enough for static int8)
PARITY_SAMPLES = 6


class ParityError(RuntimeError):
    """The exported program does not match the eager model; nothing was written."""


def companion_paths(out: str | Path) -> dict[str, Path]:
    """``{"pte", "manifest", "text_table", "failed_manifest"}`` paths for an output ``.pte`` path."""
    out = Path(out)
    stem = out.with_suffix("")
    return {
        "pte": out,
        "manifest": stem.with_suffix(".json"),
        "text_table": Path(f"{stem}.text_table.safetensors"),
        "failed_manifest": Path(f"{stem}.parity-failed.json"),
    }


@dataclass
class ExportInputs:
    """What an export reads besides the model.

    Attributes:
        calibration: normalised letterboxed ``[3, S, S]`` images at the student's size (PT2E
            calibration of statically quantized methods).
        parity: ``(normalised [3, S, S] image, phrase)`` samples the program is checked on.
        phrases: calibration phrases (``encode_text`` / ``decode``), and the text table's
            vocabulary unless :func:`export_student` is given another.
        source: where they came from (recorded in the manifest, part of cache keys).
    """

    calibration: list[torch.Tensor]
    parity: list[tuple[torch.Tensor, str]]
    phrases: list[str]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.calibration:
            raise ValueError(f"export inputs from {self.source or 'the caller'}: no calibration images")
        if not self.phrases:
            raise ValueError(f"export inputs from {self.source or 'the caller'}: no phrases")


def letterboxed_images(paths: Sequence[str | Path], image_size: int) -> list[torch.Tensor]:
    """Images as the predictor feeds them (read by :func:`sam3spec.data.image_io.load_image`, as
    ``segment`` reads them): letterboxed to ``image_size``, ImageNet-normalised."""
    from sam3spec.data.image_io import load_image
    from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig
    from sam3spec.predictor import image_to_tensor

    transform = ResizeNormalize(TransformConfig(image_size, "letterbox", Normalization.IMAGENET))
    return [transform({"image": image_to_tensor(load_image(path))})["image"] for path in paths]


def export_student(
    student: Student,
    out: str | Path,
    recipe: ExportRecipe,
    inputs: ExportInputs,
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
        inputs: calibration images, parity samples and phrases (:class:`ExportInputs`).
        force: write the program even when parity fails.
        weights: ``trained`` or ``random`` (recorded in the manifest).
        methods: methods to export.
        vocabulary: phrases of the text table (default: ``inputs.phrases``).
        text_table: write the text table.
        command: the command line, recorded in the manifest.
        log: progress lines.
        **shape_overrides: ``max_points``, ``max_boxes``, ``memory_frames``.

    Raises:
        ParityError: parity failed and not ``force``.
        BackendUnavailable: the backend cannot lower here (QNN without its SDK).
    """
    from sam3spec.export.parity import check_parity
    from sam3spec.export.profile import delegation_to_json, pte_breakdown
    from sam3spec.export.runtime import PteProgram
    from sam3spec.export.text_table import build_text_table
    from sam3spec.models.text_encoder import Tokenizer

    paths = companion_paths(out)
    paths["pte"].parent.mkdir(parents=True, exist_ok=True)
    size = student.config.image_size
    if any(image.shape[-2:] != (size, size) for image in inputs.calibration):
        raise ValueError(f"export inputs from {inputs.source}: calibration images are not {size} x {size}")
    # Staged in a temporary sibling folder (same file system) and renamed into place at the end:
    # an interrupted or failed export leaves the previous program and its companions as they were.
    parent, name = paths["pte"].parent, paths["pte"].name
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".{name}.", suffix=".tmp") as scratch:
        phrases = list(inputs.phrases)
        lowered = export_model(student, recipe, inputs.calibration, phrases, methods, log, **shape_overrides)
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
            "inputs": inputs.source,
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
            samples = inputs.parity
            with heartbeat(log, f"parity check on {len(samples)} samples"):
                parity = check_parity(lowered.modules, program, samples, tokenizer)
            log(parity.describe())
            manifest["parity"] = parity.to_json()
            if lowered.quantization:
                reference = export_modules(student, rewrite=False, **shape_overrides)
                with heartbeat(log, "parity check against the float eager student"):
                    float_parity = check_parity(
                        reference, program, samples, tokenizer, reference_name="float eager student"
                    )
                log(float_parity.describe())
                manifest["parity_float"] = float_parity.to_json()
            if not parity.passed and not force:
                _write_manifest({**manifest, "written": False}, paths["failed_manifest"])
                raise ParityError(
                    f"parity failed ({parity.describe()}); {paths['pte']} not written (figures in "
                    f"{paths['failed_manifest']}; --force writes it anyway)"
                )
            if text_table and "encode_text" in lowered.methods:
                table = build_text_table(
                    vocabulary or phrases,
                    tokenizer,
                    lambda ids: tuple(program.run("encode_text", ids)),
                    student.config.name,
                )
                table.save(Path(scratch) / paths["text_table"].name)
                manifest["text_table"] = {"path": paths["text_table"].name, "phrases": len(table.phrases)}
                log(f"text table: {len(table.phrases)} phrases -> {paths['text_table']}")
        manifest["written"] = True
        _commit(Path(scratch), paths, manifest)
    log(f"wrote {paths['pte']} ({len(lowered.buffer) / 1e6:.2f} MB) and {paths['manifest'].name}")
    return manifest


def _commit(scratch: Path, paths: dict[str, Path], manifest: dict[str, Any]) -> None:
    """Rename the staged files into place: the program and its text table, then the manifest
    (written last: a manifest beside a program describes it); a stale text table or failure
    record of an earlier run goes."""
    staged_table = scratch / paths["text_table"].name
    if staged_table.exists():
        os.replace(staged_table, paths["text_table"])
    else:
        paths["text_table"].unlink(missing_ok=True)
    os.replace(scratch / "model.pte", paths["pte"])
    _write_manifest(manifest, paths["manifest"])
    paths["failed_manifest"].unlink(missing_ok=True)


def _write_manifest(manifest: dict[str, Any], path: Path) -> None:
    # default=str: paths and other non-JSON values are recorded as text
    atomic_write_json(json.loads(json.dumps(manifest, default=str)), path, indent=2, sort_keys=False)
