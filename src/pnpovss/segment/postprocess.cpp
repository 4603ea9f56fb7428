#include "pnpovss/segment/postprocess.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/models/placement.h"
#include "pnpovss/parallel.h"
#include "pnpovss/simd.h"

namespace pnpovss::segment {
namespace {

using models::cpu_float;

// One output coordinate of an align_corners=true resize: source index and weight of the next.
struct SourceCoordinate {
  int64_t index = 0;
  int64_t next = 0;
  double weight = 0.0;
};

std::vector<SourceCoordinate> source_coordinates(int64_t in, int64_t out) {
  std::vector<SourceCoordinate> coords(out);
  for (int64_t d = 0; d < out; ++d) {
    SourceCoordinate& c = coords[d];
    if (out > 1 && in > 1) {
      const int64_t scaled = d * (in - 1);
      c.index = scaled / (out - 1);
      c.weight = static_cast<double>(scaled % (out - 1)) / static_cast<double>(out - 1);
    }
    c.next = std::min(c.index + 1, in - 1);
  }
  return coords;
}

// scipy's 'reflect' extension (half-sample symmetric), for any distance outside [0, n).
int64_t reflect_index(int64_t i, int64_t n) {
  const int64_t period = 2 * n;
  int64_t m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

// L doubles (and the L floats they come from) per vector. Vectors wider than 16 bytes only
// ever live inside the AVX2 and AVX-512 functions, so the ABI note GCC gives for passing them
// elsewhere does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

template <int L>
struct Lanes {
  using D = ::pnpovss::simd::VectorOf<double, L>;
  using F = ::pnpovss::simd::VectorOf<float, L>;
};

// Output columns [x, x + B * L) of one row: B vectors of sums kept in registers while every tap
// adds its weight times its input row (`taps` rows), in tap order.
template <int L, int B>
inline __attribute__((always_inline)) void filter_block(const float* const* taps, const double* kernel,
                                                        int64_t count, int64_t x, float* out) {
  using D = typename Lanes<L>::D;
  using F = typename Lanes<L>::F;
  D acc[B] = {};
  for (int64_t j = 0; j < count; ++j) {
    const D k = D{} + kernel[j];
#pragma GCC unroll 8
    for (int b = 0; b < B; ++b) {
      F part;
      std::memcpy(&part, taps[j] + x + b * L, sizeof part);
      acc[b] += k * __builtin_convertvector(part, D);
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < B; ++b) {
    const F rounded = __builtin_convertvector(acc[b], F);
    std::memcpy(out + x + b * L, &rounded, sizeof rounded);
  }
}

// Correlates every column of a rows x cols plane with the kernel (scipy's 'reflect' edges),
// writing `out`: out[y][x] = sum over j, in order and in double, of kernel[j] times
// in[reflect(y + j - radius)][x], rounded to float. Columns go 4 vectors of L at a time with
// their sums in registers, then one vector, then one column; the multiply and the add stay
// unfused (this file is compiled with -ffp-contract=off, since AVX-512 brings fused
// multiply-add), so every width and block gives the same values as the reference.
template <int L>
inline __attribute__((always_inline)) void filter_columns_impl(const float* in, float* out, int64_t rows,
                                                               int64_t cols, const std::vector<double>& kernel) {
  constexpr int kBlock = 4;
  const auto count = static_cast<int64_t>(kernel.size());
  const int64_t radius = count / 2;
  std::vector<const float*> taps(kernel.size());
  for (int64_t y = 0; y < rows; ++y) {
    for (int64_t j = 0; j < count; ++j) taps[j] = in + reflect_index(y + j - radius, rows) * cols;
    float* o = out + y * cols;
    int64_t x = 0;
    for (; x + kBlock * L <= cols; x += kBlock * L) filter_block<L, kBlock>(taps.data(), kernel.data(), count, x, o);
    for (; x + L <= cols; x += L) filter_block<L, 1>(taps.data(), kernel.data(), count, x, o);
    for (; x < cols; ++x) {
      double sum = 0.0;
      for (int64_t j = 0; j < count; ++j) sum += kernel[j] * static_cast<double>(taps[j][x]);
      o[x] = static_cast<float>(sum);
    }
  }
}

// Vectors of 4 doubles are compiled for AVX2 only, of 8 for AVX-512 only, chosen at run time.
__attribute__((target("avx2"))) void filter_columns_avx2(const float* in, float* out, int64_t rows, int64_t cols,
                                                         const std::vector<double>& kernel) {
  filter_columns_impl<4>(in, out, rows, cols, kernel);
}

__attribute__((target("avx512f"))) void filter_columns_avx512(const float* in, float* out, int64_t rows,
                                                              int64_t cols, const std::vector<double>& kernel) {
  filter_columns_impl<8>(in, out, rows, cols, kernel);
}

void filter_columns(const float* in, float* out, int64_t rows, int64_t cols, const std::vector<double>& kernel,
                    int lanes) {
  if (lanes == 8)
    filter_columns_avx512(in, out, rows, cols, kernel);
  else if (lanes == 4)
    filter_columns_avx2(in, out, rows, cols, kernel);
  else
    filter_columns_impl<2>(in, out, rows, cols, kernel);
}

void transpose_plane(const float* in, float* out, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile)
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) out[c * rows + r] = in[r * cols + c];
}

}  // namespace

torch::Tensor minmax_channels(const torch::Tensor& maps) {
  const torch::Tensor x = cpu_float(maps);
  const auto dims = std::vector<int64_t>{x.dim() - 2, x.dim() - 1};
  const torch::Tensor low = x.amin(dims, /*keepdim=*/true);
  const torch::Tensor range = x.amax(dims, /*keepdim=*/true) - low;
  return torch::where(range > 0, (x - low) / range, torch::zeros_like(x));
}

torch::Tensor upsample_bilinear_exact(const torch::Tensor& maps, int64_t height, int64_t width) {
  const torch::Tensor x = cpu_float(maps);
  if (x.dim() != 3 || x.size(1) < 1 || x.size(2) < 1 || height < 1 || width < 1)
    throw Error("upsampling needs [C, h, w] maps and a positive output size");
  const int64_t channels = x.size(0), h = x.size(1), w = x.size(2);
  const auto rows = source_coordinates(h, height);
  const auto cols = source_coordinates(w, width);
  torch::Tensor out = torch::empty({channels, height, width}, torch::kFloat32);
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = src + c * h * w;
    for (int64_t y = 0; y < height; ++y) {
      const SourceCoordinate& r = rows[y];
      const float* top = plane + r.index * w;
      const float* bottom = plane + r.next * w;
      for (int64_t xo = 0; xo < width; ++xo) {
        const SourceCoordinate& q = cols[xo];
        const double upper = (1.0 - q.weight) * top[q.index] + q.weight * top[q.next];
        const double lower = (1.0 - q.weight) * bottom[q.index] + q.weight * bottom[q.next];
        dst[(c * height + y) * width + xo] = static_cast<float>((1.0 - r.weight) * upper + r.weight * lower);
      }
    }
  }
  return out;
}

