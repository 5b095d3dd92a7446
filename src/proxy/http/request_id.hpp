// The id of one request (the x-request-id header): the client's own when it is safe to log and
// echo, else a fresh one. Pure apart from the generator's one OS seed per thread.
//
// Safe client value: 1..128 bytes of [A-Za-z0-9._:@/+=-] (no space, quote, comma, control or
// non-ASCII byte, so it can go into a log line, a header or JSON without escaping). Anything
// else is replaced by a generated id, never echoed.
// Generated id: 32 lowercase hex characters (128 bits) from a per-thread xoshiro256** seeded
// with 256 bits from the OS (getrandom, else std::random_device) the first time a thread asks:
// no syscall per id, no lock, and two ids (any threads, any restarts) collide with probability
// about n^2 / 2^129 for n ids.
#pragma once

#include <cstddef>
#include <string_view>

namespace ob::proxy::http {

inline constexpr std::size_t max_request_id_size = 128;
inline constexpr std::size_t generated_request_id_size = 32;

// True when `v` is a safe client x-request-id (see above).
bool is_safe_request_id(std::string_view v);

// Writes a fresh id (generated_request_id_size lowercase hex chars, no terminator) to `out`.
void generate_request_id(char* out);

// A request's id, stored inline (no allocation).
class request_id {
 public:
  // The client's value when safe, else a generated id. `client_value` is empty when the
  // client sent no x-request-id.
  static request_id choose(std::string_view client_value);
  std::string_view view() const { return {text_, size_}; }
  bool from_client() const { return from_client_; }

 private:
  char text_[max_request_id_size];
  std::size_t size_ = 0;
  bool from_client_ = false;
};

}  // namespace ob::proxy::http
