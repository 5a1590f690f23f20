"""Which part of the program gets which quantization, per XNNPACK recipe (no lowering)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn

from sam3spec.export.conv_linear import Conv1x1AsLinear, is_pointwise
from sam3spec.export.part_quant import linear_schemes, quantize_linear_parts, quantize_pointwise
from sam3spec.export.recipes import get_export_recipe
from sam3spec.export.wrappers import export_modules
from sam3spec.quant.sensitivity import sensitive_modules


@pytest.fixture()
def fresh_modules(tiny_student):
    return export_modules(tiny_student)


def _schemes(module: nn.Module) -> Counter:
    return Counter(linear_schemes(module).values())


def test_phone_recipe_quantizes_each_part_with_its_scheme(fresh_modules):
    modules = fresh_modules
    lines = quantize_linear_parts(modules, get_export_recipe("xnnpack", "8da4w-1x1"))
    assert [line.split(":")[0] for line in lines] == [
        "text tower 8da4w-g128",
        "Linear 8da4w",
        "sensitive parts 8da8w",
    ]
    text = linear_schemes(modules.encode_text)
    # the tiny tower is 64 wide: the table's group 128 shrinks to the row, Linear layers whose
    # input width 128 does not divide take groups of 32
    assert text.pop("token_embedding") == "int4 per channel"
    for name, scheme in text.items():
        width = modules.encode_text.get_submodule(name).in_features
        assert scheme == ("int4 g128" if width % 128 == 0 else "int4 g32"), name
    assert set(text.values()) == {"int4 g128", "int4 g32"}
    for part in sensitive_modules(modules.student).values():
        assert set(_schemes(part)) == {"int8 per channel"}, part
    for part in ("detr_encoder", "detr_decoder"):
        module = getattr(modules.student, part)
        for name, scheme in linear_schemes(module).items():
            layer = module.get_submodule(name)
            # small tables (query embeddings) and 2-wide box-bias inputs stay float
            grouped = isinstance(layer, nn.Linear) and layer.in_features % 32 == 0
            assert scheme == ("int4 g32" if grouped else "float"), name


def test_old_recipe_keeps_sensitive_parts_float_and_token_groups_of_32(fresh_modules):
    modules = fresh_modules
    quantize_linear_parts(modules, get_export_recipe("xnnpack", "8da4w"))
    assert linear_schemes(modules.encode_text)["token_embedding"] == "int4 g32"
    for part in sensitive_modules(modules.student).values():
        assert set(_schemes(part)) == {"float"}


def test_pointwise_convs_become_4bit_linear_or_8bit_where_32_does_not_divide(fresh_modules):
    encoder = fresh_modules.encode_image
    pointwise = {name: module.in_channels for name, module in encoder.named_modules() if is_pointwise(module)}
    x = torch.randn(1, 3, fresh_modules.shapes.image_size, fresh_modules.shapes.image_size)
    with torch.no_grad():
        expected = encoder(x)
    line = quantize_pointwise(encoder, "8da4w")
    assert line.startswith(f"image encoder: {len(pointwise)} 1x1 convolutions")
    assert not any(is_pointwise(module) for module in encoder.modules())
    schemes = linear_schemes(encoder)
    for name, width in pointwise.items():
        assert isinstance(encoder.get_submodule(name), Conv1x1AsLinear)
        # a 32-wide row is one group: "per channel"
        wanted = "int8 per channel" if width % 32 else ("int4 g32" if width > 32 else "int4 per channel")
        assert schemes[f"{name}.linear"] == wanted, name
    assert {width % 32 == 0 for width in pointwise.values()} == {True, False}  # both cases covered
    with torch.no_grad():
        for got, want in zip(encoder(x), expected, strict=True):
            assert torch.nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0) > 0.98
