"""Every delegation rewrite computes the same function as the module or op it replaces."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sam3spec.export.rewrites import (
    DelegableBoxBias,
    DelegableLayerNorm,
    DelegablePromptEncoder,
    apply_rewrites,
    nearest_upsample_decomposition,
    remove_noop_expands,
)
from sam3spec.models.detr_decoder import BoxRelativePositionBias
from sam3spec.models.prompt_encoder import PromptEncoder


def test_layer_norm():
    norm = nn.LayerNorm(48)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = torch.randn(2, 7, 48) * 3 + 1
    torch.testing.assert_close(DelegableLayerNorm(norm)(x), norm(x), atol=1e-5, rtol=1e-5)


def test_prompt_sampling_equals_grid_sample():
    torch.manual_seed(0)
    encoder = PromptEncoder(32)
    rewritten = DelegablePromptEncoder.__new__(DelegablePromptEncoder)
    rewritten.__dict__ = dict(encoder.__dict__)
    feature_map = torch.randn(2, 32, 9, 13)
    xy = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.5, 0.31]], [[0.02, 0.97], [0.77, 0.5], [0.999, 0.001]]])
    torch.testing.assert_close(
        rewritten._sample(feature_map, xy), encoder._sample(feature_map, xy), atol=1e-5, rtol=1e-5
    )


def test_box_bias_equals_original():
    torch.manual_seed(0)
    original = BoxRelativePositionBias(32, 4)
    rewritten = DelegableBoxBias.__new__(DelegableBoxBias)
    rewritten.__dict__ = dict(original.__dict__)
    boxes = torch.rand(2, 5, 4) * 0.5 + 0.2
    torch.testing.assert_close(rewritten(boxes, 6, 9), original(boxes, 6, 9), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("size", "out"), [((16, 16), (32, 32)), ((32, 32), (63, 63)), ((5, 7), (11, 8))])
def test_nearest_upsample(size, out):
    x = torch.randn(1, 3, *size)
    torch.testing.assert_close(
        nearest_upsample_decomposition(x, list(out), None), F.interpolate(x, size=out, mode="nearest")
    )


def test_apply_rewrites_counts(tiny_student):
    import copy

    model = copy.deepcopy(tiny_student)
    counts = apply_rewrites(model)
    assert counts["prompt_encoder"] == 1 and counts["box_bias"] == 1 and counts["layer_norm"] > 10
    assert not any(type(m) is nn.LayerNorm for m in model.modules())


def test_remove_noop_expands():
    class Model(nn.Module):
        def forward(self, x):
            return x.expand(2, 3) + x.expand(4, 2, 3).sum(0)

    program = torch.export.export(Model(), (torch.randn(2, 3),))
    assert remove_noop_expands(program.graph_module) == 1
    x = torch.randn(2, 3)
    torch.testing.assert_close(program.module()(x), x + 4 * x)


def test_log_scale_without_sign():
    from sam3spec.export.rewrites import _log_scale
    from sam3spec.models.detr_decoder import _log_scale as original

    d = torch.linspace(-1, 1, 101)
    torch.testing.assert_close(_log_scale(d), original(d), atol=1e-6, rtol=1e-6)
    assert math.isclose(float(_log_scale(torch.tensor(0.0))), 0.0)
