// Feeds bytes to a Beast-based parser the way the gateway's read loops do: bytes accumulate in
// a buffer, put() consumes what it can, the rest waits for the next read.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/error.hpp>

#include "fuzz/split.hpp"
#include "proxy/http/headers.hpp"

namespace ob::fuzz {

// What a header list holds, comparable.
inline std::vector<std::string> header_lines(const ob::proxy::http::header_list& h) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < h.size(); ++i) {
    out.push_back(std::string(h.line(i)));
    OB_FUZZ_CHECK(h.id(i) == ob::proxy::http::classify(h.name(i)));
  }
  return out;
}

}  // namespace ob::fuzz
