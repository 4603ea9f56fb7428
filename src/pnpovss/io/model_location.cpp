#include "pnpovss/io/model_location.h"

#include <sys/stat.h>

#include <cstdlib>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::io {
namespace {

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> cache_roots() {
  std::vector<std::string> roots;
  if (const char* v = std::getenv("HF_HUB_CACHE")) roots.push_back(v);
  if (const char* v = std::getenv("HUGGINGFACE_HUB_CACHE")) roots.push_back(v);
  if (const char* v = std::getenv("HF_HOME")) roots.push_back(std::string(v) + "/hub");
  if (const char* v = std::getenv("XDG_CACHE_HOME")) roots.push_back(std::string(v) + "/huggingface/hub");
  if (const char* v = std::getenv("HOME")) roots.push_back(std::string(v) + "/.cache/huggingface/hub");
  return roots;
}

}  // namespace

std::string resolve_model_dir(const std::string& spec) {
  if (is_dir(spec)) {
    if (!file_exists(spec + "/config.json"))
      throw Error("'" + spec + "' is not a model directory: config.json is missing");
    return spec;
  }
  const auto slash = spec.find('/');
  const bool hub_id = slash != std::string::npos && slash > 0 && spec.find('/', slash + 1) == std::string::npos &&
                      spec.find("..") == std::string::npos;
  if (!hub_id) throw Error("model '" + spec + "' not found: give a model directory or a hub id such as Salesforce/blip-itm-large-flickr");
  const std::string folder = "models--" + spec.substr(0, slash) + "--" + spec.substr(slash + 1);
  for (const auto& root : cache_roots()) {
    const std::string repo = root + "/" + folder;
    if (!is_dir(repo)) continue;
    std::string revision = "main";
    if (file_exists(repo + "/refs/main")) revision = trim(read_text_file(repo + "/refs/main"));
    const std::string snapshot = repo + "/snapshots/" + revision;
    if (file_exists(snapshot + "/config.json")) return snapshot;
  }
  throw Error("model '" + spec + "' is not in the local Hugging Face cache; download it once with "
              "'huggingface-cli download " + spec + " config.json model.safetensors vocab.txt "
              "tokenizer_config.json special_tokens_map.json preprocessor_config.json', "
              "or pass --model DIR with a directory that holds those files");
}

}  // namespace pnpovss::io
