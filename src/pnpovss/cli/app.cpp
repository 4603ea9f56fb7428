// run_command_line (pnpovss/command_line.h): the executable and the Python module both run it.
#include "pnpovss/command_line.h"

#include <ATen/Parallel.h>

#include <iostream>
#include <map>
#include <regex>

#include "pnpovss/cli/commands.h"
#include "pnpovss/cli/method_options.h"
#include "pnpovss/console/download_progress.h"
#include "pnpovss/error.h"
#include "pnpovss/util/failure.h"
#include "pnpovss/util/interrupt.h"
#include "pnpovss/version.h"

namespace pnpovss::cli {
namespace {

// CLI11's words for a repeated option ("--layer: At Most 1 required but received 2") as ours.
std::string parse_error_message(const CLI::ParseError& e) {
  static const std::regex repeated("^(\\S+): At Most 1 required but received ([0-9]+)$");
  std::smatch m;
  const std::string what = e.what();
  if (std::regex_match(what, m, repeated))
    return m[1].str() + " was given " + m[2].str() + " times: give it once";
  return Error(what).what();
}

}  // namespace
}  // namespace pnpovss::cli

namespace pnpovss {

int run_command_line(int argc, const char* const* argv, std::string* error) {
  using namespace cli;
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
      "  pnp-ovss check tests/data/blip_itm                        # parity with reference outputs\n",
      "pnp-ovss"};  // the name in usage lines, rather than argv[0]'s path
  app.set_version_flag("--version", program_version(), "print the version and exit");
  app.require_subcommand(1);
  // Options of the program itself (--threads) are accepted after the subcommand too.
  app.fallthrough();
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
  add(add_serve_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print as CLI11 formats them; a bad option is one line like every
    // other error (CLI11's own message adds a second line).
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    fail(parse_error_message(e) + " (see --help)");
    return e.get_exit_code();
  }
  at::set_num_threads(threads);
  hub::set_download_progress(console::download_display());
  try {
    for (auto* sub : app.get_subcommands())
      if (commands.count(sub)) return commands[sub]();
    return 2;
  } catch (const util::Interrupted&) {
    throw;  // Python's Ctrl-C: the module raises KeyboardInterrupt
  } catch (const SettingError& e) {
    fail(message_with_option(e));
    return 1;
  } catch (const std::exception&) {
    const util::Failure failure = util::current_failure();
    fail(failure.message);
    return failure.internal ? 2 : 1;
  }
}

}  // namespace pnpovss
