// Fully connected CRF (Kraehenbuehl & Koltun 2011) with Potts compatibility, mean-field
// inference and the permutohedral lattice, numerically matching the original C++ core used by
// pydensecrf (DenseCRF2D + addPairwiseGaussian + addPairwiseBilateral + inference) as called
// by CutLER and PnP-OVSS: DIAG_KERNEL, NORMALIZE_SYMMETRIC, float32 throughout. Every value
// goes through the reference's float operations in the reference's order (including Eigen's
// vectorised exp and sum in the softmax), so Q equals its output on the fixture bit for bit.
//
// Threads: the lattice build, blur and last pass use all of them; the other passes use two,
// one computing Q and one splatting it, since the splat must keep the pixel order.
#pragma once

#include <cstdint>
#include <vector>

#include "pnpovss/densecrf_params.h"

namespace pnpovss::crf {

// Where the time of one dense_crf call went, in seconds (for benchmarks).
struct DenseCrfTimings {
  double unary = 0;     // the unaries into the passes' pixel-major layout (from scores: the softmax too)
  double lattices = 0;  // building both kernels' lattices and their normalisations
  double passes = 0;    // the mean-field passes over the pixels: slice, softmax, splat
  double blurs = 0;     // the lattice blurs between passes
};

struct DenseCrfResult {
  int num_labels = 0;
  int height = 0;
  int width = 0;
  std::vector<float> q;          // marginals, labels x height x width; each pixel sums to 1
                                 // (empty from dense_crf_labels_from_scores)
  std::vector<int32_t> labels;   // height x width, argmax of q (ties: lowest label)
  DenseCrfTimings timings;
};

// Runs `params.iterations` mean-field updates.
//   rgb:   height x width x 3 bytes (HWC, row-major), the raw image colours
//   unary: labels x height x width energies (-log p), e.g. from unary_from_probabilities
// Throws pnpovss::Error on empty or inconsistent input, non-finite unaries or bad parameters.
// The vector width (4 or 8 floats) the CRF uses for `labels` when DenseCrfParams leaves it to
// the machine: 8 when the CPU has AVX2, unless 8-float rows would be more than 10% longer
// than 4-float rows (12, 20 or 28 labels).
int dense_crf_vector_width(int labels);

DenseCrfResult dense_crf(const uint8_t* rgb, int height, int width, const float* unary, int labels,
                         const DenseCrfParams& params = {});
// Same, checking the buffer sizes as well.
DenseCrfResult dense_crf(const std::vector<uint8_t>& rgb, int height, int width, const std::vector<float>& unary,
                         int labels, const DenseCrfParams& params = {});

// The method's call: the CRF on the unary that unary_from_probabilities(scores) gives (the same
// values, computed pixel tile by pixel tile into the passes' own layout instead of a labels x
// pixels copy) and labels only (q left empty: its 4 bytes per pixel and label are not
// written). For 171 labels at 640x480 that saves two 210 MB arrays. Throws as both functions.
DenseCrfResult dense_crf_labels_from_scores(const uint8_t* rgb, int height, int width, const float* scores,
                                            int labels, const DenseCrfParams& params = {});

// The reference's unary: softmax over labels of `scores` (labels x pixels), then
// -log(clip(p, 1e-5, 1)) (pydensecrf's unary_from_softmax defaults). Throws pnpovss::Error on
// non-finite scores or empty input.
std::vector<float> unary_from_probabilities(const float* scores, int labels, int64_t pixels);

// Throws pnpovss::Error, as dense_crf does, for an empty or too large image, no labels or bad
// parameters (shared with the tensor CRF, tensor_crf.h).
void check_dense_crf_arguments(int height, int width, int labels, const DenseCrfParams& params);

// Per pixel, the label with the largest value in `values` (labels x pixels); ties go to the
// lowest label, as numpy.argmax and Eigen's maxCoeff do.
std::vector<int32_t> argmax_labels(const float* values, int labels, int64_t pixels);

}  // namespace pnpovss::crf
