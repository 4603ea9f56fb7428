// The settings of one request: the server's own (its --preset and options), or the preset the
// request names under "preset", with the request's values on top. Values are named as in the
// record's "settings" object, so a record's settings can be sent back as they are.
#pragma once

#include <nlohmann/json.hpp>

#include "pnpovss/segment/segmenter.h"
#include "pnpovss/settings.h"

namespace pnpovss::serve {

// Throws HttpError 422 naming the setting for an unknown name, a wrong type, a value out of range
// or one that does not fit the model (layer, head, input size, backbone, or the position-table
// resize, which is fixed when the model is loaded).
MethodSettings request_settings(const nlohmann::json& overrides, const MethodSettings& server_settings,
                                const segment::Segmenter& model);

}  // namespace pnpovss::serve
