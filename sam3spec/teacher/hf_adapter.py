"""SAM 3 through Hugging Face transformers: the teacher protocol over ``Sam3Model`` / ``Sam3TrackerModel``.

With :mod:`sam3spec.teacher.hf_models` (configs, building and loading the models) the only modules
that import transformers' SAM 3.

Text and box prompts go to ``Sam3Model`` (the concept detector); point prompts go to
``Sam3TrackerModel`` (``Sam3Model.forward`` has no points). Both read the same
:class:`~sam3spec.teacher.protocol.ImageEmbeddings`, computed once per image.

transformers facts this module relies on (measured, see docs/TEACHER.md): ``pred_boxes`` are
normalised xyxy while ``input_boxes`` and the decoder's reference boxes are cxcywh; only the last
decoder layer is returned, so per-layer outputs are captured with forward hooks and the box / score
heads re-applied exactly as ``Sam3Model.forward`` does; ``get_text_features`` returns an object
whose ``.pooler_output`` holds per-token features and must be passed back whole as ``text_embeds``.
"""

from __future__ import annotations

import torch
from transformers import Sam3Model, Sam3TrackerModel
from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput, inverse_sigmoid

from sam3spec.models.outputs import Intermediates, Sam3Outputs
from sam3spec.teacher.architecture import TeacherArchitecture
from sam3spec.teacher.hf_models import build_detector, download, load_models
from sam3spec.teacher.protocol import ImageEmbeddings


def vision_output(embeddings: ImageEmbeddings) -> Sam3VisionEncoderOutput:
    return Sam3VisionEncoderOutput(
        fpn_hidden_states=tuple(embeddings.fpn_levels),
        fpn_position_encoding=tuple(embeddings.position_encodings),
    )


def encode_detector_image(detector: Sam3Model, pixel_values: torch.Tensor) -> ImageEmbeddings:
    """The detector's vision encoder (ViT + FPN neck) on ``[B, 3, S, S]`` pixels."""
    output = detector.get_vision_features(pixel_values=pixel_values)
    return ImageEmbeddings(
        fpn_levels=list(output.fpn_hidden_states),
        position_encodings=list(output.fpn_position_encoding),
        image_size=tuple(pixel_values.shape[-2:]),
    )


def tracker_levels_from_fpn(tracker: Sam3TrackerModel, fpn_levels: list[torch.Tensor]) -> list[torch.Tensor]:
    """``Sam3TrackerModel.get_image_embeddings`` from already computed FPN levels (``[B, C, H, W]``)."""
    decoder = tracker.mask_decoder
    memory = tracker.no_memory_embedding.reshape(1, -1, 1, 1)
    return [decoder.conv_s0(fpn_levels[0]), decoder.conv_s1(fpn_levels[1]), fpn_levels[2] + memory]


