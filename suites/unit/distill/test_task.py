"""The objective: terms, weights in one place, and where each loss's gradient goes."""

from __future__ import annotations

import pytest
import torch

from sam3spec.distill.adapters import FeatureAdapters, StudentGeometry
from sam3spec.distill.matcher import MatchWeights
from sam3spec.distill.stages import FEATURE_LOSSES, OUTPUT_LOSSES, LossWeights
from sam3spec.distill.targets import Targets
from sam3spec.distill.task import DistillModel, loss_terms, match_sample, query_anchors, total_loss
from sam3spec.models.outputs import resize_mask_logits

RESOLUTION = 64
TEACHER_WIDTH = 32


def inputs(batch: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.zeros(batch, 32, dtype=torch.long)
    ids[:, :4] = torch.tensor([49406, 736, 7117, 49407])
    points = torch.full((batch, 1, 2), 0.5)
    labels = torch.tensor([[-1]] + [[1]] * (batch - 1))  # sample 0: text only; others text + a click
    return {"pixel_values": torch.randn(batch, 3, RESOLUTION, RESOLUTION, generator=generator),
            "input_ids": ids, "points": points, "point_labels": labels}  # fmt: skip


def random_targets(batch: int, geometry: StudentGeometry, queries: int = 8) -> Targets:
    generator = torch.Generator().manual_seed(1)
    logits = torch.full((batch, queries), -4.0)
    logits[:, :3] = 4.0  # three foreground queries per sample
    corners = torch.rand(batch, queries, 2, generator=generator) * 0.5
    sizes = torch.rand(batch, queries, 2, generator=generator) * 0.4 + 0.1
    return Targets(
        logits=logits,
        boxes_xyxy=torch.cat([corners, corners + sizes], -1),
        mask_probs=torch.rand(batch, queries, *geometry.mask_target_size, generator=generator),
        valid=torch.ones(batch, queries, dtype=torch.bool),
        presence_logits=torch.tensor([[3.0]] * batch),
        semantic_probs=torch.rand(batch, 1, *geometry.mask_target_size, generator=generator),
        fpn_levels=[
            torch.randn(batch, TEACHER_WIDTH, *size, generator=generator) for size in geometry.level_sizes
        ],
        encoder_memory=torch.randn(batch, TEACHER_WIDTH, *geometry.encoder_size, generator=generator),
        has_encoder=torch.ones(batch, dtype=torch.bool),
        text_features=torch.randn(batch, 32, TEACHER_WIDTH, generator=generator),
        text_valid=torch.arange(32).expand(batch, 32) < 4,  # SOT, two words, EOT (as inputs())
        query_states=torch.randn(batch, queries, TEACHER_WIDTH, generator=generator),
        pixel_features=torch.randn(batch, TEACHER_WIDTH, *geometry.mask_size, generator=generator),
    )


@pytest.fixture
def model(tiny_student):
    geometry = StudentGeometry(RESOLUTION, tiny_student.config.detr.encoder_level)
    config = tiny_student.config
    adapters = FeatureAdapters([config.image.fpn_dim] * 4, [TEACHER_WIDTH] * 4, config.hidden, TEACHER_WIDTH,
                               config.hidden, TEACHER_WIDTH, config.hidden, TEACHER_WIDTH,
                               config.hidden, TEACHER_WIDTH)  # fmt: skip
    return DistillModel(tiny_student, adapters, geometry).train()


# Components every term may reach (the shared trunk), then what each term adds or must not reach.
TRUNK = {"image_encoder", "text_encoder", "prompt_encoder", "detr_encoder", "detr_decoder"}
EXPECTED = {
    "mask_bce": TRUNK | {"mask_decoder"},
    "mask_dice": TRUNK | {"mask_decoder"},
    "semantic": (TRUNK - {"detr_decoder"}) | {"mask_decoder"},  # the semantic head reads pixels, not queries
    "box_l1": TRUNK,
    "box_giou": TRUNK,
    "presence": TRUNK,
    "logit": TRUNK | {"scoring"},
    "iou_token": TRUNK | {"iou_head"},
    "fpn_feature": {"image_encoder", "adapters"},
    "encoder_feature": {"image_encoder", "text_encoder", "prompt_encoder", "detr_encoder", "adapters"},
    "text_feature": {"text_encoder", "adapters"},
    "query_feature": TRUNK | {"adapters"},  # the states, not the heads that read them
    "pixel_feature": (TRUNK - {"detr_decoder"}) | {"mask_decoder", "adapters"},
}
ALL_TERMS = LossWeights(text_feature=1.0)
WITH_QUERIES = LossWeights(text_feature=1.0, query_feature=1.0, pixel_feature=1.0)


def reached(model: DistillModel) -> set[str]:
    parts = {name: module for name, module in model.student.component_modules().items()}
    parts["adapters"] = model.adapters
    return {
        name
        for name, module in parts.items()
        if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters())
    }


