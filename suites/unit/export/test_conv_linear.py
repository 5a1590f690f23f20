"""1x1 convolutions as Linear: equal to the convolution, and covering the seed encoder's 1x1 convolutions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sam3spec.export.conv_linear import Conv1x1AsLinear, convs_as_linear, fold_batch_norms, is_pointwise

# The seed's fused RepViT-M2.3 + FPN adapters: 163 plain 1x1 convolutions (docs/EXPORT.md "Size").
SEED_POINTWISE_PARAMETERS = 22_360_320


@pytest.mark.parametrize("bias", [True, False])
def test_rewritten_conv_equals_the_conv(bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 96, 1, bias=bias).eval()
    x = torch.randn(2, 64, 7, 5)
    with torch.no_grad():
        assert torch.allclose(Conv1x1AsLinear(conv)(x), conv(x), atol=1e-5, rtol=1e-5)


def test_only_plain_pointwise_convs_are_rewritten():
    assert is_pointwise(nn.Conv2d(8, 8, 1))
    for conv in (nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 1, stride=2), nn.Conv2d(8, 8, 1, groups=8)):
        assert not is_pointwise(conv)
        with pytest.raises(ValueError, match="not a plain 1x1"):
            Conv1x1AsLinear(conv)


def test_batch_norm_is_folded_before_the_rewrite():
    torch.manual_seed(0)
    block = nn.Sequential(
        nn.Conv2d(32, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3)
    )
    block[1].running_mean.normal_()
    block[1].running_var.uniform_(0.5, 2.0)
    block[1].weight.data.uniform_(0.5, 1.5)
    block.eval()
    x = torch.randn(1, 32, 9, 9)
    with torch.no_grad():
        expected = block(x)
        replaced = convs_as_linear(block)
        assert (
            replaced == ["0"] and isinstance(block[0], Conv1x1AsLinear) and isinstance(block[1], nn.Identity)
        )
        assert torch.allclose(block(x), expected, atol=1e-5, rtol=1e-5)
    assert fold_batch_norms(block) == 0


def test_rewrite_covers_the_seed_encoder_pointwise_convolutions():
    from sam3spec.models.image_encoder import ImageEncoder, create_backbone

    with torch.device("meta"):  # shapes only: no weights to initialise
        backbone, channels = create_backbone("repvit_m2_3")
        encoder = ImageEncoder(backbone, channels, 256).eval().reparameterize()
    replaced = convs_as_linear(encoder)
    rewritten = sum(encoder.get_submodule(name).linear.weight.numel() for name in replaced)
    assert rewritten == SEED_POINTWISE_PARAMETERS
    assert not any(is_pointwise(module) for module in encoder.modules())
    assert not any(isinstance(module, nn.BatchNorm2d) for module in encoder.adapters.modules())


@pytest.mark.parametrize("static_int8", [False, True], ids=["float-convs", "pt2e-int8-convs"])
def test_pointwise_8da4w_between_convolutions_lowers_to_xnnpack(static_int8):
    """A delegated convolution feeding a rewritten 1x1 (torchao 8da4w) lowers in one XNNPACK delegate.

    With a channels-last 4-D permute in front of the Linear this failed at lowering ("Weight and
    Input should both be quantized"), with or without PT2E static int8 on the convolutions.
    """
    pytest.importorskip("executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    from sam3spec.export.backends import pt2e_quantize, xnnpack_int8_quantizer
    from sam3spec.quant.recipes import get_recipe, quantize_modules

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, 1, 1), nn.ReLU(), nn.Conv2d(64, 128, 1), nn.ReLU(), nn.Conv2d(128, 32, 3, 1, 1)
    ).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    convs_as_linear(model)
    quantize_modules(model, get_recipe("8da4w"), {}, log=None, embeddings=False)
    if static_int8:
        quantizer = xnnpack_int8_quantizer()
        quantizer.set_module_type(nn.Linear, None)
        model = pt2e_quantize(model, (x,), [(x,)], quantizer)
    with torch.no_grad():
        quantized = model(x)
    assert torch.nn.functional.cosine_similarity(quantized.flatten(), expected.flatten(), dim=0) > 0.98
    program = torch.export.export(model, (x,), strict=False)
    edge = to_edge_transform_and_lower(
        {"forward": program},
        partitioner=[XnnpackPartitioner()],
        compile_config=EdgeCompileConfig(_check_ir_validity=False),
    )
    graph = edge.exported_program().graph_module
    calls = [node for node in graph.graph.nodes if node.op == "call_function"]
    delegates = [node for node in calls if "executorch_call_delegate" in str(node.target)]
    assert len(delegates) == 1
    assert not [node for node in calls if "linear" in str(node.target) or "convolution" in str(node.target)]
