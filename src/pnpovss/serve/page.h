// The web page served at / (serve/web/index.html, embedded into the binary at build time so that
// the server needs no files and the page works offline).
#pragma once

#include <string_view>

namespace pnpovss::serve {

std::string_view page_html();

}  // namespace pnpovss::serve
