// Segmenter over ExecuTorch's Module API (the same C++ API the iOS and Android runtimes wrap).
#include "sam3spec/segmenter.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>

#include "image_ops.h"
#include "processing.h"
#include "text_table.h"

#ifdef SAM3SPEC_HAS_THREADPOOL
// The wheel ships libexecutorch_threadpool.so but not its header (extension/threadpool/threadpool.h):
// these declarations match the upstream header and the library's exported symbols (nm -DC).
namespace executorch {
namespace extension {
namespace threadpool {
class ThreadPool {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace threadpool
}  // namespace extension
}  // namespace executorch
#endif

namespace sam3spec {

bool set_num_threads(unsigned threads) {
#ifdef SAM3SPEC_HAS_THREADPOOL
  auto* pool = executorch::extension::threadpool::get_threadpool();
  return pool != nullptr && threads > 0 && pool->_unsafe_reset_threadpool(threads);
#else
  (void)threads;
  return false;
#endif
}

unsigned num_threads() {
#ifdef SAM3SPEC_HAS_THREADPOOL
  auto* pool = executorch::extension::threadpool::get_threadpool();
  return pool ? static_cast<unsigned>(pool->get_thread_count()) : 0u;
#else
  return 0u;
#endif
}

namespace et = executorch::runtime;
using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::extension::from_blob;
using executorch::extension::TensorPtr;
using executorch::extension::module::Module;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// A method output copied out of the method's planned memory (the next execute reuses it).
struct Owned {
  std::vector<int32_t> sizes;
  std::vector<float> data;
  std::vector<uint8_t> bytes;  // bool outputs
  size_t numel() const { return data.empty() ? bytes.size() : data.size(); }
};

Owned copy_tensor(const et::EValue& value, const std::string& what) {
  if (!value.isTensor()) throw Error(what + ": expected a tensor output");
  const Tensor& tensor = value.toTensor();
  Owned out;
  for (auto size : tensor.sizes()) out.sizes.push_back(static_cast<int32_t>(size));
  const size_t count = static_cast<size_t>(tensor.numel());
  if (tensor.scalar_type() == ScalarType::Float) {
    const float* data = tensor.const_data_ptr<float>();
    out.data.assign(data, data + count);
  } else if (tensor.scalar_type() == ScalarType::Bool) {
    const bool* data = tensor.const_data_ptr<bool>();
    out.bytes.resize(count);
    for (size_t i = 0; i < count; ++i) out.bytes[i] = data[i] ? 1 : 0;
  } else {
    throw Error(what + ": unexpected output dtype " + std::to_string(static_cast<int>(tensor.scalar_type())));
  }
  return out;
}


bool file_exists(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return static_cast<bool>(file);
}

class ExecuTorchSegmenter final : public Segmenter {
 public:
  ExecuTorchSegmenter(const std::string& pte_path, const std::string& table_path) : path_(pte_path) {
    std::ifstream probe(pte_path, std::ios::binary);
    if (!probe) throw Error(pte_path + ": no such .pte file (or not readable)");
    module_ = std::make_unique<Module>(pte_path, Module::LoadMode::Mmap);
    const et::Error loaded = module_->load();
    if (loaded != et::Error::Ok)
      throw Error(pte_path + ": not an ExecuTorch program (load failed: " + et::to_string(loaded) + ")");
    auto names = module_->method_names();
    if (!names.ok()) throw Error(pte_path + ": cannot list methods (" + et::to_string(names.error()) + ")");
    methods_ = std::set<std::string>(names->begin(), names->end());
    if (!methods_.count("metadata_json"))
      throw Error(pte_path + ": not exported by sam3spec (no metadata_json method)");
    for (const char* required : {"encode_image", "decode"})
      if (!methods_.count(required)) throw Error(pte_path + ": has no method '" + required + "'; it has " + method_list());
    auto metadata = module_->execute("metadata_json");
    if (!metadata.ok() || metadata->empty() || !metadata->at(0).isString())
      throw Error(pte_path + ": metadata_json did not return a string");
    meta_ = parse_metadata(std::string(metadata->at(0).toString()), pte_path);
    std::string table = table_path;
    if (table.empty()) {
      std::string stem = pte_path.size() > 4 && pte_path.compare(pte_path.size() - 4, 4, ".pte") == 0
                             ? pte_path.substr(0, pte_path.size() - 4)
                             : pte_path;
      table = stem + ".text_table.safetensors";
      if (!file_exists(table)) table = "-";
    }
    if (table != "-") {
      try {
        table_ = std::make_unique<TextTable>(TextTable::load(table));
      } catch (const std::runtime_error& error) {
        throw Error(error.what());
      }
      if (table_->preset() != meta_.preset)
        throw Error(table + ": text table of preset '" + table_->preset() + "', but " + pte_path + " is '" +
                    meta_.preset + "'");
      if (table_->hidden() != meta_.hidden || table_->context_length() != meta_.context_length)
        throw Error(table + ": text table shapes (L=" + std::to_string(table_->context_length()) + ", C=" +
                    std::to_string(table_->hidden()) + ") do not match " + pte_path);
    }
  }

