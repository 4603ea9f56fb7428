// The JSON answer to a segmented image (docs/server.md): the record `segment` writes, with the
// time spent in the queue among its timings, the label PNG and the overlay as base64, and with
// `maps` the explanation maps.
#pragma once

#include <string>

#include "pnpovss/run/record.h"

namespace pnpovss::serve {

struct AnsweredImage {
  const run::RunIdentity* identity = nullptr;
  const run::Item* item = nullptr;
  const run::Outcome* outcome = nullptr;
  double queue_seconds = 0;
  bool maps = false;
};

// The answer's JSON text. Throws pnpovss::Error when an output cannot be encoded.
std::string answer_json(const AnsweredImage& answered);

// The label PNG alone (Accept: image/png).
run::Bytes answer_label_png(const AnsweredImage& answered);

}  // namespace pnpovss::serve
