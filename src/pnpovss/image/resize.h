// Image resizing that reproduces PIL bit for bit, because the reference preprocessors
// (Hugging Face image processors) resize with PIL.
#pragma once

#include "pnpovss/image/codec.h"

namespace pnpovss::image {

// PIL's Image.resize((out_width, out_height), Image.BICUBIC) with reducing_gap=None (Pillow >= 7
// semantics): an antialiased separable bicubic (a = -0.5) whose support grows with the
// downscale factor, fixed-point weights and 8-bit rounding after each pass. Throws
// pnpovss::Error for an empty input or a non-positive output size.
Image resize_bicubic_pil(const Image& in, int out_width, int out_height);

// The same with Image.BILINEAR: the antialiased triangle filter (support 1, stretched by the
// downscale factor), with the same fixed-point passes.
Image resize_bilinear_pil(const Image& in, int out_width, int out_height);

}  // namespace pnpovss::image
