#include "pnpovss/serve/segment_request.h"

#include <httplib.h>

#include "pnpovss/run/class_lists.h"
#include "pnpovss/serve/http_error.h"
#include "pnpovss/util/ascii.h"
#include "pnpovss/util/base64.h"

namespace pnpovss::serve {
namespace {

using nlohmann::json;

HttpError bad_request(const std::string& message) { return HttpError(400, message); }

// "true"/"1"/"yes" or "false"/"0"/"no" (any case); `what` names the field.
bool parse_flag(const std::string& text, const std::string& what) {
  const std::string v = util::lower_ascii(util::trim_ascii(text));
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no" || v.empty()) return false;
  throw bad_request(what + " must be true or false, not '" + text + "'");
}

// A JSON array of names as the classes.
std::vector<std::string> names_of(const json& list) {
  std::vector<std::string> names;
  for (const json& name : list) {
    if (!name.is_string()) throw HttpError(422, "classes must be names (strings), not " + name.dump());
    names.push_back(util::trim_ascii(name.get<std::string>()));
    if (names.back().empty())
      throw HttpError(422, "class " + std::to_string(names.size()) + " has an empty name: remove it or name it");
  }
  if (names.empty()) throw HttpError(422, "no classes: give at least one class name");
  return names;
}

// "cat, sofa" or a JSON array in text.
std::vector<std::string> parse_classes_text(const std::string& text) {
  const std::string trimmed = util::trim_ascii(text);
  if (!trimmed.empty() && trimmed.front() == '[') {
    const json list = json::parse(trimmed, nullptr, false);
    if (list.is_discarded() || !list.is_array()) throw bad_request("the classes field starts with '[' but is not a JSON array");
    return names_of(list);
  }
  try {
    return run::split_class_list(text);
  } catch (const InvalidArgument& e) {
    throw HttpError(422, e.what());
  }
}

json parse_settings_text(const std::string& text) {
  if (util::trim_ascii(text).empty()) return json::object();
  json settings = json::parse(text, nullptr, false);
  if (settings.is_discarded()) throw bad_request("the settings field is not JSON: give an object such as {\"attention_layer_1based\": 8}");
  return settings;
}

const std::string kClassesHint = "give them as classes, e.g. \"cat, sofa, remote control\"";

void read_multipart(const httplib::Request& req, SegmentRequest& out) {
  if (!req.has_file("image")) throw bad_request("no image: send the image file as the form field 'image'");
  const httplib::MultipartFormData image = req.get_file_value("image");
  out.image.assign(image.content.begin(), image.content.end());
  if (!image.filename.empty()) out.image_name = image.filename;
  if (!req.has_file("classes")) throw bad_request("no classes: " + kClassesHint);
  out.classes = parse_classes_text(req.get_file_value("classes").content);
  if (req.has_file("settings")) out.settings = parse_settings_text(req.get_file_value("settings").content);
  if (req.has_file("maps")) out.maps = parse_flag(req.get_file_value("maps").content, "maps");
}

void read_json(const httplib::Request& req, SegmentRequest& out) {
  const json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) throw bad_request("the body is not a JSON object");
  if (!body.contains("image") || !body["image"].is_string())
    throw bad_request("no image: send the image file as base64 text under \"image\"");
  try {
    out.image = util::base64_decode(body["image"].get<std::string>());
  } catch (const InvalidArgument& e) {
    throw bad_request(std::string("the image is not valid base64: ") + e.what());
  }
  if (body.contains("name") && body["name"].is_string()) out.image_name = body["name"].get<std::string>();
  if (!body.contains("classes")) throw bad_request("no classes: " + kClassesHint + " or [\"cat\", \"sofa\"]");
  const json& classes = body["classes"];
  if (classes.is_array()) {
    out.classes = names_of(classes);
  } else if (classes.is_string()) {
    out.classes = parse_classes_text(classes.get<std::string>());
  } else {
    throw bad_request("classes must be a list of names or one comma-separated string");
  }
  if (body.contains("settings")) out.settings = body["settings"];
  if (body.contains("maps")) {
    if (!body["maps"].is_boolean()) throw bad_request("maps must be true or false");
    out.maps = body["maps"].get<bool>();
  }
}

bool is_json(const httplib::Request& req) {
  return util::lower_ascii(req.get_header_value("Content-Type")).rfind("application/json", 0) == 0;
}

}  // namespace

SegmentRequest parse_segment_request(const httplib::Request& req) {
  SegmentRequest out;
  if (req.is_multipart_form_data()) {
    read_multipart(req, out);
  } else if (is_json(req)) {
    read_json(req, out);
  } else {
    throw bad_request("send the image as multipart/form-data (curl -F image=@photo.jpg -F classes='cat, sofa') or as JSON");
  }
  if (req.has_param("maps")) out.maps = out.maps || parse_flag(req.get_param_value("maps"), "maps");
  const std::string accept = util::lower_ascii(req.get_header_value("Accept"));
  out.png_only = accept.find("image/png") != std::string::npos && accept.find("application/json") == std::string::npos;
  return out;
}

}  // namespace pnpovss::serve