@pytest.mark.parametrize("term", OUTPUT_LOSSES + FEATURE_LOSSES)
def test_gradient_reaches_only_what_it_should(model, term):
    outputs, levels, encoder, text, queries, pixels = model(inputs())
    targets = random_targets(2, model.geometry)
    terms = loss_terms(outputs, targets, WITH_QUERIES, MatchWeights(), 0.5, levels, encoder, student_text=text,
                       student_queries=queries, student_pixels=pixels)  # fmt: skip
    terms[term].backward()
    assert reached(model) == EXPECTED[term]


def test_feature_losses_zero_when_features_equal(model):
    with torch.no_grad():
        outputs, levels, encoder, text, queries, pixels = model(inputs())
    targets = random_targets(2, model.geometry)
    targets.fpn_levels = [level.clone() for level in levels]
    targets.encoder_memory = encoder.clone()
    targets.text_features = text[0].clone()
    targets.pixel_features = pixels.clone()
    for index in range(2):  # each matched teacher query's state equals its student query's
        rows, cols = match_sample(outputs, targets, index, MatchWeights())
        targets.query_states[index, cols] = queries[index, rows]
    terms = loss_terms(outputs, targets, WITH_QUERIES, MatchWeights(), 0.5, levels, encoder, student_text=text,
                       student_queries=queries, student_pixels=pixels)  # fmt: skip
    assert terms["fpn_feature"].item() == 0.0
    assert terms["encoder_feature"].item() == 0.0
    assert terms["text_feature"].item() == 0.0
    assert terms["query_feature"].item() == 0.0
    assert terms["pixel_feature"].item() == 0.0


def test_query_feature_loss_reads_matched_pairs_of_detector_prompts(model):
    with torch.no_grad():
        outputs, levels, encoder, text, queries, pixels = model(inputs())
    targets = random_targets(2, model.geometry)
    matches = [match_sample(outputs, targets, index, MatchWeights()) for index in range(2)]
    targets.query_states.fill_(100.0)  # unmatched teacher queries differ: ignored
    for index, (rows, cols) in enumerate(matches):
        targets.query_states[index, cols] = queries[index, rows] + 2.0 * index  # sample 1: error 4
    terms = loss_terms(outputs, targets, WITH_QUERIES, MatchWeights(), 0.5, levels, encoder, student_text=text,
                       student_queries=queries, student_pixels=pixels)  # fmt: skip
    assert terms["query_feature"].item() == pytest.approx(2.0, rel=1e-5)  # mean over samples of 0, 4
    targets.has_encoder[1] = False  # a point prompt: no detector queries, contributes 0
    terms = loss_terms(outputs, targets, WITH_QUERIES, MatchWeights(), 0.5, levels, encoder, student_text=text,
                       student_queries=queries, student_pixels=pixels)  # fmt: skip
    assert terms["query_feature"].item() == 0.0
    with pytest.raises(ValueError, match="query_feature"):
        loss_terms(outputs, targets, WITH_QUERIES, MatchWeights(), 0.5, levels, encoder, student_text=text)


def test_text_feature_loss_reads_only_real_tokens_of_text_prompts(model):
    with torch.no_grad():
        outputs, levels, encoder, text, *_ = model(inputs())
    targets = random_targets(2, model.geometry)
    targets.text_features = text[0].clone()
    targets.text_features[:, 4:] += 100.0  # padding tokens differ: ignored
    targets.text_features[1] += 1.0  # sample 1 differs everywhere ...
    targets.text_valid[1] = False  # ... but is not a text prompt: ignored
    terms = loss_terms(outputs, targets, ALL_TERMS, MatchWeights(), 0.5, levels, encoder, student_text=text)
    assert terms["text_feature"].item() == 0.0
    targets.text_valid[1, :4] = True  # now sample 1 counts: mean over samples of its error 1.0
    terms = loss_terms(outputs, targets, ALL_TERMS, MatchWeights(), 0.5, levels, encoder, student_text=text)
    assert terms["text_feature"].item() == pytest.approx(0.5, rel=1e-5)
    without = loss_terms(outputs, targets, ALL_TERMS, MatchWeights(), 0.5, levels, encoder)
    assert without["text_feature"].item() == 0.0  # a batch without text prompts


