"""Trace-friendly wrappers around a :class:`~sam3spec.models.student.Student`, one per exported method.

Export-only rewrites live here, outside the model (as segment-anything's ``utils/onnx.py``): the
student itself stays a clean training module. Every wrapper takes and returns plain tensors in a
fixed order, with fixed shapes:

=============== =================================================================================
method          inputs -> outputs
=============== =================================================================================
encode_image    ``pixel_values [1, 3, S, S]`` -> ``fpn0..fpn3 [1, C, S/4 .. S/32]``
encode_text     ``input_ids [1, L]`` int64 -> ``text_tokens [1, L, C]``, ``text_mask [1, L]`` bool
decode          ``fpn0..fpn3``, ``text_tokens``, ``text_mask``, ``points [1, Np, 2]``,
                ``point_labels [1, Np]``, ``boxes [1, Nb, 4]``, ``box_labels [1, Nb]`` ->
                :data:`OUTPUT_NAMES` (pred_logits, pred_boxes, pred_masks, presence_logits,
                semantic_seg, iou_scores)
track           ``pixel_values``, the prompt as for ``decode``, ``context [1, T, C, h, w]``,
                ``context_valid [1, T]`` bool -> the six outputs, ``context``, ``context_valid``
=============== =================================================================================

Prompts are padded to fixed counts: a text-less prompt is a ``text_mask`` of all True, unused
point / box slots carry label -1 (padding). Padding keys get exactly zero attention weight and
are excluded from the scoring mean, so the padded program computes what the eager student does
with the unpadded prompt (as long as one prompt token is valid).

The rewrites, each exact up to float rounding:

* **text tower**: open_clip's ``nn.MultiheadAttention`` (one packed ``in_proj_weight``, SDPA in
  the graph) becomes separate ``nn.Linear`` q/k/v/out with an explicit softmax
  (:class:`~sam3spec.models.attention.Attention`): XNNPACK then delegates it fully and torchao
  can quantize the projections.
* **backbone**: RepViT branches fused (:meth:`Student.reparameterize`) on a copy.
* **track**: the Perceiver resampler reads a rolling buffer of the last T frames' FPN level-3
  maps with a validity mask (key padding), so a video shorter than T needs no other program.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from sam3spec.export.recipes import METHODS
from sam3spec.export.shapes import OUTPUT_NAMES, ExportShapes, level_side, padded_prompt
from sam3spec.models.attention import Attention
from sam3spec.models.image_encoder import ImageFeatures
from sam3spec.models.memory import context_tokens
from sam3spec.models.position import grid_position_embedding
from sam3spec.models.student import Student

__all__ = [
    "METHODS",
    "OUTPUT_NAMES",
    "ExportModules",
    "ExportShapes",
    "export_modules",
    "example_inputs",
    "padded_prompt",
]


class ExportTextBlock(nn.Module):
    """An open_clip ``ResidualAttentionBlock`` with its attention as plain ``nn.Linear`` q/k/v/out.

    Args:
        block: the open_clip block (``ln_1``, ``attn`` = ``nn.MultiheadAttention``, ``ls_1``,
            ``ln_2``, ``mlp``, ``ls_2``); its weights are copied, the block is not changed.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        mha: nn.MultiheadAttention = block.attn
        width = mha.embed_dim
        if not mha._qkv_same_embed_dim or not mha.batch_first:
            raise ValueError("expected a batch_first nn.MultiheadAttention with packed q/k/v weights")
        self.ln_1 = copy.deepcopy(block.ln_1)
        self.attn = Attention(width, mha.num_heads, bias=mha.in_proj_bias is not None)
        with torch.no_grad():
            for index, layer in enumerate((self.attn.q_proj, self.attn.k_proj, self.attn.v_proj)):
                layer.weight.copy_(mha.in_proj_weight[index * width : (index + 1) * width])
                if mha.in_proj_bias is not None:
                    layer.bias.copy_(mha.in_proj_bias[index * width : (index + 1) * width])
            self.attn.out_proj.weight.copy_(mha.out_proj.weight)
            if mha.out_proj.bias is not None:
                self.attn.out_proj.bias.copy_(mha.out_proj.bias)
        self.ls_1 = copy.deepcopy(block.ls_1)
        self.ln_2 = copy.deepcopy(block.ln_2)
        self.mlp = copy.deepcopy(block.mlp)
        self.ls_2 = copy.deepcopy(block.ls_2)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, L, width]`` -> ``[B, L, width]``; ``attn_bias`` additive ``[.., L, L]`` or None."""
        y = self.ln_1(x)
        x = x + self.ls_1(self.attn(y, y, y, attn_bias=attn_bias))
        return x + self.ls_2(self.mlp(self.ln_2(x)))


class EncodeText(nn.Module):
    """``encode_text``: the student's text encoder with the tower's attention rewritten.

    Args:
        student: the student (its text encoder is copied).
    """

    def __init__(self, student: Student) -> None:
        super().__init__()
        encoder = student.text_encoder
        tower = encoder.tower
        if getattr(tower, "cls_emb", None) is not None or getattr(tower, "use_pad_mask", False):
            raise ValueError("the export rewrite supports open_clip towers without a CLS token or pad mask")
        self.token_embedding = copy.deepcopy(tower.token_embedding)
        self.positional_embedding = nn.Parameter(tower.positional_embedding.detach().clone())
        self.blocks = nn.ModuleList(ExportTextBlock(block) for block in tower.transformer.resblocks)
        self.ln_final = copy.deepcopy(tower.ln_final)
        self.projection = copy.deepcopy(encoder.projection)
        causal = getattr(tower, "attn_mask", None)
        self.register_buffer(
            "causal_bias", None if causal is None else causal.detach().clone(), persistent=False
        )
        self.pad_token_id = 0

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``input_ids [B, L]`` -> ``(tokens [B, L, hidden], padding_mask [B, L] bool)``."""
        length = input_ids.shape[1]
        x = self.token_embedding(input_ids) + self.positional_embedding[:length]
        bias = None if self.causal_bias is None else self.causal_bias[:length, :length]
        for block in self.blocks:
            x = block(x, bias)
        return self.projection(self.ln_final(x)), input_ids == self.pad_token_id


