"""Lowering one small method (the tiny text encoder, XNNPACK 8da4w): program, metadata, bytes, delegation.

The four-method programs are built by the export gate (``-m export``): lowering takes minutes.
"""

from __future__ import annotations

import pytest
import torch

from sam3spec.export.backends import BackendUnavailable, qnn_sdk_problem
from sam3spec.export.lowering import export_model
from sam3spec.export.profile import pte_breakdown
from sam3spec.export.recipes import get_export_recipe
from sam3spec.export.runtime import PteProgram
from sam3spec.export.wrappers import example_inputs


@pytest.fixture(scope="module")
def lowered(tiny_student, tmp_path_factory):
    images = [torch.randn(3, 128, 128)]
    result = export_model(
        tiny_student,
        get_export_recipe("xnnpack", "8da4w"),
        images,
        ["red circle"],
        ["encode_text"],
        log=lambda _: None,
    )
    path = tmp_path_factory.mktemp("pte") / "text.pte"
    path.write_bytes(result.buffer)
    return result, path


def test_program_runs_and_matches_eager(lowered):
    result, path = lowered
    program = PteProgram(path)
    assert program.method_names >= {"encode_text", "metadata_json", "image_size"}
    assert program.metadata["recipe"] == "8da4w" and program.metadata["image_size"] == 128
    assert program.shapes.context_length == 32
    (ids,) = example_inputs(result.modules, "encode_text")
    tokens, mask = program.run("encode_text", ids)
    with torch.no_grad():
        reference, reference_mask = result.modules.encode_text(ids)
    assert torch.equal(mask, reference_mask)
    assert torch.nn.functional.cosine_similarity(tokens.flatten(), reference.flatten(), dim=0) > 0.999


def test_quantization_and_delegation(lowered):
    result, _ = lowered
    assert any(line.startswith("Linear 8da4w: quantized") for line in result.quantization)
    assert any("token_embedding" in line for line in result.quantization)
    delegation = result.delegation["encode_text"]
    assert delegation.share > 0.9
    assert set(delegation.cpu) <= {
        "aten_embedding_default",
        "aten_eq_scalar",
        "torchao_dequantize_affine_default",
    }


def test_breakdown(lowered):
    result, path = lowered
    breakdown = pte_breakdown(path)
    assert breakdown.file_bytes == len(result.buffer)
    assert set(breakdown.methods) == {"encode_text"} and "metadata_json" in breakdown.constant_methods
    text = breakdown.methods["encode_text"]
    assert 0 < text["total"] <= breakdown.file_bytes
    # every byte counted once: methods' own bytes + shared bytes + flatbuffer overhead = the file
    counted = sum(item["total"] for item in breakdown.methods.values()) + sum(breakdown.shared.values())
    assert 0.9 * breakdown.file_bytes < counted <= breakdown.file_bytes
    assert "quantized_decomposed::embedding_4bit" in breakdown.cpu_operators["encode_text"]
    # the int4 embedding is ~1/8 of fp32: 49408 x 64 x 4 bytes = 12.6 MB in float
    assert breakdown.file_bytes < 4e6


def test_qnn_fails_with_what_to_install(tiny_student, monkeypatch):
    monkeypatch.delenv("QNN_SDK_ROOT", raising=False)
    with pytest.raises(BackendUnavailable) as error:
        export_model(
            tiny_student,
            get_export_recipe("qnn"),
            [torch.randn(3, 128, 128)],
            ["red circle"],
            ["encode_text"],
            log=lambda _: None,
        )
    message = str(error.value)
    for needle in (
        "QNN_SDK_ROOT is not set",
        "export QNN_SDK_ROOT=",
        "LD_LIBRARY_PATH=$QNN_SDK_ROOT/lib/x86_64-linux-clang",
        "2.37",
    ):
        assert needle in message


def test_qnn_sdk_detection(tmp_path):
    assert qnn_sdk_problem({}) == "QNN_SDK_ROOT is not set"
    assert "has no lib/x86_64-linux-clang/libQnnHtp.so" in qnn_sdk_problem({"QNN_SDK_ROOT": str(tmp_path)})
    library = tmp_path / "lib" / "x86_64-linux-clang"
    library.mkdir(parents=True)
    (library / "libQnnHtp.so").write_bytes(b"")
    assert "LD_LIBRARY_PATH" in qnn_sdk_problem({"QNN_SDK_ROOT": str(tmp_path)})
    assert qnn_sdk_problem({"QNN_SDK_ROOT": str(tmp_path), "LD_LIBRARY_PATH": str(library)}) is None


def test_program_bytes_drops_what_only_the_other_methods_use():
    from sam3spec.export.profile import PteBreakdown, program_bytes

    breakdown = PteBreakdown(
        file_bytes=1000,
        methods={name: {"total": size} for name, size in (("a", 100), ("b", 200), ("text", 300))},
        shared={"a & b": 50, "a & text": 40, "b & text": 30, "text & x": 20},
        cpu_operators={},
        constant_methods=[],
    )
    assert program_bytes(breakdown, ("a", "b")) == 1000 - 300 - 20
    with pytest.raises(KeyError, match="no method c"):
        program_bytes(breakdown, ("a", "c"))
