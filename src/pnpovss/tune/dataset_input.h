// Tuning input from an evaluation dataset: per image, the names of the classes its ground truth
// contains (image-level names only, as the paper derives them from the labels), in the
// dataset's class order. The method's background class is never a prompt class.
#pragma once

#include <cstddef>
#include <vector>

#include "pnpovss/eval/dataset.h"
#include "pnpovss/tune/tune_input.h"

namespace pnpovss::tune {

// The first `limit` images (0: all) that have at least one class; images whose ground truth
// holds none are skipped. Throws pnpovss::Error for an unreadable label map.
std::vector<TuneImage> dataset_tune_images(const eval::Dataset& dataset, size_t limit);

}  // namespace pnpovss::tune
