// The Lua scripts of src/state/redis/*.lua, compiled in as string literals by
// cmake/embed_lua.cmake (the .lua files are the source; edit those).
#pragma once

#include <string_view>

namespace ob::state::redis {

extern const std::string_view lua_admit;        // admit.lua: check-and-charge, all-or-nothing
extern const std::string_view lua_settle;       // settle.lua: a batch of settlements
extern const std::string_view lua_settlements;  // settlements.lua: put before admit and settle
extern const std::string_view lua_renew;        // renew.lua: extend concurrency leases
extern const std::string_view lua_reconcile;    // reconcile.lua: add local budget usage back
extern const std::string_view lua_keys_state;   // keys_state.lua: a key's counters, read-only

}  // namespace ob::state::redis
