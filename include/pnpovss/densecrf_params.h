// The parameters of the Dense CRF that ends the method (docs/method.md §6): iterations and the
// two Potts kernels. Part of MethodSettings (pnpovss/settings.h).
#pragma once

#include <string>

namespace pnpovss {

// Defaults are CutLER's constants, which PnP-OVSS uses unchanged.
struct DenseCrfParams {
  int iterations = 10;
  float gaussian_sxy = 3.0f;      // positional kernel std, pixels
  float gaussian_weight = 7.0f;   // its Potts weight (0 leaves the kernel out)
  float bilateral_sxy = 50.0f;    // appearance kernel position std, pixels
  float bilateral_srgb = 5.0f;    // appearance kernel colour std, raw 0..255 units
  float bilateral_weight = 10.0f; // its Potts weight (0 leaves the kernel out)
  int threads = 0;                // 0: all hardware threads; results do not depend on it
  int vector_width = 0;           // 0: dense_crf_vector_width(labels); 4 (SSE2) or 8 (AVX2)
                                  // forces one. Results do not depend on it either (tests
                                  // compare both).
  // Where the pipeline runs the CRF and the Gaussian blur before it: "cpu", the exact CRF
  // (crf/densecrf.h) and scipy's blur, or "cuda" / "cuda:N", the same operations as tensors on
  // that GPU (crf/tensor_crf.h, segment::gaussian_filter_tensor), where labels may differ at
  // near-ties (docs/performance.md). dense_crf itself always runs on the CPU.
  std::string device = "cpu";
};

}  // namespace pnpovss
