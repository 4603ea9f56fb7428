#include "pnpovss/crf/tensor_crf.h"

#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <vector>

#include "pnpovss/cpu/simd.h"
#include "pnpovss/crf/densecrf.h"
#include "pnpovss/crf/tensor_lattice.h"
#include "pnpovss/error.h"

namespace pnpovss::crf {

namespace {

// Pixels per block of the unary (bounds its double temporaries).
constexpr int64_t kUnaryBlock = 65536;

// The exponential of simd.h's packet_exp (Eigen's pexp) as tensor operations, one float
// operation for each of its own: clamp, n = floor(x log2 e + 1/2) by truncation and a
// correction, the two-part reduction, the degree-5 polynomial and the scaling by 2^n through
// the exponent bits.
torch::Tensor packet_exp(torch::Tensor x) {
  using C = cpu::simd::PacketExp;
  x = x.clamp(C::kLow, C::kHigh);
  const torch::Tensor t = x * C::kLog2e + 0.5f;
  torch::Tensor n = t.trunc();
  n = torch::where(n > t, n - 1.0f, n);
  x = x - n * C::kLn2High;
  x = x - n * C::kLn2Low;
  const torch::Tensor z = x * x;
  torch::Tensor y = x * C::kPoly[0] + C::kPoly[1];
  for (int k = 2; k < 6; ++k) y = y * x + C::kPoly[k];
  y = y * z + x;
  y = y + 1.0f;
  const torch::Tensor bits = (n.to(torch::kInt32) + 127) * (1 << 23);
  return y * bits.view(torch::kFloat32);
}

// A float divided by a tensor of one element on its own device: libtorch's CUDA division by a
// CPU scalar multiplies by the reciprocal, which rounds differently from the reference.
torch::Tensor divided(const torch::Tensor& x, float divisor) {
  return x / torch::full({1}, divisor, x.options());
}

// Features over the pixels in row-major order: (x, y) / sxy, then the colours / srgb.
torch::Tensor positional_features(int64_t height, int64_t width, float sxy, const torch::TensorOptions& options) {
  const torch::Tensor xs = divided(torch::arange(width, options), sxy);
  const torch::Tensor ys = divided(torch::arange(height, options), sxy);
  return torch::stack({xs.unsqueeze(0).expand({height, width}), ys.unsqueeze(1).expand({height, width})}, 2)
      .reshape({height * width, 2});
}

torch::Tensor bilateral_features(const torch::Tensor& rgb, float sxy, float srgb, const torch::TensorOptions& options) {
  const int64_t height = rgb.size(0), width = rgb.size(1);
  const torch::Tensor colours = divided(rgb.to(options.dtype()).reshape({height * width, 3}), srgb);
  return torch::cat({positional_features(height, width, sxy, options), colours}, 1);
}

struct Kernel {
  float weight = 0.0f;
  TensorLattice lattice;
  torch::Tensor norm;  // [pixels, 1]: 1/sqrt(K*1), NORMALIZE_SYMMETRIC
};

Kernel make_kernel(float weight, const torch::Tensor& features) {
  Kernel k;
  k.weight = weight;
  k.lattice = build_tensor_lattice(features);
  const torch::Tensor ones = torch::ones({features.size(0), 1}, features.options());
  // As the reference: a float filter of ones, then 1/sqrt(n + 1e-20) in double, stored as float.
  const torch::Tensor filtered = tensor_filter(k.lattice, ones).to(torch::kFloat64);
  k.norm = (1.0 / (filtered + 1e-20).sqrt()).to(torch::kFloat32);
  return k;
}

}  // namespace

CrfFeatures image_crf_features(const torch::Tensor& rgb, const DenseCrfParams& params) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(rgb.device());
  const int64_t height = rgb.size(0), width = rgb.size(1);
  return {positional_features(height, width, params.gaussian_sxy, options),
          bilateral_features(rgb, params.bilateral_sxy, params.bilateral_srgb, options)};
}

torch::Tensor tensor_mean_field(const torch::Tensor& neg_unary, const CrfFeatures& features,
                                const DenseCrfParams& params) {
  // Kernels in the reference's order of addition; a zero weight adds exactly 0, so is left out.
  std::vector<Kernel> kernels;
  if (params.iterations > 0 && params.gaussian_weight != 0.0f)
    kernels.push_back(make_kernel(params.gaussian_weight, features.gaussian));
  if (params.iterations > 0 && params.bilateral_weight != 0.0f)
    kernels.push_back(make_kernel(params.bilateral_weight, features.bilateral));
  const bool alpha_last = neg_unary.size(1) <= 2;
  torch::Tensor q = reference_softmax_rows(neg_unary);
  for (int n = 0; n < params.iterations && !kernels.empty(); ++n) {
    torch::Tensor logits = neg_unary;
    for (const Kernel& k : kernels) {
      const torch::Tensor blurred = tensor_blur(k.lattice, tensor_splat(k.lattice, q * k.norm));
      logits = logits + (tensor_slice(k.lattice, blurred, alpha_last) * k.norm) * k.weight;
    }
    q = reference_softmax_rows(logits);
  }
  return q;
}

