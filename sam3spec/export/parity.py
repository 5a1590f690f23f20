"""Parity of a ``.pte`` with the eager wrappers it was exported from, on real images.

Two views, both on held-out images (e.g. a data root's SA-Co eval split) letterboxed as the
predictor does:

* **per method** (the pass criterion): each method of the program gets exactly the inputs its
  eager counterpart gets: ``decode`` and ``track`` (one step, two-frame memory) read the eager
  features and text states, so a difference is the lowering of that method, not an upstream
  difference carried through. Reported: mask IoU of the top-k queries (by eager score; masks =
  logits > 0; intersections and unions summed over the samples; >= 0.98 passes), the worst
  mask-logit cosine, the largest score (sigmoid(logit) x sigmoid(presence)), presence and box
  differences, and the cosines of ``encode_text`` and ``encode_image`` (worst FPN level);
* **chained** (reported): the program end to end (its own ``encode_image`` -> ``encode_text`` ->
  ``decode``) against the eager chain. With a static int8 backbone the two sides are two
  different int8 roundings of the same float model; in a deep network with random weights their
  difference grows layer by layer (measured on the seed: feature cosine 0.92 after 48 random
  RepViT blocks, 0.99 on the shallower RepViT-M1.1), so the chained figures describe the
  quantized model rather than the export.

The reference is the eager wrappers *as exported* (quantized the same way). :func:`check_parity`
with the float wrappers as reference measures quantization and lowering together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from sam3spec.data.saco import GoldImage
from sam3spec.export.wrappers import ExportModules, padded_prompt

PARITY_IOU = 0.98


@dataclass
class ParityReport:
    """Eager vs ``.pte`` figures (see the module docstring); ``chain_*`` are end to end."""

    samples: int
    mask_iou: float
    mask_cosine: float
    max_score_delta: float
    max_presence_delta: float
    max_box_delta: float
    text_cosine: float
    image_cosine: float
    track_mask_iou: float | None
    chain_mask_iou: float
    chain_mask_cosine: float
    chain_max_score_delta: float
    reference: str

    @property
    def passed(self) -> bool:
        return self.mask_iou >= PARITY_IOU and (
            self.track_mask_iou is None or self.track_mask_iou >= PARITY_IOU
        )

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed, "threshold": PARITY_IOU}

    def describe(self) -> str:
        track = "" if self.track_mask_iou is None else f", track mask IoU {self.track_mask_iou:.4f}"
        return (
            f"parity vs {self.reference} on {self.samples} samples, per method: decode mask IoU "
            f"{self.mask_iou:.4f}{track}, mask cosine {self.mask_cosine:.5f}, max |d score| "
            f"{self.max_score_delta:.4f}, max |d presence| {self.max_presence_delta:.4f}, max |d box| "
            f"{self.max_box_delta:.4f}, text cosine {self.text_cosine:.5f}, image cosine {self.image_cosine:.5f}; "
            f"chained: mask IoU {self.chain_mask_iou:.4f}, mask cosine {self.chain_mask_cosine:.5f}, "
            f"max |d score| {self.chain_max_score_delta:.4f} -> "
            + ("PASS" if self.passed else f"FAIL (< {PARITY_IOU})")
        )


def _scores(outputs) -> torch.Tensor:
    """sigmoid(query logit) x sigmoid(presence) ``[B, Q]`` from the six-output tuple."""
    return outputs[0].sigmoid() * outputs[3].sigmoid()


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


class _Tally:
    def __init__(self) -> None:
        self.intersection = 0.0
        self.union = 0.0

    def add(self, reference: torch.Tensor, candidate: torch.Tensor, scores: torch.Tensor, top_k: int) -> None:
        keep = torch.argsort(scores, descending=True)[:top_k]
        a, b = reference[keep] > 0, candidate[keep] > 0
        self.intersection += float((a & b).sum())
        self.union += float((a | b).sum())

    @property
    def iou(self) -> float:
        return 1.0 if self.union == 0 else self.intersection / self.union


def check_parity(
    reference: ExportModules,
    program,
    samples: Sequence[tuple[torch.Tensor, str]],
    tokenize,
    top_k: int = 5,
    reference_name: str = "eager wrappers as exported",
) -> ParityReport:
    """Compare ``program`` (a :class:`~sam3spec.export.runtime.PteProgram`) with ``reference``.

    Args:
        reference: the eager wrappers.
        program: the loaded ``.pte``.
        samples: ``(normalised [3, S, S] image, phrase)`` pairs.
        tokenize: phrases -> ``[N, L]`` ids.
        top_k: queries per sample whose masks are compared.
        reference_name: how the report names the reference.
    """
    methods = program.method_names
    masks, track_masks, chain_masks = _Tally(), _Tally(), _Tally()
    mask_cosines, chain_cosines, text_cosines, image_cosines = [], [], [], []
    score_delta = presence_delta = box_delta = chain_score_delta = 0.0
    shapes = reference.shapes
    level = reference.student.config.memory.context_level
    history: list[torch.Tensor] = []
    with torch.no_grad():
        for index, (image, phrase) in enumerate(samples):
            pixels = image[None].float()
            ids = tokenize([phrase])
            geometry = padded_prompt(shapes, points=[[0.5, 0.5]]) if index % 2 else padded_prompt(shapes)
            levels_eager = reference.encode_image(pixels)
            levels_pte = tuple(program.run("encode_image", pixels))
            image_cosines.append(min(_cosine(a, b) for a, b in zip(levels_eager, levels_pte, strict=True)))
            text_eager = reference.encode_text(ids)
            text_pte = tuple(program.run("encode_text", ids)) if "encode_text" in methods else text_eager
            text_cosines.append(_cosine(text_eager[0], text_pte[0]))
            out_eager = reference.decode(*levels_eager, *text_eager, *geometry)
            scores_eager = _scores(out_eager)
            # per method: the program's decode on the eager inputs
            out_pte = program.run("decode", *levels_eager, *text_eager, *geometry)
            masks.add(out_eager[2][0], out_pte[2][0], scores_eager[0], top_k)
            mask_cosines.append(_cosine(out_eager[2], out_pte[2]))
            score_delta = max(score_delta, float((scores_eager - _scores(out_pte)).abs().max()))
            presence_delta = max(
                presence_delta, float((out_eager[3].sigmoid() - out_pte[3].sigmoid()).abs().max())
            )
            box_delta = max(box_delta, float((out_eager[1] - out_pte[1]).abs().max()))
            # chained: the program end to end
            chained = program.run("decode", *levels_pte, *text_pte, *geometry)
            chain_masks.add(out_eager[2][0], chained[2][0], scores_eager[0], top_k)
            chain_cosines.append(_cosine(out_eager[2], chained[2]))
            chain_score_delta = max(chain_score_delta, float((scores_eager - _scores(chained)).abs().max()))
            if "track" in methods and history:
                context = torch.zeros(1, shapes.memory_frames, *levels_eager[level].shape[1:])
                valid = torch.zeros(1, shapes.memory_frames, dtype=torch.bool)
                for slot, past in enumerate(history[-2:], start=shapes.memory_frames - len(history[-2:])):
                    context[0, slot], valid[0, slot] = past[0], True
                track_eager = reference.track(pixels, *text_eager, *geometry, context, valid)
                track_pte = program.run("track", pixels, *text_eager, *geometry, context, valid)
                track_masks.add(track_eager[2][0], track_pte[2][0], _scores(track_eager)[0], top_k)
            history.append(levels_eager[level])
    return ParityReport(
        samples=len(samples),
        mask_iou=masks.iou,
        mask_cosine=min(mask_cosines) if mask_cosines else 1.0,
        max_score_delta=score_delta,
        max_presence_delta=presence_delta,
        max_box_delta=box_delta,
        text_cosine=min(text_cosines) if text_cosines else 1.0,
        image_cosine=min(image_cosines) if image_cosines else 1.0,
        track_mask_iou=track_masks.iou if "track" in methods and len(samples) > 1 else None,
        chain_mask_iou=chain_masks.iou,
        chain_mask_cosine=min(chain_cosines) if chain_cosines else 1.0,
        chain_max_score_delta=chain_score_delta,
        reference=reference_name,
    )


class EagerMethods:
    """A program's ``run(name, *inputs)`` over eager wrappers, so :func:`check_parity` compares two
    eager models (a quantized student against its float self)."""

    def __init__(self, modules: ExportModules) -> None:
        self.modules = modules
        self.method_names = {"encode_image", "encode_text", "decode", "track"}

    def run(self, name: str, *inputs: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return list(getattr(self.modules, name)(*inputs))


def eager_parity(
    reference, candidate, samples: Sequence[tuple[torch.Tensor, str]], reference_name: str
) -> ParityReport:
    """:func:`check_parity` of one eager student (``candidate``, e.g. quantized with torchao) against
    another (``reference``), both wrapped as exported but unfused and without rewrites (what the
    eager models compute)."""
    from sam3spec.export.wrappers import export_modules
    from sam3spec.models.text_encoder import Tokenizer

    wrapped = export_modules(reference, fuse=False, rewrite=False)
    program = EagerMethods(export_modules(candidate, fuse=False, rewrite=False))
    return check_parity(
        wrapped, program, samples, Tokenizer(reference.config.text), reference_name=reference_name
    )


def parity_samples(
    images: Iterable[GoldImage], image_size: int, count: int = 6
) -> list[tuple[torch.Tensor, str]]:
    """``count`` (normalised letterboxed image, phrase) samples: the first two phrases of each image.

    The image goes through the eager predictor's own transform (letterbox + ImageNet
    normalisation), so parity is measured on what the app feeds.
    """
    from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig
    from sam3spec.predictor import image_to_tensor

    transform = ResizeNormalize(TransformConfig(image_size, "letterbox", Normalization.IMAGENET))
    samples = []
    for pair in images:
        pixels = transform({"image": image_to_tensor(pair.image)})["image"]
        for phrase in pair.phrases[:2]:
            samples.append((pixels, phrase))
            if len(samples) >= count:
                return samples
    return samples
