// Per-event model rewrite. Most stream events are small JSON chunks; the cost that matters is
// one On-Demand pass over the data and one append of the event's bytes.
#include "proxy/sse/rewrite.hpp"

#include <cstring>

namespace ob::proxy::sse {
namespace {

bool contains(std::string_view hay, std::string_view needle) {
  return ::memmem(hay.data(), hay.size(), needle.data(), needle.size()) != nullptr;
}

// Data that mentions none of the keys we read cannot change the outcome: skip the parse.
// A backslash may hide a key behind escapes ("mod\u0065l"), so it forces the parse too.
bool worth_parsing(std::string_view data) {
  std::size_t i = 0;
  while (i < data.size() &&
         (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
    ++i;
  if (i == data.size() || data[i] != '{') return false;
  return contains(data, "model") || contains(data, "usage") || contains(data, "error") ||
         contains(data, "type") || contains(data, "\\");
}

bool is_terminal_type(std::string_view t) {
  return t == "response.completed" || t == "response.failed" || t == "response.incomplete" ||
         t == "error";
}

bool is_error_type(std::string_view t) {
  return t == "error" || t == "response.failed";
}

void classify(std::string_view type, event_info& info) {
  if (is_terminal_type(type)) info.terminal = true;
  if (is_error_type(type)) info.error = true;
}

}  // namespace

event_info rewrite_event(const event& ev, json::model_finder& finder,
                         std::string_view group_literal, std::string& out) {
  event_info info;
  classify(ev.type, info);
  if (!ev.has_data) {
    out.append(ev.raw);
    return info;
  }
  if (ev.data == "[DONE]") {
    info.done = info.terminal = true;
    out.append(ev.raw);
    return info;
  }
  if (!worth_parsing(ev.data)) {
    out.append(ev.raw);
    return info;
  }
  // The data is a view without known padding after it; the finder copies it (events are small).
  const json::answer_info a = finder.inspect_answer(ev.data, ev.data.size());
  if (!a.is_object) {
    out.append(ev.raw);
    return info;
  }
  classify(a.type, info);
  if (a.has_error) info.terminal = info.error = true;
  info.usage = a.usage;
  json::span raw_spans[json::answer_info::max_models];
  for (int i = 0; i < a.model_count; ++i) {
    // A JSON string cannot hold a raw newline, so a token never straddles two data lines.
    raw_spans[i].begin = ev.raw_offset(a.models[i].begin);
    raw_spans[i].end = ev.raw_offset(a.models[i].end - 1) + 1;
  }
  json::append_spliced(out, ev.raw, raw_spans, a.model_count, group_literal);
  return info;
}

}  // namespace ob::proxy::sse
