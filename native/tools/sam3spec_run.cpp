// sam3spec-run: segment an image (or a folder of video frames) with a sam3spec .pte.
//
//   sam3spec-run model.pte image.png --prompt "red circle" --out masks.png
//   sam3spec-run model.pte --video frames/ --prompt "red circle" --out-dir out/
//
// Prints per-stage latency (pre, encode_image, decode / track, post) and peak RSS; `--json`
// writes the harness's results file (harness/results.py) so a run elsewhere (a phone, another
// machine) can be merged into the report with `pytest --ingest` / `sam3spec report`.
#include <sys/resource.h>
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "json.h"
#include "sam3spec/segmenter.h"
#include "stb_image.h"
#include "stb_image_write.h"

namespace fs = std::filesystem;
using sam3spec::Error;

namespace {

const char* kUsage =
    "usage: sam3spec-run MODEL.pte (IMAGE | --video DIR) [prompt] [options]\n"
    "prompt (at least one):\n"
    "  --prompt TEXT          noun phrase from the program's text table\n"
    "  --token-ids 1,2,3      CLIP token ids (runs encode_text)\n"
    "  --box x0,y0,x1,y1[,l]  exemplar box in pixels, label 1/0 (repeatable)\n"
    "  --point x,y[,l]        point in pixels, label 1/0 (repeatable)\n"
    "options:\n"
    "  --video DIR            frames (png/jpg/bmp/ppm, sorted by name): frame 0 via encode_image +\n"
    "                         decode, then track with the memory buffer\n"
    "  --text-table PATH      text table (default: <model>.text_table.safetensors); '-' for none\n"
    "  --threshold F          keep instances with score >= F (default 0.5)\n"
    "  --out masks.png        union of the masks, 0/255 (video: last frame)\n"
    "  --out-dir DIR          mask_<i>.png per instance (video: frame_<n>.png) + detections.json\n"
    "  --repeat N             timed repetitions of set_image + segment after one warm-up (median)\n"
    "  --json FILE            write harness results (median encode_image + decode, peak RSS)\n"
    "  --device cpu|phone     spec ids for --json: native.cpu_* (default) or runtime.*_phone\n"
    "  --save-pixels FILE     raw float32 [3,S,S] model input of the (last) image\n"
    "  --threads N            ExecuTorch thread-pool size (default: the runtime's choice)\n";

struct Args {
  std::string model, image, video, prompt, token_ids, text_table, out, out_dir, json, save_pixels;
  std::string device = "cpu";
  std::vector<std::string> boxes, points;
  float threshold = 0.5f;
  int repeat = 1;
  int threads = 0;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "error: " << message << "\n" << kUsage;
  std::exit(2);
}

std::vector<double> parse_numbers(const std::string& text, const std::string& what) {
  std::vector<double> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    char* end = nullptr;
    double value = std::strtod(item.c_str(), &end);
    if (item.empty() || end == item.c_str() || *end != '\0') usage_error(what + ": not a number list: '" + text + "'");
    values.push_back(value);
  }
  return values;
}