class _DecoderTap:
    """Forward hooks capturing the DETR encoder / decoder outputs that ``Sam3Model`` drops."""

    def __init__(self, detector: Sam3Model) -> None:
        self.encoder: object | None = None
        self.decoder: object | None = None
        self.text_mask: torch.Tensor | None = None
        self.handles = [
            detector.detr_encoder.register_forward_hook(self._on_encoder, with_kwargs=True),
            detector.detr_decoder.register_forward_hook(self._on_decoder),
        ]

    def _on_encoder(self, module, args, kwargs, output) -> None:
        self.encoder = output
        self.text_mask = kwargs.get("text_mask")

    def _on_decoder(self, module, args, output) -> None:
        self.decoder = output

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def detector_forward(
    detector: Sam3Model,
    embeddings: ImageEmbeddings,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    boxes_cxcywh: torch.Tensor | None = None,
    box_labels: torch.Tensor | None = None,
    return_intermediates: bool = False,
    return_all_layers: bool = False,
) -> tuple[Sam3Outputs, dict[str, torch.Tensor]]:
    """One ``Sam3Model`` forward on cached image embeddings (one prompt per row).

    Args:
        detector: the SAM 3 detector.
        embeddings: ``B`` images' features (use :meth:`ImageEmbeddings.select` to repeat).
        input_ids: ``[B, 32]`` token ids; attention_mask ``[B, 32]``.
        boxes_cxcywh: ``[B, K, 4]`` normalised cxcywh exemplar boxes, or None.
        box_labels: ``[B, K]`` 1 / 0 (positive / negative exemplar), -10 padding.
        return_intermediates: fill :class:`Intermediates`.
        return_all_layers: also return per-layer ``logits`` ``[L, B, Q]``, ``boxes_xyxy``
            ``[L, B, Q, 4]`` and ``presence`` ``[L, B, 1]`` (auxiliary losses).

    Returns:
        ``(outputs, all_layers)``; ``all_layers`` is empty unless asked.
    """
    tap = _DecoderTap(detector) if (return_intermediates or return_all_layers) else None
    try:
        output = detector(
            vision_embeds=vision_output(embeddings),
            input_ids=input_ids,
            attention_mask=attention_mask,
            input_boxes=boxes_cxcywh,
            input_boxes_labels=box_labels,
        )
    finally:
        if tap is not None:
            tap.close()
    outputs = Sam3Outputs(
        pred_logits=output.pred_logits,
        pred_boxes=output.pred_boxes,
        pred_masks=output.pred_masks,
        presence_logits=output.presence_logits,
        semantic_seg=output.semantic_seg,
    )
    layers: dict[str, torch.Tensor] = {}
    if tap is None:
        return outputs, layers
    decoder = tap.decoder
    states = decoder.intermediate_hidden_states  # [L, B, Q, C], after the output norm
    offsets = detector.detr_decoder.box_head(states)
    boxes_cxcywh_all = (inverse_sigmoid(decoder.reference_boxes) + offsets).sigmoid()
    if return_all_layers:
        layers["logits"] = detector.dot_product_scoring(
            decoder_hidden_states=states, text_features=tap.encoder.text_features, text_mask=tap.text_mask
        ).squeeze(-1)
        cx, cy, w, h = boxes_cxcywh_all.unbind(-1)
        layers["boxes_xyxy"] = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
        layers["presence"] = decoder.presence_logits
    if return_intermediates:
        outputs.intermediates = Intermediates(
            fpn_levels=list(embeddings.fpn_levels),
            encoder_memory=tap.encoder.last_hidden_state,
            decoder_states=list(states.unbind(0)),
            decoder_boxes=list(boxes_cxcywh_all.unbind(0)),
            decoder_presence_logits=list(decoder.presence_logits.unbind(0)),
            # the encoder's prompt tokens are the text tokens, then any geometry tokens
            text_features=tap.encoder.text_features[:, : input_ids.shape[1]],
            text_valid=attention_mask.bool(),
        )
    return outputs, layers


