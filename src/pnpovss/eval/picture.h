// The picture of one evaluated image for people: the image, its ground truth and the
// prediction side by side, with a legend of the classes that occur in either map.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/image/codec.h"

namespace pnpovss::eval {

// `ground_truth` and `prediction` are height x width evaluation classes (0..C-1; anything else,
// e.g. -1, is ignored / no class and drawn black). Class k is drawn in
// image::label_color(colour_labels[k]) (Dataset::segment_labels), or label_color(k + 1) when
// `colour_labels` is empty.
Image comparison_picture(const Image& image, const std::vector<int32_t>& ground_truth,
                         const std::vector<int32_t>& prediction, const std::vector<std::string>& class_names,
                         const std::vector<int32_t>& colour_labels = {});

}  // namespace pnpovss::eval
