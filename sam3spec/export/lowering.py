"""Student -> one multi-method ExecuTorch program (the ExecuTorch examples' shape).

:func:`export_model` = wrap (:mod:`~sam3spec.export.wrappers`) -> quantize for the backend
(:func:`quantize_for_backend`) -> ``torch.export`` each method (:func:`export_methods`) ->
:func:`lower_to_executorch` (``to_edge_transform_and_lower`` with the backend's partitioner, the
delegation rewrites and the metadata as constant methods) -> ``.pte`` bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from sam3spec.export.backends import (
    no_qnn_download,
    partitioners,
    pt2e_quantize,
    qnn_quantizer,
    require_qnn_sdk,
    xnnpack_int8_quantizer,
)
from sam3spec.export.profile import MethodDelegation, delegation_summary
from sam3spec.export.recipes import ExportRecipe
from sam3spec.export.wrappers import (
    METHODS,
    OUTPUT_NAMES,
    ExportModules,
    example_inputs,
    export_modules,
    padded_prompt,
)
from sam3spec.heartbeat import heartbeat
from sam3spec.models.student import Student

FORMAT = "sam3spec-pte/1"


@dataclass
class LoweredProgram:
    """A lowered program and what went into it.

    Attributes:
        buffer: the ``.pte`` bytes.
        recipe: the export recipe.
        modules: the (quantized) eager wrappers that were exported: the parity reference.
        methods: exported method names.
        delegation: per-method delegation (see :mod:`sam3spec.export.profile`).
        metadata: the constant-method values stored in the program.
        quantization: human-readable lines on what was quantized.
        seconds: wall time per step.
    """

    buffer: bytes
    recipe: ExportRecipe
    modules: ExportModules
    methods: tuple[str, ...]
    delegation: dict[str, MethodDelegation]
    metadata: dict[str, Any]
    quantization: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def program_metadata(modules: ExportModules, recipe: ExportRecipe) -> dict[str, Any]:
    """Values stored as constant methods: what an app needs to feed and read the program."""
    from sam3spec.data.transforms import Normalization

    config, shapes = modules.student.config, modules.shapes
    values: dict[str, Any] = {
        "format": FORMAT,
        "preset": config.name,
        "backend": recipe.backend,
        "recipe": recipe.name,
        "image_size": shapes.image_size,
        "resize": "letterbox: longer side to image_size, pad bottom/right with the mean colour",
        "normalization_mean": list(Normalization.IMAGENET.mean),
        "normalization_std": list(Normalization.IMAGENET.std),
        "tokenizer": config.text.model_name,
        "context_length": shapes.context_length,
        "pad_token_id": 0,
        "max_points": shapes.max_points,
        "max_boxes": shapes.max_boxes,
        "memory_frames": shapes.memory_frames,
        "memory_level": config.memory.context_level,
        "num_queries": config.detr.num_queries,
        "hidden": config.hidden,
        "mask_stride": 4,
        "output_names": list(OUTPUT_NAMES),
    }
    values["metadata_json"] = json.dumps(values, sort_keys=True)
    return values


def calibration_inputs(
    modules: ExportModules, images: Sequence[torch.Tensor], phrases: Sequence[str], method: str
) -> list[tuple[torch.Tensor, ...]]:
    """Realistic inputs of ``method`` for PT2E calibration, from normalised images and phrases.

    Computed with the float wrappers (call before quantizing them).
    """
    from sam3spec.models.text_encoder import Tokenizer

    if method == "encode_image":
        return [(image[None] if image.dim() == 3 else image,) for image in images]
    tokenizer = Tokenizer(modules.student.config.text)
    samples = []
    with torch.no_grad():
        for index, image in enumerate(images):
            pixels = image[None] if image.dim() == 3 else image
            ids = tokenizer([phrases[index % len(phrases)]])
            if method == "encode_text":
                samples.append((ids,))
                continue
            tokens, mask = modules.encode_text(ids)
            prompt = (tokens, mask, *padded_prompt(modules.shapes, points=[[0.5, 0.5]]))
            levels = modules.encode_image(pixels)
            if method == "decode":
                samples.append((*levels, *prompt))
            else:
                level = levels[modules.student.config.memory.context_level]
                context = level[:, None].expand(-1, modules.shapes.memory_frames, -1, -1, -1).clone()
                valid = torch.ones(1, modules.shapes.memory_frames, dtype=torch.bool)
                samples.append((pixels, *prompt, context, valid))
    return samples


def quantize_for_backend(
    modules: ExportModules,
    recipe: ExportRecipe,
    images: Sequence[torch.Tensor],
    phrases: Sequence[str],
    methods: Sequence[str] = METHODS,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Quantize the wrappers in place as ``recipe`` says; returns what was done, one line each."""
    from torch import nn

    from sam3spec.export.part_quant import quantize_linear_parts, quantize_pointwise

    lines: list[str] = []
    if recipe.qnn_dtype is not None:
        with no_qnn_download():
            quantizer = qnn_quantizer(recipe)
            for method in methods:
                calibration = calibration_inputs(modules, images, phrases, method)
                graph = pt2e_quantize(
                    getattr(modules, method), example_inputs(modules, method), calibration, quantizer
                )
                if method == "encode_image":
                    modules.set_image_encoder(graph)
                else:
                    setattr(modules, method, graph)
        lines.append(f"QnnQuantizer {recipe.qnn_dtype} (PT2E, per-channel weights) on {', '.join(methods)}")
        log(lines[-1])
        return lines
    if recipe.conv_int8 and {"encode_image", "track"} & set(methods):
        calibration = calibration_inputs(modules, images, phrases, "encode_image")
        example = example_inputs(modules, "encode_image")
        quantizer = xnnpack_int8_quantizer()
        if recipe.conv1x1 is not None:
            lines.append(quantize_pointwise(modules.encode_image, recipe.conv1x1))
            log(lines[-1])
            # The Linear layers carry torchao's dynamic 8da4w / 8da8w already: PT2E leaves them be.
            quantizer.set_module_type(nn.Linear, None)
        graph = pt2e_quantize(modules.encode_image, example, calibration, quantizer)
        modules.set_image_encoder(graph)
        lines.append(
            f"image encoder: PT2E static int8 per-channel (XNNPACKQuantizer), {len(calibration)} calibration images"
        )
        log(lines[-1])
    if recipe.linear is not None:
        lines.extend(quantize_linear_parts(modules, recipe, log))
    if recipe.coreml_weights:
        lines.append(f"Core ML weight quantization at conversion: {recipe.coreml_weights}")
        log(lines[-1])
    return lines