class EncodeImage(nn.Module):
    """``encode_image``: fused backbone + FPN adapters; position embeddings are recomputed by ``decode``.

    Args:
        image_encoder: the (fused) image encoder.
    """

    def __init__(self, image_encoder: nn.Module) -> None:
        super().__init__()
        self.image_encoder = image_encoder

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``[1, 3, S, S]`` normalised -> FPN levels, finest first."""
        return tuple(self.image_encoder(pixel_values).features)


def _image_features(levels: tuple[torch.Tensor, ...]) -> ImageFeatures:
    # Parameter-free and shape-only: constant-folded at export.
    return ImageFeatures(features=list(levels), pos=[grid_position_embedding(level) for level in levels])


def _outputs(outputs) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(outputs, name) for name in OUTPUT_NAMES)


def student_view(student: Student, keep: tuple[str, ...]) -> Student:
    """A shallow copy of ``student`` sharing the parts named in ``keep``; the others are ``nn.Identity``.

    ``torch.export`` lifts every parameter of a module, used or not: a ``decode`` wrapper that
    held the whole student would carry the text tower's 63M parameters along.
    """
    view = copy.copy(student)
    view._modules = {
        name: module if name in keep else nn.Identity() for name, module in student._modules.items()
    }
    view._parameters = dict(student._parameters)
    view._buffers = dict(student._buffers)
    return view


DECODE_PARTS = ("prompt_encoder", "detr_encoder", "detr_decoder", "scoring", "mask_decoder", "iou_head")


class PromptedDecoder(nn.Module):
    """Shared by ``decode`` and ``track``: padded prompt -> prompt tokens -> student heads.

    Args:
        student: a student whose parts this module uses (not copied).
        parts: the student parts this method needs.
    """

    def __init__(self, student: Student, parts: tuple[str, ...] = DECODE_PARTS) -> None:
        super().__init__()
        self.student = student_view(student, parts)

    def prompt(
        self,
        features: ImageFeatures,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        points: torch.Tensor,
        point_labels: torch.Tensor,
        boxes: torch.Tensor,
        box_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feature_map = features.features[self.student.encoder_level]
        geometry, geometry_mask = self.student.prompt_encoder(
            feature_map, points, point_labels, boxes, box_labels
        )
        return torch.cat((text_tokens, geometry), dim=1), torch.cat((text_mask, geometry_mask), dim=1)


class Decode(PromptedDecoder):
    """``decode``: FPN levels + padded prompt -> the six prediction tensors."""

    def forward(
        self,
        fpn0: torch.Tensor,
        fpn1: torch.Tensor,
        fpn2: torch.Tensor,
        fpn3: torch.Tensor,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        points: torch.Tensor,
        point_labels: torch.Tensor,
        boxes: torch.Tensor,
        box_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """See the module table; returns the tensors of :data:`OUTPUT_NAMES` in order."""
        features = _image_features((fpn0, fpn1, fpn2, fpn3))
        prompt, mask = self.prompt(features, text_tokens, text_mask, points, point_labels, boxes, box_labels)
        return _outputs(self.student.decode(features, prompt, mask))


class MaskedResampler(nn.Module):
    """The student's Perceiver resampler reading a T-frame buffer of which only some frames are valid.

    Equal to ``resampler(context_tokens(context[:, valid]))`` when the valid frames are the newest
    (the last slots): frame ages count from the newest frame, so they match; invalid frames are
    masked keys.

    Args:
        resampler: the student's :class:`~sam3spec.models.memory.PerceiverResampler` (not copied).
    """

    def __init__(self, resampler: nn.Module) -> None:
        super().__init__()
        self.resampler = resampler

    def forward(self, context: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``context [B, T, C, h, w]``, ``valid [B, T]`` bool -> memory ``[B, K, C]``."""
        batch, frames, _, height, width = context.shape
        tokens = context_tokens(context)
        padding = (
            (~valid)[:, :, None].expand(batch, frames, height * width).reshape(batch, frames * height * width)
        )
        latents = self.resampler.latents[None].expand(batch, -1, -1)
        for layer in self.resampler.layers:
            keys = layer.context_norm(tokens)
            latents = latents + layer.attn(layer.latent_norm(latents), keys, keys, key_padding_mask=padding)
            latents = latents + layer.ffn(layer.ffn_norm(latents))
        return self.resampler.norm(latents)


