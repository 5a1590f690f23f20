"""The student: a phone-sized promptable concept segmenter assembled from finished parts.

Data flow (``forward``)::

    pixels -> ImageEncoder -> 4 FPN levels (+ sine pos)
    text ids -> TextEncoder ─┐
    points / boxes -> PromptEncoder (samples the FPN) ─┴-> prompt tokens [B, P, C] + mask
    FPN level 2 (+ upsampled level 3) -> DetrEncoder(prompt) -> memory tokens [B, H*W, C]
        (video: + MemoryCrossAttention(PerceiverResampler(context frames)))
    -> DetrDecoder(prompt, memory) -> query states, boxes, presence
    -> DotProductScoring (logits), MaskDecoder (masks, semantic), IoU head

The methods ``encode_image``, ``encode_prompt``, ``encode_memory`` and ``decode`` are the units
that export as separate methods; they take and return tensors (or dataclasses of tensors).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sam3spec.boxes import boxes_cxcywh_to_xyxy
from sam3spec.config import StudentConfig
from sam3spec.models.detr_decoder import DetrDecoder
from sam3spec.models.detr_encoder import DetrEncoder
from sam3spec.models.image_encoder import ImageEncoder, ImageFeatures
from sam3spec.models.mask_decoder import MaskDecoder
from sam3spec.models.memory import MemoryCrossAttention, PerceiverResampler, context_tokens
from sam3spec.models.outputs import Intermediates, Sam3Outputs
from sam3spec.models.prompt_encoder import PromptEncoder
from sam3spec.models.scoring import DotProductScoring
from sam3spec.models.text_encoder import TextEncoder
from sam3spec.models.validation import check_image, check_prompt_coordinates, check_text
from sam3spec.models.video import CONTEXT_FRAMES, VideoState, empty_state, push_frame
from sam3spec.models.weights import LoadReport

COMPONENTS = (
    "image_encoder",
    "text_encoder",
    "prompt_encoder",
    "detr_encoder",
    "detr_decoder",
    "scoring",
    "mask_decoder",
    "iou_head",
    "perceiver",
    "memory_attention",
)


class Student(nn.Module):
    """EfficientSAM3-style student (image + optional video memory).

    Args:
        image_encoder: backbone + FPN adapters.
        text_encoder: text tower + projection to ``hidden``.
        prompt_encoder: points/boxes -> tokens.
        detr_encoder: prompt fusion into the image tokens.
        detr_decoder: query decoder (boxes, presence).
        scoring: query-vs-prompt logits.
        mask_decoder: pixel decoder, mask embedder, semantic head.
        iou_head: ``[..., C] -> [..., 1]`` predicted mask IoU (logit).
        memory_resampler: Perceiver resampler (context tokens -> ``[B, K, C]``).
        memory_attention: gated cross-attention from the encoder memory to the video memory.
        config: the resolved config the parts were built from (saved with checkpoints).
    """

    def __init__(
        self,
        *,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        prompt_encoder: PromptEncoder,
        detr_encoder: DetrEncoder,
        detr_decoder: DetrDecoder,
        scoring: DotProductScoring,
        mask_decoder: MaskDecoder,
        iou_head: nn.Module,
        memory_resampler: PerceiverResampler,
        memory_attention: MemoryCrossAttention,
        config: StudentConfig,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.prompt_encoder = prompt_encoder
        self.detr_encoder = detr_encoder
        self.detr_decoder = detr_decoder
        self.scoring = scoring
        self.mask_decoder = mask_decoder
        self.iou_head = iou_head
        self.memory_resampler = memory_resampler
        self.memory_attention = memory_attention
        self.config = config
        # What each pretrained weights file provided (filled by build_student); not state.
        self.load_reports: list[LoadReport] = []
        self.encoder_level = config.detr.encoder_level
        if not 0 <= self.encoder_level < image_encoder.num_levels:
            raise ValueError(
                f"detr.encoder_level {self.encoder_level} outside the {image_encoder.num_levels} FPN levels"
            )

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        box_labels: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        return_intermediates: bool = False,
    ) -> Sam3Outputs:
        """Segment every instance of the prompted concept.

        Args:
            pixel_values: ``[B, 3, H, W]`` normalised float image.
            input_ids: ``[B, L]`` text token ids (0 = padding), or None.
            boxes: ``[B, M, 4]`` normalised xyxy, or None; box_labels ``[B, M]`` 1/0/-1.
            box_labels: see ``boxes`` (None: all positive).
            points: ``[B, N, 2]`` normalised xy, or None; point_labels ``[B, N]`` 1/0/-1.
            point_labels: see ``points`` (None: all positive).
            memory: video memory ``[B, K, C]`` from :meth:`encode_memory`, or None for images.
            return_intermediates: also return distillation targets.

        Returns:
            :class:`Sam3Outputs` (masks at ``mask_upsample`` x H/4, boxes normalised xyxy).
        """
        image_features = self.encode_image(pixel_values)
        prompt, prompt_mask = self.encode_prompt(
            input_ids, boxes, box_labels, points, point_labels, image_features
        )
        return self.decode(image_features, prompt, prompt_mask, memory, return_intermediates)

    def encode_image(self, pixel_values: torch.Tensor) -> ImageFeatures:
        """``[B, 3, H, W]`` normalised float -> FPN levels ``[B, C, H/s, W/s]`` (s = 4, 8, 16, 32) + pos."""
        check_image(pixel_values)
        return self.image_encoder(pixel_values)

    def encode_prompt(
        self,
        input_ids: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        box_labels: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        image_features: ImageFeatures | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text tokens and geometry tokens, concatenated (text first).

        Args:
            input_ids: ``[B, L]`` token ids or None.
            boxes: ``[B, M, 4]`` normalised xyxy or None; box_labels ``[B, M]`` (1/0/-1).
            box_labels: see ``boxes``.
            points: ``[B, N, 2]`` normalised xy or None; point_labels ``[B, N]`` (1/0/-1).
            point_labels: see ``points``.
            image_features: required with boxes or points (the prompt encoder samples them).

        Returns:
            ``(prompt_tokens [B, P, C], prompt_padding_mask [B, P])``, P = L + N + M, mask True
            at padding.

        Raises:
            ValueError: no prompt at all, or malformed ids / coordinates / labels.
        """
        if input_ids is None and boxes is None and points is None:
            raise ValueError("empty prompt: give text, boxes or points")
        tokens: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        if input_ids is not None:
            check_text(input_ids, self.text_encoder.context_length)
            text_tokens, text_mask = self.text_encoder(input_ids)
            tokens.append(text_tokens)
            masks.append(text_mask)
        if boxes is not None or points is not None:
            if image_features is None:
                raise ValueError("boxes and points need image_features (from encode_image)")
            feature_map = image_features.features[self.encoder_level]
            check_prompt_coordinates(points, point_labels, "points", 2, feature_map.shape[0])
            check_prompt_coordinates(boxes, box_labels, "boxes", 4, feature_map.shape[0])
            geometry, geometry_mask = self.prompt_encoder(
                feature_map, points, point_labels, boxes, box_labels
            )
            tokens.append(geometry)
            masks.append(geometry_mask)
        if len({t.shape[0] for t in tokens}) > 1:
            raise ValueError(
                f"text and geometry prompts disagree on batch size: {[t.shape[0] for t in tokens]}"
            )
        return torch.cat(tokens, dim=1), torch.cat(masks, dim=1)

    def encode_memory(self, context: torch.Tensor) -> torch.Tensor:
        """Compress context frames into the fixed-size video memory.

        Args:
            context: ``[B, T, C, h, w]`` FPN features (level ``memory.context_level``) of T
                context frames, oldest first, or ready tokens ``[B, N_ctx, C]``.

        Returns:
            memory ``[B, K, C]`` (K = ``memory.num_latents``, 64) whatever T.
        """
        if context.dim() == 5:
            context = context_tokens(context)
        elif context.dim() != 3:
            raise ValueError(f"context must be [B, T, C, h, w] or [B, N, C], got {tuple(context.shape)}")
        return self.memory_resampler(context)

    def decode(
        self,
        image_features: ImageFeatures,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
        memory: torch.Tensor | None = None,
        return_intermediates: bool = False,
        return_aux: bool = False,
    ) -> Sam3Outputs:
        """Prompted detection and segmentation from encoded image and prompt.

        Args:
            image_features: from :meth:`encode_image`.
            prompt: ``[B, P, C]`` prompt tokens; prompt_mask ``[B, P]`` True = padding.
            prompt_mask: see ``prompt``.
            memory: ``[B, K, C]`` video memory or None.
            return_intermediates: also return FPN levels, the DETR encoder output (before memory
                fusion) and per-layer decoder states / boxes (cxcywh) / presence logits.
            return_aux: also return every earlier decoder layer's predictions
                (``aux_outputs``; the auxiliary distillation loss).

        Returns:
            :class:`Sam3Outputs`.
        """
        features, positions = image_features.features, image_features.pos
        level = self.encoder_level
        grid = features[level]
        if level + 1 < len(features):
            # Parameter-free top-down merge: the encoder sees stride-32 context too, and the
            # coarsest level (needed anyway as video context) is trained by image prompts.
            grid = grid + F.interpolate(features[level + 1], size=grid.shape[-2:], mode="nearest")
        batch, channels, height, width = grid.shape
        tokens = grid.flatten(2).transpose(1, 2)  # [B, H*W, C]
        token_pos = positions[level].flatten(2).transpose(1, 2)
        encoded = self.detr_encoder(tokens, token_pos, prompt, prompt_mask)
        fused = encoded if memory is None else self.memory_attention(encoded, memory)
        decoded = self.detr_decoder(prompt, prompt_mask, fused, token_pos, (height, width))
        states = decoded.states[-1]
        memory_map = fused.transpose(1, 2).reshape(batch, channels, height, width)
        boxes = boxes_cxcywh_to_xyxy(decoded.boxes[-1])
        pixels = self.mask_decoder.pixel_embedding(memory_map, features[:level][::-1])
        masks = self.mask_decoder.instance_masks(states, pixels, boxes)
        semantic = self.mask_decoder.semantic(pixels)
        intermediates = None
        if return_intermediates:
            intermediates = Intermediates(
                fpn_levels=list(features),
                encoder_memory=encoded,
                decoder_states=decoded.states,
                decoder_boxes=decoded.boxes,
                decoder_presence_logits=decoded.presence_logits,
            )
        return Sam3Outputs(
            pred_logits=self.scoring(states, prompt, prompt_mask),
            pred_boxes=boxes,
            pred_masks=masks,
            presence_logits=decoded.presence_logits[-1],
            semantic_seg=semantic,
            iou_scores=self.iou_head(states).squeeze(-1),
            intermediates=intermediates,
            aux_outputs=self._aux_outputs(decoded, pixels, semantic, prompt, prompt_mask)
            if return_aux
            else None,
        )

    def _aux_outputs(self, decoded, pixels, semantic, prompt, prompt_mask) -> list[Sam3Outputs]:
        """The heads applied to every decoder layer but the last (they share the final layer's heads
        and pixel embedding, as DETR's auxiliary predictions do)."""
        outputs = []
        for states, boxes_cxcywh, presence in zip(
            decoded.states[:-1], decoded.boxes[:-1], decoded.presence_logits[:-1], strict=True
        ):
            boxes = boxes_cxcywh_to_xyxy(boxes_cxcywh)
            outputs.append(
                Sam3Outputs(
                    pred_logits=self.scoring(states, prompt, prompt_mask),
                    pred_boxes=boxes,
                    pred_masks=self.mask_decoder.instance_masks(states, pixels, boxes),
                    presence_logits=presence,
                    semantic_seg=semantic,
                    iou_scores=self.iou_head(states).squeeze(-1),
                )
            )
        return outputs

    def forward_video(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        box_labels: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        state: VideoState | None = None,
        context_frames: int = CONTEXT_FRAMES,
    ) -> tuple[Sam3Outputs, VideoState]:
        """One video frame with explicit memory in and out (the eager twin of the ``track`` export).

        The frame's encoder tokens read the memory of the frames before it (MemoryCrossAttention
        on the K-latent memory in ``state``), the decoder runs on the fused tokens, and the frame's
        FPN level ``memory.context_level`` map is pushed into the returned state. The first frame
        (or ``state=None``) decodes without memory, exactly as :meth:`forward`.

        Args:
            pixel_values: ``[B, 3, H, W]`` normalised float frame.
            input_ids, boxes, box_labels, points, point_labels: the prompt, as for :meth:`forward`.
            state: :class:`~sam3spec.models.video.VideoState` returned by the previous call, or None.
            context_frames: T, the buffer length of a new state (ignored when ``state`` is given).

        Returns:
            ``(outputs, new state)``; every tensor of the new state has the size of the old one.
        """
        image_features = self.encode_image(pixel_values)
        prompt, prompt_mask = self.encode_prompt(
            input_ids, boxes, box_labels, points, point_labels, image_features
        )
        return self.decode_video(image_features, prompt, prompt_mask, state, context_frames)

    def decode_video(
        self,
        image_features: ImageFeatures,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
        state: VideoState | None = None,
        context_frames: int = CONTEXT_FRAMES,
        push: bool = True,
        use_memory: bool = True,
    ) -> tuple[Sam3Outputs, VideoState]:
        """:meth:`forward_video` after the encoders (a predictor encodes a text prompt once).

        Args:
            push: put this frame into the returned state (False: return ``state`` unchanged, for
                callers that sample memory frames less often than they segment).
            use_memory: False decodes without memory (the "without memory" baseline) but still
                keeps the state.
        """
        level_map = image_features.features[self.config.memory.context_level]
        if state is None:
            batch, channels, height, width = level_map.shape
            state = empty_state(
                batch,
                context_frames,
                channels,
                height,
                width,
                self.config.memory.num_latents,
                level_map.device,
                level_map.dtype,
            )
        memory = state.memory if use_memory and state.has_context else None
        outputs = self.decode(image_features, prompt, prompt_mask, memory)
        new_state = push_frame(state, level_map, self.memory_resampler) if push else state
        return outputs, new_state

    def component_modules(self) -> dict[str, nn.Module]:
        """The ten named parts; every parameter belongs to exactly one."""
        return {
            "image_encoder": self.image_encoder,
            "text_encoder": self.text_encoder,
            "prompt_encoder": self.prompt_encoder,
            "detr_encoder": self.detr_encoder,
            "detr_decoder": self.detr_decoder,
            "scoring": self.scoring,
            "mask_decoder": self.mask_decoder,
            "iou_head": self.iou_head,
            "perceiver": self.memory_resampler,
            "memory_attention": self.memory_attention,
        }

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per component (keys of :meth:`component_modules`) plus ``total``."""
        counts = {
            name: sum(p.numel() for p in m.parameters()) for name, m in self.component_modules().items()
        }
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts

    def reparameterize(self) -> Student:
        """Fuse the backbone's re-parameterisable branches for deployment (in place); returns self."""
        self.image_encoder.reparameterize()
        return self
