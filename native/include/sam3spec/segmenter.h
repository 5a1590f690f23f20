// sam3spec native runner: the app-level API over one multi-method .pte exported by
// `sam3spec export` (methods encode_image, encode_text, decode, track + metadata constants).
//
//   auto seg = sam3spec::Segmenter::open("model.pte");          // + model.text_table.safetensors
//   seg->set_image(rgb, width, height);                          // encode_image once
//   sam3spec::Prompt prompt = seg->text_prompt("red circle");    // table lookup (or token ids)
//   sam3spec::Segmentation out = seg->segment(prompt);           // decode + post-processing
//
// Video: set_image + segment on the first frame, `start_track(state)`, then `track(frame, ...,
// state)` per frame; `state` (the rolling memory buffer) belongs to the caller between frames.
// Errors are thrown as sam3spec::Error with a message naming the file or argument.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sam3spec {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The program's metadata constants (`metadata_json`).
struct Metadata {
  int image_size = 0;
  float mean[3] = {0, 0, 0};
  float std[3] = {1, 1, 1};
  int context_length = 0, pad_token_id = 0, hidden = 0, num_queries = 0, mask_stride = 4;
  int max_points = 0, max_boxes = 0, memory_frames = 0, memory_level = 3;
  std::string preset, backend, recipe, tokenizer, resize, json;
};

/// One prompt. Text states come from the text table or encode_text; points / boxes are in the
/// original image's pixels (labels 1 positive, 0 negative). At least one part must be given.
struct Prompt {
  std::vector<float> text_tokens;  ///< [L * C] or empty (no text)
  std::vector<uint8_t> text_mask;  ///< [L], 1 = padding
  std::vector<std::array<float, 2>> points;
  std::vector<int64_t> point_labels;  ///< empty = all positive
  std::vector<std::array<float, 4>> boxes;  ///< xyxy
  std::vector<int64_t> box_labels;
};

/// Instances found for one prompt, best first (as sam3spec.predictor.Prediction).
struct Segmentation {
  int width = 0, height = 0;
  std::vector<uint8_t> masks;  ///< [N, height, width], 1 = object
  std::vector<std::array<float, 4>> boxes;  ///< [N] pixel xyxy
  std::vector<float> scores;  ///< [N] sigmoid(logit) * sigmoid(presence)
  float presence = 0.0f;
  size_t count() const { return scores.size(); }
};

/// The video memory the caller keeps between frames: `track`'s context buffer and validity flags.
struct TrackState {
  std::vector<float> context;  ///< [T, C, h, w] level-`memory_level` maps, oldest first
  std::vector<uint8_t> valid;  ///< [T]
  bool started() const { return !valid.empty(); }
};

/// Wall time of the stages of the last call, in milliseconds.
struct StageTimes {
  double pre_ms = 0, encode_image_ms = 0, encode_text_ms = 0, decode_ms = 0, track_ms = 0, post_ms = 0;
};

/// XNNPACK / kernel thread count (ExecuTorch's process-wide thread pool). Returns false where the
/// runtime was built without the pool. Call before the first inference (it rebuilds the pool).
bool set_num_threads(unsigned threads);
/// The pool's thread count (0 where there is no pool).
unsigned num_threads();

class Segmenter {
 public:
  /// Loads `pte_path` and checks it is a sam3spec program with encode_image and decode.
  /// `text_table_path`: "" = `<stem>.text_table.safetensors` beside the .pte when present,
  /// "-" = none.
  static std::unique_ptr<Segmenter> open(const std::string& pte_path, const std::string& text_table_path = "");
  virtual ~Segmenter() = default;

  virtual const Metadata& metadata() const = 0;
  virtual bool has_method(const std::string& name) const = 0;
  virtual bool has_text_table() const = 0;

  /// Pre-processes and encodes one RGB image ([height, width, 3] uint8, row-major).
  virtual void set_image(const uint8_t* rgb, int width, int height) = 0;
  /// Text prompt by phrase (text table).
  virtual Prompt text_prompt(const std::string& phrase) = 0;
  /// Text prompt by CLIP token ids (runs encode_text; ids padded with pad_token_id to L).
  virtual Prompt text_prompt(const std::vector<int64_t>& token_ids) = 0;
  /// decode on the current image + post-processing (instances with score >= threshold).
  virtual Segmentation segment(const Prompt& prompt, float threshold = 0.5f) = 0;

  /// Starts a video from the current image: zero buffer with its level map in the newest slot.
  virtual void start_track(TrackState& state) const = 0;
  /// One video frame through `track`; `state` is read and replaced by the shifted buffer.
  virtual Segmentation track(const uint8_t* rgb, int width, int height, const Prompt& prompt, TrackState& state,
                             float threshold = 0.5f) = 0;

  /// The normalised [3, S, S] input of the last set_image / track (for checks against Python).
  virtual const std::vector<float>& pixel_values() const = 0;
  virtual const StageTimes& last_times() const = 0;
};

}  // namespace sam3spec