Args parse(int argc, char** argv) {
  Args args;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--prompt") args.prompt = value();
    else if (arg == "--token-ids") args.token_ids = value();
    else if (arg == "--box") args.boxes.push_back(value());
    else if (arg == "--point") args.points.push_back(value());
    else if (arg == "--video") args.video = value();
    else if (arg == "--text-table") args.text_table = value();
    else if (arg == "--threshold") args.threshold = static_cast<float>(parse_numbers(value(), "--threshold").at(0));
    else if (arg == "--out") args.out = value();
    else if (arg == "--out-dir") args.out_dir = value();
    else if (arg == "--repeat") args.repeat = static_cast<int>(parse_numbers(value(), "--repeat").at(0));
    else if (arg == "--json") args.json = value();
    else if (arg == "--threads") args.threads = static_cast<int>(parse_numbers(value(), "--threads").at(0));
    else if (arg == "--device") args.device = value();
    else if (arg == "--save-pixels") args.save_pixels = value();
    else if (arg.rfind("--", 0) == 0) usage_error("unknown option " + arg);
    else positional.push_back(arg);
  }
  if (positional.empty()) usage_error("missing MODEL.pte");
  args.model = positional[0];
  if (positional.size() > 2) usage_error("too many positional arguments");
  if (positional.size() == 2) args.image = positional[1];
  if (args.image.empty() == args.video.empty()) usage_error("give exactly one of IMAGE or --video DIR");
  if (args.prompt.empty() && args.token_ids.empty() && args.boxes.empty() && args.points.empty())
    usage_error("empty prompt: give --prompt, --token-ids, --box or --point");
  if (!args.prompt.empty() && !args.token_ids.empty()) usage_error("give --prompt or --token-ids, not both");
  // Prompt arguments are checked here, before any file is opened.
  for (const auto& text : args.boxes) {
    const size_t n = parse_numbers(text, "--box").size();
    if (n != 4 && n != 5) usage_error("--box expects x0,y0,x1,y1[,label], got '" + text + "'");
  }
  for (const auto& text : args.points) {
    const size_t n = parse_numbers(text, "--point").size();
    if (n != 2 && n != 3) usage_error("--point expects x,y[,label], got '" + text + "'");
  }
  if (!args.token_ids.empty()) parse_numbers(args.token_ids, "--token-ids");
  if (args.repeat < 1) usage_error("--repeat must be >= 1");
  if (args.device != "cpu" && args.device != "phone") usage_error("--device must be cpu or phone");
  return args;
}

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

Image load_image(const std::string& path) {
  if (!fs::is_regular_file(path)) throw Error(path + ": no such image file");
  int width = 0, height = 0, channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &width, &height, &channels, 3);
  if (data == nullptr) throw Error(path + ": not a readable image (" + stbi_failure_reason() + ")");
  Image image{width, height, std::vector<uint8_t>(data, data + static_cast<size_t>(width) * height * 3)};
  stbi_image_free(data);
  return image;
}

// Peak RSS of this program. Linux / Android: VmHWM of /proc/self/status, the high-water mark of
// this process image. Not getrusage's ru_maxrss there: Linux carries it across execve, so a runner
// started by a large parent (pytest, a Python harness) would report the parent's peak.
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // kB
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
#ifdef __APPLE__
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // bytes on Darwin
#else
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // kilobytes elsewhere
#endif
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

void write_file_atomic(const std::string& path, const std::string& text) {
  fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary);
    if (!file) throw Error(path + ": cannot write");
    file << text;
    if (!file) throw Error(path + ": write failed");
  }
  fs::rename(tmp, path);
}

void write_png(const std::string& path, const uint8_t* mask, int width, int height) {
  std::vector<uint8_t> gray(static_cast<size_t>(width) * height);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = mask[i] ? 255 : 0;
  fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string tmp = path + ".tmp.png";
  if (!stbi_write_png(tmp.c_str(), width, height, 1, gray.data(), width)) throw Error(path + ": cannot write PNG");
  fs::rename(tmp, path);
}

std::vector<uint8_t> union_mask(const sam3spec::Segmentation& result) {
  const size_t pixels = static_cast<size_t>(result.width) * result.height;
  std::vector<uint8_t> out(pixels, 0);
  for (size_t n = 0; n < result.count(); ++n)
    for (size_t i = 0; i < pixels; ++i) out[i] |= result.masks[n * pixels + i];
  return out;
}

std::string detections_json(const sam3spec::Segmentation& result) {
  std::ostringstream out;
  out.precision(9);
  out << "{\"width\": " << result.width << ", \"height\": " << result.height << ", \"presence\": " << result.presence
      << ", \"scores\": [";
  for (size_t i = 0; i < result.count(); ++i) out << (i ? ", " : "") << result.scores[i];
  out << "], \"boxes_xyxy\": [";
  for (size_t i = 0; i < result.count(); ++i) {
    const auto& b = result.boxes[i];
    out << (i ? ", " : "") << "[" << b[0] << ", " << b[1] << ", " << b[2] << ", " << b[3] << "]";
  }
  out << "]}";
  return out.str();
}

