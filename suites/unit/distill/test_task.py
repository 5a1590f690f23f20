"""The objective: terms, weights in one place, and where each loss's gradient goes."""

from __future__ import annotations

import pytest
import torch

from sam3spec.distill.adapters import FeatureAdapters, StudentGeometry
from sam3spec.distill.matcher import MatchWeights
from sam3spec.distill.stages import FEATURE_LOSSES, OUTPUT_LOSSES, LossWeights
from sam3spec.distill.targets import Targets
from sam3spec.distill.task import DistillModel, Objective, StudentPass, loss_terms, match_sample, total_loss
from sam3spec.models.outputs import resize_mask_logits

RESOLUTION = 64
TEACHER_WIDTH = 32


def inputs(batch: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.zeros(batch, 32, dtype=torch.long)
    ids[:, :4] = torch.tensor([49406, 736, 7117, 49407])
    points = torch.full((batch, 1, 2), 0.5)
    labels = torch.tensor([[-1]] + [[1]] * (batch - 1))  # sample 0: text only; others text + a click
    return {
        "pixel_values": torch.randn(batch, 3, RESOLUTION, RESOLUTION, generator=generator),
        "input_ids": ids,
        "points": points,
        "point_labels": labels,
    }


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
    )


def objective(weights: LossWeights, matcher: MatchWeights | None = None) -> Objective:
    return Objective(weights, matcher or MatchWeights(), 0.5)


@pytest.fixture
def model(tiny_student):
    geometry = StudentGeometry(RESOLUTION, tiny_student.config.detr.encoder_level)
    config = tiny_student.config
    adapters = FeatureAdapters(
        [config.image.fpn_dim] * 4,
        [TEACHER_WIDTH] * 4,
        config.hidden,
        TEACHER_WIDTH,
        config.hidden,
        TEACHER_WIDTH,
    )
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
}
ALL_TERMS = LossWeights(text_feature=1.0)


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
    terms = loss_terms(model(inputs()), random_targets(2, model.geometry), objective(ALL_TERMS))
    terms[term].backward()
    assert reached(model) == EXPECTED[term]


def test_feature_losses_zero_when_features_equal(model):
    with torch.no_grad():
        passed = model(inputs())
    targets = random_targets(2, model.geometry)
    targets.fpn_levels = [level.clone() for level in passed.levels]
    targets.encoder_memory = passed.encoder.clone()
    targets.text_features = passed.text[0].clone()
    terms = loss_terms(passed, targets, objective(ALL_TERMS))
    assert terms["fpn_feature"].item() == 0.0
    assert terms["encoder_feature"].item() == 0.0
    assert terms["text_feature"].item() == 0.0


def test_text_feature_loss_reads_only_real_tokens_of_text_prompts(model):
    with torch.no_grad():
        passed = model(inputs())
    targets = random_targets(2, model.geometry)
    targets.text_features = passed.text[0].clone()
    targets.text_features[:, 4:] += 100.0  # padding tokens differ: ignored
    targets.text_features[1] += 1.0  # sample 1 differs everywhere ...
    targets.text_valid[1] = False  # ... but is not a text prompt: ignored
    terms = loss_terms(passed, targets, objective(ALL_TERMS))
    assert terms["text_feature"].item() == 0.0
    targets.text_valid[1, :4] = True  # now sample 1 counts: mean over samples of its error 1.0
    terms = loss_terms(passed, targets, objective(ALL_TERMS))
    assert terms["text_feature"].item() == pytest.approx(0.5, rel=1e-5)
    without = loss_terms(passed._replace(text=None), targets, objective(ALL_TERMS))
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
    terms = loss_terms(
        StudentPass(outputs), targets, objective(weights, MatchWeights(mask=0, logit=0, box=1))
    )
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
    passed = model(inputs())
    targets = random_targets(2, model.geometry)
    weights = LossWeights(fpn_feature=0.0, encoder_feature=0.0, semantic=3.0)
    terms = loss_terms(passed, targets, objective(weights))
    assert set(terms) == set(OUTPUT_LOSSES)
    expected = sum(getattr(weights, name) * value for name, value in terms.items())
    assert total_loss(terms, weights).item() == pytest.approx(expected.item())


