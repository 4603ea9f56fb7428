// Geometry helpers of Hugging Face's image processors (image_transforms.py) used by the CLIP
// and BridgeTower preprocessors: the shortest-edge output size and the centre crop.
#pragma once

#include <utility>

#include "pnpovss/image/codec.h"

namespace pnpovss::image {

// get_resize_output_image_size(size, default_to_square=False): the short side becomes `size`,
// the long side int(size * long / short) (truncated). Returns {width, height}. Throws
// pnpovss::Error for non-positive arguments.
std::pair<int, int> shortest_edge_size(int width, int height, int size);

// center_crop(image, (crop_height, crop_width)): when the image is smaller than the crop in a
// dimension it is first zero-padded there, ceil(diff / 2) before and the rest after; then the
// crop starts at top = (H - ch) / 2, left = (W - cw) / 2 (integer division). Throws
// pnpovss::Error for non-positive crop sizes or an empty image.
Image center_crop(const Image& image, int crop_width, int crop_height);

}  // namespace pnpovss::image
