// Prompt padding and post-processing: the predictor's (sam3spec/predictor.py) arithmetic, in C++.
#include <algorithm>
#include <array>
#include <cmath>

#include "processing.h"

namespace sam3spec {

namespace {
float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
}  // namespace

PaddedPrompt pad_prompt(const Prompt& prompt, const Frame& frame, const Metadata& meta) {
  const bool has_text = !prompt.text_tokens.empty();
  if (!has_text && prompt.points.empty() && prompt.boxes.empty())
    throw Error("empty prompt: give text, boxes or points");
  const size_t length = static_cast<size_t>(meta.context_length), hidden = static_cast<size_t>(meta.hidden);
  PaddedPrompt out;
  if (has_text) {
    if (prompt.text_tokens.size() != length * hidden || prompt.text_mask.size() != length)
      throw Error("text prompt: expected tokens [" + std::to_string(length) + " x " + std::to_string(hidden) +
                  "] and a mask [" + std::to_string(length) + "]");
    out.text_tokens = prompt.text_tokens;
    out.text_mask = prompt.text_mask;
  } else {  // no text: every text slot is padding
    out.text_tokens.assign(length * hidden, 0.0f);
    out.text_mask.assign(length, 1);
  }
  const double factor = frame.box.scale / meta.image_size;
  auto labels = [](const std::vector<int64_t>& given, size_t count, const char* name) {
    if (given.empty()) return std::vector<int64_t>(count, 1);
    if (given.size() != count) throw Error(std::string(name) + ": expected " + std::to_string(count) + " labels");
    for (int64_t label : given)
      if (label != 0 && label != 1) throw Error(std::string(name) + ": each label must be 1 (positive) or 0 (negative)");
    return given;
  };
  if (static_cast<int>(prompt.points.size()) > meta.max_points)
    throw Error("points: " + std::to_string(prompt.points.size()) + " given but the program has " +
                std::to_string(meta.max_points) + " slots (export with more)");
  if (static_cast<int>(prompt.boxes.size()) > meta.max_boxes)
    throw Error("boxes: " + std::to_string(prompt.boxes.size()) + " given but the program has " +
                std::to_string(meta.max_boxes) + " slots (export with more)");
  out.points.assign(static_cast<size_t>(meta.max_points) * 2, 0.5f);
  out.point_labels.assign(static_cast<size_t>(meta.max_points), -1);
  auto point_labels = labels(prompt.point_labels, prompt.points.size(), "point_labels");
  for (size_t i = 0; i < prompt.points.size(); ++i) {
    const auto& p = prompt.points[i];
    if (!std::isfinite(p[0]) || !std::isfinite(p[1]) || p[0] < 0 || p[1] < 0 || p[0] > frame.width || p[1] > frame.height)
      throw Error("points: expected 0 <= x <= " + std::to_string(frame.width) + " and 0 <= y <= " +
                  std::to_string(frame.height));
    for (int k = 0; k < 2; ++k) out.points[i * 2 + k] = static_cast<float>(p[k] * factor);
    out.point_labels[i] = point_labels[i];
  }
  out.boxes.assign(static_cast<size_t>(meta.max_boxes) * 4, 0.5f);
  out.box_labels.assign(static_cast<size_t>(meta.max_boxes), -1);
  auto box_labels = labels(prompt.box_labels, prompt.boxes.size(), "box_labels");
  for (size_t i = 0; i < prompt.boxes.size(); ++i) {
    const auto& b = prompt.boxes[i];
    bool finite = std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]);
    if (!finite || b[0] < 0 || b[1] < 0 || b[2] > frame.width || b[3] > frame.height || b[2] <= b[0] || b[3] <= b[1])
      throw Error("boxes: expected x0 < x1 <= " + std::to_string(frame.width) + " and y0 < y1 <= " +
                  std::to_string(frame.height) + " (pixel xyxy)");
    for (int k = 0; k < 4; ++k) out.boxes[i * 4 + k] = static_cast<float>(b[k] * factor);
    out.box_labels[i] = box_labels[i];
  }
  return out;
}

Segmentation postprocess(const float* logits, const float* boxes, const float* mask_data, int queries, int mask_h,
                         int mask_w, float presence_logit, const Frame& frame, int side, float threshold) {
  const float present = sigmoid(presence_logit);
  std::vector<float> scores(queries);
  for (int q = 0; q < queries; ++q) scores[q] = sigmoid(logits[q]) * present;
  std::vector<int> order(queries);
  for (int q = 0; q < queries; ++q) order[q] = q;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });

  Segmentation out;
  out.width = frame.width;
  out.height = frame.height;
  out.presence = present;
  const size_t pixels = static_cast<size_t>(frame.width) * frame.height;
  std::vector<float> full(static_cast<size_t>(side) * side), resized(pixels);
  const float side_f = static_cast<float>(side), scale_f = static_cast<float>(frame.box.scale);
  for (int q : order) {
    if (!(scores[q] >= threshold)) break;
    out.scores.push_back(scores[q]);
    std::array<float, 4> box;
    for (int k = 0; k < 4; ++k) {
      float v = boxes[static_cast<size_t>(q) * 4 + k] * side_f / scale_f;
      const float limit = static_cast<float>(k % 2 == 0 ? frame.width : frame.height);
      box[k] = std::min(std::max(v, 0.0f), limit);
    }
    out.boxes.push_back(box);
    // S/4 -> S, crop the unpadded region, -> image size (the predictor's two interpolations).
    resize_bilinear(mask_data + static_cast<size_t>(q) * mask_h * mask_w, mask_h, mask_w, mask_w, side, side,
                    full.data());
    resize_bilinear(full.data(), frame.box.valid_h, frame.box.valid_w, side, frame.height, frame.width,
                    resized.data());
    const size_t offset = out.masks.size();
    out.masks.resize(offset + pixels);
    for (size_t i = 0; i < pixels; ++i) out.masks[offset + i] = resized[i] > 0.0f ? 1 : 0;
  }
  return out;
}

}  // namespace sam3spec