def test_batch_loss_is_mean_of_per_sample_losses(model):
    model.eval()  # BatchNorm in eval: a sample's outputs do not depend on the rest of the batch
    with torch.no_grad():
        outputs, levels, encoder, *_ = model(inputs(2))
    targets = random_targets(2, model.geometry)
    both = loss_terms(StudentPass(outputs, levels, encoder), targets, objective(LossWeights()))
    singles = []
    for index in range(2):
        pick = torch.tensor([index])
        one = type(outputs)(
            **{
                k: (getattr(outputs, k)[pick] if k != "intermediates" else None)
                for k in (
                    "pred_logits",
                    "pred_boxes",
                    "pred_masks",
                    "presence_logits",
                    "semantic_seg",
                    "iou_scores",
                    "intermediates",
                )
            }
        )
        one_pass = StudentPass(one, [level[pick] for level in levels], encoder[pick])
        singles.append(loss_terms(one_pass, targets.select(pick), objective(LossWeights())))
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
    terms = loss_terms(
        StudentPass(outputs), targets, objective(weights, MatchWeights(mask=0, logit=0, box=1))
    )
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
    terms = loss_terms(StudentPass(coarse, levels, encoder, text), targets, objective(weights))
    twin_terms = loss_terms(StudentPass(upsampled, levels, encoder, text), targets, objective(weights))
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
    terms = loss_terms(StudentPass(outputs), targets, objective(weights))
    per_layer = replace(weights, semantic=0.0, auxiliary=0.0)
    assert set(per_layer.active()) == set(AUX_LOSSES)
    expected = sum(
        total_loss(loss_terms(StudentPass(layer), targets, objective(per_layer)), per_layer)
        for layer in outputs.aux_outputs
    )
    assert terms["auxiliary"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(terms) == set(OUTPUT_LOSSES) | {"auxiliary"}
    total = sum(getattr(weights, name) * value for name, value in terms.items() if name != "auxiliary")
    assert total_loss(terms, weights).item() == pytest.approx((total + 0.5 * expected).item(), rel=1e-6)
    with pytest.raises(ValueError, match="auxiliary loss is on but"):
        loss_terms(StudentPass(plain), targets, objective(weights))


def test_auxiliary_loss_trains_the_first_decoder_layer_directly(tiny_student):
    """The auxiliary term alone reaches the first decoder layer and the shared heads, not the last
    layer (whose predictions it does not read)."""
    geometry = StudentGeometry(RESOLUTION, tiny_student.config.detr.encoder_level)
    model = DistillModel(tiny_student, None, geometry, aux=True).train()
    outputs, *_ = model(inputs())
    weights = LossWeights(fpn_feature=0.0, encoder_feature=0.0, auxiliary=1.0)
    model.zero_grad(set_to_none=True)
    loss_terms(StudentPass(outputs), random_targets(2, geometry), objective(weights))["auxiliary"].backward()
    last = tiny_student.detr_decoder.layers[-1]
    first = tiny_student.detr_decoder.layers[0]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in first.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in last.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tiny_student.mask_decoder.parameters())
    model.zero_grad(set_to_none=True)


def test_a_stages_objective_is_its_loss_settings():
    from sam3spec.distill.stages import PHASE1

    assert Objective.of(PHASE1) == Objective(
        PHASE1.losses, PHASE1.matcher, PHASE1.foreground_threshold, PHASE1.logit_positive_weight
    )
    assert (
        Objective(LossWeights()).positive_weight == 1.0 and Objective(LossWeights()).matcher == MatchWeights()
    )
