"""Backend specifics: partitioners, compile specs, backend quantizers, and the QNN SDK check.

Imports of a backend's packages happen inside the functions that need them (coremltools and the
Qualcomm packages are slow to import and noisy).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from sam3spec.export.recipes import ExportRecipe

QNN_LIBRARY = Path("lib") / "x86_64-linux-clang" / "libQnnHtp.so"
QNN_DEFAULT_CHIPSET = "SM8650"  # Snapdragon 8 Gen 3 (HTP v75)


class BackendUnavailable(RuntimeError):
    """A backend cannot lower here; the message says exactly what to install and set."""


def qnn_sdk_version() -> str:
    """The QNN SDK version this ExecuTorch build expects (its ``download_qnn_sdk.QNN_VERSION``)."""
    try:
        from executorch.backends.qualcomm.scripts.download_qnn_sdk import QNN_VERSION

        return str(QNN_VERSION)
    except Exception:  # noqa: BLE001 - the version is only used in a message
        return "2.37.0.250724"


def qnn_sdk_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why the QNN SDK is unusable here, or None when ``QNN_SDK_ROOT`` points at a usable SDK."""
    environ = dict(os.environ) if environ is None else environ
    root = environ.get("QNN_SDK_ROOT")
    if not root:
        return "QNN_SDK_ROOT is not set"
    library = Path(root) / QNN_LIBRARY
    if not library.is_file():
        return f"QNN_SDK_ROOT={root} has no {QNN_LIBRARY}"
    library_dir = str(library.parent)
    if library_dir not in environ.get("LD_LIBRARY_PATH", "").split(os.pathsep):
        return f"LD_LIBRARY_PATH does not contain {library_dir}"
    return None


def qnn_sdk_message(problem: str) -> str:
    """The error text for a missing QNN SDK: what to install and what to set."""
    version = qnn_sdk_version()
    return (
        f"QNN backend unavailable: {problem}. Lowering to Qualcomm HTP needs the Qualcomm AI Engine "
        f"Direct SDK (QAIRT) {version}, the version executorch 1.5.1 is built against. Install it "
        f"(Qualcomm Software Center, 'Qualcomm AI Runtime Community' v{version}.zip, unzipped to e.g. "
        f"/opt/qcom/aistack/qairt/{version}), then set\n"
        f"  export QNN_SDK_ROOT=/opt/qcom/aistack/qairt/{version}\n"
        f"  export LD_LIBRARY_PATH=$QNN_SDK_ROOT/lib/x86_64-linux-clang:$LD_LIBRARY_PATH\n"
        "and rerun. Everything before the SDK call (wrappers, QnnQuantizer calibration, export, "
        "partitioner specs) ran; no .pte was written."
    )


def require_qnn_sdk(environ: dict[str, str] | None = None) -> None:
    """Raise :class:`BackendUnavailable` with :func:`qnn_sdk_message` when the SDK is missing.

    Checked before ExecuTorch's own SDK setup runs, which would try to download the SDK.
    """
    problem = qnn_sdk_problem(environ)
    if problem is not None:
        raise BackendUnavailable(qnn_sdk_message(problem))


def partitioners(recipe: ExportRecipe) -> list[Any]:
    """The ExecuTorch partitioner(s) of ``recipe.backend`` with the recipe's compile specs."""
    if recipe.backend == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        return [XnnpackPartitioner()]
    if recipe.backend == "coreml":
        return [coreml_partitioner(recipe)]
    if recipe.backend == "qnn":
        return [qnn_partitioner()]
    raise KeyError(recipe.backend)


def coreml_partitioner(recipe: ExportRecipe) -> Any:
    """``CoreMLPartitioner`` with fp16 compute, compute units ALL and the recipe's weight quantization."""
    import coremltools as ct
    from executorch.backends.apple.coreml.compiler import CoreMLBackend
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner

    target = {17: ct.target.iOS17, 18: ct.target.iOS18}[recipe.coreml_target]
    specs = CoreMLBackend.generate_compile_specs(
        compute_unit=ct.ComputeUnit.ALL,
        compute_precision=ct.precision.FLOAT16,
        minimum_deployment_target=target,
        op_linear_quantizer_config=dict(recipe.coreml_weights) or None,
    )
    return CoreMLPartitioner(compile_specs=specs)


def qnn_partitioner(chipset: str = QNN_DEFAULT_CHIPSET) -> Any:
    """``QnnPartitioner`` for the HTP of ``chipset`` (quantized graph, burst performance mode)."""
    from executorch.backends.qualcomm.partition.qnn_partitioner import QnnPartitioner
    from executorch.backends.qualcomm.serialization.qc_schema import QcomChipset
    from executorch.backends.qualcomm.utils.utils import (
        generate_htp_compiler_spec,
        generate_qnn_executorch_compiler_spec,
    )

    backend_options = generate_htp_compiler_spec(use_fp16=False)
    specs = generate_qnn_executorch_compiler_spec(getattr(QcomChipset, chipset), backend_options)
    return QnnPartitioner(specs)


def pt2e_quantize(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    calibration: Iterable[tuple[torch.Tensor, ...]],
    quantizer: Any,
) -> torch.fx.GraphModule:
    """PT2E post-training quantization: export, prepare, calibrate, convert.

    Returns:
        The converted graph module (same call signature as ``module``).
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = torch.export.export(module, example, strict=False).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for inputs in calibration:
            prepared(*inputs)
    return convert_pt2e(prepared)


def xnnpack_int8_quantizer() -> Any:
    """``XNNPACKQuantizer``: static int8 activations, int8 per-channel symmetric weights."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))


@contextlib.contextmanager
def no_qnn_download():
    """Keep ExecuTorch's Qualcomm helpers from trying to download the SDK while they run.

    Their setup treats an exported (even empty) ``QNN_SDK_ROOT`` as "the caller manages the SDK"
    and then downloads nothing; without it they fetch the SDK from the network.
    """
    unset = "QNN_SDK_ROOT" not in os.environ
    if unset:
        os.environ["QNN_SDK_ROOT"] = ""
    try:
        yield
    finally:
        if unset:
            os.environ.pop("QNN_SDK_ROOT", None)


def qnn_quantizer(recipe: ExportRecipe) -> Any:
    """``QnnQuantizer`` with the recipe's activation/weight widths, per-channel conv and linear."""
    from executorch.backends.qualcomm.quantizer.quantizer import QnnQuantizer, QuantDtype

    with no_qnn_download():
        quantizer = QnnQuantizer()
    quantizer.set_default_quant_config(
        getattr(QuantDtype, recipe.qnn_dtype),
        is_conv_per_channel=True,
        is_linear_per_channel=True,
    )
    return quantizer