  const Metadata& metadata() const override { return meta_; }
  bool has_method(const std::string& name) const override { return methods_.count(name) > 0; }
  bool has_text_table() const override { return table_ != nullptr; }
  const std::vector<float>& pixel_values() const override { return pixels_; }
  const StageTimes& last_times() const override { return times_; }

  void set_image(const uint8_t* rgb, int width, int height) override {
    has_image_ = false;  // stays false if this image fails: segment() must not use stale features
    times_ = StageTimes{};
    auto start = Clock::now();
    frame_ = preprocess(rgb, width, height);
    times_.pre_ms = ms_since(start);
    start = Clock::now();
    auto input = from_blob(pixels_.data(), {1, 3, meta_.image_size, meta_.image_size});
    auto outputs = run("encode_image", {*input});
    levels_.clear();
    for (size_t i = 0; i < outputs.size(); ++i) levels_.push_back(copy_tensor(outputs[i], "encode_image"));
    times_.encode_image_ms = ms_since(start);
    has_image_ = true;
  }

  Prompt text_prompt(const std::string& phrase) override {
    if (phrase.find_first_not_of(" \t\n") == std::string::npos)
      throw Error("empty prompt: the text is empty; give a noun phrase, boxes or points");
    if (!table_) throw Error(path_ + ": no text table beside the program; pass token ids (encode_text) instead");
    if (!table_->contains(phrase))
      throw Error("prompt '" + phrase + "' is not in the text table (" + std::to_string(table_->phrases().size()) +
                  " phrases); pass its token ids to run encode_text");
    TextEmbedding embedding = table_->get(phrase);
    Prompt prompt;
    prompt.text_tokens = std::move(embedding.tokens);
    prompt.text_mask = std::move(embedding.mask);
    return prompt;
  }

  Prompt text_prompt(const std::vector<int64_t>& token_ids) override {
    if (!has_method("encode_text")) throw Error(path_ + ": has no method 'encode_text'; it has " + method_list());
    const int length = meta_.context_length;
    if (token_ids.empty() || static_cast<int>(token_ids.size()) > length)
      throw Error("token ids: expected 1.." + std::to_string(length) + " ids, got " + std::to_string(token_ids.size()));
    std::vector<int64_t> ids(length, meta_.pad_token_id);
    std::copy(token_ids.begin(), token_ids.end(), ids.begin());
    auto start = Clock::now();
    auto input = from_blob(ids.data(), {1, length}, ScalarType::Long);
    auto outputs = run("encode_text", {*input});
    Owned tokens = copy_tensor(outputs.at(0), "encode_text"), mask = copy_tensor(outputs.at(1), "encode_text");
    times_.encode_text_ms = ms_since(start);
    Prompt prompt;
    prompt.text_tokens = std::move(tokens.data);
    prompt.text_mask = std::move(mask.bytes);
    return prompt;
  }

  Segmentation segment(const Prompt& prompt, float threshold) override {
    if (!has_image_) throw Error("call set_image(rgb, width, height) before segment(...)");
    auto start = Clock::now();
    PaddedPrompt padded = pad_prompt(prompt, frame_, meta_);
    std::vector<et::EValue> inputs;
    std::vector<TensorPtr> keep;
    for (Owned& level : levels_) {
      keep.push_back(from_blob(level.data.data(), level.sizes));
      inputs.emplace_back(*keep.back());
    }
    add_prompt_inputs(padded, inputs, keep);
    auto outputs = run("decode", inputs);
    times_.decode_ms = ms_since(start);
    start = Clock::now();
    Segmentation result = postprocess(outputs, frame_, threshold);
    times_.post_ms = ms_since(start);
    return result;
  }

  void start_track(TrackState& state) const override {
    if (!has_image_) throw Error("start_track: call set_image on the first frame first");
    if (!has_method("track")) throw Error(path_ + ": has no method 'track'; it has " + method_list());
    const Owned& level = levels_.at(static_cast<size_t>(meta_.memory_level));
    const size_t slot = level.data.size();
    const size_t frames = static_cast<size_t>(meta_.memory_frames);
    state.context.assign(frames * slot, 0.0f);
    std::copy(level.data.begin(), level.data.end(), state.context.begin() + static_cast<long>((frames - 1) * slot));
    state.valid.assign(frames, 0);
    state.valid.back() = 1;
  }

