"""Export recipes per backend: how the wrappers are quantized before lowering.

=========== =========== ============================================================================
backend     recipe      what
=========== =========== ============================================================================
xnnpack     fp32        no quantization (reference)
xnnpack     8da4w       Linear: int8 dynamic activations + int4 weights (group 32, torchao
                        ``Int8DynamicActivationIntxWeightConfig``); text token embedding int4
                        (group 32, ``embedding_4bit`` kernel); backbone + FPN convolutions: PT2E
                        static int8 per-channel (``XNNPACKQuantizer``, calibrated on images);
                        IoU head, scoring, Perceiver, memory attention in float
xnnpack     8da8w       as 8da4w with int8 per-channel Linear weights and an int8 embedding
xnnpack     8da4w-1x1   group size per part: the image encoder's 1x1 convolutions as Linear 8da4w
                        g32 (``Conv1x1AsLinear``; 8da8w where the input width is not a multiple of
                        32), its other convolutions PT2E static int8; text tower Linear and token
                        embedding int4 g128; prompt encoder / DETR / mask-decoder Linear 8da4w g32;
                        IoU head, scoring, Perceiver, memory attention 8da8w (int8 per channel);
                        mask-decoder convolutions float
coreml      fp16        Core ML fp16 compute (ANE), compute units ALL, iOS 17
coreml      fp16-w8     fp16 + Core ML's own post-conversion int8 per-channel weight quantization
                        (``op_linear_quantizer_config``, coremltools ``linear_quantize_weights``)
coreml      fp16-w4     fp16 + int4 per-block (32) weights (iOS 18)
qnn         16a8w       ``QnnQuantizer`` 16-bit activations / 8-bit per-channel weights (HTP)
qnn         8a8w        ``QnnQuantizer`` 8-bit activations / 8-bit weights
=========== =========== ============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("xnnpack", "coreml", "qnn")
METHODS = ("encode_image", "encode_text", "decode", "track")  # the program's methods, in order
DEFAULT_RECIPE = {"xnnpack": "8da4w", "coreml": "fp16-w8", "qnn": "16a8w"}


@dataclass(frozen=True)
class ExportRecipe:
    """How to quantize and lower for one backend.

    Attributes:
        backend: ``xnnpack`` / ``coreml`` / ``qnn``.
        name: recipe name (unique per backend).
        what: one-line description.
        linear: :mod:`sam3spec.quant.recipes` recipe for Linear layers and the token embedding
            (torchao), or None.
        conv_int8: PT2E static int8 per-channel quantization of the image encoder (XNNPACK).
        coreml_weights: Core ML ``op_linear_quantizer_config`` (post-conversion weight
            quantization), or None.
        coreml_target: minimum iOS version for Core ML (17 or 18).
        qnn_dtype: ``QuantDtype`` member name for ``QnnQuantizer`` (``use_16a8w``), or None.
        conv1x1: recipe for the image encoder's 1x1 convolutions rewritten as Linear
            (:mod:`sam3spec.export.conv_linear`), or None (they stay convolutions, PT2E int8).
        text: recipe for the text tower's Linear layers and token embedding, or None (``linear``).
        sensitive: recipe for the sensitive parts' Linear layers (IoU head, scoring, Perceiver,
            memory attention), or None (float).
    """

    backend: str
    name: str
    what: str
    linear: str | None = None
    conv_int8: bool = False
    coreml_weights: dict = field(default_factory=dict)
    coreml_target: int = 17
    qnn_dtype: str | None = None
    conv1x1: str | None = None
    text: str | None = None
    sensitive: str | None = None

    @property
    def key(self) -> str:
        return f"{self.backend}/{self.name}"


EXPORT_RECIPES: dict[str, ExportRecipe] = {
    recipe.key: recipe
    for recipe in (
        ExportRecipe("xnnpack", "fp32", "float32, no quantization"),
        ExportRecipe(
            "xnnpack",
            "8da4w",
            "Linear 8da4w g32 + int4 token embedding + PT2E int8 convolutions; sensitive parts float",
            linear="8da4w",
            conv_int8=True,
        ),
        ExportRecipe(
            "xnnpack",
            "8da8w",
            "Linear 8da8w + int8 token embedding + PT2E int8 convolutions; sensitive parts float",
            linear="8da8w",
            conv_int8=True,
        ),
        ExportRecipe(
            "xnnpack",
            "8da4w-1x1",
            "8da4w with 1x1 convolutions as Linear 8da4w g32, text tower and token embedding int4 g128, "
            "sensitive Linear 8da8w, other convolutions PT2E int8",
            linear="8da4w",
            conv_int8=True,
            conv1x1="8da4w",
            text="8da4w-g128",
            sensitive="8da8w",
        ),
        ExportRecipe("coreml", "fp16", "Core ML fp16, compute units ALL, iOS 17"),
        ExportRecipe(
            "coreml",
            "fp16-w8",
            "Core ML fp16 + int8 per-channel weights (coremltools linear_quantize_weights)",
            coreml_weights={"mode": "linear_symmetric", "dtype": "int8", "granularity": "per_channel"},
        ),
        ExportRecipe(
            "coreml",
            "fp16-w4",
            "Core ML fp16 + int4 per-block (32) weights, iOS 18",
            coreml_weights={
                "mode": "linear_symmetric",
                "dtype": "int4",
                "granularity": "per_block",
                "block_size": 32,
            },
            coreml_target=18,
        ),
        ExportRecipe(
            "qnn",
            "16a8w",
            "QnnQuantizer 16-bit activations, 8-bit per-channel weights (HTP)",
            qnn_dtype="use_16a8w",
        ),
        ExportRecipe(
            "qnn", "8a8w", "QnnQuantizer 8-bit activations, 8-bit weights (HTP)", qnn_dtype="use_8a8w"
        ),
    )
}


def get_export_recipe(backend: str, name: str | None = None) -> ExportRecipe:
    """The recipe ``name`` of ``backend`` (its default when None); ``KeyError`` lists the choices."""
    if backend not in BACKENDS:
        raise KeyError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    key = f"{backend}/{name or DEFAULT_RECIPE[backend]}"
    if key not in EXPORT_RECIPES:
        known = ", ".join(r.name for r in EXPORT_RECIPES.values() if r.backend == backend)
        raise KeyError(f"unknown recipe {name!r} for backend {backend}; known: {known}")
    return EXPORT_RECIPES[key]
