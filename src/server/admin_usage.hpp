// GET /admin/v1/usage?by=key,group,target&period=day|week|month: the ledger's sums over the
// current UTC period, as JSON. Reads flushed rows only (at most one second behind).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "state/ledger.hpp"

namespace ob::server {

// Status and body for the query string `query` (without '?'), over the period holding `now`.
std::pair<int, std::string> usage_answer(state::ledger& l, std::string_view query,
                                         state::epoch_ms now);

}  // namespace ob::server
