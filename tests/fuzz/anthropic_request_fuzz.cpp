// Anthropic request translation in both directions (src/dialect/anthropic: request_out.cpp,
// request_in.cpp) on the same bytes.
// Invariants: never crash; a translation either succeeds with a body that is a valid JSON object
// and no error, or fails with status 400, an empty body and an error body that is a valid JSON
// object in the client's dialect (OpenAI {"error":{...}} / Anthropic {"type":"error",...}).
// Outbound, the single pass (request_fast.cpp) and the general translator give the same result.
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

void check(const ob::dialect::anthropic::request_result& r, bool openai_error) {
  if (r.failed()) {
    OB_FUZZ_CHECK(r.error.status == 400);
    OB_FUZZ_CHECK(r.body.empty());
    OB_FUZZ_CHECK(json_object(r.error_body));
    OB_FUZZ_CHECK(r.error_body.starts_with(openai_error ? R"({"error":{)" : R"({"type":"error")"));
  } else {
    OB_FUZZ_CHECK(r.error_body.empty());
    OB_FUZZ_CHECK(json_object(r.body));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ob::dialect::anthropic;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  outbound_options out;
  out.target_model = "claude \"target\"";
  request_result r = openai_request_to_anthropic(body, out);
  check(r, true);
  out.general_only = true;
  request_result g = openai_request_to_anthropic(body, out);
  OB_FUZZ_CHECK(r.body == g.body);
  OB_FUZZ_CHECK(r.error_body == g.error_body);
  OB_FUZZ_CHECK(r.stream == g.stream && r.include_usage == g.include_usage);
  inbound_options in;
  in.target_model = "gpt-4o";
  in.max_completion_tokens = size % 2;
  check(anthropic_request_to_openai(body, in), false);
  return 0;
}
