// The export's text-embedding table (`model.text_table.safetensors`): encode_text's outputs for a
// fixed vocabulary of phrases, so an app that asks known prompts never runs the text tower.
//
// safetensors is read by hand: the format is an 8-byte little-endian header length, a JSON header
// ({name: {dtype, shape, data_offsets}, "__metadata__": {...}}) and the raw tensor bytes, and
// the only C++ reader (the Rust crate's bindings / Hugging Face's C API) would be a far larger
// dependency than these ~100 lines on iOS and Android.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sam3spec {

/// Text prompt states for the `decode` / `track` methods.
struct TextEmbedding {
  std::vector<float> tokens;  ///< [L * C] token states, row-major.
  std::vector<uint8_t> mask;  ///< [L], 1 = padding.
};

class TextTable {
 public:
  /// Reads `path` (throws std::runtime_error naming the file on any format problem).
  static TextTable load(const std::string& path);

  const std::vector<std::string>& phrases() const { return phrases_; }
  const std::string& preset() const { return preset_; }
  int context_length() const { return length_; }
  int hidden() const { return hidden_; }
  bool contains(const std::string& phrase) const;
  /// The entry of `phrase` (tokens converted from fp16); throws when not in the table.
  TextEmbedding get(const std::string& phrase) const;

 private:
  std::vector<std::string> phrases_;
  std::string preset_;
  int length_ = 0;
  int hidden_ = 0;
  std::vector<uint16_t> tokens_;  // [V, L, C] fp16 bits
  std::vector<uint8_t> masks_;    // [V, L]
};

float half_to_float(uint16_t bits);

}  // namespace sam3spec
