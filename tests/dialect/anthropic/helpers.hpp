// Test helpers for the Anthropic codecs: run a stream's bytes through the SSE framer and a
// translator at chosen split points, and read the SSE the translator wrote.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dialect/anthropic/translate.hpp"
#include "proxy/sse/framer.hpp"

namespace ob::dialect::anthropic::test {

inline bool valid_json(std::string_view s) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  return !p.parse(s.data(), s.size(), true).get(e);
}

struct sse_event {
  std::string name, data;
};

// The events of an SSE text (what the client would read).
inline std::vector<sse_event> read_sse(std::string_view text) {
  std::vector<sse_event> out;
  ob::proxy::sse::framer f;
  auto on = [&](const ob::proxy::sse::event& ev) {
    if (ev.has_data || !ev.type.empty())
      out.push_back({std::string(ev.type), std::string(ev.data)});
  };
  f.feed(text, on);
  f.finish(on);
  return out;
}

struct run_result {
  std::string out;
  int terminal = 0;  // events that reported terminal
  bool error = false;
  token_usage usage;
};

// Feeds `bytes` cut at `cuts` (ascending) to a framer, and each framed event to `t`.
template <class Translator>
run_result run_stream(Translator& t, std::string_view bytes, const std::vector<std::size_t>& cuts) {
  run_result r;
  ob::proxy::sse::framer f;
  auto on = [&](const ob::proxy::sse::event& ev) {
    if (!ev.has_data && ev.type.empty()) {  // as the codecs do: a comment is a keep-alive
      if (ob::proxy::sse::is_comment(ev)) t.keep_alive(r.out);
      return;
    }
    event_result e = t.on_event(ev.type, ev.data, r.out);
    if (e.terminal) ++r.terminal;
    r.error |= e.error;
    if (e.usage.present()) r.usage = e.usage;
  };
  std::size_t pos = 0;
  for (std::size_t c : cuts) {
    f.feed(bytes.substr(pos, c - pos), on);
    pos = c;
  }
  f.feed(bytes.substr(pos), on);
  f.finish(on);
  return r;
}

// "event: <name>\ndata: <data>\n\n" for building upstream streams.
inline std::string sse(std::string_view name, std::string_view data) {
  std::string s;
  if (!name.empty()) {
    s += "event: ";
    s += name;
    s += '\n';
  }
  s += "data: ";
  s += data;
  s += "\n\n";
  return s;
}

}  // namespace ob::dialect::anthropic::test
