#include "pnpovss/hub/model_location.h"

#include <sys/stat.h>

#include "pnpovss/error.h"
#include "pnpovss/hub/cache.h"
#include "pnpovss/hub/download.h"
#include "pnpovss/hub/model_files.h"
#include "pnpovss/io/mapped_file.h"

namespace pnpovss::hub {
namespace {

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::string resolve_model_dir(const std::string& spec) {
  if (is_dir(spec)) {
    if (!io::file_exists(spec + "/config.json"))
      throw Error("'" + spec + "' is not a model directory: config.json is missing");
    return spec;
  }
  const auto id = parse_hub_id(spec);
  if (!id)
    throw Error("model '" + spec + "' not found: give a model directory or a hub id such as "
                "Salesforce/blip-itm-large-flickr (optionally @revision)");
  HubRepo repo(*id, hub_cache_root(), HubSettings::from_environment());
  return fetch_model_files(repo);
}

}  // namespace pnpovss::hub