def test_box_losses_zero_when_student_equals_teacher(model):
    with torch.no_grad():
        outputs, *_ = model(inputs())
    geometry = model.geometry
    targets = random_targets(2, geometry, queries=outputs.pred_logits.shape[1])
    targets.boxes_xyxy = outputs.pred_boxes.clone()
    targets.mask_probs = (outputs.pred_masks > 0).float()
    targets.logits = (
        torch.where(torch.arange(targets.logits.shape[1]) < 3, 6.0, -6.0).expand_as(targets.logits).clone()
    )
    weights = LossWeights(mask_bce=0, mask_dice=0, iou_token=0, logit=0, fpn_feature=0, encoder_feature=0)
    # Matching on boxes only: each student query is matched to its own copy.
    terms = loss_terms(outputs, targets, weights, MatchWeights(mask=0, logit=0, box=1), 0.5)
    assert terms["box_l1"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["box_giou"].item() == pytest.approx(0.0, abs=1e-5)


def test_teacher_queries_are_ranked_then_matched(model):
    with torch.no_grad():
        outputs, *_ = model(inputs(1))
    student_queries = outputs.pred_logits.shape[1]
    targets = random_targets(1, model.geometry, queries=student_queries * 2)
    targets.logits[0] = torch.arange(student_queries * 2, dtype=torch.float32)  # the last half scores best
    targets.valid[0, -1] = False  # ... except an invalid one
    rows, cols = match_sample(outputs, targets, 0, MatchWeights())
    assert len(rows) == student_queries
    assert set(cols.tolist()) == set(range(student_queries - 1, 2 * student_queries - 1))


def test_weights_are_applied_once_and_zero_weights_skip_terms(model):
    outputs, levels, encoder, *_ = model(inputs())
    targets = random_targets(2, model.geometry)
    weights = LossWeights(fpn_feature=0.0, encoder_feature=0.0, semantic=3.0)
    terms = loss_terms(outputs, targets, weights, MatchWeights(), 0.5, levels, encoder)
    assert set(terms) == set(OUTPUT_LOSSES)
    expected = sum(getattr(weights, name) * value for name, value in terms.items())
    assert total_loss(terms, weights).item() == pytest.approx(expected.item())


def test_batch_loss_is_mean_of_per_sample_losses(model):
    model.eval()  # BatchNorm in eval: a sample's outputs do not depend on the rest of the batch
    with torch.no_grad():
        outputs, levels, encoder, *_ = model(inputs(2))
    targets = random_targets(2, model.geometry)
    both = loss_terms(outputs, targets, LossWeights(), MatchWeights(), 0.5, levels, encoder)
    singles = []
    for index in range(2):
        pick = torch.tensor([index])
        one = type(outputs)(**{k: (getattr(outputs, k)[pick] if k != "intermediates" else None)
                               for k in ("pred_logits", "pred_boxes", "pred_masks", "presence_logits", "semantic_seg", "iou_scores", "intermediates")})  # fmt: skip
        singles.append(loss_terms(one, targets.select(pick), LossWeights(), MatchWeights(), 0.5,
                                  [level[pick] for level in levels], encoder[pick]))  # fmt: skip
    for name, value in both.items():
        assert value.item() == pytest.approx(
            (singles[0][name].item() + singles[1][name].item()) / 2, rel=1e-5, abs=1e-7
        )


def test_shared_image_pass_equals_repeated_images(model):
    model.eval()
    full = inputs(3)
    full["pixel_values"] = full["pixel_values"][torch.tensor([0, 0, 1])]
    shared = dict(
        full, pixel_values=full["pixel_values"][torch.tensor([0, 2])], image_index=torch.tensor([0, 0, 1])
    )
    with torch.no_grad():
        one, levels_one, encoder_one, *_ = model(full)
        two, levels_two, encoder_two, *_ = model(shared)
    for name in ("pred_logits", "pred_boxes", "pred_masks", "presence_logits", "semantic_seg", "iou_scores"):
        assert torch.allclose(getattr(one, name), getattr(two, name), atol=1e-5), name
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(levels_one, levels_two, strict=True))
    assert torch.allclose(encoder_one, encoder_two, atol=1e-5)


