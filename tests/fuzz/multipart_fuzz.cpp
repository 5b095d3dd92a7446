// multipart/form-data field lookup (proxy/http/multipart.hpp). Input: the first byte's low 6
// bits give the Content-Type's length, then the Content-Type, then the body. Invariants: never
// crashes; a found value is a non-empty span of the body without control bytes, preceded by
// the blank line ending its part's headers and followed by a CRLF and a delimiter.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/split.hpp"
#include "proxy/http/multipart.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t ct_len = data[0] & 0x3f;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (ct_len > rest.size()) ct_len = rest.size();
  std::string ct = "multipart/form-data; boundary=" + std::string(rest.substr(0, ct_len));
  std::string_view body = rest.substr(ct_len);
  auto f = ob::proxy::http::find_form_field(ct, body, "model");
  if (f.status != ob::proxy::http::form_status::ok) return 0;
  OB_FUZZ_CHECK(f.begin < f.end && f.end <= body.size());
  OB_FUZZ_CHECK(f.begin >= 4 && body.substr(f.begin - 4, 4) == "\r\n\r\n");
  OB_FUZZ_CHECK(body.substr(f.end, 4) == "\r\n--");
  for (char c : body.substr(f.begin, f.end - f.begin))
    OB_FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  return 0;
}
