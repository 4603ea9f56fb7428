// The subcommands of `pnp-ovss`. Each registers its options on the app and returns the
// function that runs it (returning the process exit status). Only the CLI prints.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace pnpovss::cli {

using Command = std::function<int()>;

Command add_check_command(CLI::App& app);
Command add_info_command(CLI::App& app);
Command add_match_command(CLI::App& app);
Command add_segment_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_tune_command(CLI::App& app);
Command add_serve_command(CLI::App& app);

// The model used when --model is not given.
inline const char* kDefaultModel = "Salesforce/blip-itm-large-flickr";

}  // namespace pnpovss::cli
