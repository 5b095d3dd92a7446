// One SSE event -> the same bytes with the model rewritten to the group name.
#pragma once

#include <string>
#include <string_view>

#include "proxy/json/model.hpp"
#include "proxy/sse/framer.hpp"

namespace ob::proxy::sse {

struct event_info {
  bool done = false;      // data is exactly "[DONE]"
  bool terminal = false;  // done, or an event that ends a stream: Responses API
                          // response.completed / response.failed / response.incomplete / error,
                          // or a JSON object with a top-level "error"
  bool error =
      false;  // the event reports an error (top-level "error", type "error"/"response.failed")
  json::token_usage usage;  // when the event carries usage
};

// Appends ev.raw to `out`, with the top-level "model" and "response"."model" string values of a
// JSON-object data replaced by `group_literal` (a JSON string token, e.g. "\"fast\"").
// Everything else (comments, [DONE], non-JSON data, other fields) is appended unchanged.
event_info rewrite_event(const event& ev, json::model_finder& finder,
                         std::string_view group_literal, std::string& out);

}  // namespace ob::proxy::sse
