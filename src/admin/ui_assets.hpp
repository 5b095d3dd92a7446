// The dashboard's files (src/admin/ui/), compiled into the binary by cmake/embed_ui.cmake: the
// admin listener serves them from memory, so the page works offline and cannot drift from the
// binary that serves its data.
#pragma once

#include <cstddef>
#include <string_view>

namespace ob::admin {

struct ui_asset {
  std::string_view path;  // under /ui/, e.g. "/ui/app.js"
  std::string_view content_type;
  std::string_view body;
};

// Defined in the generated ui_assets_data.cpp.
extern const ui_asset ui_asset_table[];
extern const std::size_t ui_asset_count;

// The asset served at `path`; "/", "/ui" and "/ui/" are the page itself. nullptr if none.
const ui_asset* find_ui_asset(std::string_view path);

// Headers of every dashboard file: no inline script or style, nothing from another origin.
constexpr std::string_view ui_content_security_policy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

}  // namespace ob::admin
