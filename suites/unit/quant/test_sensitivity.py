"""The Linear-layer plan: sensitive parts stay float, the filter matches the plan, the line prints counts."""

from __future__ import annotations

import copy

from torch import nn

from sam3spec.quant.recipes import quantize_student
from sam3spec.quant.sensitivity import (
    SENSITIVE_COMPONENTS,
    group_size_rule,
    plan_linears,
    sensitive_float_share,
    sensitive_modules,
)


def linear_count(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Linear) for m in module.modules())


def test_plan_keeps_every_sensitive_linear(tiny_student):
    sensitive = sensitive_modules(tiny_student)
    assert set(sensitive) == set(SENSITIVE_COMPONENTS)
    plan = plan_linears(tiny_student, sensitive)
    expected = sum(linear_count(module) for module in sensitive.values())
    assert sum(1 for reason in plan.kept_float.values() if reason in SENSITIVE_COMPONENTS) == expected
    assert plan.total == linear_count(tiny_student)
    assert not set(plan.quantized) & set(plan.kept_float)


def test_multihead_attention_projection_is_not_quantized_eagerly(tiny_student):
    plan = plan_linears(tiny_student, {})
    mha = [name for name, reason in plan.kept_float.items() if reason == "inside nn.MultiheadAttention"]
    assert mha and all(name.endswith("attn.out_proj") for name in mha)


def test_describe_prints_counts(tiny_student):
    plan = plan_linears(tiny_student, sensitive_modules(tiny_student))
    line = plan.describe()
    assert line.startswith(f"quantized {len(plan.quantized)} of {plan.total} Linear layers; kept in float")
    for part in SENSITIVE_COMPONENTS:
        assert part in line


def test_filter_fn_selects_exactly_the_plan(tiny_student):
    plan = plan_linears(tiny_student, sensitive_modules(tiny_student))
    accept = plan.filter_fn(tiny_student)
    chosen = [name for name, module in tiny_student.named_modules() if accept(module, name)]
    assert sorted(chosen) == sorted(plan.quantized)


def test_group_size_rule():
    rule = group_size_rule(32)
    assert rule("a", nn.Linear(64, 8)) is None
    assert "multiple of 32" in rule("b", nn.Linear(2, 8))


def test_sensitive_float_share_after_quantization(tiny_student):
    model = copy.deepcopy(tiny_student)
    quantize_student(model, "8da4w", log=None)
    share, kept, total = sensitive_float_share(model)
    assert (share, kept) == (1.0, total) and total > 0
