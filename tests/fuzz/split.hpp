// Fuzzer input = bytes to parse + where to cut them. The cut points are taken from the END of
// the fuzzer's data (FuzzedDataProvider reads integers from the end), so a seed file that is a
// real stream/request/config keeps its meaning: its last byte selects how many cuts (0..16, or
// 17 = one byte per feed) and, with cuts, the bytes before it are 2-byte cut positions.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace ob::fuzz {

struct split_input {
  std::string bytes;
  std::vector<std::size_t> cuts;  // ascending positions in [0, bytes.size()]
};

inline split_input take_splits(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  const int n = fdp.ConsumeIntegralInRange<int>(0, 17);
  std::vector<std::size_t> raw;
  for (int i = 0; i < n && i < 16; ++i) raw.push_back(fdp.ConsumeIntegral<std::uint16_t>());
  split_input r;
  r.bytes = fdp.ConsumeRemainingBytesAsString();
  if (n == 17) {
    for (std::size_t i = 1; i < r.bytes.size(); ++i) r.cuts.push_back(i);
  } else {
    for (std::size_t c : raw) r.cuts.push_back(c % (r.bytes.size() + 1));
    std::sort(r.cuts.begin(), r.cuts.end());
  }
  return r;
}

// The pieces of `s` between consecutive cuts (empty pieces included: a zero-byte feed must be
// harmless too).
inline std::vector<std::string_view> pieces(std::string_view s,
                                            const std::vector<std::size_t>& cuts) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  for (std::size_t c : cuts) {
    out.push_back(s.substr(pos, c - pos));
    pos = c;
  }
  out.push_back(s.substr(pos));
  return out;
}

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

#define OB_FUZZ_CHECK(cond)                                                           \
  do {                                                                                \
    if (!(cond)) ::ob::fuzz::fail(#cond " (" __FILE__ ":" OB_FUZZ_STR(__LINE__) ")"); \
  } while (0)
#define OB_FUZZ_STR(x) OB_FUZZ_STR2(x)
#define OB_FUZZ_STR2(x) #x

// The end of the JSON string token starting at s[pos] == '"' (one past its closing quote), or
// npos when there is none.
inline std::size_t string_token_end(std::string_view s, std::size_t pos) {
  if (pos >= s.size() || s[pos] != '"') return std::string_view::npos;
  for (std::size_t i = pos + 1; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// A replacement literal "\"<k>\"" whose inner text <k> occurs nowhere in `input`, so every
// occurrence of it in an output is one that was spliced in.
inline std::string unused_literal(std::string_view input) {
  for (int i = 0;; ++i) {
    std::string inner = "ob~g" + std::to_string(i);
    if (input.find(inner) == std::string_view::npos) return "\"" + inner + "\"";
  }
}

// True when `out` is `in` with zero or more JSON string tokens replaced by `literal` (and
// nothing else changed); counts the replacements.
inline bool only_strings_replaced(std::string_view in, std::string_view out,
                                  std::string_view literal, int& replaced) {
  replaced = 0;
  std::size_t ip = 0, op = 0;
  for (;;) {
    std::size_t hit = out.find(literal, op);
    std::string_view seg = out.substr(op, hit == std::string_view::npos ? out.npos : hit - op);
    if (in.substr(ip, seg.size()) != seg) return false;
    ip += seg.size();
    if (hit == std::string_view::npos) return ip == in.size();
    std::size_t end = string_token_end(in, ip);
    if (end == std::string_view::npos) return false;
    ip = end;
    op = hit + literal.size();
    ++replaced;
  }
}

}  // namespace ob::fuzz
