"""Running an exported ``.pte`` from Python, with the eager predictor's API.

:class:`PteProgram` loads a program through ``executorch.runtime`` and reads its metadata
(constant methods). :class:`PtePredictor` is :class:`~sam3spec.predictor.ImagePredictor` on top
of a ``.pte``: ``set_image(image)`` runs ``encode_image`` once, ``predict(text=..., boxes=...,
points=...)`` runs ``encode_text`` (or looks the phrase up in a text-embedding table) and
``decode``; pre- and post-processing are the eager predictor's own code, so both return the same
:class:`~sam3spec.predictor.Prediction` for the same model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from sam3spec.export.pte_file import check_pte_file
from sam3spec.export.shapes import OUTPUT_NAMES, ExportShapes, padded_prompt
from sam3spec.models.outputs import Sam3Outputs
from sam3spec.predictor import ImagePredictor

_PROGRAM_CACHE: dict[str, Any] = {}


def load_runtime_program(path: str | Path) -> Any:
    """``executorch.runtime`` program for ``path`` (quantized kernels registered first).

    Raises:
        FileNotFoundError, ValueError: not a loadable ExecuTorch program (see :func:`check_pte_file`).
    """
    from executorch.runtime import Runtime

    path = check_pte_file(path)
    try:  # registers quantized_decomposed::embedding_4bit & co. (quantized token embeddings)
        import executorch.kernels.quantized  # noqa: F401
    except ImportError:  # pragma: no cover - present in the executorch wheel
        pass
    try:
        return Runtime.get().load_program(str(path))
    except RuntimeError as error:  # a damaged program with a valid header
        raise ValueError(f"{path}: ExecuTorch cannot load this program ({error})") from error


class PteProgram:
    """A loaded ``.pte``: its methods (loaded on first use) and metadata.

    Args:
        path: the ``.pte`` file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.program = load_runtime_program(self.path)
        self._methods: dict[str, Any] = {}
        self.metadata = self._read_metadata()

    @property
    def method_names(self) -> set[str]:
        return set(self.program.method_names)

    def method(self, name: str) -> Any:
        """The loaded method ``name`` (loading costs time and memory once)."""
        if name not in self._methods:
            if name not in self.method_names:
                raise KeyError(f"{self.path} has no method {name!r}; it has {sorted(self.method_names)}")
            self._methods[name] = self.program.load_method(name)
        return self._methods[name]

    def run(self, name: str, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """Execute method ``name`` on ``inputs`` (contiguous tensors of the exported shapes)."""
        return list(self.method(name).execute([tensor.contiguous() for tensor in inputs]))

    def _read_metadata(self) -> dict[str, Any]:
        if "metadata_json" not in self.method_names:
            raise ValueError(f"{self.path} was not exported by sam3spec (no metadata_json method)")
        (text,) = self.program.load_method("metadata_json").execute([])
        return json.loads(text)

    @property
    def shapes(self) -> ExportShapes:
        meta = self.metadata
        return ExportShapes(
            meta["image_size"],
            meta["context_length"],
            meta["max_points"],
            meta["max_boxes"],
            meta["memory_frames"],
        )


def _config_for(metadata: dict[str, Any]) -> Any:
    """A config with what the eager predictor reads: ``image_size`` and ``text``."""
    from sam3spec.config import PRESETS, StudentConfig, TextEncoderConfig

    base = PRESETS.get(metadata["preset"], StudentConfig())
    text = TextEncoderConfig(
        **{
            **dataclasses.asdict(base.text),
            "context_length": metadata["context_length"],
            "model_name": metadata["tokenizer"],
        }
    )
    return dataclasses.replace(base, name=metadata["preset"], image_size=metadata["image_size"], text=text)


class PteModel:
    """The three student entry points the eager predictor calls, served by a ``.pte``.

    Args:
        program: the loaded program.
        text_table: optional :class:`~sam3spec.export.text_table.TextTable`; prompts found in it
            skip ``encode_text``.
    """

    def __init__(self, program: PteProgram, text_table: Any = None) -> None:
        self.program = program
        self.config = _config_for(program.metadata)
        self.shapes = program.shapes
        self.text_table = text_table
        self.text_lookups = 0

    def eval(self) -> PteModel:
        return self

    def encode_image(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``[1, 3, S, S]`` normalised -> FPN levels."""
        return tuple(self.program.run("encode_image", pixel_values.float()))

    def encode_text(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[1, L]`` ids -> ``(tokens [1, L, C], padding mask [1, L])``, from the table when possible."""
        if self.text_table is not None:
            found = self.text_table.lookup(input_ids[0])
            if found is not None:
                self.text_lookups += 1
                return found[0][None], found[1][None]
        tokens, mask = self.program.run("encode_text", input_ids.long())
        return tokens, mask

    def encode_prompt(
        self,
        input_ids: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        box_labels: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        image_features: Any = None,
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]:
        """The padded prompt: ``((text_tokens, text_mask), (points, point_labels, boxes, box_labels))``."""
        if input_ids is None:
            tokens = torch.zeros(1, self.shapes.context_length, self.config.hidden)
            mask = torch.ones(1, self.shapes.context_length, dtype=torch.bool)
        else:
            tokens, mask = self.encode_text(input_ids)
        geometry = padded_prompt(
            self.shapes,
            points=None if points is None else points[0],
            point_labels=None if point_labels is None else point_labels[0],
            boxes=None if boxes is None else boxes[0],
            box_labels=None if box_labels is None else box_labels[0],
        )
        return (tokens, mask), geometry

    def decode(self, image_features: tuple[torch.Tensor, ...], text: tuple, geometry: tuple) -> Sam3Outputs:
        """Run ``decode`` and wrap its six outputs as :class:`Sam3Outputs`."""
        outputs = self.program.run("decode", *image_features, *text, *geometry)
        return Sam3Outputs(**dict(zip(OUTPUT_NAMES, outputs, strict=True)))


class PtePredictor(ImagePredictor):
    """:class:`~sam3spec.predictor.ImagePredictor` running a ``.pte`` (same ``set_image`` / ``predict``).

    Args:
        program: a ``.pte`` path or a :class:`PteProgram` (anything with its ``run``,
            ``metadata``, ``shapes`` and ``method_names``).
        tokenizer: optional tokenizer (default: the program's, built on first text prompt).
        text_table: optional text-embedding table (path or :class:`TextTable`) for known prompts.
    """

    def __init__(
        self, program: str | Path | PteProgram, tokenizer: Any = None, text_table: Any = None
    ) -> None:
        if isinstance(program, (str, Path)):
            program = PteProgram(program)
        if isinstance(text_table, (str, Path)):
            from sam3spec.export.text_table import TextTable

            text_table = TextTable.load(text_table)
        super().__init__(PteModel(program, text_table), tokenizer)  # type: ignore[arg-type]

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")
