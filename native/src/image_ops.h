// Pre- and post-processing that reproduces the Python predictor (sam3spec/predictor.py and
// sam3spec/data/transforms.py ResizeNormalize) number for number, so masks match the Python runtime:
//
//  * letterbox: scale the longer side to S (new side = round-half-even(side * S / max(H, W))),
//    antialiased bilinear resize as torch.nn.functional.interpolate(antialias=True) computes it on
//    the CPU (separable triangle filter widened by the down-scale factor, width pass first),
//    normalise, pad bottom/right with 0 (= the mean colour after normalising);
//  * masks: bilinear (align_corners=False) from S/4 to S, crop the unpadded region, bilinear to the
//    original image size, logit > 0.
#pragma once

#include <cstdint>
#include <vector>

namespace sam3spec {

/// Unpadded content size inside the S x S letterbox.
struct Letterbox {
  int valid_h = 0, valid_w = 0;
  double scale = 1.0;  ///< S / max(H, W)
};

Letterbox letterbox_geometry(int height, int width, int side);

/// RGB uint8 [H, W, 3] -> normalised float planes [3, S, S] (written to `out`, resized to 3*S*S).
Letterbox letterbox_normalize(const uint8_t* rgb, int width, int height, int side, const float mean[3],
                              const float std[3], std::vector<float>& out);

/// Antialiased bilinear resize of `channels` planes [C, H, W] -> [C, oh, ow] (torch's CPU kernel).
void resize_antialias(const float* in, int channels, int height, int width, int out_h, int out_w,
                      std::vector<float>& out);

/// Plain bilinear (align_corners=False, no antialias) resize of one plane; `in_stride` is the
/// row stride of `in` (so a crop can be read in place).
void resize_bilinear(const float* in, int height, int width, int in_stride, int out_h, int out_w, float* out);

}  // namespace sam3spec
