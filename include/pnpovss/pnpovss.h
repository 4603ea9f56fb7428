// pnp-ovss: training-free open-vocabulary semantic segmentation (PnP-OVSS, CVPR 2024) as a
// library. See segmenter.h for an example; docs/architecture.md for how it is built.
#pragma once

#include "pnpovss/error.h"
#include "pnpovss/image.h"
#include "pnpovss/segmenter.h"
#include "pnpovss/settings.h"
#include "pnpovss/version.h"