def export_methods(
    modules: ExportModules,
    methods: Sequence[str] = METHODS,
    rewrite: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, torch.export.ExportedProgram]:
    """``torch.export`` each wrapper at its fixed example shapes (plus the XNNPACK decompositions).

    ``track`` with a PT2E-quantized image encoder keeps ``upsample_nearest2d`` as is: with the
    matmul form next to the quantized outputs, XNNPACK 1.5.1's ``ChannelsLastTaggedReshapePass``
    fails (``KeyError: 'val'`` on the q/dq nodes it inserts), so there the three nearest
    upsamplings run on the portable CPU kernel.
    """
    from sam3spec.export.rewrites import decompositions, remove_noop_expands

    image_quantized = isinstance(modules.encode_image, torch.fx.GraphModule)
    programs = {}
    for number, method in enumerate(methods, 1):
        if log is not None:
            log(f"torch.export {method} ({number}/{len(methods)})")
        program = torch.export.export(getattr(modules, method), example_inputs(modules, method), strict=False)
        if rewrite:
            if not (method == "track" and image_quantized):
                program = program.run_decompositions(decompositions())
            remove_noop_expands(program.graph_module)
        programs[method] = program
    return programs


def lower_to_executorch(
    programs: dict[str, torch.export.ExportedProgram], recipe: ExportRecipe, metadata: dict[str, Any]
) -> tuple[bytes, dict[str, MethodDelegation]]:
    """Partition, delegate and serialise; returns ``(pte bytes, per-method delegation)``.

    Raises:
        BackendUnavailable: QNN without its SDK (checked before ExecuTorch would download it).
    """
    from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge_transform_and_lower

    from sam3spec.export.rewrites import fold_constants_pass, remove_noop_expands_pass

    if recipe.backend == "qnn":
        require_qnn_sdk()
    passes = [remove_noop_expands_pass(), fold_constants_pass()] if recipe.backend == "xnnpack" else None
    compile_config = EdgeCompileConfig(_check_ir_validity=False)
    if recipe.backend == "qnn":
        from executorch.backends.qualcomm.utils.utils import qnn_edge_config

        compile_config = qnn_edge_config()
    edge = to_edge_transform_and_lower(
        programs,
        transform_passes=passes,
        partitioner=partitioners(recipe),
        constant_methods=metadata,
        compile_config=compile_config,
    )
    delegation = delegation_summary(edge, list(programs))
    program = edge.to_executorch(ExecutorchBackendConfig(do_quant_fusion_and_const_prop=True))
    return program.buffer, delegation


def export_model(
    student: Student,
    recipe: ExportRecipe,
    images: Sequence[torch.Tensor],
    phrases: Sequence[str],
    methods: Sequence[str] = METHODS,
    log: Callable[[str], None] = print,
    **shape_overrides: int,
) -> LoweredProgram:
    """Wrap, quantize, export and lower ``student`` into one program.

    Args:
        student: the student (not modified: a deployment copy is wrapped).
        recipe: the export recipe (backend + quantization).
        images: normalised ``[3, S, S]`` calibration images.
        phrases: calibration phrases.
        methods: which methods to put in the program (default all four).
        log: progress lines.
        **shape_overrides: ``max_points``, ``max_boxes``, ``memory_frames``.

    Returns:
        The :class:`LoweredProgram`.
    """
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    modules = export_modules(student, rewrite=recipe.backend == "xnnpack", **shape_overrides)
    metadata = program_metadata(modules, recipe)
    lines = quantize_for_backend(modules, recipe, images, phrases, methods, log)
    seconds["quantize"] = time.perf_counter() - start
    start = time.perf_counter()
    programs = export_methods(modules, methods, rewrite=recipe.backend == "xnnpack", log=log)
    seconds["export"] = time.perf_counter() - start
    log(f"exported {', '.join(methods)} in {seconds['export']:.0f} s")
    start, cpu_start = time.perf_counter(), time.process_time()
    # One ExecuTorch call lowers every method (so identical weights are stored once): it reports
    # nothing for minutes, hence the heartbeat.
    with heartbeat(log, f"lowering {len(methods)} method(s) to {recipe.backend}"):
        buffer, delegation = lower_to_executorch(programs, recipe, metadata)
    seconds["lower"] = time.perf_counter() - start
    # CPU seconds beside wall seconds: on a shared machine the wall time is mostly waiting (the
    # seed's 1240 s lowering ran at ~31% of a core, niced under a training run).
    seconds["lower_cpu"] = time.process_time() - cpu_start
    log(f"lowered in {seconds['lower']:.0f} s ({seconds['lower_cpu']:.0f} s CPU): {len(buffer) / 1e6:.1f} MB")
    return LoweredProgram(buffer, recipe, modules, tuple(methods), delegation, metadata, lines, seconds)
