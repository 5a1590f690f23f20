"""Eager recipes: every registered recipe quantizes the tiny student, keeps it finite and shrinks it."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from sam3spec.quant.recipes import (
    RECIPES,
    float_bytes,
    get_recipe,
    packed_bytes,
    quantize_modules,
    quantize_student,
)


@pytest.fixture(scope="module")
def inputs():
    ids = torch.zeros(1, 32, dtype=torch.long)
    ids[0, :4] = torch.tensor([49406, 320, 321, 49407])
    return {
        "pixel_values": torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)),
        "input_ids": ids,
    }


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_runs_and_shrinks(tiny_student, inputs, name):
    model = copy.deepcopy(tiny_student)
    lines = []
    report = quantize_student(model, name, log=lines.append)
    assert lines and lines[0].startswith(f"[{name}] quantized ")
    assert report.plan.quantized and report.embeddings == ["text_encoder.tower.token_embedding"]
    assert report.packed_bytes < report.float_bytes == float_bytes(tiny_student)
    quantized_weights = [
        m for m in model.modules() if isinstance(m, nn.Linear) and type(m.weight.data) is not torch.Tensor
    ]
    assert len(quantized_weights) == len(report.plan.quantized)
    with torch.no_grad():
        reference, outputs = tiny_student(**inputs), model(**inputs)
    assert torch.isfinite(outputs.pred_masks).all()
    cosine = torch.nn.functional.cosine_similarity(
        outputs.pred_masks.flatten(), reference.pred_masks.flatten(), dim=0
    )
    assert cosine > (0.99 if RECIPES[name].weight_bits == 8 else 0.8)


def test_packed_bytes_counts_bits_and_scales():
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    layer = nn.Sequential(nn.Linear(64, 16, bias=False))
    assert packed_bytes(layer) == 64 * 16 * 4
    quantize_(layer, IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32)))
    # 1024 int4 values = 512 bytes, 16 x 2 fp32 scales = 128 bytes, symmetric: no zero points
    assert packed_bytes(layer) == 512 + 128


def test_int4_weight_only_picks_the_cuda_kernel_only_on_cuda():
    from torchao.quantization import Int4WeightOnlyConfig, IntxWeightOnlyConfig

    recipe = get_recipe("int4wo-g128")
    assert isinstance(recipe.linear_config("cpu"), IntxWeightOnlyConfig)
    assert isinstance(recipe.linear_config("cuda"), Int4WeightOnlyConfig)


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(KeyError, match="8da4w"):
        get_recipe("int3")


def test_embedding_group_per_recipe_shrinks_to_the_row_width():
    from torchao.quantization.granularity import PerGroup

    assert get_recipe("8da4w").embedding_config(512).granularity == PerGroup(32)
    wide = get_recipe("8da4w-g128")
    assert wide.embedding_config(512).granularity == PerGroup(128)
    assert wide.embedding_config(64).granularity == PerGroup(64)


def test_4bit_layers_the_group_does_not_divide_take_groups_of_32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 8), nn.Linear(96, 8), nn.Linear(40, 8))
    plan, _ = quantize_modules(model, get_recipe("8da4w-g128"), {}, log=None, embeddings=False)
    blocks = [tuple(layer.weight.block_size) for layer in model[:2]]
    assert blocks == [(1, 128), (1, 32)]
    assert plan.kept_float == {"2": "input width not a multiple of 32"}