sam3spec::Prompt make_prompt(sam3spec::Segmenter& segmenter, const Args& args) {
  sam3spec::Prompt prompt;
  if (!args.prompt.empty()) prompt = segmenter.text_prompt(args.prompt);
  if (!args.token_ids.empty()) {
    std::vector<int64_t> ids;
    for (double id : parse_numbers(args.token_ids, "--token-ids")) ids.push_back(static_cast<int64_t>(id));
    prompt = segmenter.text_prompt(ids);
  }
  for (const auto& text : args.boxes) {
    auto v = parse_numbers(text, "--box");
    if (v.size() != 4 && v.size() != 5) usage_error("--box expects x0,y0,x1,y1[,label], got '" + text + "'");
    prompt.boxes.push_back({static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2]),
                            static_cast<float>(v[3])});
    prompt.box_labels.push_back(v.size() == 5 ? static_cast<int64_t>(v[4]) : 1);
  }
  for (const auto& text : args.points) {
    auto v = parse_numbers(text, "--point");
    if (v.size() != 2 && v.size() != 3) usage_error("--point expects x,y[,label], got '" + text + "'");
    prompt.points.push_back({static_cast<float>(v[0]), static_cast<float>(v[1])});
    prompt.point_labels.push_back(v.size() == 3 ? static_cast<int64_t>(v[2]) : 1);
  }
  return prompt;
}

// The targets --json reports against, mirrored from specs/native.yaml and specs/runtime.yaml
// (suites/gates/test_native.py fails when they drift apart).
struct Target {
  const char* id;
  const char* op;
  double value;
};
const Target kCpuLatency{"native.cpu_image_latency_ms", "<", 1000.0};
const Target kCpuRss{"native.cpu_peak_rss_mb", "<", 500.0};
const Target kPhoneLatency{"runtime.image_latency_phone", "<", 100.0};
const Target kPhoneRss{"runtime.peak_memory_phone", "<", 500.0};

std::string result_json(const Target& target, double measured, const std::string& context) {
  const bool pass = std::string(target.op) == "<" ? measured < target.value : measured <= target.value;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::ostringstream out;
  out.precision(12);
  out << "{\"id\": \"" << target.id << "\", \"status\": \"" << (pass ? "pass" : "fail") << "\", \"measured\": "
      << measured << ", \"reason\": null, \"context\": " << context << ", \"recorded_at\": " << now << "}";
  return out.str();
}

std::string machine() {
  struct utsname name {};
  uname(&name);
  return std::string(name.sysname) + " " + name.machine + " (" + name.nodename + ")";
}

void print_times(const char* label, const std::vector<double>& pre, const std::vector<double>& encode,
                 const std::vector<double>& decode, const std::vector<double>& post) {
  std::printf("%s: pre %.2f ms, encode_image %.2f ms, %s %.2f ms, post %.2f ms (median of %zu)\n", label, median(pre),
              median(encode), label[0] == 't' ? "track" : "decode", median(decode), median(post), pre.size());
}

