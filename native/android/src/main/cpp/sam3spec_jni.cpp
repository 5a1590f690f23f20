// JNI over sam3spec::Segmenter for org.sam3spec.Sam3Segmenter (Kotlin). A native handle (jlong) owns
// the Segmenter; another owns a TrackState (the caller-owned video memory). C++ exceptions become
// java.lang.IllegalArgumentException / IllegalStateException with the C++ message.
#include <jni.h>

#include <memory>
#include <string>
#include <vector>

#include "sam3spec/segmenter.h"

namespace {

void throw_java(JNIEnv* env, const char* type, const std::string& message) {
  jclass cls = env->FindClass(type);
  if (cls != nullptr) env->ThrowNew(cls, message.c_str());
}

sam3spec::Segmenter* segmenter(jlong handle) { return reinterpret_cast<sam3spec::Segmenter*>(handle); }

std::string utf8(JNIEnv* env, jstring text) {
  if (text == nullptr) return {};
  const char* chars = env->GetStringUTFChars(text, nullptr);
  std::string out(chars);
  env->ReleaseStringUTFChars(text, chars);
  return out;
}

/// ARGB_8888 pixels (Bitmap.getPixels) -> RGB bytes.
std::vector<uint8_t> rgb_from_argb(JNIEnv* env, jintArray argb, int width, int height) {
  const jsize count = env->GetArrayLength(argb);
  if (width <= 0 || height <= 0 || count != width * height)
    throw sam3spec::Error("image: " + std::to_string(count) + " pixels for " + std::to_string(width) + "x" +
                          std::to_string(height));
  std::vector<uint8_t> rgb(static_cast<size_t>(count) * 3);
  jint* pixels = env->GetIntArrayElements(argb, nullptr);
  for (jsize i = 0; i < count; ++i) {
    const uint32_t p = static_cast<uint32_t>(pixels[i]);
    rgb[i * 3] = (p >> 16) & 0xFF;
    rgb[i * 3 + 1] = (p >> 8) & 0xFF;
    rgb[i * 3 + 2] = p & 0xFF;
  }
  env->ReleaseIntArrayElements(argb, pixels, JNI_ABORT);
  return rgb;
}

/// Prompt from a phrase (may be null), boxes [x0,y0,x1,y1,...] and points [x,y,...] (may be null).
sam3spec::Prompt prompt(JNIEnv* env, sam3spec::Segmenter* seg, jstring text, jfloatArray boxes, jfloatArray points) {
  sam3spec::Prompt out;
  const std::string phrase = utf8(env, text);
  if (!phrase.empty()) out = seg->text_prompt(phrase);
  auto floats = [&](jfloatArray array) {
    std::vector<float> values;
    if (array == nullptr) return values;
    values.resize(static_cast<size_t>(env->GetArrayLength(array)));
    env->GetFloatArrayRegion(array, 0, static_cast<jsize>(values.size()), values.data());
    return values;
  };
  const auto box_values = floats(boxes), point_values = floats(points);
  if (box_values.size() % 4 || point_values.size() % 2) throw sam3spec::Error("boxes need 4 values, points 2");
  for (size_t i = 0; i < box_values.size(); i += 4)
    out.boxes.push_back({box_values[i], box_values[i + 1], box_values[i + 2], box_values[i + 3]});
  for (size_t i = 0; i < point_values.size(); i += 2) out.points.push_back({point_values[i], point_values[i + 1]});
  return out;
}

/// org.sam3spec.Segmentation(width, height, presence, scores, boxes, masks)
jobject to_java(JNIEnv* env, const sam3spec::Segmentation& result) {
  jclass cls = env->FindClass("org/sam3spec/Segmentation");
  jmethodID init = env->GetMethodID(cls, "<init>", "(IIF[F[F[B)V");
  const jsize n = static_cast<jsize>(result.count());
  jfloatArray scores = env->NewFloatArray(n);
  env->SetFloatArrayRegion(scores, 0, n, result.scores.data());
  jfloatArray boxes = env->NewFloatArray(n * 4);
  for (jsize i = 0; i < n; ++i) env->SetFloatArrayRegion(boxes, i * 4, 4, result.boxes[i].data());
  jbyteArray masks = env->NewByteArray(static_cast<jsize>(result.masks.size()));
  env->SetByteArrayRegion(masks, 0, static_cast<jsize>(result.masks.size()),
                          reinterpret_cast<const jbyte*>(result.masks.data()));
  return env->NewObject(cls, init, result.width, result.height, result.presence, scores, boxes, masks);
}

template <typename F>
auto guarded(JNIEnv* env, F&& body, decltype(body()) fallback) -> decltype(body()) {
  try {
    return body();
  } catch (const sam3spec::Error& error) {
    throw_java(env, "java/lang/IllegalArgumentException", error.what());
  } catch (const std::exception& error) {
    throw_java(env, "java/lang/IllegalStateException", error.what());
  }
  return fallback;
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_org_sam3spec_Sam3Segmenter_nativeOpen(JNIEnv* env, jclass, jstring path, jint threads) {
  return guarded(env, [&]() -> jlong {
    if (threads > 0) sam3spec::set_num_threads(static_cast<unsigned>(threads));
    return reinterpret_cast<jlong>(sam3spec::Segmenter::open(utf8(env, path)).release());
  }, jlong{0});
}

JNIEXPORT void JNICALL Java_org_sam3spec_Sam3Segmenter_nativeClose(JNIEnv*, jclass, jlong handle) {
  delete segmenter(handle);
}

JNIEXPORT void JNICALL Java_org_sam3spec_Sam3Segmenter_nativeSetImage(JNIEnv* env, jclass, jlong handle,
                                                                       jintArray argb, jint width, jint height) {
  guarded(env, [&]() -> int {
    auto rgb = rgb_from_argb(env, argb, width, height);
    segmenter(handle)->set_image(rgb.data(), width, height);
    return 0;
  }, 0);
}

JNIEXPORT jobject JNICALL Java_org_sam3spec_Sam3Segmenter_nativeSegment(JNIEnv* env, jclass, jlong handle,
                                                                         jstring text, jfloatArray boxes,
                                                                         jfloatArray points, jfloat threshold) {
  return guarded(env, [&]() -> jobject {
    auto* seg = segmenter(handle);
    return to_java(env, seg->segment(prompt(env, seg, text, boxes, points), threshold));
  }, static_cast<jobject>(nullptr));
}

JNIEXPORT jlong JNICALL Java_org_sam3spec_Sam3Segmenter_nativeStartTrack(JNIEnv* env, jclass, jlong handle) {
  return guarded(env, [&]() -> jlong {
    auto state = std::make_unique<sam3spec::TrackState>();
    segmenter(handle)->start_track(*state);
    return reinterpret_cast<jlong>(state.release());
  }, jlong{0});
}

JNIEXPORT void JNICALL Java_org_sam3spec_Sam3Segmenter_nativeFreeTrack(JNIEnv*, jclass, jlong state) {
  delete reinterpret_cast<sam3spec::TrackState*>(state);
}

JNIEXPORT jobject JNICALL Java_org_sam3spec_Sam3Segmenter_nativeTrack(JNIEnv* env, jclass, jlong handle, jlong state,
                                                                       jintArray argb, jint width, jint height,
                                                                       jstring text, jfloatArray boxes,
                                                                       jfloatArray points, jfloat threshold) {
  return guarded(env, [&]() -> jobject {
    auto* seg = segmenter(handle);
    auto rgb = rgb_from_argb(env, argb, width, height);
    auto* memory = reinterpret_cast<sam3spec::TrackState*>(state);
    return to_java(env, seg->track(rgb.data(), width, height, prompt(env, seg, text, boxes, points), *memory,
                                   threshold));
  }, static_cast<jobject>(nullptr));
}

}  // extern "C"
