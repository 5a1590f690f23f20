"""Image encoder: shapes, re-parameterisation, local backbone weights."""

from __future__ import annotations

import copy

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from sam3spec.config import TINY_PRESET, get_preset
from sam3spec.models.build import build_image_encoder
from sam3spec.models.image_encoder import create_backbone, load_backbone_weights, randomise_batch_norms

TINY = get_preset(TINY_PRESET)


def test_levels_strides_and_pos() -> None:
    torch.manual_seed(0)
    encoder, report = build_image_encoder(TINY)
    assert report is None
    out = encoder(torch.randn(1, 3, 128, 128))
    assert [tuple(f.shape) for f in out.features] == [
        (1, 64, 32, 32),
        (1, 64, 16, 16),
        (1, 64, 8, 8),
        (1, 64, 4, 4),
    ]
    assert [p.shape for p in out.pos] == [f.shape for f in out.features]
    assert encoder.in_channels == (16, 32, 48, 64)


def test_fused_matches_unfused() -> None:
    torch.manual_seed(0)
    encoder, _ = build_image_encoder(TINY)
    randomise_batch_norms(encoder, seed=0)
    encoder.eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        reference = encoder(x).features
        fused = copy.deepcopy(encoder).reparameterize()
        got = fused(x).features
    count = lambda m: sum(isinstance(s, nn.BatchNorm2d) for s in m.backbone.modules())  # noqa: E731
    assert count(fused) < count(encoder), "re-parameterisation fused nothing"
    for a, b in zip(got, reference, strict=True):
        assert b.abs().max() > 0.1  # a meaningful signal, not all zeros
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_backbone_weights_classification_layout(tmp_path, suffix: str) -> None:
    torch.manual_seed(1)
    classifier = timm.create_model(
        "repvit_m0_9", pretrained=False, embed_dim=TINY.image.embed_dim, depth=TINY.image.depth
    )
    state = classifier.state_dict()
    path = tmp_path / f"backbone{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:  # DDP-style prefix inside a {"model": ...} container
        torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, path)
    torch.manual_seed(2)
    backbone, _ = create_backbone("repvit_m0_9", TINY.image.embed_dim, TINY.image.depth)
    report = load_backbone_weights(backbone, path)
    assert report.missing == [] and report.unexpected == []
    assert report.ignored and all(k.startswith("head") for k in report.ignored)
    loaded = backbone.state_dict()
    torch.testing.assert_close(
        loaded["stages_2.blocks.0.channel_mixer.conv1.c.weight"],
        state["stages.2.blocks.0.channel_mixer.conv1.c.weight"],
    )


def test_local_backbone_weights_wrong_file(tmp_path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2)}, str(path))
    backbone, _ = create_backbone("repvit_m0_9", TINY.image.embed_dim, TINY.image.depth)
    with pytest.raises(ValueError, match="none of its"):
        load_backbone_weights(backbone, path)
    with pytest.raises(FileNotFoundError):
        load_backbone_weights(backbone, tmp_path / "missing.pth")
