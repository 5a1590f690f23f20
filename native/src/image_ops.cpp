#include "image_ops.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sam3spec {

namespace {

// One output position's taps for torch's antialiased bilinear (aten/src/ATen/native/cpu/
// UpSampleKernel.cpp, _compute_weights_aa), computed in float as torch does for float tensors.
struct Taps {
  std::vector<int> start, count;
  std::vector<float> weights;  // [out, max_taps]
  int max_taps = 0;
};

Taps antialias_taps(int in_size, int out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const float support = scale >= 1.0f ? 1.0f * scale : 1.0f;  // interp_size / 2 = 1 for bilinear
  Taps taps;
  taps.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.start.resize(out_size);
  taps.count.resize(out_size);
  taps.weights.assign(static_cast<size_t>(out_size) * taps.max_taps, 0.0f);
  const float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
  for (int i = 0; i < out_size; ++i) {
    const float center = scale * (static_cast<float>(i) + 0.5f);
    const int xmin = std::max(static_cast<int>(center - support + 0.5f), 0);
    const int xsize = std::min(static_cast<int>(center + support + 0.5f), in_size) - xmin;
    float* w = &taps.weights[static_cast<size_t>(i) * taps.max_taps];
    float total = 0.0f;
    for (int j = 0; j < xsize; ++j) {
      float x = std::fabs((static_cast<float>(j + xmin) - center + 0.5f) * invscale);
      w[j] = x < 1.0f ? 1.0f - x : 0.0f;
      total += w[j];
    }
    if (total != 0.0f)
      for (int j = 0; j < xsize; ++j) w[j] /= total;
    taps.start[i] = xmin;
    taps.count[i] = xsize;
  }
  return taps;
}

// torch's area_pixel_compute_source_index + guard_index_and_lambda (align_corners=False).
void linear_index(int in_size, int out_size, int i, int& i0, int& i1, float& l0, float& l1) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  float src = scale * (static_cast<float>(i) + 0.5f) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  i0 = std::min(static_cast<int>(std::floor(src)), in_size - 1);
  l1 = std::min(std::max(src - static_cast<float>(i0), 0.0f), 1.0f);
  l0 = 1.0f - l1;
  i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
}

}  // namespace

Letterbox letterbox_geometry(int height, int width, int side) {
  if (height <= 0 || width <= 0) throw std::invalid_argument("image: empty image");
  Letterbox box;
  box.scale = static_cast<double>(side) / static_cast<double>(std::max(height, width));
  // Python's round() is round-half-to-even, as is nearbyint in the default rounding mode.
  box.valid_h = std::max(1, static_cast<int>(std::nearbyint(height * box.scale)));
  box.valid_w = std::max(1, static_cast<int>(std::nearbyint(width * box.scale)));
  return box;
}

void resize_antialias(const float* in, int channels, int height, int width, int out_h, int out_w,
                      std::vector<float>& out) {
  // Width pass first, then height, each skipped when that side does not change (as torch does).
  std::vector<float> wide;
  const float* source = in;
  if (out_w != width) {
    Taps taps = antialias_taps(width, out_w);
    wide.resize(static_cast<size_t>(channels) * height * out_w);
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < height; ++y) {
        const float* row = in + (static_cast<size_t>(c) * height + y) * width;
        float* dst = &wide[(static_cast<size_t>(c) * height + y) * out_w];
        for (int x = 0; x < out_w; ++x) {
          const float* w = &taps.weights[static_cast<size_t>(x) * taps.max_taps];
          const float* s = row + taps.start[x];
          float t = s[0] * w[0];
          for (int j = 1; j < taps.count[x]; ++j) t += s[j] * w[j];
          dst[x] = t;
        }
      }
    source = wide.data();
  }
  out.resize(static_cast<size_t>(channels) * out_h * out_w);
  if (out_h == height) {
    std::copy(source, source + out.size(), out.begin());
    return;
  }
  Taps taps = antialias_taps(height, out_h);
  for (int c = 0; c < channels; ++c) {
    const float* plane = source + static_cast<size_t>(c) * height * out_w;
    for (int y = 0; y < out_h; ++y) {
      const float* w = &taps.weights[static_cast<size_t>(y) * taps.max_taps];
      float* dst = &out[(static_cast<size_t>(c) * out_h + y) * out_w];
      const float* s0 = plane + static_cast<size_t>(taps.start[y]) * out_w;
      for (int x = 0; x < out_w; ++x) dst[x] = s0[x] * w[0];
      for (int j = 1; j < taps.count[y]; ++j) {
        const float* s = s0 + static_cast<size_t>(j) * out_w;
        for (int x = 0; x < out_w; ++x) dst[x] += s[x] * w[j];
      }
    }
  }
}

Letterbox letterbox_normalize(const uint8_t* rgb, int width, int height, int side, const float mean[3],
                              const float std[3], std::vector<float>& out) {
  if (rgb == nullptr) throw std::invalid_argument("image: null pixel buffer");
  Letterbox box = letterbox_geometry(height, width, side);
  const size_t plane = static_cast<size_t>(height) * width;
  std::vector<float> planar(3 * plane);
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c) planar[c * plane + i] = static_cast<float>(rgb[i * 3 + c]) / 255.0f;
  std::vector<float> resized;
  const float* content = planar.data();
  if (box.valid_h != height || box.valid_w != width) {
    resize_antialias(planar.data(), 3, height, width, box.valid_h, box.valid_w, resized);
    content = resized.data();
  }
  out.assign(static_cast<size_t>(3) * side * side, 0.0f);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < box.valid_h; ++y)
      for (int x = 0; x < box.valid_w; ++x) {
        float v = content[(static_cast<size_t>(c) * box.valid_h + y) * box.valid_w + x];
        v = std::min(std::max(v, 0.0f), 1.0f);
        out[(static_cast<size_t>(c) * side + y) * side + x] = (v - mean[c]) / std[c];
      }
  return box;
}

void resize_bilinear(const float* in, int height, int width, int in_stride, int out_h, int out_w, float* out) {
  std::vector<int> x0(out_w), x1(out_w);
  std::vector<float> lx0(out_w), lx1(out_w);
  for (int x = 0; x < out_w; ++x) linear_index(width, out_w, x, x0[x], x1[x], lx0[x], lx1[x]);
  for (int y = 0; y < out_h; ++y) {
    int y0, y1;
    float ly0, ly1;
    linear_index(height, out_h, y, y0, y1, ly0, ly1);
    const float* r0 = in + static_cast<size_t>(y0) * in_stride;
    const float* r1 = in + static_cast<size_t>(y1) * in_stride;
    float* dst = out + static_cast<size_t>(y) * out_w;
    for (int x = 0; x < out_w; ++x)
      dst[x] = ly0 * (lx0[x] * r0[x0[x]] + lx1[x] * r0[x1[x]]) + ly1 * (lx0[x] * r1[x0[x]] + lx1[x] * r1[x1[x]]);
  }
}

}  // namespace sam3spec
