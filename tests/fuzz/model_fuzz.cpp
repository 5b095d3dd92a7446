// Request `model` find + splice (src/proxy/json/model.*), as the gateway rewrites a request body.
// Invariants: a document Boost.JSON accepts is never reported invalid; an object root is never
// not_object and vice versa; when found, the value is the top-level "model" string; the splice
// changes only that token, and a valid document stays valid JSON with only "model" changed.
#include <boost/json.hpp>
#include <cstring>
#include <memory>
#include <string>

#include "fuzz/split.hpp"
#include "proxy/json/model.hpp"

namespace {

using namespace ob::proxy::json;

// Boost.JSON's reading of `doc` (strict RFC 8259), or null when it rejects it.
std::unique_ptr<boost::json::value> reference_parse(std::string_view doc) {
  boost::system::error_code ec;
  boost::json::parse_options opt;
  opt.max_depth = 1024;
  auto v = boost::json::parse(doc, ec, {}, opt);
  if (ec) return nullptr;
  return std::make_unique<boost::json::value>(std::move(v));
}

int count_model_keys(const boost::json::object& o) {
  int n = 0;
  for (const auto& kv : o) n += kv.key() == "model";
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static model_finder finder;
  const std::string_view doc(reinterpret_cast<const char*>(data), size);
  const request_model unpadded = finder.find_request_model(doc, doc.size());
  // The in-place path (a caller buffer with padding) must agree with the copy.
  std::unique_ptr<char[]> padded(new char[size + required_padding]);
  if (size) std::memcpy(padded.get(), data, size);
  std::memset(padded.get() + size, 0, required_padding);
  const request_model r = finder.find_request_model({padded.get(), size}, size + required_padding);
  OB_FUZZ_CHECK(r.status == unpadded.status);
  OB_FUZZ_CHECK(r.value.begin == unpadded.value.begin && r.value.end == unpadded.value.end);

  auto ref = reference_parse(doc);
  if (ref) {
    OB_FUZZ_CHECK(r.status != find_status::invalid_json);
    OB_FUZZ_CHECK((r.status == find_status::not_object) == !ref->is_object());
  }
  if (r.status != find_status::ok) return 0;

  OB_FUZZ_CHECK(r.value.begin < r.value.end && r.value.end <= doc.size());
  OB_FUZZ_CHECK(ob::fuzz::string_token_end(doc, r.value.begin) == r.value.end);
  if (ref) {
    const auto& obj = ref->as_object();
    OB_FUZZ_CHECK(count_model_keys(obj) == 1);
    OB_FUZZ_CHECK(obj.at("model").is_string());
    OB_FUZZ_CHECK(obj.at("model").as_string() == r.name);
  }

  const std::string literal = ob::fuzz::unused_literal(doc);
  std::string out;
  append_spliced(out, doc, &r.value, 1, literal);
  int replaced = 0;
  OB_FUZZ_CHECK(ob::fuzz::only_strings_replaced(doc, out, literal, replaced) && replaced == 1);
  OB_FUZZ_CHECK(out.substr(0, r.value.begin) == doc.substr(0, r.value.begin));
  if (ref) {
    auto after = reference_parse(out);
    OB_FUZZ_CHECK(after != nullptr);
    boost::json::value expect = *ref;
    expect.as_object()["model"] = literal.substr(1, literal.size() - 2);
    OB_FUZZ_CHECK(*after == expect);
  }
  return 0;
}
