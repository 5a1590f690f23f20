"""The dynamic prompt sampler: per sample, a text, point or box prompt by configurable ratios.

The plan's ratios (docs/PLAN.md 4.1, 4.2): Phase 1 text 50 / point 25 / box 25 (:data:`PHASE1_PROMPTS`), Phase 2
30 / 35 / 35 (:data:`PHASE2_PROMPTS`). A kind the sample cannot support is dropped and the others
renormalised: no text without a phrase or vocabulary, no point / box without a visible instance
(a negative SA-Co phrase is always asked as text).

Targets: a text prompt with a known phrase targets all its instances; a point targets the one
instance it was drawn in (SAM-style interactive prompt); a box is an *exemplar* and, when the
phrase is known, targets every instance of the concept (SAM 3 semantics), otherwise its instance
(``box_targets="instance"`` forces the latter). With a vocabulary phrase on an image without
phrase labels (SA-1B), targets are unknown (``targets_known`` False): distillation takes them from
the teacher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

TEXT, POINT, BOX = "text", "point", "box"


@dataclass(frozen=True)
class PromptConfig:
    """Prompt mix and sampling parameters.

    Attributes:
        text: weight of text prompts.
        point: weight of point prompts.
        box: weight of box prompts.
        max_points: a point prompt has 1..max_points positive points inside the target.
        negative_point_prob: chance of one extra negative point (in another instance, else the
            background).
        box_jitter: std of each box edge's noise, as a fraction of the box width / height.
        negative_box_prob: chance of adding a negative box around an instance that is not a target.
        box_targets: ``"concept"`` or ``"instance"`` (see the module docstring).
        visual_text: the text sent with point / box prompts (the HF teacher requires one; it uses
            "visual" for box-only prompts).
    """

    text: float = 0.5
    point: float = 0.25
    box: float = 0.25
    max_points: int = 3
    negative_point_prob: float = 0.3
    box_jitter: float = 0.1
    negative_box_prob: float = 0.1
    box_targets: str = "concept"
    visual_text: str = "visual"

    def __post_init__(self) -> None:
        weights = (self.text, self.point, self.box)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"prompt weights must be >= 0 and not all 0, got {weights}")
        if self.max_points < 1:
            raise ValueError("max_points must be >= 1")
        if self.box_targets not in ("concept", "instance"):
            raise ValueError(f"box_targets must be 'concept' or 'instance', got {self.box_targets!r}")


PHASE1_PROMPTS = PromptConfig(text=0.5, point=0.25, box=0.25)
PHASE2_PROMPTS = PromptConfig(text=0.3, point=0.35, box=0.35)


def _pixel_points(mask: torch.Tensor, count: int, rng: np.random.Generator) -> torch.Tensor:
    """``count`` normalised pixel centres drawn uniformly from a ``[H, W]`` mask, ``[count, 2]`` xy."""
    rows, cols = torch.nonzero(mask, as_tuple=True)
    picks = torch.from_numpy(rng.integers(0, rows.numel(), size=count))
    height, width = mask.shape
    return torch.stack([(cols[picks] + 0.5) / width, (rows[picks] + 0.5) / height], dim=-1).float()


def jitter_box(box: torch.Tensor, fraction: float, rng: np.random.Generator) -> torch.Tensor:
    """Move each edge of a normalised xyxy box by N(0, fraction * side); stays ordered, in [0, 1]."""
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    noise = rng.normal(0.0, fraction, size=4) * np.array([width, height, width, height])
    moved = (box + torch.from_numpy(noise).float()).clamp(0, 1)
    x0, x1 = sorted((float(moved[0]), float(moved[2])))
    y0, y1 = sorted((float(moved[1]), float(moved[3])))
    return torch.tensor([x0, y0, x1, y1])


class PromptSampler:
    """Adds one prompt and its targets to a sample (use as a dataset's ``prompts``).

    Reads ``masks`` (``[N, H, W]``, or ``[T+1, N, H, W]`` for a clip: the query frame is used),
    ``boxes_xyxy`` and ``phrase``. Adds ``prompt_type`` (``text`` / ``point`` / ``box``),
    ``text`` (str), ``points_xy`` ``[P, 2]`` normalised + ``point_labels`` ``[P]`` (1 positive,
    0 negative), ``prompt_boxes_xyxy`` ``[B, 4]`` normalised + ``prompt_box_labels`` ``[B]``,
    ``target_masks`` ``[K, H, W]``, ``target_boxes_xyxy`` ``[K, 4]``, ``targets_known``.

    Args:
        config: ratios and parameters.
        vocabulary: phrases for text prompts on samples without a phrase (targets unknown).
    """

    def __init__(self, config: PromptConfig = PHASE1_PROMPTS, vocabulary: Sequence[str] = ()) -> None:
        self.config = config
        self.vocabulary = list(vocabulary)

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        masks, boxes = sample["masks"], sample["boxes_xyxy"]
        if masks.dim() == 4:  # a clip: prompt the query frame
            masks, boxes = masks[-1], boxes[-1]
        present = torch.nonzero(masks.flatten(1).any(1)).flatten().tolist()
        phrase = sample.get("phrase")
        weights = {
            TEXT: self.config.text if (phrase or self.vocabulary) else 0.0,
            POINT: self.config.point if present else 0.0,
            BOX: self.config.box if present else 0.0,
        }
        total = sum(weights.values())
        kind = TEXT if total == 0 else str(rng.choice(list(weights), p=[w / total for w in weights.values()]))
        out = dict(sample)
        out.update(
            prompt_type=kind,
            text=self.config.visual_text,
            points_xy=torch.zeros(0, 2),
            point_labels=torch.zeros(0, dtype=torch.long),
            prompt_boxes_xyxy=torch.zeros(0, 4),
            prompt_box_labels=torch.zeros(0, dtype=torch.long),
            targets_known=True,
        )
        if kind == TEXT:
            if phrase:
                out["text"], targets = phrase, present
            else:
                out["text"] = (
                    self.vocabulary[rng.integers(len(self.vocabulary))]
                    if self.vocabulary
                    else self.config.visual_text
                )
                out["targets_known"], targets = False, []
        else:
            target = present[rng.integers(len(present))]
            others = [i for i in present if i != target]
            if kind == POINT:
                targets = [target]
                points = [_pixel_points(masks[target], int(rng.integers(1, self.config.max_points + 1)), rng)]
                labels = [1] * len(points[0])
                if rng.random() < self.config.negative_point_prob:
                    region = masks[others[rng.integers(len(others))]] if others else ~masks[target]
                    if region.any():
                        points.append(_pixel_points(region, 1, rng))
                        labels.append(0)
                out["points_xy"], out["point_labels"] = (
                    torch.cat(points),
                    torch.tensor(labels, dtype=torch.long),
                )
            else:
                concept = self.config.box_targets == "concept" and bool(phrase)
                targets = present if concept else [target]
                prompt_boxes, labels = [jitter_box(boxes[target], self.config.box_jitter, rng)], [1]
                non_targets = [i for i in present if i not in targets]
                if non_targets and rng.random() < self.config.negative_box_prob:
                    prompt_boxes.append(boxes[non_targets[rng.integers(len(non_targets))]].clone().float())
                    labels.append(0)
                out["prompt_boxes_xyxy"] = torch.stack(prompt_boxes)
                out["prompt_box_labels"] = torch.tensor(labels, dtype=torch.long)
        index = torch.tensor(targets, dtype=torch.long)
        out["target_masks"] = masks[index]
        out["target_boxes_xyxy"] = boxes[index]
        return out
