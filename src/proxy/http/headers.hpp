// Header handling shared by the request and answer paths: a compact list of (name, value)
// pairs stored in one reusable arena, and the hop-by-hop rules (RFC 9110 section 7.6.1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ob::proxy::http {

// Case-insensitive ASCII comparison (header names, tokens).
bool iequals(std::string_view a, std::string_view b);
// True when `list` (a comma-separated header value) contains `token` case-insensitively.
bool has_token(std::string_view list, std::string_view token);

// Headers of one message. Names and values are copied into one string, so a list can be
// cleared and refilled per message without allocating once it has grown.
class header_list {
 public:
  void clear();
  void add(std::string_view name, std::string_view value);
  std::size_t size() const { return refs_.size(); }
  std::string_view name(std::size_t i) const;
  std::string_view value(std::size_t i) const;
  // First value of `name` (case-insensitive), empty when absent.
  std::string_view get(std::string_view name) const;
  bool contains(std::string_view name) const;
  // Releases memory grown by an unusually large message.
  void shrink_if_above(std::size_t bytes);

 private:
  struct ref {
    std::uint32_t name_off, name_len, value_off, value_len;
  };
  std::string arena_;
  std::vector<ref> refs_;
};

// Header names a proxy never forwards as they came: hop-by-hop headers, plus the ones the
// gateway sets itself (`extra` lists those per direction).
enum class direction { to_upstream, to_client };
// True when header `name` must not be copied in `dir`; `connection_value` is the message's
// Connection header (its tokens name more hop-by-hop headers).
bool is_filtered(std::string_view name, direction dir, std::string_view connection_value);

// Appends "Name: value\r\n" for every header of `in` that is not filtered.
void append_forwarded(std::string& out, const header_list& in, direction dir);

}  // namespace ob::proxy::http