  Segmentation track(const uint8_t* rgb, int width, int height, const Prompt& prompt, TrackState& state,
                     float threshold) override {
    if (!has_method("track")) throw Error(path_ + ": has no method 'track'; it has " + method_list());
    auto context_meta = module_->method_meta("track");
    if (!context_meta.ok()) throw Error(path_ + ": cannot read track's signature");
    auto info = context_meta->input_tensor_meta(7);
    if (!info.ok()) throw Error(path_ + ": track has no context input");
    std::vector<int32_t> context_sizes(info->sizes().begin(), info->sizes().end());
    size_t context_numel = 1;
    for (int32_t s : context_sizes) context_numel *= static_cast<size_t>(s);
    if (state.context.size() != context_numel || state.valid.size() != static_cast<size_t>(meta_.memory_frames))
      throw Error("track: the state is not started or does not match this program (call start_track)");
    times_ = StageTimes{};
    auto start = Clock::now();
    Frame frame = preprocess(rgb, width, height);
    times_.pre_ms = ms_since(start);
    start = Clock::now();
    PaddedPrompt padded = pad_prompt(prompt, frame, meta_);
    std::vector<et::EValue> inputs;
    std::vector<TensorPtr> keep;
    keep.push_back(from_blob(pixels_.data(), {1, 3, meta_.image_size, meta_.image_size}));
    inputs.emplace_back(*keep.back());
    add_prompt_inputs(padded, inputs, keep);
    keep.push_back(from_blob(state.context.data(), context_sizes));
    inputs.emplace_back(*keep.back());
    keep.push_back(from_blob(state.valid.data(), {1, meta_.memory_frames}, ScalarType::Bool));
    inputs.emplace_back(*keep.back());
    auto outputs = run("track", inputs);
    Owned context = copy_tensor(outputs.at(6), "track"), valid = copy_tensor(outputs.at(7), "track");
    times_.track_ms = ms_since(start);
    start = Clock::now();
    Segmentation result = postprocess(outputs, frame, threshold);
    state.context = std::move(context.data);
    state.valid = std::move(valid.bytes);
    times_.post_ms = ms_since(start);
    return result;
  }

 private:
  std::string path_;
  std::unique_ptr<Module> module_;
  std::set<std::string> methods_;
  Metadata meta_;
  std::unique_ptr<TextTable> table_;
  std::vector<float> pixels_;
  std::vector<Owned> levels_;
  Frame frame_;
  bool has_image_ = false;
  StageTimes times_;

  std::string method_list() const {
    std::string out = "[";
    for (const auto& name : methods_) out += (out.size() > 1 ? ", " : "") + name;
    return out + "]";
  }

  std::vector<et::EValue> run(const std::string& method, const std::vector<et::EValue>& inputs) {
    auto result = module_->execute(method, inputs);
    if (!result.ok()) throw Error(path_ + ": method '" + method + "' failed (" + et::to_string(result.error()) + ")");
    return *result;
  }

  Frame preprocess(const uint8_t* rgb, int width, int height) {
    if (rgb == nullptr || width <= 0 || height <= 0)
      throw Error("image: expected a non-empty RGB buffer, got " + std::to_string(width) + "x" + std::to_string(height));
    Frame frame;
    frame.width = width;
    frame.height = height;
    frame.box = letterbox_normalize(rgb, width, height, meta_.image_size, meta_.mean, meta_.std, pixels_);
    return frame;
  }

  void add_prompt_inputs(PaddedPrompt& padded, std::vector<et::EValue>& inputs, std::vector<TensorPtr>& keep) const {
    const int length = meta_.context_length;
    keep.push_back(from_blob(padded.text_tokens.data(), {1, length, meta_.hidden}));
    keep.push_back(from_blob(padded.text_mask.data(), {1, length}, ScalarType::Bool));
    keep.push_back(from_blob(padded.points.data(), {1, meta_.max_points, 2}));
    keep.push_back(from_blob(padded.point_labels.data(), {1, meta_.max_points}, ScalarType::Long));
    keep.push_back(from_blob(padded.boxes.data(), {1, meta_.max_boxes, 4}));
    keep.push_back(from_blob(padded.box_labels.data(), {1, meta_.max_boxes}, ScalarType::Long));
    for (size_t i = keep.size() - 6; i < keep.size(); ++i) inputs.emplace_back(*keep[i]);
  }

  Segmentation postprocess(const std::vector<et::EValue>& outputs, const Frame& frame, float threshold) const {
    if (outputs.size() < 6) throw Error(path_ + ": decode returned " + std::to_string(outputs.size()) + " outputs, expected 6");
    Owned logits = copy_tensor(outputs[0], "pred_logits"), boxes = copy_tensor(outputs[1], "pred_boxes");
    Owned presence = copy_tensor(outputs[3], "presence_logits");
    const Tensor& masks = outputs[2].toTensor();
    return sam3spec::postprocess(logits.data.data(), boxes.data.data(), masks.const_data_ptr<float>(),
                                 static_cast<int>(logits.data.size()), static_cast<int>(masks.size(2)),
                                 static_cast<int>(masks.size(3)), presence.data.at(0), frame, meta_.image_size,
                                 threshold);
  }
};

}  // namespace

std::unique_ptr<Segmenter> Segmenter::open(const std::string& pte_path, const std::string& text_table_path) {
  return std::make_unique<ExecuTorchSegmenter>(pte_path, text_table_path);
}

}  // namespace sam3spec
