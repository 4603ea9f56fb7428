// The pnp-ovss command line as a library call, shared by the executable and the Python module.
#include "pnpovss/cli/app.h"

#include <ATen/Parallel.h>

#include <iostream>
#include <map>

#include "pnpovss/cli/commands.h"
#include "pnpovss/cli/failure.h"
#include "pnpovss/error.h"
#include "pnpovss/io/hub_download.h"

namespace pnpovss::cli {

int run_cli(int argc, const char* const* argv, std::string* error) {
  // One "error: ..." line on stderr, or the message handed to the caller.
  const auto fail = [error](const std::string& message) {
    if (error)
      *error = message;
    else
      std::cerr << "error: " << message << "\n";
  };
  CLI::App app{
      "pnp-ovss: segment an image into any list of classes with a frozen image-text matching model "
      "(PnP-OVSS, CVPR 2024).\n\nExamples:\n"
      "  pnp-ovss segment photo.jpg --classes \"cat, sofa\"          # label PNG, overlay, JSON in segment_out/\n"
      "  pnp-ovss match photo.jpg --text \"two cats on a couch\"   # ITM score of an image and a text\n"
      "  pnp-ovss info Salesforce/blip-itm-large-flickr            # what a model is\n"
      "  pnp-ovss check tests/data/blip_itm                        # parity with reference outputs\n"};
  app.require_subcommand(1);
  // Matrix products run on OpenBLAS's own threads (one per CPU; OPENBLAS_NUM_THREADS sets
  // them). A second libtorch thread pool for the element-wise work competes with them for the
  // same cores: on 2 cores, 1 libtorch thread made a BLIP-large pass 1.7x faster than 2.
  int threads = 1;
  app.add_option("--threads", threads,
                 "libtorch threads for element-wise work; matrix products use OpenBLAS's threads "
                 "(OPENBLAS_NUM_THREADS, default: all CPUs)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  std::map<CLI::App*, Command> commands;
  auto add = [&](auto adder) {
    auto run = adder(app);
    commands[app.get_subcommands({}).back()] = run;
  };
  add(add_match_command);
  add(add_info_command);
  add(add_check_command);
  add(add_segment_command);
  add(add_eval_command);
  add(add_tune_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print as CLI11 formats them; a bad option is one line like every
    // other error (CLI11's own message adds a second line).
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    fail(std::string(pnpovss::Error(e.what()).what()) + " (see --help)");
    return e.get_exit_code();
  }
  at::set_num_threads(threads);
  io::set_download_progress(io::stderr_download_progress());
  try {
    for (auto* sub : app.get_subcommands())
      if (commands.count(sub)) return commands[sub]();
    return 2;
  } catch (const std::exception&) {
    const auto failure = current_failure();
    fail(failure.message);
    return failure.internal ? 2 : 1;
  }
}

}  // namespace pnpovss::cli
