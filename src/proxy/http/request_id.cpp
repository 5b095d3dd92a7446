// Request ids: validation of the client's value and a per-thread generator.
#include "proxy/http/request_id.hpp"

#include <sys/random.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>

namespace ob::proxy::http {
namespace {

constexpr std::array<bool, 256> safe_bytes = [] {
  std::array<bool, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (char c : std::string_view("._:@/+=-")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

std::uint64_t rotl(std::uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// xoshiro256** (Blackman & Vigna): fast, period 2^256 - 1; every thread starts at its own
// random point, so sequences of different threads and processes do not meet in practice.
class xoshiro256 {
 public:
  xoshiro256() {
    std::uint8_t seed[sizeof s_];
    std::size_t got = 0;
    while (got < sizeof seed) {  // one syscall in practice (<= 256 bytes never comes short)
      ssize_t n = getrandom(seed + got, sizeof seed - got, 0);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got < sizeof seed) {  // no getrandom (old kernel, seccomp): the library's source
      std::random_device rd;
      for (std::size_t i = 0; i < sizeof seed; ++i) seed[i] = static_cast<std::uint8_t>(rd());
    }
    std::memcpy(s_, seed, sizeof s_);
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // the one state it must avoid
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  std::uint64_t s_[4];
};

// Two hex digits per byte value: 8 lookups per 64-bit number instead of 16.
constexpr auto hex_pairs = [] {
  constexpr char digits[] = "0123456789abcdef";
  std::array<char, 512> t{};
  for (int b = 0; b < 256; ++b) {
    t[2 * b] = digits[b >> 4];
    t[2 * b + 1] = digits[b & 0xf];
  }
  return t;
}();

void put_hex(char* out, std::uint64_t v) {
  for (int i = 14; i >= 0; i -= 2, v >>= 8) std::memcpy(out + i, &hex_pairs[2 * (v & 0xff)], 2);
}

}  // namespace

bool is_safe_request_id(std::string_view v) {
  if (v.empty() || v.size() > max_request_id_size) return false;
  for (char c : v)
    if (!safe_bytes[static_cast<unsigned char>(c)]) return false;
  return true;
}

void generate_request_id(char* out) {
  thread_local xoshiro256 rng;
  put_hex(out, rng.next());
  put_hex(out + 16, rng.next());
}

request_id request_id::choose(std::string_view client_value) {
  request_id id;
  if (is_safe_request_id(client_value)) {
    std::memcpy(id.text_, client_value.data(), client_value.size());
    id.size_ = client_value.size();
    id.from_client_ = true;
  } else {
    generate_request_id(id.text_);
    id.size_ = generated_request_id_size;
  }
  return id;
}

}  // namespace ob::proxy::http
