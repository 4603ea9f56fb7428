// Where two JSON documents differ, for the messages that refuse to mix two runs in one folder
// (an eval run folder, a tuning journal): they name the field, not just "something differs".
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace pnpovss::util {

// The first key (dotted path, e.g. "settings.attention_layer_1based") where `a` and `b`
// differ; "" when they are equal; "(document)" when they differ but are not both objects.
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b, const std::string& path = "");

// "settings.attention_layer_1based: 8 there, 9 now" for the first difference between what was
// recorded (`there`) and what is asked for (`now`); "" when they are equal. Values are cut to
// 80 characters.
std::string describe_difference(const nlohmann::json& there, const nlohmann::json& now);

}  // namespace pnpovss::util