namespace {

void check_inputs(const torch::Tensor& rgb, const torch::Tensor& values, const DenseCrfParams& params, const char* what) {
  if (!values.defined() || values.dim() != 3 || values.scalar_type() != torch::kFloat32)
    throw Error(std::string("dense CRF: the ") + what + " must be a float32 [labels, H, W] tensor");
  if (!rgb.defined() || rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != torch::kUInt8)
    throw Error("dense CRF: the image must be a uint8 [H, W, 3] tensor");
  if (rgb.size(0) != values.size(1) || rgb.size(1) != values.size(2))
    throw Error("dense CRF: the image is " + std::to_string(rgb.size(0)) + "x" + std::to_string(rgb.size(1)) +
                " but the " + what + " are " + std::to_string(values.size(1)) + "x" + std::to_string(values.size(2)));
  check_dense_crf_arguments(static_cast<int>(values.size(1)), static_cast<int>(values.size(2)),
                            static_cast<int>(values.size(0)), params);
}

TensorCrfResult finish(const torch::Tensor& q, int64_t height, int64_t width, bool marginals) {
  TensorCrfResult result;
  result.labels = q.argmax(1).view({height, width});
  if (marginals) result.q = q.t().reshape({q.size(1), height, width});
  return result;
}

// -U in the passes' layout [pixels, labels] from U [labels, pixels].
torch::Tensor negated_rows(const torch::Tensor& unary) { return (-unary).t().contiguous(); }

}  // namespace

torch::Tensor reference_softmax_rows(const torch::Tensor& logits) {
  const int64_t labels = logits.size(1), packets = labels / 4, tail = 4 * packets;
  const torch::Tensor shifted = logits - std::get<0>(logits.max(1, /*keepdim=*/true));
  std::vector<torch::Tensor> parts;
  if (packets > 0) parts.push_back(packet_exp(shifted.slice(1, 0, tail)));
  // The labels past the last group of four take the reference's std::exp (expf): here the double
  // exponential rounded to float, which is the correctly rounded value that expf misses in about
  // 1 of 15,000 arguments (docs/performance.md).
  if (tail < labels) parts.push_back(shifted.slice(1, tail).to(torch::kFloat64).exp().to(torch::kFloat32));
  const torch::Tensor e = parts.size() == 1 ? parts[0] : torch::cat(parts, 1);

  // Eigen's sum: packets into two accumulators (even, odd), added; an odd last packet; the
  // lanes as (0 + 2) + (1 + 3); then the tail left to right. Below four labels: left to right.
  torch::Tensor sum;
  if (packets == 0) {
    sum = e.select(1, 0);
  } else {
    const torch::Tensor p = e.slice(1, 0, tail).view({e.size(0), packets, 4});
    torch::Tensor r0 = p.select(1, 0);
    if (packets > 1) {
      torch::Tensor r1 = p.select(1, 1);
      const int64_t paired = packets / 2 * 2;
      for (int64_t k = 2; k < paired; k += 2) {
        r0 = r0 + p.select(1, k);
        r1 = r1 + p.select(1, k + 1);
      }
      r0 = r0 + r1;
      if (packets > paired) r0 = r0 + p.select(1, paired);
    }
    sum = (r0.select(1, 0) + r0.select(1, 2)) + (r0.select(1, 1) + r0.select(1, 3));
  }
  for (int64_t l = packets == 0 ? 1 : tail; l < labels; ++l) sum = sum + e.select(1, l);
  return e / sum.unsqueeze(1);
}

torch::Tensor tensor_unary_from_scores(const torch::Tensor& scores) {
  if (!scores.defined() || scores.dim() != 2 || scores.scalar_type() != torch::kFloat32 || scores.numel() == 0)
    throw Error("unary_from_probabilities: scores must be a non-empty float32 [labels, pixels] tensor");
  const torch::Tensor bad = torch::isfinite(scores).logical_not();
  if (bad.any().item<bool>()) {
    const torch::Tensor first = bad.nonzero()[0].cpu();
    throw Error("unary_from_probabilities: score of label " + std::to_string(first[0].item<int64_t>()) + " at pixel " +
                std::to_string(first[1].item<int64_t>()) + " is not finite");
  }
  const int64_t labels = scores.size(0), pixels = scores.size(1);
  std::vector<torch::Tensor> blocks;
  for (int64_t begin = 0; begin < pixels; begin += kUnaryBlock) {
    const torch::Tensor s = scores.slice(1, begin, std::min(pixels, begin + kUnaryBlock)).to(torch::kFloat64);
    const torch::Tensor e = (s - std::get<0>(s.max(0))).exp();
    torch::Tensor sum = e[0];
    for (int64_t l = 1; l < labels; ++l) sum = sum + e[l];  // in label order, as the reference
    blocks.push_back((-(e / sum).clamp(1e-5, 1.0).log()).to(torch::kFloat32));
  }
  return torch::cat(blocks, 1);
}

TensorCrfResult tensor_crf_from_scores(const torch::Tensor& rgb, const torch::Tensor& scores,
                                       const DenseCrfParams& params, bool marginals) {
  check_inputs(rgb, scores, params, "scores");
  const int64_t height = scores.size(1), width = scores.size(2);
  const torch::Tensor unary = tensor_unary_from_scores(scores.reshape({scores.size(0), height * width}));
  const torch::Tensor neg = negated_rows(unary);
  return finish(tensor_mean_field(neg, image_crf_features(rgb.to(scores.device()), params), params), height,
                width, marginals);
}

TensorCrfResult tensor_crf(const torch::Tensor& rgb, const torch::Tensor& unary, const DenseCrfParams& params,
                           bool marginals) {
  check_inputs(rgb, unary, params, "unaries");
  if (!torch::isfinite(unary).all().item<bool>()) throw Error("dense CRF: the unaries are not all finite");
  const int64_t height = unary.size(1), width = unary.size(2);
  const torch::Tensor neg = negated_rows(unary.reshape({unary.size(0), height * width}));
  return finish(tensor_mean_field(neg, image_crf_features(rgb.to(unary.device()), params), params), height,
                width, marginals);
}

}  // namespace pnpovss::crf
