// The program's metadata constants (`metadata_json`, written by sam3spec/export/lowering.py).
#include <stdexcept>

#include "json.h"
#include "processing.h"

namespace sam3spec {

Metadata parse_metadata(const std::string& text, const std::string& path) {
  Metadata meta;
  meta.json = text;
  try {
    Json json = Json::parse(text);
    meta.image_size = static_cast<int>(json["image_size"].integer());
    auto mean = json["normalization_mean"].numbers(), std_ = json["normalization_std"].numbers();
    if (mean.size() != 3 || std_.size() != 3) throw std::runtime_error("normalization needs 3 values");
    for (int c = 0; c < 3; ++c) {
      meta.mean[c] = static_cast<float>(mean[c]);
      meta.std[c] = static_cast<float>(std_[c]);
    }
    meta.context_length = static_cast<int>(json["context_length"].integer());
    meta.pad_token_id = static_cast<int>(json["pad_token_id"].integer());
    meta.hidden = static_cast<int>(json["hidden"].integer());
    meta.num_queries = static_cast<int>(json["num_queries"].integer());
    meta.mask_stride = static_cast<int>(json["mask_stride"].integer());
    meta.max_points = static_cast<int>(json["max_points"].integer());
    meta.max_boxes = static_cast<int>(json["max_boxes"].integer());
    meta.memory_frames = static_cast<int>(json["memory_frames"].integer());
    meta.memory_level = static_cast<int>(json["memory_level"].integer());
    meta.preset = json["preset"].str();
    meta.backend = json["backend"].str();
    meta.recipe = json["recipe"].str();
    meta.tokenizer = json["tokenizer"].str();
    meta.resize = json["resize"].str();
  } catch (const std::runtime_error& error) {
    throw Error(path + ": bad metadata_json (" + error.what() + ")");
  }
  if (meta.resize.rfind("letterbox", 0) != 0)
    throw Error(path + ": resize mode '" + meta.resize + "' is not supported (letterbox only)");
  return meta;
}

}  // namespace sam3spec