class Track(PromptedDecoder):
    """``track``: one video frame with explicit memory in and out.

    The memory is a rolling buffer of the FPN level-3 (``memory.context_level``) maps of the last
    T frames, oldest first, with a validity flag per slot; at least one slot must be valid (for
    the first frame of a video run ``encode_image`` + ``decode`` and put its level-3 map in the
    last slot). Returns the predictions and the buffer shifted by one with this frame appended.

    Args:
        student: the deployment copy (its decode parts, Perceiver and memory attention are used).
        image: the ``encode_image`` module (pixels -> tuple of FPN levels), shared so a quantized
            backbone is the same in both methods.
    """

    def __init__(self, student: Student, image: nn.Module) -> None:
        super().__init__(student, (*DECODE_PARTS, "memory_attention"))
        self.image = image
        self.resampler = MaskedResampler(student.memory_resampler)
        self.context_level = student.config.memory.context_level

    def forward(
        self,
        pixel_values: torch.Tensor,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        points: torch.Tensor,
        point_labels: torch.Tensor,
        boxes: torch.Tensor,
        box_labels: torch.Tensor,
        context: torch.Tensor,
        context_valid: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """See the module table: the six outputs, then the new ``context`` and ``context_valid``."""
        features = _image_features(tuple(self.image(pixel_values)))
        prompt, mask = self.prompt(features, text_tokens, text_mask, points, point_labels, boxes, box_labels)
        memory = self.resampler(context, context_valid)
        outputs = _outputs(self.student.decode(features, prompt, mask, memory=memory))
        current = features.features[self.context_level][:, None]
        new_context = torch.cat((context[:, 1:], current), dim=1)
        new_valid = torch.cat((context_valid[:, 1:], torch.ones_like(context_valid[:, :1])), dim=1)
        return (*outputs, new_context, new_valid)


@dataclass
class ExportModules:
    """The four wrappers over one deployment copy of the student (fused backbone, eval mode).

    ``encode_image`` may be replaced by a quantized graph module with the same signature;
    :meth:`set_image_encoder` keeps ``track`` on the same module.
    """

    encode_image: nn.Module
    encode_text: EncodeText
    decode: Decode
    track: Track
    student: Student
    shapes: ExportShapes

    def as_dict(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in METHODS}

    def set_image_encoder(self, module: nn.Module) -> None:
        """Use ``module`` (pixels -> tuple of FPN levels) in ``encode_image`` and ``track``."""
        self.encode_image = module
        self.track.image = module


def export_modules(
    student: Student, fuse: bool = True, rewrite: bool = True, **shape_overrides: int
) -> ExportModules:
    """Wrap a deployment copy of ``student`` (deep-copied, eval, backbone fused if ``fuse``).

    Args:
        student: the trained (or random) student; not modified.
        fuse: re-parameterise the backbone (as deployed).
        rewrite: apply the delegation rewrites of :mod:`sam3spec.export.rewrites`.
        **shape_overrides: :class:`ExportShapes` fields (``max_points``, ``max_boxes``,
            ``memory_frames``).

    The four wrappers share the copy's parameters, so quantizing a layer once quantizes it for
    every method that uses it.
    """
    from sam3spec.export.rewrites import apply_rewrites

    deployed = copy.deepcopy(student).eval()
    if fuse:
        deployed.reparameterize()
    if rewrite:  # before the wrappers take their views of the parts
        apply_rewrites(deployed)
    image = EncodeImage(deployed.image_encoder).eval()
    modules = ExportModules(
        encode_image=image,
        encode_text=EncodeText(deployed).eval(),
        decode=Decode(deployed).eval(),
        track=Track(deployed, image).eval(),
        student=deployed,
        shapes=ExportShapes.of(deployed, **shape_overrides),
    )
    if rewrite:
        apply_rewrites(modules.encode_text)
    return modules


def example_inputs(modules: ExportModules, method: str, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Representative inputs of one method (a 4-token text prompt, one point, one box)."""
    shapes, config = modules.shapes, modules.student.config
    generator = torch.Generator().manual_seed(seed)
    size, hidden = shapes.image_size, config.hidden
    pixels = torch.randn(1, 3, size, size, generator=generator)
    input_ids = torch.zeros(1, shapes.context_length, dtype=torch.long)
    input_ids[0, :4] = torch.tensor([49406, 320, 321, 49407]) % config.text.vocab_size
    if method == "encode_image":
        return (pixels,)
    if method == "encode_text":
        return (input_ids,)
    with torch.no_grad():
        text_tokens, text_mask = modules.encode_text(input_ids)
    prompt = padded_prompt(shapes, points=[[0.4, 0.5]], boxes=[[0.2, 0.2, 0.7, 0.8]])
    prompt = (text_tokens, text_mask, *prompt)
    if method == "decode":
        with torch.no_grad():
            levels = modules.encode_image(pixels)
        return (*levels, *prompt)
    if method == "track":
        side = level_side(size, config.memory.context_level)
        context = torch.randn(1, shapes.memory_frames, hidden, side, side, generator=generator)
        valid = torch.zeros(1, shapes.memory_frames, dtype=torch.bool)
        valid[0, -2:] = True
        return (pixels, *prompt, context, valid)
    raise KeyError(f"unknown method {method!r}; known: {METHODS}")