int run(const Args& args) {
  if (!fs::is_regular_file(args.model)) throw Error(args.model + ": no such .pte file");
  std::vector<std::string> frames;
  if (!args.video.empty()) {
    if (!fs::is_directory(args.video)) throw Error(args.video + ": no such frame folder");
    for (const auto& entry : fs::directory_iterator(args.video)) {
      std::string ext = entry.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (entry.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".ppm"))
        frames.push_back(entry.path().string());
    }
    std::sort(frames.begin(), frames.end());
    if (frames.empty()) throw Error(args.video + ": no png/jpg/bmp/ppm frames");
  } else {
    frames.push_back(args.image);
  }

  Image first = load_image(frames[0]);
  // The inputs are checked before the (slower) program load, so a bad path fails fast.
  if (args.threads > 0 && !sam3spec::set_num_threads(static_cast<unsigned>(args.threads)))
    throw Error("--threads: this runtime has no thread pool to resize");
  auto segmenter = sam3spec::Segmenter::open(args.model, args.text_table);
  const sam3spec::Metadata& meta = segmenter->metadata();
  std::printf("%s: %s, %s/%s, %d px, %u thread(s)\n", args.model.c_str(), meta.preset.c_str(),
              meta.backend.c_str(), meta.recipe.c_str(), meta.image_size, sam3spec::num_threads());
  std::vector<double> pre, encode, decode, post, image_path;
  sam3spec::Prompt prompt;
  sam3spec::Segmentation result;
  const int runs = args.video.empty() ? args.repeat + (args.repeat > 1 ? 1 : 0) : 1;
  for (int r = 0; r < runs; ++r) {  // with --repeat N > 1 the first run is a warm-up
    segmenter->set_image(first.rgb.data(), first.width, first.height);
    if (r == 0) prompt = make_prompt(*segmenter, args);
    result = segmenter->segment(prompt, args.threshold);
    if (runs > 1 && r == 0) continue;
    const auto& t = segmenter->last_times();
    pre.push_back(t.pre_ms);
    encode.push_back(t.encode_image_ms);
    decode.push_back(t.decode_ms);
    post.push_back(t.post_ms);
    image_path.push_back(t.encode_image_ms + t.decode_ms);
  }
  std::string detections = "[" + detections_json(result);
  std::printf("%s: %zu instance(s), presence %.4f\n", frames[0].c_str(), result.count(), result.presence);
  if (!args.save_pixels.empty()) {
    const auto& pixels = segmenter->pixel_values();
    write_file_atomic(args.save_pixels, std::string(reinterpret_cast<const char*>(pixels.data()), pixels.size() * 4));
  }
  if (!args.out_dir.empty() && args.video.empty()) {
    const size_t pixels = static_cast<size_t>(result.width) * result.height;
    for (size_t i = 0; i < result.count(); ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "mask_%03zu.png", i);
      write_png((fs::path(args.out_dir) / name).string(), &result.masks[i * pixels], result.width, result.height);
    }
  }
  print_times("image", pre, encode, decode, post);

  if (!args.video.empty()) {
    sam3spec::TrackState state;
    segmenter->start_track(state);
    std::vector<double> tpre, ttrack, tpost, none;
    auto save_frame = [&](size_t index, const sam3spec::Segmentation& seg) {
      if (args.out_dir.empty()) return;
      char name[32];
      std::snprintf(name, sizeof name, "frame_%04zu.png", index);
      auto mask = union_mask(seg);
      write_png((fs::path(args.out_dir) / name).string(), mask.data(), seg.width, seg.height);
    };
    save_frame(0, result);
    for (size_t f = 1; f < frames.size(); ++f) {
      Image frame = load_image(frames[f]);
      result = segmenter->track(frame.rgb.data(), frame.width, frame.height, prompt, state, args.threshold);
      const auto& t = segmenter->last_times();
      tpre.push_back(t.pre_ms);
      ttrack.push_back(t.track_ms);
      tpost.push_back(t.post_ms);
      detections += ", " + detections_json(result);
      std::printf("%s: %zu instance(s), presence %.4f\n", frames[f].c_str(), result.count(), result.presence);
      save_frame(f, result);
    }
    if (!ttrack.empty()) print_times("track", tpre, none, ttrack, tpost);
  }
  detections += "]";
  if (!args.out_dir.empty()) write_file_atomic((fs::path(args.out_dir) / "detections.json").string(), detections + "\n");
  if (!args.out.empty()) {
    auto mask = union_mask(result);
    write_png(args.out, mask.data(), result.width, result.height);
  }
  const double rss = peak_rss_mb();
  std::printf("image path (encode_image + decode): %.2f ms median; peak RSS %.1f MB\n", median(image_path), rss);

  if (!args.json.empty()) {
    std::ostringstream context;
    context << "{\"machine\": " << sam3spec::json_escape(machine()) << ", \"runner\": \"sam3spec-run (C++)\""
            << ", \"preset\": " << sam3spec::json_escape(meta.preset) << ", \"recipe\": "
            << sam3spec::json_escape(meta.backend + "/" + meta.recipe) << ", \"image_size\": " << meta.image_size
            << ", \"repeats\": " << image_path.size() << ", \"threads\": " << sam3spec::num_threads() << ", \"model\": " << sam3spec::json_escape(args.model) << "}";
    const bool phone = args.device == "phone";
    std::string text = "{\"results\": [" + result_json(phone ? kPhoneLatency : kCpuLatency, median(image_path), context.str()) +
                       ", " + result_json(phone ? kPhoneRss : kCpuRss, rss, context.str()) + "]}\n";
    write_file_atomic(args.json, text);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  try {
    return run(args);
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
}