def test_finer_mask_targets_train_the_upsampled_logits(model):
    """Targets at 2x the student's mask grid: the mask, IoU-token and semantic losses compare the
    student's logits upsampled as the evaluation upsamples them (bilinear, align_corners=False)."""
    with torch.no_grad():
        outputs, *_ = model(inputs())
    queries = outputs.pred_logits.shape[1]
    fine = StudentGeometry(RESOLUTION, model.geometry.encoder_level, mask_scale=2)
    assert fine.mask_target_size == tuple(2 * side for side in model.geometry.mask_size)
    targets = random_targets(2, fine, queries=queries)
    upsampled = torch.nn.functional.interpolate(
        outputs.pred_masks, size=fine.mask_target_size, mode="bilinear", align_corners=False
    )
    targets.mask_probs = (upsampled > 0).float()  # the teacher's masks are the student's own, upsampled
    targets.boxes_xyxy = outputs.pred_boxes.clone()
    weights = LossWeights(fpn_feature=0, encoder_feature=0)
    terms = loss_terms(outputs, targets, weights, MatchWeights(mask=0, logit=0, box=1), 0.5)
    assert terms["iou_token"].item() == pytest.approx(
        ((outputs.iou_scores[:, :3].sigmoid() - 1) ** 2).mean().item(), rel=1e-4
    )  # the upsampled student mask is the target exactly: true IoU 1 for the 3 foreground queries
    semantic = torch.nn.functional.interpolate(
        outputs.semantic_seg, size=fine.mask_target_size, mode="bilinear", align_corners=False
    )
    expected = torch.nn.functional.binary_cross_entropy_with_logits(semantic, targets.semantic_probs)
    assert terms["semantic"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_student_that_upsamples_its_masks_trains_exactly_as_one_upsampled_in_the_loss(model):
    """``StudentConfig.mask_upsample=2`` (the world stages' students) moves the bilinear x2 from the
    loss into the model: every loss term, the auxiliary layers' included, is unchanged, and the
    masks it outputs are the upsampled logits the loss saw."""
    from dataclasses import replace

    from sam3spec.models.build import build_student

    student = model.student
    upsampling = build_student(replace(student.config, mask_upsample=2))
    upsampling.load_state_dict(student.state_dict())
    fine = StudentGeometry(RESOLUTION, model.geometry.encoder_level, mask_scale=2)
    twin = DistillModel(upsampling, model.adapters, fine, aux=True).train()
    model = DistillModel(student, model.adapters, fine, aux=True).train()
    targets = random_targets(2, fine, queries=student.config.detr.num_queries)
    weights = LossWeights(auxiliary=0.5)
    with torch.no_grad():
        coarse, levels, encoder, text, *_ = model(inputs())
        upsampled, *_ = twin(inputs())
    assert tuple(coarse.pred_masks.shape[-2:]) == fine.mask_size
    assert tuple(upsampled.pred_masks.shape[-2:]) == fine.mask_target_size
    for name in ("pred_masks", "semantic_seg"):  # the loss's own resize, bit for bit
        expected = resize_mask_logits(getattr(coarse, name), fine.mask_target_size)
        assert torch.equal(getattr(upsampled, name), expected), name
    terms = loss_terms(coarse, targets, weights, MatchWeights(), 0.5, levels, encoder, student_text=text)
    twin_terms = loss_terms(
        upsampled, targets, weights, MatchWeights(), 0.5, levels, encoder, student_text=text
    )
    assert terms.keys() == twin_terms.keys() and "auxiliary" in terms
    for name, value in terms.items():
        assert twin_terms[name].item() == pytest.approx(value.item(), rel=1e-6, abs=1e-7), name


def test_auxiliary_loss_is_the_weighted_output_losses_of_the_earlier_layers(tiny_student):
    from dataclasses import replace

    from sam3spec.distill.stages import AUX_LOSSES

    geometry = StudentGeometry(RESOLUTION, tiny_student.config.detr.encoder_level)
    model = DistillModel(tiny_student, None, geometry, aux=True).eval()
    with torch.no_grad():
        outputs, *_ = model(inputs())
    layers = tiny_student.config.detr.decoder_layers
    assert layers >= 2 and len(outputs.aux_outputs) == layers - 1
    with torch.no_grad():
        plain, *_ = DistillModel(tiny_student, None, geometry).eval()(inputs())
    assert plain.aux_outputs is None
    torch.testing.assert_close(plain.pred_masks, outputs.pred_masks)  # the final layer is unchanged
    targets = random_targets(2, geometry)
    weights = LossWeights(fpn_feature=0.0, encoder_feature=0.0, auxiliary=0.5, mask_dice=3.0)
    terms = loss_terms(outputs, targets, weights, MatchWeights(), 0.5)
    per_layer = replace(weights, semantic=0.0, auxiliary=0.0)
    assert set(per_layer.active()) == set(AUX_LOSSES)
    expected = sum(
        total_loss(loss_terms(layer, targets, per_layer, MatchWeights(), 0.5), per_layer)
        for layer in outputs.aux_outputs
    )
    assert terms["auxiliary"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(terms) == set(OUTPUT_LOSSES) | {"auxiliary"}
    total = sum(getattr(weights, name) * value for name, value in terms.items() if name != "auxiliary")
    assert total_loss(terms, weights).item() == pytest.approx((total + 0.5 * expected).item(), rel=1e-6)
    with pytest.raises(ValueError, match="auxiliary loss is on but"):
        loss_terms(plain, targets, weights, MatchWeights(), 0.5)


def test_auxiliary_loss_trains_the_first_decoder_layer_directly(tiny_student):
    """The auxiliary term alone reaches the first decoder layer and the shared heads, not the last
    layer (whose predictions it does not read)."""
    geometry = StudentGeometry(RESOLUTION, tiny_student.config.detr.encoder_level)
    model = DistillModel(tiny_student, None, geometry, aux=True).train()
    outputs, *_ = model(inputs())
    weights = LossWeights(fpn_feature=0.0, encoder_feature=0.0, auxiliary=1.0)
    model.zero_grad(set_to_none=True)
    loss_terms(outputs, random_targets(2, geometry), weights, MatchWeights(), 0.5)["auxiliary"].backward()
    last = tiny_student.detr_decoder.layers[-1]
    first = tiny_student.detr_decoder.layers[0]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in first.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in last.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tiny_student.mask_decoder.parameters())
    model.zero_grad(set_to_none=True)


def test_query_groups_are_matched_apart_and_averaged(tiny_student):
    """Two identical query groups give the one-group terms (each group matched on its own, the
    matched terms averaged over groups); a group that predicts differently changes them."""
    from dataclasses import replace

    geometry = StudentGeometry(RESOLUTION, tiny_student.config.detr.encoder_level)
    model = DistillModel(tiny_student, None, geometry, aux=True).eval()
    with torch.no_grad():
        outputs, *_ = model(inputs())
    targets = random_targets(2, geometry)
    weights = LossWeights(fpn_feature=0.0, encoder_feature=0.0, auxiliary=0.5)

    def doubled(out, shift=0.0):
        twice = {k: torch.cat((getattr(out, k), getattr(out, k) + shift), 1)
                 for k in ("pred_logits", "pred_boxes", "pred_masks", "iou_scores")}  # fmt: skip
        aux = None if out.aux_outputs is None else [doubled(layer, shift) for layer in out.aux_outputs]
        return replace(out, **twice, aux_outputs=aux, intermediates=None, query_groups=2)

    anchors = torch.rand(outputs.pred_logits.shape[1], 2)
    one = loss_terms(outputs, targets, weights, MatchWeights(), 0.5, anchors=anchors)
    two = loss_terms(doubled(outputs), targets, weights, MatchWeights(), 0.5, anchors=anchors.repeat(2, 1))
    assert set(one) == set(two)
    for name, value in one.items():
        assert two[name].item() == pytest.approx(value.item(), rel=1e-5, abs=1e-7), name
    shifted = loss_terms(
        doubled(outputs, 1.0), targets, weights, MatchWeights(), 0.5, anchors=anchors.repeat(2, 1)
    )
    assert shifted["logit"].item() != pytest.approx(one["logit"].item(), rel=1e-3)
    assert shifted["presence"].item() == pytest.approx(one["presence"].item(), rel=1e-6)


def test_a_student_with_query_groups_trains_every_group(tiny_student):
    from sam3spec.config import override
    from sam3spec.models.build import build_student

    torch.manual_seed(0)
    student = build_student(override(tiny_student.config, {"detr.train_groups": 2}))
    geometry = StudentGeometry(RESOLUTION, student.config.detr.encoder_level)
    model = DistillModel(student, None, geometry).train()
    outputs, *_ = model(inputs())
    queries = student.config.detr.num_queries
    assert outputs.query_groups == 2 and outputs.pred_logits.shape[1] == 2 * queries
    terms = loss_terms(outputs, random_targets(2, geometry), LossWeights(fpn_feature=0.0, encoder_feature=0.0),
                       MatchWeights(), 0.5, anchors=query_anchors(student))  # fmt: skip
    total_loss(terms, LossWeights()).backward()
    grad = student.detr_decoder.query_embed.weight.grad
    assert grad[:queries].abs().sum() > 0 and grad[queries:].abs().sum() > 0
    student.eval()
    with torch.no_grad():
        assert model(inputs()).outputs.pred_logits.shape[1] == queries
