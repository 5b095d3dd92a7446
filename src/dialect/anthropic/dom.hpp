// Reading helpers over simdjson's DOM (internal to the Anthropic codecs).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "dialect/anthropic/translate.hpp"
#include "dialect/anthropic/writer.hpp"

namespace ob::dialect::anthropic::detail {

namespace dom = simdjson::dom;

inline bool is_string(dom::element e) {
  return e.type() == dom::element_type::STRING;
}
inline bool is_object(dom::element e) {
  return e.type() == dom::element_type::OBJECT;
}
inline bool is_array(dom::element e) {
  return e.type() == dom::element_type::ARRAY;
}
inline bool is_null(dom::element e) {
  return e.type() == dom::element_type::NULL_VALUE;
}
inline bool is_bool(dom::element e) {
  return e.type() == dom::element_type::BOOL;
}
inline bool is_number(dom::element e) {
  auto t = e.type();
  return t == dom::element_type::INT64 || t == dom::element_type::UINT64 ||
         t == dom::element_type::DOUBLE;
}

inline std::string_view str(dom::element e) {
  std::string_view s;
  if (e.get_string().get(s)) return {};
  return s;
}

// A member of an object, or a null-typed "absent" marker (found = false).
struct member {
  bool found = false;
  dom::element value;
};
inline member get(dom::object o, std::string_view k) {
  member m;
  if (!o.at_key(k).get(m.value)) m.found = true;
  return m;
}
inline member get(dom::element e, std::string_view k) {
  dom::object o;
  if (e.get_object().get(o)) return {};
  return get(o, k);
}
inline std::string_view get_str(dom::element e, std::string_view k) {
  member m = get(e, k);
  return m.found ? str(m.value) : std::string_view{};
}

// A non-negative integer value (token counts); -1 when absent or not a number.
inline std::int64_t get_count(dom::element e, std::string_view k) {
  member m = get(e, k);
  if (!m.found) return -1;
  std::int64_t i;
  if (!m.value.get_int64().get(i)) return i < 0 ? -1 : i;
  std::uint64_t u;
  if (!m.value.get_uint64().get(u)) return INT64_MAX;
  double d;
  if (!m.value.get_double().get(d) && d >= 0 && d < 9e18) return static_cast<std::int64_t>(d);
  return -1;
}

inline double num(dom::element e) {
  double d = 0;
  if (!e.get_double().get(d)) return d;
  std::int64_t i;
  if (!e.get_int64().get(i)) return static_cast<double>(i);
  std::uint64_t u;
  if (!e.get_uint64().get(u)) return static_cast<double>(u);
  return 0;
}

// Appends e as JSON text (simdjson re-serializes the validated DOM: always valid JSON).
inline void write_value(json_writer& w, dom::element e) {
  w.raw(simdjson::minify(e));
}

// This thread's parser for codecs that parse one document, read its DOM and are done with it
// before anything else parses on the thread (the request encoder, the stream translator): no
// parser buffers allocated and freed per request or per event. Each use ends with
// trim_thread_parser(). simdjson holds about 15 bytes per byte of capacity (tape, structural
// indexes, strings, the padded copy): a capacity of 64 KiB keeps about 1 MiB per thread.
inline dom::parser& thread_parser() {
  thread_local dom::parser p;
  return p;
}
// Gives back the buffers of a thread parser that a big document (over 64 KiB: a request with
// images, say) grew: such documents get fresh buffers each time, as before.
inline void trim_thread_parser() {
  auto& p = thread_parser();
  if (p.capacity() > 64 * 1024) p = dom::parser();
}

// Parses `text` into the parser's document (copied to padded memory); false if invalid.
// The padded copy is this thread's buffer, reused: no allocation per parse (simdjson's own copy
// is allocated and freed each time). The DOM keeps nothing of it (strings live in the
// parser), so the next parse may overwrite it. Past 64 KiB it is given back after the parse.
inline bool parse(dom::parser& p, std::string_view text, dom::element& out) {
  // Empty is never JSON; and an empty view may have a null data(), which simdjson would memcpy
  // from (undefined behaviour, found by the fuzzer).
  if (text.empty()) return false;
  thread_local std::string padded;
  const std::size_t need = text.size() + simdjson::SIMDJSON_PADDING;
  if (padded.size() < need) padded.resize(need);
  std::memcpy(padded.data(), text.data(), text.size());
  std::memset(padded.data() + text.size(), 0, simdjson::SIMDJSON_PADDING);  // as simdjson's
  bool ok = !p.parse(padded.data(), text.size(), false).get(out);
  if (padded.size() > 64 * 1024) std::string().swap(padded);
  return ok;
}

inline std::string path_index(std::string_view base, std::size_t i) {
  std::string s(base);
  s += '[';
  s += std::to_string(i);
  s += ']';
  return s;
}

// Returns true when a (sum) counter is set; treats -1 as absent.
inline std::int64_t add_counts(std::int64_t a, std::int64_t b) {
  if (a < 0) return b;
  if (b < 0) return a;
  return a + b;
}

}  // namespace ob::dialect::anthropic::detail

namespace ob::dialect::anthropic::detail {
// The array of an element known to be an array (by value: never a reference into a temporary
// simdjson_result, which a range-for would leave dangling).
inline dom::array as_array(dom::element e) {
  dom::array a;
  if (e.get_array().get(a)) return {};
  return a;
}
}  // namespace ob::dialect::anthropic::detail
