// Internal pieces of the Segmenter that do not touch ExecuTorch: metadata parsing, prompt padding
// and post-processing (kept apart so they read like the Python they mirror).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "image_ops.h"
#include "sam3spec/segmenter.h"

namespace sam3spec {

/// One pre-processed image: its size and where it sits in the S x S letterbox.
struct Frame {
  int width = 0, height = 0;
  Letterbox box;
};

/// A prompt in the program's fixed slots (unused coordinates 0.5, labels -1; no text = all padding).
struct PaddedPrompt {
  std::vector<float> text_tokens, points, boxes;  // [L*C], [Np*2], [Nb*4] (normalised to S)
  std::vector<uint8_t> text_mask;                 // [L]
  std::vector<int64_t> point_labels, box_labels;  // [Np], [Nb]
};

/// `metadata_json` -> Metadata; throws Error naming `path` for a missing key or unsupported resize.
Metadata parse_metadata(const std::string& text, const std::string& path);

/// Checks the prompt against the image (pixels) and the program's slots, and pads it.
PaddedPrompt pad_prompt(const Prompt& prompt, const Frame& frame, const Metadata& meta);

/// pred_logits [Q], pred_boxes [Q, 4] (normalised xyxy), pred_masks [Q, mask_h, mask_w] ->
/// instances with score >= threshold, best first, masks and boxes in the image's pixels.
Segmentation postprocess(const float* logits, const float* boxes, const float* masks, int queries, int mask_h,
                         int mask_w, float presence_logit, const Frame& frame, int side, float threshold);

}  // namespace sam3spec
