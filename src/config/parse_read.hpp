// Readers shared by the config parser's files (parse.cpp, parse_keys.cpp): typed access to
// Boost.JSON values that reports every problem with its path. Not part of the module's interface.
#pragma once

#include <cmath>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "config/parse_detail.hpp"

namespace ob::config::detail {

namespace json = boost::json;

inline std::string index_path(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

inline std::string kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::object:
      return "an object";
    case json::kind::array:
      return "an array";
    case json::kind::string:
      return "a string";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::null:
      return "null";
    default:
      return "a number";
  }
}

inline void type_error(context& c, const std::string& path, const char* want,
                       const json::value& v) {
  c.error(path, std::string("must be ") + want + ", got " + kind_name(v));
}

// Sets `out` from a boolean; anything else is an error and leaves `out` as it was.
inline void read_bool(context& c, const json::value& v, const std::string& path, bool& out) {
  if (const bool* b = v.if_bool())
    out = *b;
  else
    type_error(c, path, "a boolean", v);
}

inline const json::string* as_string(context& c, const json::value& v, const std::string& path) {
  if (const auto* s = v.if_string()) return s;
  type_error(c, path, "a string", v);
  return nullptr;
}

// Integers may also be written as integral doubles (1e6) since JSON does not distinguish.
inline std::optional<std::uint64_t> as_integer(context& c, const json::value& v,
                                               const std::string& path, std::uint64_t lo,
                                               std::uint64_t hi) {
  std::optional<double> d;
  if (v.is_int64()) d = static_cast<double>(v.get_int64());
  if (v.is_uint64()) d = static_cast<double>(v.get_uint64());
  if (v.is_double()) d = v.get_double();
  if (!d || std::trunc(*d) != *d) {
    type_error(c, path, "an integer", v);
    return std::nullopt;
  }
  if (*d < static_cast<double>(lo) || *d > static_cast<double>(hi)) {
    c.error(path, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                      ", got " + json::serialize(v));
    return std::nullopt;
  }
  if (v.is_int64()) return static_cast<std::uint64_t>(v.get_int64());
  if (v.is_uint64()) return v.get_uint64();
  return static_cast<std::uint64_t>(*d);
}

inline std::optional<double> as_number(context& c, const json::value& v, const std::string& path) {
  if (v.is_number()) return v.to_number<double>();
  type_error(c, path, "a number", v);
  return std::nullopt;
}

// A number within [lo, hi].
inline std::optional<double> as_number_in(context& c, const json::value& v, const std::string& path,
                                          double lo, double hi, const char* range) {
  auto d = as_number(c, v, path);
  if (!d) return std::nullopt;
  if (*d < lo || *d > hi) {
    c.error(path, std::string("must be ") + range + ", got " + json::serialize(v));
    return std::nullopt;
  }
  return d;
}

// Seconds (fractions allowed) -> milliseconds, rounded up so a tiny positive value stays > 0.
inline millis to_millis(double seconds) {
  return millis(static_cast<millis::rep>(std::ceil(seconds * 1000)));
}

// A duration in seconds: > 0 and at most 7 days (the rule of every "timeouts" value).
inline std::optional<millis> as_seconds(context& c, const json::value& v, const std::string& path) {
  if (!v.is_number()) {
    type_error(c, path, "a number of seconds", v);
    return std::nullopt;
  }
  double s = v.to_number<double>();
  constexpr double max_seconds = 7 * 24 * 3600;
  if (!(s > 0) || s > max_seconds) {
    c.error(path, "must be > 0 and <= 604800 seconds, got " + json::serialize(v));
    return std::nullopt;
  }
  return to_millis(s);
}

inline std::string seconds_text(millis m) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(m.count()) / 1000.0);
  return std::string(buf) + " s";
}

// `${NAME}` as the whole string -> the environment variable NAME; anything else is literal.
inline std::optional<std::string> expand_env(context& c, std::string_view raw,
                                             const std::string& path) {
  if (raw.size() < 3 || !raw.starts_with("${") || !raw.ends_with("}")) return std::string(raw);
  std::string_view name = raw.substr(2, raw.size() - 3);
  if (!detail::valid_env_name(name)) {
    c.error(path, "\"" + std::string(raw) +
                      "\": invalid environment variable name (expected ${NAME}, NAME made of "
                      "letters, digits and _)");
    return std::nullopt;
  }
  auto value = c.env(name);
  if (!value) c.error(path, "environment variable " + std::string(name) + " is not set");
  return value;
}

inline bool has_control_char(std::string_view s) {
  for (unsigned char ch : s)
    if (ch < 0x20 || ch == 0x7f) return true;
  return false;
}

// One key of an object and what to do with its value.
template <class T>
struct field {
  std::string_view key;
  void (*read)(context&, const json::value&, const std::string& path, T&);
};

// Visits an object's keys in document order: known keys go to their reader, unknown ones
// warn, keys written twice warn (Boost.JSON keeps the last one).
template <class T>
inline void walk(context& c, const json::object& o, const std::string& path,
                 std::span<const field<T>> fields, T& out) {
  for (const auto& key : c.duplicates_of(path))
    c.warn(join(path, key), "key appears more than once; the last value wins");
  for (const auto& kv : o) {
    std::string sub = join(path, kv.key());
    bool known = false;
    for (const auto& f : fields) {
      if (f.key != kv.key()) continue;
      f.read(c, kv.value(), sub, out);
      known = true;
      break;
    }
    if (!known) c.warn(sub, "unknown key (ignored)");
  }
}

inline const json::object* as_object(context& c, const json::value& v, const std::string& path) {
  if (const auto* o = v.if_object()) return o;
  type_error(c, path, "an object", v);
  return nullptr;
}

inline void read_required_text(context& c, const json::value& v, const std::string& path,
                               std::string& out) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  if (s->empty()) return c.error(path, "must not be empty");
  if (has_control_char(*s)) return c.error(path, "must not contain control characters");
  out = std::string(*s);
}

// A wait in seconds (fractions allowed), 0 to 60.
inline std::optional<millis> as_wait(context& c, const json::value& v, const std::string& path) {
  auto d = as_number_in(c, v, path, 0, 60, "between 0 and 60 seconds");
  if (!d) return std::nullopt;
  return to_millis(*d);
}

// Field readers that store one member (`&T::name`), for the tables of field<T>:
//   {"rpm", read_integer<&key_limits::rpm, 0, max>}, {"idle", read_seconds<&timeouts::idle>}
template <class>
struct member_traits;
template <class T, class M>
struct member_traits<M T::*> {
  using object = T;
  using type = M;
};
template <auto member>
using object_of = typename member_traits<decltype(member)>::object;

// An integer within [lo, hi], converted to the member's type.
template <auto member, std::uint64_t lo, std::uint64_t hi>
void read_integer(context& c, const json::value& v, const std::string& path,
                  object_of<member>& out) {
  using type = typename member_traits<decltype(member)>::type;
  if (auto n = as_integer(c, v, path, lo, hi)) out.*member = static_cast<type>(*n);
}

// A duration: as_seconds (every "timeouts" value) ...
template <auto member>
void read_seconds(context& c, const json::value& v, const std::string& path,
                  object_of<member>& out) {
  if (auto d = as_seconds(c, v, path)) out.*member = *d;
}

// ... or as_wait (limits.max_wait).
template <auto member>
void read_wait(context& c, const json::value& v, const std::string& path, object_of<member>& out) {
  if (auto w = as_wait(c, v, path)) out.*member = *w;
}

}  // namespace ob::config::detail
