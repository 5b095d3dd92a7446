// Anthropic answer translation in both directions (src/dialect/anthropic: answer_out.cpp,
// answer_in.cpp), with a success, a client-error and an overloaded status.
// Invariants: never crash; the client body is always a valid JSON object; the client status is
// 2xx only for a 2xx upstream status, and a 4xx/5xx otherwise.
#include <boost/json.hpp>
#include <string>

#include "dialect/anthropic/translate.hpp"
#include "fuzz/split.hpp"

namespace {

bool json_object(std::string_view s) {
  boost::system::error_code ec;
  boost::json::parse_options opt;
  opt.max_depth = 4096;
  auto v = boost::json::parse(s, ec, {}, opt);
  return !ec && v.is_object();
}

void check(int upstream, const ob::dialect::anthropic::answer_result& r) {
  OB_FUZZ_CHECK(json_object(r.body));
  if (upstream >= 200 && upstream <= 299) {
    OB_FUZZ_CHECK(r.status == 200 || r.status == 502);
  } else {
    OB_FUZZ_CHECK(r.status >= 400 && r.status <= 599);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ob::dialect::anthropic;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (int status : {200, 400, 529}) {
    check(status, anthropic_answer_to_openai(status, body, "gr\"oup", 1700000000));
    check(status, openai_answer_to_anthropic(status, body, "gr\"oup"));
  }
  return 0;
}
