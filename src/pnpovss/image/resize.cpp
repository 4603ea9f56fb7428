#include "pnpovss/image/resize.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/error.h"

// Follows Pillow's libImaging/Resample.c (ImagingResampleInner with the 8-bit passes). Every
// floating-point expression keeps Pillow's operation order, so the weights and therefore the
// output bytes are identical.

namespace pnpovss::image {

namespace {

// Pillow keeps 8 bits for the pixel value and 2 for overshoot of the signed 32-bit accumulator.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kBicubicSupport = 2.0;
constexpr double kBilinearSupport = 1.0;

// Keys' cubic convolution kernel with a = -0.5 (Pillow's BICUBIC).
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// The triangle filter (Pillow's BILINEAR).
double bilinear(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

using Filter = double (*)(double);

// For each output index: the first input index, the number of inputs, and fixed-point weights.
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // out_size x ksize
};

Coefficients precompute(int in_size, int out_size, Filter filter, double filter_support) {
  // Pillow passes the source box as floats; the full box is (0, in_size).
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  // When downscaling the kernel is stretched over the source pixels (antialiasing).
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(static_cast<size_t>(out_size));
  c.count.resize(static_cast<size_t>(out_size));
  c.weights.assign(static_cast<size_t>(out_size) * static_cast<size_t>(c.ksize), 0);
  std::vector<double> w(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[static_cast<size_t>(x)] = filter((x + xmin - center + 0.5) * ss);
      ww += w[static_cast<size_t>(x)];
    }
    int32_t* k = &c.weights[static_cast<size_t>(xx) * static_cast<size_t>(c.ksize)];
    for (int x = 0; x < xmax; ++x) {
      double v = w[static_cast<size_t>(x)];
      if (ww != 0.0) v /= ww;
      // Round half away from zero, as Pillow's normalize_coeffs_8bpc.
      k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                   : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[static_cast<size_t>(xx)] = xmin;
    c.count[static_cast<size_t>(xx)] = xmax;
  }
  return c;
}

// Accumulators start at one half (rounding) and are clipped to 0..255 after the shift.
uint8_t clip8(int64_t acc) {
  if (acc < 0) return 0;
  const int64_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v > 255 ? 255 : v);
}

constexpr int64_t kHalf = int64_t{1} << (kPrecisionBits - 1);

// Resamples rows [row_begin, row_begin + rows) of `in` horizontally.
Image horizontal_pass(const Image& in, int row_begin, int rows, int out_width, const Coefficients& c) {
  Image out;
  out.width = out_width;
  out.height = rows;
  out.rgb.resize(static_cast<size_t>(out_width) * static_cast<size_t>(rows) * 3);
  const size_t in_stride = static_cast<size_t>(in.width) * 3;
  for (int yy = 0; yy < rows; ++yy) {
    const uint8_t* src = in.rgb.data() + static_cast<size_t>(yy + row_begin) * in_stride;
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(yy) * static_cast<size_t>(out_width) * 3;
    for (int xx = 0; xx < out_width; ++xx) {
      const int32_t* k = &c.weights[static_cast<size_t>(xx) * static_cast<size_t>(c.ksize)];
      const uint8_t* px = src + static_cast<size_t>(c.first[static_cast<size_t>(xx)]) * 3;
      int64_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
      for (int x = 0; x < c.count[static_cast<size_t>(xx)]; ++x) {
        s0 += px[x * 3 + 0] * int64_t{k[x]};
        s1 += px[x * 3 + 1] * int64_t{k[x]};
        s2 += px[x * 3 + 2] * int64_t{k[x]};
      }
      dst[xx * 3 + 0] = clip8(s0);
      dst[xx * 3 + 1] = clip8(s1);
      dst[xx * 3 + 2] = clip8(s2);
    }
  }
  return out;
}

// Resamples `in` vertically; its row 0 is source row `row_shift` of the coefficients.
Image vertical_pass(const Image& in, int row_shift, int out_height, const Coefficients& c) {
  Image out;
  out.width = in.width;
  out.height = out_height;
  out.rgb.resize(static_cast<size_t>(in.width) * static_cast<size_t>(out_height) * 3);
  const size_t stride = static_cast<size_t>(in.width) * 3;
  for (int yy = 0; yy < out_height; ++yy) {
    const int32_t* k = &c.weights[static_cast<size_t>(yy) * static_cast<size_t>(c.ksize)];
    const int first = c.first[static_cast<size_t>(yy)] - row_shift;
    const int count = c.count[static_cast<size_t>(yy)];
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(yy) * stride;
    for (size_t i = 0; i < stride; ++i) {
      int64_t s = kHalf;
      for (int y = 0; y < count; ++y) s += in.rgb[static_cast<size_t>(first + y) * stride + i] * int64_t{k[y]};
      dst[i] = clip8(s);
    }
  }
  return out;
}

// Pillow's ImagingResample for one filter: both passes, each skipped when its side is unchanged.
Image resize_pil(const Image& in, int out_width, int out_height, Filter filter, double support) {
  if (in.width <= 0 || in.height <= 0 ||
      in.rgb.size() != static_cast<size_t>(in.width) * static_cast<size_t>(in.height) * 3) {
    throw Error("cannot resize an empty or inconsistent image (" + std::to_string(in.width) + "x" +
                std::to_string(in.height) + ")");
  }
  if (out_width <= 0 || out_height <= 0) {
    throw Error("cannot resize to " + std::to_string(out_width) + "x" + std::to_string(out_height) +
                ": the size must be positive");
  }
  // A pass is skipped when its dimension is unchanged (Pillow's need_horizontal/need_vertical).
  const bool need_horizontal = out_width != in.width;
  const bool need_vertical = out_height != in.height;
  if (!need_horizontal && !need_vertical) return in;

  const Coefficients vert = precompute(in.height, out_height, filter, support);
  if (!need_horizontal) return vertical_pass(in, 0, out_height, vert);

  // The horizontal pass only covers the source rows the vertical pass will read.
  const size_t last = static_cast<size_t>(out_height) - 1;
  const int row_begin = vert.first[0];
  const int row_end = vert.first[last] + vert.count[last];
  const Coefficients horiz = precompute(in.width, out_width, filter, support);
  Image temp = horizontal_pass(in, row_begin, row_end - row_begin, out_width, horiz);
  if (!need_vertical) return temp;
  return vertical_pass(temp, row_begin, out_height, vert);
}

}  // namespace

Image resize_bicubic_pil(const Image& in, int out_width, int out_height) {
  return resize_pil(in, out_width, out_height, bicubic, kBicubicSupport);
}

Image resize_bilinear_pil(const Image& in, int out_width, int out_height) {
  return resize_pil(in, out_width, out_height, bilinear, kBilinearSupport);
}

}  // namespace pnpovss::image