torch::Tensor background_channel(const torch::Tensor& class_channels) {
  return (std::get<0>(cpu_float(class_channels).max(0)) == 0).to(torch::kFloat32);
}

std::vector<double> gaussian_kernel(double sigma, double truncate) {
  if (!(sigma > 0) || !std::isfinite(sigma)) throw Error("Gaussian sigma must be positive and finite");
  const auto radius = static_cast<int64_t>(truncate * sigma + 0.5);
  std::vector<double> weights;
  double total = 0.0;
  for (int64_t x = -radius; x <= radius; ++x) {
    weights.push_back(std::exp(-0.5 / (sigma * sigma) * static_cast<double>(x * x)));
    total += weights.back();
  }
  for (double& v : weights) v /= total;
  return weights;
}

std::vector<int> blur_lane_widths() {
  std::vector<int> widths = {2};
  if (::pnpovss::simd::cpu_has_avx2()) widths.push_back(4);
  if (::pnpovss::simd::cpu_has_avx512()) widths.push_back(8);
  return widths;
}

torch::Tensor gaussian_filter_channels(const torch::Tensor& stack, double sigma, int lanes) {
  const int widest = blur_lane_widths().back();
  if (lanes == 0) lanes = widest;
  if (lanes != 2 && lanes != 4 && lanes != 8) throw Error("Gaussian blur: lanes must be 0, 2, 4 or 8");
  if (lanes > widest)
    throw Error("Gaussian blur: " + std::to_string(lanes) + " doubles per vector need a CPU with " +
                (lanes == 8 ? "AVX-512" : "AVX2"));
  torch::Tensor out = cpu_float(stack).clone();
  if (out.dim() != 3) throw Error("Gaussian blur needs a [C, H, W] stack");
  const std::vector<double> kernel = gaussian_kernel(sigma);
  const int64_t channels = out.size(0), height = out.size(1), width = out.size(2);
  float* data = out.data_ptr<float>();
  // Channels are independent: one range of them per hardware thread.
  parallel_ranges(channels, resolve_threads(0), [&](int64_t first, int64_t last) {
    std::vector<float> a(static_cast<size_t>(height * width)), b(a.size());
    for (int64_t c = first; c < last; ++c) {
      float* plane = data + c * height * width;
      filter_columns(plane, a.data(), height, width, kernel, lanes);  // axis 0, rounded to float as scipy
      transpose_plane(a.data(), b.data(), height, width);
      filter_columns(b.data(), a.data(), width, height, kernel, lanes);  // axis 1, on the transposed plane
      transpose_plane(a.data(), plane, width, height);
    }
  }, 1);
  return out;
}

