#include "pnpovss/segment/postprocess.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "pnpovss/cpu/parallel.h"
#include "pnpovss/cpu/simd.h"
#include "pnpovss/crf/tensor_crf.h"
#include "pnpovss/error.h"
#include "pnpovss/runtime/placement.h"

namespace pnpovss::segment {
namespace {

using runtime::cpu_float;

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
  using D = ::pnpovss::cpu::simd::VectorOf<double, L>;
  using F = ::pnpovss::cpu::simd::VectorOf<float, L>;
};

// Output columns [x, x + B * L) of one row: B vectors of sums kept in registers while every
// input row adds its weight times its values (float or double), in row order, in double.
template <int L, int B, typename T>
inline __attribute__((always_inline)) void weighted_block(const T* const* rows, const double* weights,
                                                          int64_t count, int64_t x, float* out) {
  using D = typename Lanes<L>::D;
  using F = typename Lanes<L>::F;
  using In = std::conditional_t<std::is_same_v<T, float>, F, D>;
  D acc[B] = {};
  for (int64_t j = 0; j < count; ++j) {
    const D w = D{} + weights[j];
#pragma GCC unroll 8
    for (int b = 0; b < B; ++b) {
      In part;
      std::memcpy(&part, rows[j] + x + b * L, sizeof part);
      acc[b] += w * __builtin_convertvector(part, D);
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < B; ++b) {
    const F rounded = __builtin_convertvector(acc[b], F);
    std::memcpy(out + x + b * L, &rounded, sizeof rounded);
  }
}

// One output row: out[x] = sum over j, in order and in double, of weights[j] * rows[j][x],
// rounded to float. Columns go 4 vectors of L at a time with their sums in registers, then one
// vector, then one column; the multiply and the add stay unfused (this file is compiled with
// -ffp-contract=off, since AVX-512 brings fused multiply-add), so every width and block gives
// the same values.
template <int L, typename T>
inline __attribute__((always_inline)) void weighted_row(const T* const* rows, const double* weights, int64_t count,
                                                        int64_t cols, float* out) {
  constexpr int kBlock = 4;
  int64_t x = 0;
  for (; x + kBlock * L <= cols; x += kBlock * L) weighted_block<L, kBlock>(rows, weights, count, x, out);
  for (; x + L <= cols; x += L) weighted_block<L, 1>(rows, weights, count, x, out);
  for (; x < cols; ++x) {
    double sum = 0.0;
    for (int64_t j = 0; j < count; ++j) sum += weights[j] * static_cast<double>(rows[j][x]);
    out[x] = static_cast<float>(sum);
  }
}

// Correlates every column of a rows x cols plane with the kernel (scipy's 'reflect' edges),
// writing `out`: out[y][x] = sum over j, in order and in double, of kernel[j] times
// in[reflect(y + j - radius)][x], rounded to float, as the reference computes it.
template <int L>
inline __attribute__((always_inline)) void filter_columns_impl(const float* in, float* out, int64_t rows,
                                                               int64_t cols, const std::vector<double>& kernel) {
  const auto count = static_cast<int64_t>(kernel.size());
  const int64_t radius = count / 2;
  std::vector<const float*> taps(kernel.size());
  for (int64_t y = 0; y < rows; ++y) {
    for (int64_t j = 0; j < count; ++j) taps[j] = in + reflect_index(y + j - radius, rows) * cols;
    weighted_row<L>(taps.data(), kernel.data(), count, cols, out + y * cols);
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

// Channels of the full stack: the classes, and the background first when used.
int64_t channel_count(const ChannelStack& c) { return c.masks.size(0) + (c.has_background ? 1 : 0); }

void transpose_plane(const float* in, float* out, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile)
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) out[c * rows + r] = in[r * cols + c];
}

}  // namespace

torch::Tensor minmax_channels(const torch::Tensor& maps) {
  torch::Tensor x = cpu_float(maps).clone();
  minmax_channels_in_place(x);
  return x;
}

void minmax_channels_in_place(torch::Tensor& x) {
  if (x.scalar_type() != torch::kFloat32 || !x.is_contiguous() || x.dim() < 2)
    throw Error("per-channel min-max needs a contiguous float32 tensor of at least 2 dimensions");
  const auto dims = std::vector<int64_t>{x.dim() - 2, x.dim() - 1};
  const torch::Tensor low = x.amin(dims, /*keepdim=*/true);
  const torch::Tensor range = x.amax(dims, /*keepdim=*/true) - low;
  x.sub_(low).div_(range).masked_fill_(range.gt(0).logical_not(), 0.0f);
}

torch::Tensor upsample_bilinear_exact(const torch::Tensor& maps, int64_t height, int64_t width) {
  torch::Tensor out = torch::empty({maps.dim() == 3 ? maps.size(0) : 0, height, width}, torch::kFloat32);
  upsample_bilinear_exact_into(maps, out);
  return out;
}

void upsample_bilinear_exact_into(const torch::Tensor& maps, torch::Tensor& out) {
  const torch::Tensor x = cpu_float(maps);
  if (x.dim() != 3 || x.size(1) < 1 || x.size(2) < 1 || out.dim() != 3 || out.size(1) < 1 || out.size(2) < 1)
    throw Error("upsampling needs [C, h, w] maps and a positive output size");
  if (out.size(0) != x.size(0) || out.scalar_type() != torch::kFloat32 || !out.is_contiguous() ||
      out.device() != torch::kCPU)
    throw Error("upsampling: the output must be a contiguous float32 CPU tensor with one plane per map");
  const int64_t channels = x.size(0), h = x.size(1), w = x.size(2);
  const int64_t height = out.size(1), width = out.size(2);
  const auto rows = source_coordinates(h, height);
  const auto cols = source_coordinates(w, width);
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
}

torch::Tensor background_channel(const torch::Tensor& class_channels) {
  return (cpu_float(class_channels).amax(0) == 0).to(torch::kFloat32);
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
  if (::pnpovss::cpu::simd::cpu_has_avx2()) widths.push_back(4);
  if (::pnpovss::cpu::simd::cpu_has_avx512()) widths.push_back(8);
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
  cpu::parallel_ranges(channels, cpu::resolve_threads(0), [&](int64_t first, int64_t last) {
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

namespace {

// Images are post-processed side by side (postprocess_stage); on a GPU one blur or CRF at a
// time: each already fills the GPU with its element-wise work, and with many classes holds
// gigabytes there.
std::mutex& gpu_postprocess_lock() {
  static std::mutex lock;
  return lock;
}

// Where the blur and the CRF run (DenseCrfParams::device), parsed once for every caller.
torch::Device postprocess_device(const MethodSettings& settings) { return runtime::parse_device(settings.post_crf.device); }

// One axis of gaussian_filter_tensor: every line of x [C, H, W] along `dim`, extended by
// scipy's 'reflect', correlated with the kernel in double and rounded to float.
torch::Tensor filter_axis_tensor(const torch::Tensor& x, int64_t dim, const torch::Tensor& kernel) {
  const int64_t n = x.size(dim), radius = kernel.size(2) / 2;
  std::vector<int64_t> source(static_cast<size_t>(n + 2 * radius));
  for (int64_t i = 0; i < n + 2 * radius; ++i) source[i] = reflect_index(i - radius, n);
  const torch::Tensor index = torch::tensor(source, torch::kInt64).to(x.device());
  const torch::Tensor lines = x.index_select(dim, index).to(torch::kFloat64).movedim(dim, -1).contiguous();
  const torch::Tensor filtered = torch::conv1d(lines.view({-1, 1, n + 2 * radius}), kernel);
  std::vector<int64_t> shape = lines.sizes().vec();
  shape.back() = n;
  return filtered.view(shape).movedim(-1, dim).to(torch::kFloat32);
}

}  // namespace

torch::Tensor gaussian_filter_tensor(const torch::Tensor& stack, double sigma) {
  if (stack.dim() != 3 || stack.scalar_type() != torch::kFloat32) throw Error("Gaussian blur needs a float32 [C, H, W] stack");
  const std::vector<double> weights = gaussian_kernel(sigma);
  const torch::Tensor kernel =
      torch::tensor(weights, torch::kFloat64).to(stack.device()).view({1, 1, static_cast<int64_t>(weights.size())});
  return filter_axis_tensor(filter_axis_tensor(stack, 1, kernel), 2, kernel).contiguous();
}

uint64_t postprocess_bytes(int64_t height, int64_t width, int64_t channels, const MethodSettings& settings,
                           bool full_size_stack) {
  // The CRF on a GPU takes its memory there, not from the host.
  const bool crf = uses_crf(settings) && postprocess_device(settings).is_cpu();
  const double per_channel = (full_size_stack ? 4.0 : 0.0) + (uses_blur(settings) ? 4.0 : 0.0) + (crf ? 9.5 : 0.0);
  const double per_pixel = static_cast<double>(channels) * per_channel + (crf ? 170.0 : 56.0);
  return static_cast<uint64_t>(per_pixel * static_cast<double>(height) * static_cast<double>(width));
}

void check_postprocess_memory(const ChannelStack& c, const MethodSettings& settings, uint64_t available_bytes) {
  const int64_t channels = channel_count(c);
  const bool full_size_stack = !blurs_through_factors(c, settings);
  const uint64_t needed = postprocess_bytes(c.height, c.width, channels, settings, full_size_stack);
  if (available_bytes == 0 || needed <= available_bytes) return;
  auto gib = [](uint64_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1u << 30));
    return std::string(text);
  };
  std::string advice = "segment fewer classes at once or a smaller image";
  if (uses_crf(settings) && postprocess_device(settings).is_cpu()) {
    MethodSettings without_crf = settings;
    without_crf.post_mode = uses_blur(settings) ? Postprocess::Blur : Postprocess::None;
    advice += ", or leave out the Dense CRF (" +
              gib(postprocess_bytes(c.height, c.width, channels, without_crf, full_size_stack)) + ")";
  }
  throw Error("post-processing this " + std::to_string(c.width) + "x" + std::to_string(c.height) + " image into " +
              std::to_string(channels) + " channels needs about " + gib(needed) + " and " + gib(available_bytes) +
              " are available: " + advice);
}

ChannelStack channel_masks(const torch::Tensor& final_maps, int64_t height, int64_t width,
                           const MethodSettings& settings) {
  const torch::Tensor maps = cpu_float(final_maps);
  const auto dims = std::vector<int64_t>{1, 2};
  const torch::Tensor varies = maps.amax(dims, true) > maps.amin(dims, true);
  ChannelStack out;
  out.height = height;
  out.width = width;
  out.normalized = minmax_channels(maps);
  // The comparison is in float32, as torch and numpy compare a float32 map with a Python float.
  const auto threshold = static_cast<float>(settings.mask_threshold);
  out.keep = (out.normalized >= threshold).logical_and(varies).to(torch::kUInt8);
  out.masks = settings.mask_threshold_keeps_values ? maps * out.keep.to(torch::kFloat32) : out.keep.to(torch::kFloat32);
  out.has_background = uses_background(settings, static_cast<int>(maps.size(0)));
  return out;
}

void upsample_channels(ChannelStack& c, const MethodSettings& settings) {
  // The classes are upsampled into their place behind the background, so the stack is never
  // copied to join them (4 bytes per pixel and channel).
  const int64_t first = c.has_background ? 1 : 0;
  c.stack = torch::empty({channel_count(c), c.height, c.width}, torch::kFloat32);
  torch::Tensor classes = c.stack.narrow(0, first, c.masks.size(0));
  upsample_bilinear_exact_into(c.masks, classes);
  if (settings.mask_rescale_after_upsample) minmax_channels_in_place(classes);
  if (c.has_background) c.stack[0].copy_(background_channel(classes));
}

ChannelStack build_channel_stack(const torch::Tensor& final_maps, int64_t height, int64_t width,
                                 const MethodSettings& settings) {
  ChannelStack out = channel_masks(final_maps, height, width, settings);
  upsample_channels(out, settings);
  return out;
}

torch::Tensor blur_stack(const torch::Tensor& stack, const MethodSettings& settings) {
  const double sigma = settings.post_blur * static_cast<double>(std::max(stack.size(1), stack.size(2)));
  const torch::Device device = postprocess_device(settings);
  if (!device.is_cpu()) {
    const std::lock_guard<std::mutex> lock(gpu_postprocess_lock());
    torch::Tensor blurred = gaussian_filter_tensor(stack.to(device, torch::kFloat32), sigma);
    minmax_channels_in_place(blurred);
    return blurred.cpu();
  }
  torch::Tensor blurred = gaussian_filter_channels(stack, sigma);
  minmax_channels_in_place(blurred);
  return blurred;
}

namespace {

// One row of a factor [n, q] with at most two non-zero entries: (column, weight) twice.
struct SparseRow {
  int64_t first = 0, second = 0;
  double first_weight = 0.0, second_weight = 0.0;
};

// G * factor in double: the Gaussian filter (scipy's 'reflect' edges) down every column of the
// factor given by `rows`, i.e. the blur of every plane the factor spans, applied once.
torch::Tensor filter_factor(const std::vector<SparseRow>& rows, int64_t columns, const std::vector<double>& kernel) {
  const auto n = static_cast<int64_t>(rows.size());
  const auto radius = static_cast<int64_t>(kernel.size() / 2);
  torch::Tensor out = torch::zeros({n, columns}, torch::kFloat64);
  double* o = out.data_ptr<double>();
  cpu::parallel_ranges(n, cpu::resolve_threads(0), [&](int64_t first, int64_t last) {
    for (int64_t y = first; y < last; ++y)
      for (int64_t j = 0; j < static_cast<int64_t>(kernel.size()); ++j) {
        const SparseRow& r = rows[static_cast<size_t>(reflect_index(y + j - radius, n))];
        o[y * columns + r.first] += kernel[static_cast<size_t>(j)] * r.first_weight;
        o[y * columns + r.second] += kernel[static_cast<size_t>(j)] * r.second_weight;
      }
  }, 64);
  return out;
}

// Rows [first, last) of out [rows, cols] = left [rows, q] * right [q, cols], summed in double
// (terms of zero weight left out) and stored as float.
template <int L>
inline __attribute__((always_inline)) void product_rows(const double* left, const double* right, int64_t q,
                                                        int64_t cols, int64_t first, int64_t last, float* out) {
  std::vector<const double*> factor_rows;
  std::vector<double> weights;
  for (int64_t y = first; y < last; ++y) {
    factor_rows.clear();
    weights.clear();
    for (int64_t i = 0; i < q; ++i)
      if (left[y * q + i] != 0.0) {
        factor_rows.push_back(right + i * cols);
        weights.push_back(left[y * q + i]);
      }
    weighted_row<L>(factor_rows.data(), weights.data(), static_cast<int64_t>(weights.size()), cols, out + y * cols);
  }
}

__attribute__((target("avx2"))) void product_rows_avx2(const double* left, const double* right, int64_t q,
                                                       int64_t cols, int64_t first, int64_t last, float* out) {
  product_rows<4>(left, right, q, cols, first, last, out);
}

__attribute__((target("avx512f"))) void product_rows_avx512(const double* left, const double* right, int64_t q,
                                                            int64_t cols, int64_t first, int64_t last, float* out) {
  product_rows<8>(left, right, q, cols, first, last, out);
}

// out [rows, cols] = left [rows, q] * right [q, cols] in double, stored as float, rows spread
// over every thread: a double plane and its conversion would cost more memory traffic than
// the products (a 12-megapixel plane is 96 MB in double).
void product_to_float(const torch::Tensor& left, const torch::Tensor& right, float* out) {
  const torch::Tensor l = left.contiguous(), r = right.contiguous();
  const int64_t q = l.size(1), cols = r.size(1);
  const double* lp = l.data_ptr<double>();
  const double* rp = r.data_ptr<double>();
  const int lanes = blur_lane_widths().back();
  cpu::parallel_ranges(l.size(0), cpu::resolve_threads(0), [&](int64_t first, int64_t last) {
    if (lanes == 8)
      product_rows_avx512(lp, rp, q, cols, first, last, out);
    else if (lanes == 4)
      product_rows_avx2(lp, rp, q, cols, first, last, out);
    else
      product_rows<2>(lp, rp, q, cols, first, last, out);
  }, 8);
}

// Bilinear weights of an align_corners resize from `in` to `out`, as upsample_bilinear_exact
// applies them.
std::vector<SparseRow> bilinear_rows(int64_t in, int64_t out) {
  std::vector<SparseRow> rows;
  for (const SourceCoordinate& c : source_coordinates(in, out))
    rows.push_back({c.index, c.next, 1.0 - c.weight, c.weight});
  return rows;
}

// The background's row classes: 2i for a row on grid line i (weight 0), 2i + 1 for one between
// lines i and i + 1. 2 * in - 1 classes.
std::vector<SparseRow> band_rows(int64_t in, int64_t out) {
  std::vector<SparseRow> rows;
  for (const SourceCoordinate& c : source_coordinates(in, out)) {
    const int64_t band = c.weight == 0.0 ? 2 * c.index : 2 * c.index + 1;
    rows.push_back({band, band, 1.0, 0.0});
  }
  return rows;
}

// Z[a, b] = 1 where no mask is positive on the grid rows of band a and columns of band b.
torch::Tensor empty_bands(const torch::Tensor& masks) {
  const torch::Tensor positive = (masks > 0).any(0).to(torch::kFloat64);  // [h, w]
  // A band's grid lines: line i for band 2i, lines i and i + 1 for band 2i + 1.
  auto band_lines = [](int64_t n) {
    torch::Tensor m = torch::zeros({2 * n - 1, n}, torch::kFloat64);
    for (int64_t i = 0; i < n; ++i) {
      m[2 * i][i] = 1.0;
      if (i + 1 < n) m[2 * i + 1][i] = m[2 * i + 1][i + 1] = 1.0;
    }
    return m;
  };
  const torch::Tensor touched = band_lines(masks.size(1)).mm(positive).mm(band_lines(masks.size(2)).t());
  return (touched == 0).to(torch::kFloat64);
}

}  // namespace

bool channels_are_separable(const ChannelStack& c, const MethodSettings& settings) {
  if (settings.mask_rescale_after_upsample || !c.masks.defined() || c.masks.dim() != 3 || c.masks.numel() == 0)
    return false;
  // Non-negative, and far from float underflow, so an upsampled value is 0 exactly where every
  // mask value it weighs is.
  const torch::Tensor m = cpu_float(c.masks);
  return (m == 0).logical_or(m >= 1e-20f).all().item<bool>();
}

torch::Tensor factored_gaussian_filter(const ChannelStack& c, double sigma) {
  if (!c.masks.defined() || c.masks.dim() != 3 || c.masks.numel() == 0 || c.height < 1 || c.width < 1)
    throw Error("factored blur: the channel stack has no masks or no size");
  const torch::Tensor masks = cpu_float(c.masks).to(torch::kFloat64);
  const int64_t classes = masks.size(0), h = masks.size(1), w = masks.size(2);
  const int64_t height = c.height, width = c.width;
  const std::vector<double> kernel = gaussian_kernel(sigma);
  torch::Tensor out = torch::empty({channel_count(c), height, width}, torch::kFloat32);
  // One plane: left [H, q] * (middle [q, r] * right^T [r, W]), in double, stored as float.
  auto write_plane = [&](int64_t channel, const torch::Tensor& left, const torch::Tensor& middle,
                         const torch::Tensor& right) {
    product_to_float(left, middle.mm(right.t()), out[channel].data_ptr<float>());
  };
  int64_t channel = 0;
  if (c.has_background) {
    write_plane(channel++, filter_factor(band_rows(h, height), 2 * h - 1, kernel), empty_bands(masks),
                filter_factor(band_rows(w, width), 2 * w - 1, kernel));
  }
  const torch::Tensor left = filter_factor(bilinear_rows(h, height), h, kernel);
  const torch::Tensor right = filter_factor(bilinear_rows(w, width), w, kernel);
  for (int64_t k = 0; k < classes; ++k) write_plane(channel++, left, masks[k], right);
  return out;
}

bool blurs_through_factors(const ChannelStack& c, const MethodSettings& settings) {
  const bool exact_blur_wanted =
      settings.post_arithmetic == PostArithmetic::Exact && std::max(c.height, c.width) <= kScipyExactBlurMaxSide;
  return uses_blur(settings) && !exact_blur_wanted && channels_are_separable(c, settings);
}

torch::Tensor blur_channels(const ChannelStack& c, const MethodSettings& settings) {
  if (!blurs_through_factors(c, settings)) {
    if (!c.stack.defined()) throw Error("blur: the channel stack was not built");
    return blur_stack(c.stack, settings);
  }
  const double sigma = settings.post_blur * static_cast<double>(std::max(c.height, c.width));
  torch::Tensor blurred = factored_gaussian_filter(c, sigma);
  minmax_channels_in_place(blurred);
  return blurred;
}

torch::Tensor argmax_channels(const torch::Tensor& stack) {
  const torch::Tensor x = cpu_float(stack);
  const std::vector<int32_t> best =
      crf::argmax_labels(x.data_ptr<float>(), static_cast<int>(x.size(0)), x.size(1) * x.size(2));
  return torch::tensor(best, torch::kInt32).view({x.size(1), x.size(2)});
}

namespace {

// The CRF as tensor operations on params.device (a GPU): the stack and the image go there, the
// labels come back.
std::vector<int32_t> crf_channels_on_device(const torch::Tensor& stack, const Image& original,
                                            const DenseCrfParams& params, const torch::Device& device) {
  const std::lock_guard<std::mutex> lock(gpu_postprocess_lock());
  const torch::Tensor rgb =
      torch::from_blob(const_cast<uint8_t*>(original.rgb.data()), {original.height, original.width, 3}, torch::kUInt8);
  const torch::Tensor labels = crf::tensor_crf_from_scores(rgb.to(device), stack.to(device, torch::kFloat32), params)
                                   .labels.to(torch::kCPU, torch::kInt32)
                                   .contiguous();
  return std::vector<int32_t>(labels.data_ptr<int32_t>(), labels.data_ptr<int32_t>() + labels.numel());
}

}  // namespace

std::vector<int32_t> crf_channels(const torch::Tensor& stack, const Image& original, const DenseCrfParams& params) {
  if (stack.dim() != 3 || stack.size(1) != original.height || stack.size(2) != original.width)
    throw Error("the channel stack and the original image differ in size");
  const torch::Device device = runtime::parse_device(params.device);
  if (!device.is_cpu()) {
    runtime::check_placement({device, torch::kFloat32});
    if (stack.size(0) > 1) return crf_channels_on_device(stack, original, params, device);
  }
  const torch::Tensor x = cpu_float(stack);
  const int labels = static_cast<int>(x.size(0));
  const int64_t pixels = x.size(1) * x.size(2);
  if (labels == 1) return std::vector<int32_t>(pixels, 0);
  return crf::dense_crf_labels_from_scores(original.rgb.data(), original.height, original.width, x.data_ptr<float>(),
                                           labels, params)
      .labels;
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
