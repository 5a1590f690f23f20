"""Training-only initialisation of the concept-world teacher (a small SAM 3 from scratch on a CPU
budget): what transformers' defaults got wrong at width 48 and why (docs/TEACHER.md, "What
happened"); pinned by ``suites/unit/world/test_teacher_init.py``."""

from __future__ import annotations

import math

import torch


def initialise_for_training(detector) -> None:
    """Training-only initialisation that lets a small SAM 3 learn from scratch on a CPU budget.

    * Linear and embedding layers get PyTorch's default initialisation instead of transformers'
      normal(0, 0.02), which at width 48 makes every projection ~5x too small: attention stays
      uniform and the text-image products that grounding needs start near zero (measured: the
      query logits of different phrases differed 13x less at initialisation).
    * Token embeddings with std 1 instead of CLIP's 0.02: with 0.02 the position embeddings and
      padding dominate the text features, phrases look alike, and the network settles on
      text-independent priors.
    * Convolutions (patch embedding, FPN neck, pixel decoder) likewise: with normal(0, 0.02)
      each of the neck's stacked (transposed) convolutions shrinks its input ~2.5x, and the FPN
      levels came out with RMS 0.0006 (4x level) to 0.08 (1x level), against 0.55 for the text
      features and ~0.7 for the sine position encodings: the image content was invisible next to
      the positions, the backbone got almost no gradient, and every run learnt only priors
      (presence and semantic masks identical for positive and negative phrases after 1,200
      steps).
    * Reference boxes on a grid (:func:`spread_reference_boxes`).

    Without these, three runs of 400-1,100 steps learnt only priors: the presence was the same
    for every phrase and image, and the queries' scores the same for every query.
    """
    for module in detector.modules():
        if isinstance(
            module, (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
        ):
            module.reset_parameters()
    embedding = detector.text_encoder.text_model.embeddings.token_embedding.weight
    with torch.no_grad():
        embedding.normal_(0.0, 1.0)
    spread_reference_boxes(detector)
    box_window_bias(detector)
    sincos_position_embeddings(detector)


def sincos_position_embeddings(detector) -> None:
    """Start the ViT's absolute position embedding as a fixed-frequency 2D sine-cosine table
    (as MAE initialises it) instead of normal(0, 0.02).

    The ViT's RoPE is relative only, and values in the DETR cross-attentions carry no position
    encoding, so absolute position reaches the box head only through this table. At std 0.02 it
    is ~50x smaller than the patch embeddings and the features hardly say where they are.
    """
    table = detector.vision_encoder.backbone.embeddings.position_embeddings
    count, width = table.shape[1], table.shape[2]
    side = int(round(math.sqrt(count)))
    if side * side != count or width % 4:
        return  # not a square grid with a width this construction can split: keep the default
    quarter = width // 4
    frequencies = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    rows, cols = torch.meshgrid(
        torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32), indexing="ij"
    )
    angles_y = rows.reshape(-1, 1) * frequencies
    angles_x = cols.reshape(-1, 1) * frequencies
    values = torch.cat([angles_y.sin(), angles_y.cos(), angles_x.sin(), angles_x.cos()], dim=1)
    with torch.no_grad():
        table.copy_(values[None])


BOX_WINDOW_STRENGTH = 10.0


def box_window_bias(detector, strength: float = BOX_WINDOW_STRENGTH) -> None:
    """Start the decoder's box relative position bias (boxRPB) as a soft window around each
    query's reference box instead of a near-zero random function.

    The boxRPB MLP sees, per image column (row), the log-scaled signed distances ``(d0, d1)`` to
    the box's left and right (top and bottom) edges; inside the box ``d0 >= 0 >= d1``. Two hidden
    units compute ``relu(-d0)`` and ``relu(d1)`` (how far outside) and the output adds
    ``-strength`` x their sum to every head's attention logit (about -2 one patch outside, -6 a
    quarter image away). The other hidden units stay random with zero output weights, so the
    bias can still learn anything. Why: with near-zero bias a query's image cross-attention is
    uniform over all 400 tokens, a global average that hardly differs between images, and the
    queries could not localise (box L1 flat for 1,200 steps).
    """
    for mlp in (detector.detr_decoder.box_rpb_embed_x, detector.detr_decoder.box_rpb_embed_y):
        first, second = mlp.layer1, (mlp.layer3 if mlp.layer3 is not None else mlp.layer2)
        if mlp.layer3 is not None or first.out_features < 2:
            continue  # not the 2-layer MLP this construction assumes: keep the default
        with torch.no_grad():
            first.weight[:2] = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
            first.bias[:2] = 0.0
            second.weight.zero_()
            second.weight[:, :2] = -strength
            second.bias.zero_()


def spread_reference_boxes(detector) -> None:
    """Start the decoder's reference boxes on a grid covering the image (anchor-style, as DAB-DETR
    initialises them) instead of transformers' default, where every box starts at the centre.

    With every query at the same place and near-identical embeddings, the queries stay
    interchangeable for a long time (measured: after 1,100 steps their states differed by 3 % and
    their scores not at all); on a grid the box relative position bias sends each query to its
    own region from the first step.
    """
    weight = detector.detr_decoder.reference_points.weight
    count = weight.shape[0]
    side = math.ceil(math.sqrt(count))
    index = torch.arange(count, dtype=torch.float32)
    centres_x, centres_y = (index % side + 0.5) / side, (index // side + 0.5) / side
    size = torch.full((count,), 1.0 / side)
    boxes = torch.stack([centres_x, centres_y, size, size], dim=-1).clamp(1e-3, 1 - 1e-3)
    with torch.no_grad():
        weight.copy_(torch.logit(boxes))


def anchor_centres(detector) -> torch.Tensor:
    """``[Q, 2]`` normalised centres of the decoder's reference boxes (the matching's anchors)."""
    return detector.detr_decoder.reference_points.weight.detach()[:, :2].sigmoid()