ChannelStack build_channel_stack(const torch::Tensor& final_maps, int64_t height, int64_t width,
                                 const MethodSettings& settings) {
  const torch::Tensor maps = cpu_float(final_maps);
  const auto dims = std::vector<int64_t>{1, 2};
  const torch::Tensor varies = maps.amax(dims, true) > maps.amin(dims, true);
  ChannelStack out;
  out.normalized = minmax_channels(maps);
  // The comparison is in float32, as torch and numpy compare a float32 map with a Python float.
  const auto threshold = static_cast<float>(settings.mask_threshold);
  out.keep = (out.normalized >= threshold).logical_and(varies).to(torch::kUInt8);
  out.masks = settings.mask_threshold_keeps_values ? maps * out.keep.to(torch::kFloat32) : out.keep.to(torch::kFloat32);
  torch::Tensor classes = upsample_bilinear_exact(out.masks, height, width);
  if (settings.mask_rescale_after_upsample) classes = minmax_channels(classes);
  out.has_background = uses_background(settings, static_cast<int>(maps.size(0)));
  out.stack = out.has_background ? torch::cat({background_channel(classes).unsqueeze(0), classes}) : classes;
  return out;
}

torch::Tensor blur_stack(const torch::Tensor& stack, const MethodSettings& settings) {
  const double sigma = settings.post_blur * static_cast<double>(std::max(stack.size(1), stack.size(2)));
  return minmax_channels(gaussian_filter_channels(stack, sigma));
}

torch::Tensor argmax_channels(const torch::Tensor& stack) {
  const torch::Tensor x = cpu_float(stack);
  const std::vector<int32_t> best =
      argmax_labels(x.data_ptr<float>(), static_cast<int>(x.size(0)), x.size(1) * x.size(2));
  return torch::tensor(best, torch::kInt32).view({x.size(1), x.size(2)});
}

std::vector<int32_t> crf_channels(const torch::Tensor& stack, const io::Image& original, const DenseCrfParams& params) {
  const torch::Tensor x = cpu_float(stack);
  if (x.size(1) != original.height || x.size(2) != original.width)
    throw Error("the channel stack and the original image differ in size");
  const int labels = static_cast<int>(x.size(0));
  const int64_t pixels = x.size(1) * x.size(2);
  if (labels == 1) return std::vector<int32_t>(pixels, 0);
  const std::vector<float> unary = unary_from_probabilities(x.data_ptr<float>(), labels, pixels);
  return dense_crf(original.rgb, original.height, original.width, unary, labels, params).labels;
}

std::vector<int32_t> map_labels(const std::vector<int32_t>& channels, const std::vector<int32_t>& table,
                                bool official_inplace) {
  const auto size = static_cast<int32_t>(table.size());
  for (int32_t c : channels)
    if (c < 0 || c >= size)
      throw Error("channel " + std::to_string(c) + " has no label: the label table has " + std::to_string(size) +
                  " entries, one per channel (background first when present)");
  std::vector<int32_t> out(channels.size());
  if (!official_inplace) {
    std::transform(channels.begin(), channels.end(), out.begin(), [&](int32_t c) { return table[c]; });
    return out;
  }
  out = channels;
  for (int32_t i = size - 1; i >= 0; --i)
    for (int32_t& v : out)
      if (v == i) v = table[i];
  return out;
}

}  // namespace pnpovss::segment
