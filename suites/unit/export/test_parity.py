"""Parity figures: a program identical to its reference passes with IoU 1; a perturbed one is caught."""

from __future__ import annotations

import pytest
import torch

from sam3spec.export.parity import PARITY_IOU, ParityReport, _Tally, check_parity


@pytest.fixture(scope="module")
def samples(plain_modules):
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(3, 128, 128, generator=generator), phrase) for phrase in ("red circle", "blue square")
    ]


@pytest.fixture(scope="module")
def tokenize(plain_modules):
    from sam3spec.models.text_encoder import Tokenizer

    return Tokenizer(plain_modules.student.config.text)


def test_identical_program_passes(plain_modules, eager_program, samples, tokenize):
    report = check_parity(plain_modules, eager_program(plain_modules), samples, tokenize)
    assert report.passed and report.mask_iou == 1.0 and report.chain_mask_iou == 1.0
    assert report.track_mask_iou == 1.0 and report.max_score_delta == 0.0
    assert report.samples == 2 and "PASS" in report.describe()


def test_perturbed_decode_fails(plain_modules, eager_program, samples, tokenize):
    class Flipped(eager_program):
        def run(self, name, *inputs):
            outputs = super().run(name, *inputs)
            if name == "decode":
                outputs[2] = -outputs[2]  # every mask inverted
            return outputs

    report = check_parity(plain_modules, Flipped(plain_modules), samples, tokenize)
    assert not report.passed and report.mask_iou < PARITY_IOU
    assert report.to_json()["passed"] is False


def test_tally_sums_over_samples():
    tally = _Tally()
    reference = torch.tensor([[[1.0, 1.0], [-1.0, -1.0]]])
    candidate = torch.tensor([[[1.0, -1.0], [-1.0, -1.0]]])
    tally.add(reference, candidate, torch.tensor([0.9]), top_k=1)
    tally.add(reference, reference, torch.tensor([0.9]), top_k=1)
    assert tally.iou == (1 + 2) / (2 + 2)
    assert _Tally().iou == 1.0
    assert ParityReport.__dataclass_fields__.keys() >= {"mask_iou", "chain_mask_iou", "track_mask_iou"}
