// From the final class maps to a label per pixel (docs/method.md §5): min-max,
// threshold, bilinear upsampling to the image size, background channel, Gaussian blur with
// scipy.ndimage's arithmetic, then argmax or the Dense CRF, and the channel -> label lookup.
//
// Shapes: K classes, P grid side, C channels (K, or K + 1 with the background first), H x W
// the original image.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "pnpovss/crf/densecrf.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/settings.h"

namespace pnpovss::segment {

// Steps 5.1-5.4 on the final maps.
struct ChannelStack {
  torch::Tensor normalized;  // [K, P, P] per-class min-max; a constant map gives all zeros
  torch::Tensor keep;        // [K, P, P] uint8: normalized >= threshold (never for a constant map)
  torch::Tensor masks;       // [K, P, P] float: keep as 0/1, or the raw values kept (official)
  torch::Tensor stack;       // [C, H, W] upsampled masks, background channel first when used;
                             // undefined when the pipeline blurs through the factors instead
  bool has_background = false;
  int64_t height = 0, width = 0;  // H x W, the original image's size
};

// Per channel (x - min) / (max - min) over the last two dimensions of [C, h, w]; a constant
// channel becomes all zeros (the reference's 0/0; docs/method.md §5.1 and 5.5).
torch::Tensor minmax_channels(const torch::Tensor& maps);
// The same on `x` itself (contiguous float32, any device), without the full-size temporaries:
// a photo's blurred stack can take gigabytes.
void minmax_channels_in_place(torch::Tensor& x);

// Bilinear, align_corners=true, [C, h, w] -> [C, H, W], with exact source coordinates:
// dst * (in - 1) / (out - 1) is split into integer part and remainder, so rows and columns on
// the source grid take the source values exactly (0 stays 0: the background test is exact).
torch::Tensor upsample_bilinear_exact(const torch::Tensor& maps, int64_t height, int64_t width);
// The same into `out` [C, H, W] (contiguous float32 on the CPU), e.g. a slice of a larger stack.
void upsample_bilinear_exact_into(const torch::Tensor& maps, torch::Tensor& out);

// [K, H, W] -> [H, W]: 1 where every class channel is exactly 0.
torch::Tensor background_channel(const torch::Tensor& class_channels);

// scipy.ndimage.gaussian_filter's 1-D weights: exp(-x^2 / (2 sigma^2)) for x in
// -radius..radius, radius = int(truncate * sigma + 0.5), normalised to sum 1.
std::vector<double> gaussian_kernel(double sigma, double truncate = 4.0);
// scipy.ndimage.gaussian_filter of every channel of [C, H, W] float32 (mode 'reflect', i.e.
// d c b a | a b c d, truncate 4): rows then columns, each pass summed in double and stored in
// float32 as scipy does for float32 input. `lanes` (doubles per vector: 2, 4 with AVX2, 8 with
// AVX-512; 0 = the widest this CPU has) changes the speed only: every width gives the same bits.
torch::Tensor gaussian_filter_channels(const torch::Tensor& stack, double sigma, int lanes = 0);
// The same filter as tensor operations on the stack's device (a GPU): each pass a convolution in
// double rounded to float, so values equal scipy's but where the double sums, added in another
// order, fall on the other side of a float rounding boundary.
torch::Tensor gaussian_filter_tensor(const torch::Tensor& stack, double sigma);
// The `lanes` values this CPU runs, narrowest first: 2, then 4 with AVX2, then 8 with AVX-512.
std::vector<int> blur_lane_widths();

// About the most memory steps 5.3-5.7 take at once for an H x W image and `channels` channels
// (background included), fitted to the peak RSS of photos of 11 megapixels with 11, 31 and 151
// channels and 24 megapixels with 11 (never below it, at most 25% above), in bytes per pixel and
// channel: 4 for the full-size stack (none when blurred through the factors), 4 for the blurred
// copy, 9.5 for the Dense CRF's unary and buffers; plus 56 bytes per pixel, 170 with the CRF
// (host memory: a CRF on a GPU, post_crf.device, counts nothing here).
// (The CRF's share was fitted at 17.5 when it also kept a labels x pixels copy of the unary and
// the marginals, 8 bytes that it no longer allocates: a 4000x3000 photo with 21 channels then
// peaked 2.03 GiB lower, 8.93 -> 6.90 GiB with the model loaded.)
uint64_t postprocess_bytes(int64_t height, int64_t width, int64_t channels, const MethodSettings& settings,
                           bool full_size_stack);
// Throws pnpovss::Error, before anything of that size is allocated, when post-processing `c`
// would exceed `available_bytes` (0: unknown, no check): a 12-megapixel photo with 150 classes
// and the CRF needs about 25 GiB, and the system would kill the process rather than fail an
// allocation.
void check_postprocess_memory(const ChannelStack& c, const MethodSettings& settings, uint64_t available_bytes);

// Steps 5.1-5.2 and the background decision: everything but the full-size stack.
ChannelStack channel_masks(const torch::Tensor& final_maps, int64_t height, int64_t width,
                           const MethodSettings& settings);
// Steps 5.3-5.4: c.stack from c.masks.
void upsample_channels(ChannelStack& c, const MethodSettings& settings);
// Steps 5.1-5.4: `final_maps` [K, P, P] -> the channel stack at height x width.
ChannelStack build_channel_stack(const torch::Tensor& final_maps, int64_t height, int64_t width,
                                 const MethodSettings& settings);
// Step 5.5: blur with sigma = settings.post_blur * max(H, W), then per-channel min-max; on
// settings.post_crf.device when that is a GPU (gaussian_filter_tensor), returned to the CPU.
torch::Tensor blur_stack(const torch::Tensor& stack, const MethodSettings& settings);

// Up to this long side, blur_channels matches scipy bit for bit (the five benchmarks' images are
// smaller); above it the direct blur's cost grows with the cube of the side (a 24-megapixel
// photo: minutes per channel), so larger images take the factored path when it applies.
constexpr int64_t kScipyExactBlurMaxSide = 1024;

// Whether `c`'s channels are separable products of its masks: non-negative masks, not
// rescaled after upsampling, so each class channel is Uh * mask * Uw^T (bilinear weights) and
// the background is Rh * Z * Rw^T (indicators of the rows and columns between two grid lines,
// or on one; Z is 1 where no mask is positive there).
bool channels_are_separable(const ChannelStack& c, const MethodSettings& settings);
// Whether step 5.5 goes through those factors: blur on, the channels separable, and either the
// fast arithmetic (PostArithmetic::Fast) or the long side above kScipyExactBlurMaxSide. The
// pipeline then never builds the full-size unblurred stack (4 bytes per pixel and channel:
// 6.7 GB for 150 classes at 11 MP), and the blur costs a fraction of the direct one's (172
// channels at 640x480 on a 2-core EPYC: 0.73 s instead of 2.43 s).
bool blurs_through_factors(const ChannelStack& c, const MethodSettings& settings);
// gaussian_filter_channels(c.stack, sigma) through the factors, from c.masks (c.stack is not
// read): the filter runs down the factors' columns (O(side x taps x grid) instead of
// O(side^2 x taps) per pass) and each plane is their product. The same sums in another order,
// in double: values differ from scipy's by a float rounding or two (below 1e-6) instead of
// matching bit for bit. Throws pnpovss::Error when the channels are not separable.
torch::Tensor factored_gaussian_filter(const ChannelStack& c, double sigma);
// Step 5.5 for a channel stack: through the factors when blurs_through_factors, else
// blur_stack(c.stack).
torch::Tensor blur_channels(const ChannelStack& c, const MethodSettings& settings);

// Per pixel, the channel with the largest value of [C, H, W] (ties: lowest channel): [H, W] int32.
torch::Tensor argmax_channels(const torch::Tensor& stack);
// Step 5.6 with the CRF: softmax over channels of `stack` as the unary, the original image's
// colours as the bilateral features. Returns H x W channel indices. Runs on params.device: the
// exact CRF on the CPU, the tensor CRF on a GPU.
std::vector<int32_t> crf_channels(const torch::Tensor& stack, const Image& original, const DenseCrfParams& params);

// Step 5.7: channel index -> label through `table` (one entry per channel). The direct lookup,
// or with `official_inplace` the released code's loop "for i = C-1..0: pred[pred == i] =
// table[i]", which relabels again pixels whose new label equals a lower channel index.
// Throws pnpovss::Error for a channel index outside the table.
std::vector<int32_t> map_labels(const std::vector<int32_t>& channels, const std::vector<int32_t>& table,
                                bool official_inplace);

}  // namespace pnpovss::segment
