"""QAT mechanics on the tiny preset: prepare (fake quant) -> a few Phase 2 steps -> convert."""

from __future__ import annotations

import copy

import torch

from sam3spec.quant.qat import QatOptions, convert_qat, fake_quantized_count, prepare_qat, train_qat


def test_prepare_then_convert(tiny_student):
    model = copy.deepcopy(tiny_student)
    plan = prepare_qat(model, "8da4w", log=None)
    assert fake_quantized_count(model) == len(plan.quantized) > 0
    convert_qat(model, "8da4w", log=None)
    assert fake_quantized_count(model) == 0


def test_train_qat_updates_weights_and_converts(tiny_student, small_world, tmp_path):
    model = copy.deepcopy(tiny_student)
    before = model.detr_encoder.layers[0].ffn.fc1.weight.detach().clone()
    options = QatOptions(
        tmp_path / "qat", steps=2, batch_size=2, learning_rate=1e-3, verbose=False, progress=False
    )
    result = train_qat(model, small_world, "8da4w", options)
    assert len(result["losses"]) == 2 and all(torch.isfinite(torch.tensor(result["losses"])))
    assert result["fake_quantized"] > 0
    trained = result["float_state"]["detr_encoder.layers.0.ffn.fc1.weight"]
    assert not torch.equal(trained, before)  # the float weights trained under fake quantization
    weight = model.detr_encoder.layers[0].ffn.fc1.weight
    assert type(weight.data) is not torch.Tensor  # converted to a quantized tensor
    ids = torch.zeros(1, 32, dtype=torch.long)
    ids[0, :3] = torch.tensor([49406, 320, 49407])
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 128, 128), input_ids=ids).pred_masks).all()
