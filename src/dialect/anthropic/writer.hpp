// A small JSON text writer: appends to a caller's string, inserts the commas, escapes every
// string (proxy/json append_json_string: RFC 8259 escapes, invalid UTF-8 -> U+FFFD), so that the
// output is valid JSON whatever the input strings hold. No DOM, no allocation of its own.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/json/model.hpp"

namespace ob::dialect::anthropic {

class json_writer {
 public:
  explicit json_writer(std::string& out) : out_(out) {}

  json_writer& begin_object() {
    sep();
    out_ += '{';
    first_ = true;
    return *this;
  }
  json_writer& end_object() {
    out_ += '}';
    first_ = false;
    return *this;
  }
  json_writer& begin_array() {
    sep();
    out_ += '[';
    first_ = true;
    return *this;
  }
  json_writer& end_array() {
    out_ += ']';
    first_ = false;
    return *this;
  }
  json_writer& key(std::string_view k) {
    sep();
    ob::proxy::json::append_json_string(out_, k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  json_writer& string(std::string_view s) {
    sep();
    ob::proxy::json::append_json_string(out_, s);
    return *this;
  }
  json_writer& integer(std::int64_t v) {
    sep();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    return *this;
  }
  json_writer& number(double v) {
    sep();
    if (!std::isfinite(v)) {  // JSON has no NaN/inf; parsed JSON never yields them
      out_ += "null";
      return *this;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    return *this;
  }
  json_writer& boolean(bool v) {
    sep();
    out_ += v ? "true" : "false";
    return *this;
  }
  json_writer& null() {
    sep();
    out_ += "null";
    return *this;
  }
  // A complete JSON value that is already valid text (e.g. re-serialized by simdjson).
  json_writer& raw(std::string_view token) {
    sep();
    out_ += token;
    return *this;
  }
  // Convenience: "k":"v"
  json_writer& kv(std::string_view k, std::string_view v) { return key(k).string(v); }
  json_writer& kv_int(std::string_view k, std::int64_t v) { return key(k).integer(v); }

  std::string& out() { return out_; }

 private:
  void sep() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) out_ += ',';
    first_ = false;
  }
  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace ob::dialect::anthropic
