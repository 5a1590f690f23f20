"""Distillation timings (pytest-benchmark; ``slow``, not run by the CI command).

    .venv/bin/pytest suites/bench/test_distill_bench.py -m slow --benchmark-only

The matcher at SAM 3's size: 100 student queries x 200 teacher queries, masks at the seed
student's 504 px mask size (126 x 126). Training throughput per preset: ``python -m
sam3spec.bench.training`` (see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import pytest
import torch

from sam3spec.distill.matcher import MatchWeights, greedy, hungarian, match_cost

pytestmark = pytest.mark.slow
STUDENT_QUERIES, TEACHER_QUERIES, SIDE = 100, 200, 126


@pytest.fixture(scope="module")
def problem():
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(TEACHER_QUERIES, 2, generator=generator) * 0.7
    teacher_boxes = torch.cat([corners, corners + 0.2], -1)
    return {
        "student_masks": torch.randn(STUDENT_QUERIES, SIDE, SIDE, generator=generator),
        "student_boxes": teacher_boxes[:STUDENT_QUERIES] + 0.01,
        "student_logits": torch.randn(STUDENT_QUERIES, generator=generator),
        "teacher_mask_probs": torch.rand(TEACHER_QUERIES, SIDE, SIDE, generator=generator),
        "teacher_boxes": teacher_boxes,
        "teacher_logits": torch.randn(TEACHER_QUERIES, generator=generator),
    }


@pytest.fixture(scope="module")
def cost(problem):
    return match_cost(**problem, weights=MatchWeights())


def test_cost_matrix_100x200(benchmark, problem):
    result = benchmark(lambda: match_cost(**problem, weights=MatchWeights()))
    assert result.shape == (STUDENT_QUERIES, TEACHER_QUERIES)


def test_hungarian_100x200(benchmark, cost):
    rows, _ = benchmark(hungarian, cost)
    assert len(rows) == STUDENT_QUERIES


def test_greedy_100x200(benchmark, cost):
    rows, cols = benchmark(greedy, cost)
    assert len(rows) == STUDENT_QUERIES
    optimal = cost[hungarian(cost)].sum()
    benchmark.extra_info["greedy_over_optimal_cost"] = float(cost[rows, cols].sum() / optimal)
