#include "admin/ui_assets.hpp"

namespace ob::admin {

const ui_asset* find_ui_asset(std::string_view path) {
  if (path == "/" || path == "/ui" || path == "/ui/") path = "/ui/index.html";
  for (std::size_t i = 0; i < ui_asset_count; ++i)
    if (ui_asset_table[i].path == path) return &ui_asset_table[i];
  return nullptr;
}

}  // namespace ob::admin