def tracker_forward(
    tracker: Sam3TrackerModel,
    tracker_levels: list[torch.Tensor],
    points_pixels: torch.Tensor | None,
    point_labels: torch.Tensor | None,
    boxes_pixels: torch.Tensor | None = None,
    multimask_output: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SAM-style point (and optional box) decoding on cached tracker features.

    Args:
        tracker: the point tracker.
        tracker_levels: from :func:`tracker_levels_from_fpn` (``B`` images).
        points_pixels: ``[B, P, 2]`` ``(x, y)`` in model-input pixels; point_labels ``[B, P]``.
        boxes_pixels: ``[B, 4]`` xyxy in model-input pixels, or None.
        multimask_output: 3 candidate masks (True) or the single best (False).

    Returns:
        ``masks`` ``[B, M, 4*grid, 4*grid]`` logits, ``iou`` ``[B, M]`` in [0, 1], and
        ``object_score_logits`` ``[B, 1]``.
    """
    output = tracker(
        image_embeddings=tracker_levels,
        input_points=None if points_pixels is None else points_pixels[:, None],
        input_labels=None if point_labels is None else point_labels[:, None].int(),
        input_boxes=None if boxes_pixels is None else boxes_pixels[:, None],
        multimask_output=multimask_output,
    )
    return output.pred_masks[:, 0], output.iou_scores[:, 0], output.object_score_logits[:, 0]


class HFTeacher:
    """The :class:`~sam3spec.teacher.protocol.Teacher` over transformers' SAM 3 models.

    Args:
        detector: ``Sam3Model`` (text and box prompts).
        tracker: ``Sam3TrackerModel`` (point prompts), or None.
        tokenizer: a :class:`~sam3spec.teacher.tokenizer.Sam3Tokenizer`.
        image_mean: per-channel normalisation mean (SAM 3: 0.5).
        image_std: per-channel normalisation std (SAM 3: 0.5).
        shared_backbone: the tracker's ViT has the detector's weights, so one ViT pass serves both.
        score_offset: added to the detector's query logits (``pred_logits``) of every text / box
            prediction: a score calibration fitted on training images
            (:mod:`sam3spec.world.teacher.calibration`; ``score_offset`` in ``teacher.json``). 0 for SAM 3.
    """

    def __init__(
        self,
        detector: Sam3Model,
        tracker: Sam3TrackerModel | None,
        tokenizer,
        image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
        image_std: tuple[float, float, float] = (0.5, 0.5, 0.5),
        shared_backbone: bool = True,
        score_offset: float = 0.0,
    ) -> None:
        self.detector = detector
        self.score_offset = float(score_offset)
        self.tracker = tracker
        self.tokenizer = tokenizer
        self.image_mean = torch.tensor(image_mean).view(1, 3, 1, 1)
        self.image_std = torch.tensor(image_std).view(1, 3, 1, 1)
        self.shared_backbone = shared_backbone
        self.image_size = int(detector.config.vision_config.backbone_config.image_size)

    @property
    def device(self) -> torch.device:
        return next(self.detector.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.detector.parameters()).dtype

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` uint8 RGB -> ``[B, 3, S, S]`` normalised, resized (bilinear, antialiased)."""
        pixels = images.float() / 255.0
        if pixels.shape[-2:] != (self.image_size, self.image_size):
            pixels = torch.nn.functional.interpolate(
                pixels,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        pixels = (pixels - self.image_mean) / self.image_std
        return pixels.to(self.device, self.dtype)

    @torch.no_grad()
    def encode_image(self, pixel_values: torch.Tensor) -> ImageEmbeddings:
        """Detector features and, with a tracker, its features (one ViT pass when shared)."""
        pixel_values = pixel_values.to(self.device, self.dtype)
        if self.tracker is None:
            return encode_detector_image(self.detector, pixel_values)
        vision = self.detector.vision_encoder
        backbone = vision.backbone(pixel_values).last_hidden_state
        grid = (
            pixel_values.shape[-2] // vision.config.backbone_config.patch_size,
            pixel_values.shape[-1] // vision.config.backbone_config.patch_size,
        )
        spatial = backbone.view(backbone.shape[0], *grid, -1).permute(0, 3, 1, 2)
        levels, positions = vision.neck(spatial)
        embeddings = ImageEmbeddings(list(levels), list(positions), image_size=tuple(pixel_values.shape[-2:]))
        if self.shared_backbone:
            tracker_fpn = list(self.tracker.vision_encoder.neck(spatial)[0])
        else:
            tracker_fpn = list(self.tracker.vision_encoder(pixel_values).fpn_hidden_states)
        embeddings.tracker_levels = tracker_levels_from_fpn(self.tracker, tracker_fpn)
        return embeddings

    @torch.no_grad()
    def predict(
        self,
        embeddings: ImageEmbeddings,
        text: str | list[str] | None = None,
        boxes: torch.Tensor | None = None,
        box_labels: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        return_intermediates: bool = False,
    ) -> Sam3Outputs:
        """See :meth:`sam3spec.teacher.protocol.Teacher.predict`.

        Point prompts (optionally with a box) go to the tracker and return its ``M = 3``
        candidate masks as queries: ``pred_logits`` = logit of the predicted IoU,
        ``presence_logits`` = the object score, ``pred_boxes`` = the masks' tight boxes.
        Text and/or boxes go to the detector; a box-only prompt uses the text "visual" as SAM 3 does.
        """
        batch = embeddings.batch_size
        if points is not None:
            return self._predict_points(embeddings, points, point_labels, boxes, return_intermediates)
        if text is None and boxes is None:
            raise ValueError("give a prompt: text, boxes or points")
        texts = (
            ["visual"] * batch if text is None else ([text] * batch if isinstance(text, str) else list(text))
        )
        if len(texts) != batch:
            raise ValueError(f"{len(texts)} texts for {batch} embedded images")
        tokens = self.tokenizer(texts)
        boxes_cxcywh = labels = None
        if boxes is not None:
            x0, y0, x1, y1 = boxes.to(self.device, self.dtype).unbind(-1)
            boxes_cxcywh = torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)
            labels = (
                torch.ones(boxes.shape[:2], dtype=torch.long) if box_labels is None else box_labels.long()
            )
            labels = labels.to(self.device)
        outputs, _ = detector_forward(
            self.detector,
            embeddings,
            tokens["input_ids"].to(self.device),
            tokens["attention_mask"].to(self.device),
            boxes_cxcywh,
            labels,
            return_intermediates=return_intermediates,
        )
        if self.score_offset:
            outputs.pred_logits = outputs.pred_logits + self.score_offset
        return outputs

    def _predict_points(self, embeddings, points, point_labels, boxes, return_intermediates) -> Sam3Outputs:
        if self.tracker is None or embeddings.tracker_levels is None:
            raise ValueError(
                "point prompts need the SAM 3 tracker (Sam3TrackerModel), which this teacher lacks"
            )
        if return_intermediates:
            raise ValueError("intermediates are defined for text / box prompts (the detector), not points")
        height, width = embeddings.image_size
        scale = torch.tensor([width, height], dtype=self.dtype, device=self.device)
        pixels = points.to(self.device, self.dtype) * scale
        labels = (
            torch.ones(points.shape[:2], device=self.device)
            if point_labels is None
            else point_labels.to(self.device)
        )
        box_pixels = None if boxes is None else boxes.to(self.device, self.dtype)[:, 0] * scale.repeat(2)
        masks, iou, object_logits = tracker_forward(
            self.tracker, embeddings.tracker_levels, pixels, labels, box_pixels
        )
        hard = masks > 0
        mask_height, mask_width = masks.shape[-2:]
        rows, cols = hard.any(-1), hard.any(-2)
        ramp_h = torch.arange(mask_height, device=masks.device, dtype=self.dtype)
        ramp_w = torch.arange(mask_width, device=masks.device, dtype=self.dtype)
        x0 = torch.where(cols, ramp_w, mask_width).amin(-1) / mask_width
        x1 = (torch.where(cols, ramp_w, -1).amax(-1) + 1) / mask_width
        y0 = torch.where(rows, ramp_h, mask_height).amin(-1) / mask_height
        y1 = (torch.where(rows, ramp_h, -1).amax(-1) + 1) / mask_height
        empty = ~hard.flatten(2).any(-1)
        boxes_xyxy = torch.stack([x0, y0, x1, y1], -1).masked_fill(empty[..., None], 0.0)
        iou_logits = torch.logit(iou.float().clamp(1e-4, 1 - 1e-4)).to(masks.dtype)
        return Sam3Outputs(
            pred_logits=iou_logits,
            pred_boxes=boxes_xyxy,
            pred_masks=masks,
            presence_logits=object_logits,
            semantic_seg=masks.amax(dim=1, keepdim=True),
            iou_scores=iou_logits,
        )


def random_teacher(
    arch: TeacherArchitecture | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> HFTeacher:
    """A teacher over a randomly initialised detector (no tracker: text and box prompts), built on
    ``device``: SAM 3's architecture without its weights (``arch`` None), or a small
    :class:`~sam3spec.teacher.architecture.TeacherArchitecture`. For timing; nothing is downloaded."""
    from sam3spec.teacher.tokenizer import default_tokenizer

    with torch.device(device):
        detector = build_detector(arch, seed)
    return HFTeacher(detector.to(dtype).eval().requires_grad_(False), None, default_tokenizer())


def _tokenizer_for(directory):
    from sam3spec.teacher.tokenizer import Sam3Tokenizer, default_tokenizer

    if directory is not None and (directory / "vocab.json").is_file():
        return Sam3Tokenizer(directory)
    return default_tokenizer()


def _normalisation(directory) -> tuple[tuple[float, ...], tuple[float, ...]]:
    import json

    path = None if directory is None else directory / "preprocessor_config.json"
    if path is not None and path.is_file():
        config = json.loads(path.read_text())
        config = config.get("image_processor", config)
        if "image_mean" in config and "image_std" in config:
            return tuple(config["image_mean"]), tuple(config["image_std"])
    return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def load_local(
    layout: dict, device, dtype, resolution: int | None = None, with_tracker: bool = True
) -> HFTeacher:
    """Load the detector (and tracker) of a resolved local layout (:mod:`sam3spec.teacher.layout`)."""
    detector, tracker, shared = load_models(layout, device, dtype, resolution, with_tracker)
    mean, std = _normalisation(layout.get("tokenizer"))
    return HFTeacher(
        detector, tracker, _tokenizer_for(layout.get("tokenizer")), mean, std, shared_backbone=shared
    )


def load_from_hub(
    repo_id: str, device, dtype, resolution: int | None = None, with_tracker: bool = True
) -> HFTeacher:
    """Download (only when the caller allowed the hub) and load a SAM 3 checkpoint, e.g. ``facebook/sam3``."""
    from sam3spec.teacher.layout import resolve_layout

    return load_local(resolve_layout(download(repo_id)), device, dtype, resolution, with_tracker)
